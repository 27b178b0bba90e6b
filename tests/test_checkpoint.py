"""Resumable scoring: an interrupted run continues and ends with the plan an uninterrupted run gives."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from adarank.checkpoint import CHECKPOINT_NAME
from adarank.errors import AdaRankError
from adarank.predict import predict_ranks
from adarank.scoring import ScoreConfig

from conftest import random_probes


def _predict(model, folder, **kw):
    return predict_ranks(model, rank=4, targets="all-linear", probes=random_probes(30522, token_types=True),
                         score_config=ScoreConfig(trials=2, seed=kw.pop("seed", 0)), progress=False,
                         checkpoint_dir=folder, **kw)


def test_interrupted_run_resumes_to_the_same_plan(tiny_bert, tmp_path):
    reference = _predict(tiny_bert, None)
    seen = []

    def stop_after_five(result):
        seen.append(result.target.name)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _predict(tiny_bert, tmp_path, on_module=stop_after_five)
    data = json.loads((tmp_path / CHECKPOINT_NAME).read_text())  # valid JSON, the five finished modules
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]  # no plan, no temporary file
    assert sorted(data["scores"]) == sorted(seen)
    resumed = _predict(tiny_bert, tmp_path)
    assert resumed.settings["resumed_modules"] == 5
    assert resumed.modules == reference.modules
    assert resumed.budget == reference.budget


def test_checkpoint_from_other_settings_is_refused(tiny_bert, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _predict(tiny_bert, tmp_path, on_module=lambda r: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(AdaRankError, match="other settings.*score_config"):
        _predict(tiny_bert, tmp_path, seed=1)
    fresh = _predict(tiny_bert, tmp_path, seed=1, resume=False)
    assert fresh.settings["resumed_modules"] == 0


@pytest.mark.slow
def test_sigkill_then_same_command_gives_the_uninterrupted_plan(tmp_path):
    """Kill -9 the real CLI mid-scoring on MiniLM, run the same command again, compare."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    base = [sys.executable, "-m", "adarank", "predict", "--targets", "query,value", "--trials", "1", "--quiet"]
    ref = subprocess.run(base + ["--out", str(tmp_path / "ref")], env=env, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen(base + ["--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out / CHECKPOINT_NAME
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if len(json.loads(ckpt.read_text())["scores"]) >= 3:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("scoring finished before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "plan.json").exists()
    again = subprocess.run(base + ["--out", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resumed:" in again.stderr
    a = json.loads((tmp_path / "ref" / "plan.json").read_text())
    b = json.loads((out / "plan.json").read_text())
    assert a["modules"] == b["modules"] and a["budget"] == b["budget"]
    assert not ckpt.exists()
