"""The signal registry: a signal registered in one place is a choice of the CLI and of predict_ranks."""

from __future__ import annotations

import json

import pytest
import torch

from adarank.cli import build_parser, main
from adarank.errors import AdaRankError
from adarank.signals import SIGNALS, Signal, check_signal, register


def _weight_norm(model, probes, targets, config, *, progress, on_module):
    """A toy signal: the Frobenius norm of each module's weight, the same value in every trial."""
    modules = dict(model.named_modules())
    from adarank.scoring import ModuleScore

    out = []
    for t in targets:
        value = float(torch.linalg.vector_norm(modules[t.name].weight.detach().double()))
        out.append(ModuleScore(t, [value] * config.trials))
        if on_module is not None:
            on_module(out[-1])
    return out, "weight-norm"


@pytest.fixture(autouse=True)
def wide_help(monkeypatch):
    """Wide enough that argparse wraps no help line, so a choice is never split at its hyphen."""
    monkeypatch.setenv("COLUMNS", "1000")


@pytest.fixture
def weight_norm():
    signal = register(Signal("weight-norm", "Frobenius norm of the weight, no probes needed", _weight_norm))
    try:
        yield signal
    finally:
        del SIGNALS["weight-norm"]


def _predict_help() -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["predict"].format_help()


def test_a_registered_signal_is_a_cli_choice_and_scores_a_plan(weight_norm, tiny_bert_dir, tmp_path, capsys):
    text = _predict_help()
    assert "weight-norm" in text
    out = tmp_path / "plan"
    code = main(["predict", str(tiny_bert_dir), "--signal", "weight-norm", "--targets", "value", "--rank", "4",
                 "--trials", "2", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    plan = json.loads((out / "plan.json").read_text())
    assert plan["settings"]["signal"] == "weight-norm" and plan["settings"]["output"] == "weight-norm"
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bert_dir)
    weights = dict(model.named_modules())
    for m in plan["modules"]:
        expected = float(torch.linalg.vector_norm(weights[m["name"]].weight.detach().double()))
        assert m["scores"] == pytest.approx([expected, expected])


def test_an_unregistered_signal_is_not_a_choice(capsys):
    assert "weight-norm" not in _predict_help()
    with pytest.raises(SystemExit):
        main(["predict", "--signal", "weight-norm"])
    assert "invalid choice: 'weight-norm'" in capsys.readouterr().err
    with pytest.raises(AdaRankError, match="unknown signal 'weight-norm'; use one of disagreement, fisher"):
        check_signal("weight-norm")


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="registered twice"):
        register(Signal("fisher", "again", _weight_norm))
