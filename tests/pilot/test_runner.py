"""The pilot end to end on the packaged MiniLM: planted truths found, and a stopped pilot resumes to the same
decision."""

from __future__ import annotations

import json
import random

import pytest

from adarank.pilot import runner
from adarank.pilot.config import PilotConfig

from .conftest import write_jsonl


@pytest.fixture
def easy(tmp_path):
    """A task every arm learns: the label is the sentence's only word, repeated."""
    rng = random.Random(0)
    rows = [{"text": " ".join([w] * rng.randint(2, 5)), "label": w} for w in ("apple", "zebra") for _ in range(40)]
    rng.shuffle(rows)
    return write_jsonl(tmp_path / "train.jsonl", rows[:60]), write_jsonl(tmp_path / "test.jsonl", rows[60:])


def config(train, test, out, **changes):
    base = {"data": str(train), "test": str(test), "current": "r=4,alpha=8,targets=query,value,lr=1e-2", "seeds": "0,1,2",
                "sweep_seeds": "100", "lr_extend": 0, "epochs": 3.0, "batch_size": 16, "max_length": 16, "out": str(out), "device": "cpu",
                "drop_arms": "uniform-r1,adarank-r1,adarank-r2", "margin": 5.0}
    base.update(changes)
    return PilotConfig(**base)


def decision_of(out):
    data = json.loads((out / "decision.json").read_text())
    return data["decision"], data["arms"], data["chosen_lr"]


def test_cheaper_arm_that_learns_is_non_inferior_and_one_that_cannot_is_not(easy, tmp_path, monkeypatch):
    train, test = easy
    summary = runner.run_pilot(config(train, test, tmp_path / "good", drop_arms="uniform-r1,adarank-r1,adarank-r2,"
                                      "uniform-r2-attention,uniform-r1-mlp"), log=lambda s: None)
    steps = {s["arm"]: s for s in summary["decision"]["steps"]}
    assert steps["uniform-r2"]["status"] == "non-inferior"
    ref = next(a for a in summary["arms"] if a["name"] == summary["decision"]["reference"])
    assert min(ref["scores"].values()) == 100.0  # the truth planted: this task is learnt fully

    # the same pilot, but every cheaper arm's sweep is pinned to a rate at which nothing is learnt
    monkeypatch.setattr(runner, "start_rate", lambda user_lr, r_cur, r_arm: 1e-9)
    monkeypatch.setattr(runner, "LR_SPAN", 0)
    summary = runner.run_pilot(config(train, test, tmp_path / "bad", drop_arms="uniform-r1,adarank-r1,adarank-r2,"
                                      "uniform-r2-attention,uniform-r1-mlp"), log=lambda s: None)
    first = summary["decision"]["steps"][0]
    assert first["status"] == "not shown" and first["mean_diff"] < -5
    assert summary["decision"]["cheapest_non_inferior"] is None


def test_stopped_pilot_resumes_to_the_same_decision(easy, tmp_path):
    train, test = easy
    drop = "uniform-r1,adarank-r1,adarank-r2,uniform-r2-attention,uniform-r1-mlp,adarank-r2"
    whole = runner.run_pilot(config(train, test, tmp_path / "whole", drop_arms=drop), log=lambda s: None)
    cut = runner.run_pilot(config(train, test, tmp_path / "cut", drop_arms=drop), log=lambda s: None, stop_after=4)
    assert not cut["complete"]
    done = len(list((tmp_path / "cut" / "runs").glob("*.json")))
    assert done == 4
    again = runner.run_pilot(config(train, test, tmp_path / "cut", drop_arms=drop), log=lambda s: None)
    assert again["complete"]
    assert decision_of(tmp_path / "cut") == decision_of(tmp_path / "whole")
    assert whole["decision"] == again["decision"]


def test_workers_give_the_same_records_and_decision_as_one_process(easy, tmp_path):
    """The shared pool runs arms side by side; what each run records and what the pilot decides must not
    depend on it (nor on the order in which runs finish)."""
    train, test = easy
    drop = "uniform-r1,adarank-r1,adarank-r2,uniform-r2-attention,uniform-r1-mlp"
    one = runner.run_pilot(config(train, test, tmp_path / "one", drop_arms=drop), log=lambda s: None)
    two = runner.run_pilot(config(train, test, tmp_path / "two", drop_arms=drop, workers=2), log=lambda s: None)
    assert one["decision"] == two["decision"] and one["chosen_lr"] == two["chosen_lr"]
    names = sorted(p.name for p in (tmp_path / "one" / "runs").glob("*.json"))
    assert names == sorted(p.name for p in (tmp_path / "two" / "runs").glob("*.json"))
    for name in names:
        a = json.loads((tmp_path / "one" / "runs" / name).read_text())
        b = json.loads((tmp_path / "two" / "runs" / name).read_text())
        assert a["test_score"] == b["test_score"], name
