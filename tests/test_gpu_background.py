"""benchmarks/gpu_background.sh on a stub grid (CPU): the grid outlives the call that started it, runs from a
private copy of the tree without the model pieces, and every call packs what it has finished."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_background.sh"
STUB = """#!/usr/bin/env bash
# stands in for the grid: records where and with what it ran, then finishes one run after a while
echo "$PWD $*" > "$RESULTS/ran-from.txt"
sleep 10
mkdir -p "$RESULTS/runs" && echo '{}' > "$RESULTS/runs/a.json"
"""


@pytest.mark.skipif(shutil.which("setsid") is None or shutil.which("pgrep") is None, reason="needs setsid and pgrep")
def test_the_grid_outlives_its_call_and_each_call_packs_what_is_done(tmp_path):
    repo = tmp_path / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "benchmarks" / "gpu_background.sh")
    (repo / "benchmarks" / "gpu_decoder.sh").write_text(STUB)
    (repo / ".carry" / "p0").mkdir(parents=True)
    (repo / ".carry" / "p0" / "gemma.part0").write_bytes(b"x" * 1000)  # a model piece: not copied
    (repo / ".carry" / "data").mkdir()
    (repo / ".carry" / "data" / "corpus.txt").write_text("kept")
    res, bg = tmp_path / "res", tmp_path / "bg"
    res.mkdir()
    env = {**os.environ, "RESULTS": str(res), "BG_REPO": str(bg), "BG_LOG": str(tmp_path / "grid.log")}

    def call(*args: str, wait: int) -> tuple[subprocess.CompletedProcess, Path]:
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
        out.mkdir()
        done = subprocess.run(["bash", "benchmarks/gpu_background.sh", *args], cwd=repo, capture_output=True,
                              text=True, env={**env, "OUT": str(out), "WAIT": str(wait)}, timeout=60)
        return done, out

    first, out = call("start", "9.5", "4", "8", wait=0)
    assert first.returncode == 0 and "grid still running" in first.stdout
    assert not (res / "runs").exists()  # the start call returned before the run finished
    assert (bg / ".carry" / "data" / "corpus.txt").is_file() and not (bg / ".carry" / "p0").exists()
    again, _ = call("start", "9.5", "4", "8", wait=0)
    assert again.returncode == 3 and "already running" in again.stdout
    last, out = call("wait", wait=30)
    assert last.returncode == 0 and "grid finished" in last.stdout
    assert (res / "ran-from.txt").read_text().split() == [str(bg), "9.5", "4", "8"]
    with tarfile.open(out / "decoder.tar.gz") as tar:
        assert f"{res.name}/runs/a.json" in tar.getnames()


def test_a_wait_call_on_a_machine_where_no_grid_started_says_so_and_fails(tmp_path):
    """A wait call that lands on a fresh machine (the last one was given back) must not report a finished grid."""
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "RESULTS": str(tmp_path / "res"), "BG_REPO": str(tmp_path / "bg"),
           "BG_LOG": str(tmp_path / "never-written.log"), "OUT": str(out), "WAIT": "0"}
    done = subprocess.run(["bash", str(SCRIPT), "wait"], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=30)
    assert done.returncode == 3
    assert "no grid was started on this machine" in done.stdout and "grid finished" not in done.stdout
