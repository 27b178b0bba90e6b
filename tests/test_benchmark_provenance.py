"""Speed results carry their own provenance: benchmarks/provenance.py and the scripts that use it (CPU)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import multi_gpu_speed  # noqa: E402
import provenance  # noqa: E402
import scoring_speed  # noqa: E402


def _head() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def test_provenance_names_commit_date_command_and_card(monkeypatch):
    monkeypatch.delenv("ADARANK_COMMIT", raising=False)
    for var in ("TORCHELASTIC_RUN_ID", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    prov = provenance.run_provenance(["benchmarks/scoring_speed.py", "--models", "bert-base", "--eva-models", ""])
    assert prov["commit"] == _head()
    assert before <= dt.datetime.fromisoformat(prov["date"]) <= dt.datetime.now(dt.timezone.utc)
    assert prov["command"].endswith("benchmarks/scoring_speed.py --models bert-base --eva-models ''")
    assert prov["card"] == "cpu" and prov["cards_visible"] == 0  # the test machine has no GPU
    monkeypatch.setenv("ADARANK_COMMIT", "abe0efb")  # a copy of the tree without .git
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    prov = provenance.run_provenance(["benchmarks/multi_gpu_speed.py", "--model", "llama-1b"])
    assert prov["commit"] == "abe0efb"
    assert prov["command"] == "torchrun --nproc-per-node 2 benchmarks/multi_gpu_speed.py --model llama-1b"
    head = scoring_speed.header(prov, 796e12)
    assert {k: head[k] for k in ("commit", "date", "command", "card")} == {k: prov[k] for k in
                                                                          ("commit", "date", "command", "card")}
    assert head["matmul_peak_tflops"] == pytest.approx(796.0)


def test_multi_gpu_speed_writes_its_provenance_into_each_result(tmp_path, monkeypatch):
    """The script's own CPU path (tiny Llama, one process), then its comparison of two result files."""
    monkeypatch.setenv("BENCH_OUT", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["benchmarks/multi_gpu_speed.py", "--model", "tiny-llama"])
    for var in ("ADARANK_COMMIT", "TORCHELASTIC_RUN_ID", "LOCAL_WORLD_SIZE", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(var, raising=False)
    multi_gpu_speed.run("tiny-llama", trials=1, n=2, length=8, max_batch=8)
    result = json.loads((tmp_path / "multi_gpu_1.json").read_text())
    assert result["commit"] == _head() and result["card"] == "cpu" and result["world"] == 1
    assert result["command"].endswith("benchmarks/multi_gpu_speed.py --model tiny-llama")
    dt.datetime.fromisoformat(result["date"])
    multi_gpu_speed.compare(tmp_path / "multi_gpu_1.json", tmp_path / "multi_gpu_1.json")
    summary = json.loads((tmp_path / "multi_gpu_summary.json").read_text())
    assert summary["inputs"][str(tmp_path / "multi_gpu_1.json")]["commit"] == result["commit"]
    assert summary["same_ranks"] and summary["speedup"] == pytest.approx(1.0)
