"""experiments/decoder/allocation.py on hand-made records: each target set is a setting of its own."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "decoder" / "allocation.py"


def _allocation():
    """The study script imported as a module (the experiments are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("decoder_allocation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

TYPES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def test_an_attention_only_run_is_not_read_as_the_all_linear_setting(tmp_path, capsys):
    names = [f"model.layers.{b}.{'self_attn' if t in TYPES[:4] else 'mlp'}.{t}" for b in range(2) for t in TYPES]
    plan = {"modules": [{"name": n, "shape": [8, 4], "block": int(n.split(".")[2])} for n in names]}
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "all-linear.json").write_text(json.dumps(plan))
    (tmp_path / "runs").mkdir()
    runs = {"all-linear": {n: 2 for n in names}, "attention-proj": {n: 4 for n in names if "self_attn" in n}}
    for ts, ranks in runs.items():
        rec = {"dataset": "trec-fine", "target_set": ts, "rank": 2, "method": "uniform", "seed": 0, "ranks": ranks}
        (tmp_path / "runs" / f"{ts}.json").write_text(json.dumps(rec))
    _allocation().main(tmp_path, tmp_path / "figures")
    out = capsys.readouterr().out
    assert "**trec-fine · r̄=2**" in out and "**trec-fine · attention-proj · r̄=2**" in out
    rows = [line for line in out.splitlines() if line.startswith("| uniform |")]
    assert rows == ["| uniform | 336 | 57.1 % | 42.9 % | 2 | 2 |", "| uniform | 384 | 25.0 % | 25.0 % | 25.0 % | 25.0 % | 4 | 4 |"]
    # the attention-only table is split by projection, its header naming them
    assert "| method | LoRA params | q | k | v | o | largest rank | smallest rank |" in out
    assert (tmp_path / "figures" / "allocation.png").is_file()
