"""Every registry's contract: an entry registered from outside works end to end like a built-in one.

A signal, a score transform and a rounding rule registered here go through predict -> save ->
RankPlan.load -> to_lora_config (and the rule through ``adarank predict --rule``), so the plan
checks, the CLI choices and the allocation all read the registries rather than built-in names. A
compare method and a compare task registered here each train and evaluate through ``run_one``.
Each test removes its entry again, so the registries are as they were for the other tests.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import peft
import pytest

from adarank.cli import main
from adarank.errors import AdaRankError
from adarank.plan import RankPlan
from adarank.predict import predict_ranks
from adarank.scoring import ModuleScore
from adarank.signals import SIGNALS, Signal, register as register_signal
from adarank.transforms import RULES, TRANSFORMS, RoundingRule, ScoreTransform, register_rule, register_transform
from conftest import random_probes

TARGETS = ["query", "value", "intermediate.dense"]


@pytest.fixture
def registered():
    """Register entries for the test; remove them afterwards whatever happened."""
    added: list[tuple[dict, str]] = []

    def add(registry: dict, register, entry):
        register(entry)
        added.append((registry, entry.name))
        return entry

    yield add
    for registry, name in added:
        registry.pop(name, None)


def _width_score(model, probes, targets, config, *, progress, on_module):
    """A signal that needs no forward pass: each module's score is its weight's Frobenius norm."""
    results = []
    for t in targets:
        w = model.get_submodule(t.name).weight.detach().double()
        result = ModuleScore(t, [float(w.norm())] * config.trials)
        results.append(result)
        if on_module is not None:
            on_module(result)
    return results, "weight-norm"


def _round_trip(plan: RankPlan, tmp_path, model) -> tuple[RankPlan, peft.LoraConfig]:
    plan.save(tmp_path / "plan.json")
    loaded = RankPlan.load(tmp_path / "plan.json")
    assert loaded.ranks == plan.ranks and loaded.budget == plan.budget
    config = loaded.to_lora_config(model)
    lora = peft.get_peft_model(model, config)
    for name, rank in loaded.ranks.items():  # PEFT builds exactly the planned layout
        if rank:
            layer = lora.base_model.model.get_submodule(name)
            assert layer.lora_A["default"].weight.shape[0] == rank
    return loaded, config


def test_a_registered_signal_scores_saves_loads_and_exports(tiny_bert, tmp_path, registered):
    registered(SIGNALS, register_signal, Signal("weight-norm", "Frobenius norm of the weight", _width_score))
    plan = predict_ranks(tiny_bert, rank=4, targets=TARGETS, probes=random_probes(30522, token_types=True),
                         signal="weight-norm", trials=2, rule="exact", progress=False)
    assert plan.settings["signal"] == "weight-norm" and plan.settings["output"] == "weight-norm"
    norms = {m.name: float(tiny_bert.get_submodule(m.name).weight.detach().double().norm()) for m in plan.modules}
    assert {m.name: m.score_mean for m in plan.modules} == pytest.approx(norms)
    _round_trip(plan, tmp_path, tiny_bert)


def test_a_registered_transform_allocates_saves_loads_and_exports(tiny_bert, tmp_path, registered):
    """``top-only``: the largest score of a group takes every share (ties share it)."""
    registered(TRANSFORMS, register_transform,
               ScoreTransform("top-only", "only the top module", lambda raw, s, power: (raw == raw.max()).astype(float)))
    plan = predict_ranks(tiny_bert, rank=2, targets=TARGETS, probes=random_probes(30522, token_types=True),
                         transform="top-only", trials=2, progress=False)
    assert plan.budget.transform == "top-only"
    by_type: dict[str, list] = {}
    for m in plan.modules:
        by_type.setdefault(m.type, []).append(m)
    for group in by_type.values():
        top = max(m.score_mean for m in group)
        assert all(m.rank == 0 for m in group if m.score_mean < top)  # only top modules get budget
    loaded, _ = _round_trip(plan, tmp_path, tiny_bert)
    assert loaded.reallocate(rank=3).budget.transform == "top-only"  # a loaded plan re-allocates with it


def _round_half_up(ranks, remainder, key, weights, hi, budget, rank_units):
    """Add one unit to every module whose share's fractional part is >= 1/2, while within budget."""
    spent = float(np.dot(ranks, weights))
    for i in np.argsort(-remainder, kind="stable"):
        if remainder[i] >= 0.5 and (hi is None or ranks[i] < hi) and spent + weights[i] <= budget:
            ranks[i] += 1
            spent += weights[i]


def test_a_registered_rule_works_through_the_cli_and_the_saved_plan(capsys, tiny_bert_dir, tmp_path, registered):
    registered(RULES, register_rule, RoundingRule("half-up", "round shares of .5 and above up", _round_half_up))
    out = tmp_path / "o"
    code = main(["predict", str(tiny_bert_dir), "--targets", "query,value", "--rank", "3", "--rule", "half-up",
                 "--trials", "1", "--device", "cpu", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    data = json.loads((out / "plan.json").read_text())
    assert data["budget"]["rule"] == "half-up"
    floor = RankPlan.load(out).reallocate(rule="floor")
    plan = RankPlan.load(out)
    for m, f in zip(plan.modules, floor.modules):
        assert m.rank - f.rank in (0, 1)  # half-up is the floor plus at most one unit
    assert sum(m.rank for m in plan.modules) <= math.floor(plan.budget.total)
    lora = json.loads((out / "lora_config.json").read_text())
    exported = plan.to_lora_config()
    assert lora["r"] == exported.r and lora["rank_pattern"] == dict(exported.rank_pattern)
    code = main(["allocate", str(out), "--rank", "2", "--rule", "half-up", "--out", str(tmp_path / "a")])
    assert code == 0, capsys.readouterr().err
    assert RankPlan.load(tmp_path / "a").budget.rule == "half-up"


def test_an_unregistered_name_is_refused_before_scoring(capsys, tiny_bert_dir, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["predict", str(tiny_bert_dir), "--rule", "half-up", "--out", str(tmp_path / "o")])
    assert stop.value.code == 2 and "invalid choice: 'half-up'" in capsys.readouterr().err
    with pytest.raises(AdaRankError, match="unknown rounding rule 'half-up'"):
        predict_ranks(None, rule="half-up")  # checked before the model is touched
    assert not (tmp_path / "o" / "plan.json").exists()


# ------------------------------------------------------------------ compare: methods and tasks
COMPARE_RANK = 2


@pytest.fixture(scope="module")
def scored_value(tiny_bert_dir):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(tiny_bert_dir).eval()
    return predict_ranks(model, AutoTokenizer.from_pretrained(tiny_bert_dir), rank=COMPARE_RANK, targets=["value"],
                         trials=2, progress=False)


def _train(tiny_bert_dir, data, method, plan):
    from adarank.compare.train import TrainConfig, run_one

    return run_one(str(tiny_bert_dir), data, method=method, plan=plan, targets=[m.name for m in plan.modules],
                   rank=COMPARE_RANK, config=TrainConfig(max_steps=3, batch_size=16, eval_batch_size=16, max_length=16,
                                                         lr=1e-3), seed=0, device="cpu")


def test_a_registered_compare_method_trains_and_evaluates(tiny_bert_dir, scored_value, registered):
    from adarank.compare.methods import plan_for_method
    from adarank.compare.methods.registry import REGISTRY, Method, register
    from compare.test_train import toy_data

    def first_gets_all(plan: RankPlan, rank: int, seed: int, groups: str) -> RankPlan:
        """All of the budget on the first module: a layout no built-in method makes."""
        total = rank * len(plan.modules)
        modules = [replace(m, rank=total if i == 0 else 0) for i, m in enumerate(plan.modules)]
        return replace(plan, modules=modules, settings={**plan.settings, "score_source": "first"})

    registered(REGISTRY, register, Method("first-gets-all", "every rank unit to the first module", "plan",
                                          plan_for=first_gets_all, source="first"))
    plan = plan_for_method("first-gets-all", scored_value, COMPARE_RANK, 0)
    assert [m.rank for m in plan.modules] == [COMPARE_RANK * len(plan.modules)] + [0] * (len(plan.modules) - 1)
    result = _train(tiny_bert_dir, toy_data(), "first-gets-all", plan)
    assert result["method"] == "first-gets-all" and result["ranks"] == plan.ranks
    assert 0.0 <= result["test_score"] <= 100.0 and math.isfinite(result["test_score"])


def test_a_registered_compare_task_trains_and_evaluates(tiny_bert_dir, scored_value, registered):
    """A task is chosen by the type of its data: a new data type gets the new task."""
    import dataclasses

    from adarank.compare.data import TextClassificationData
    from adarank.compare.tasks.classification import Classification
    from adarank.compare.tasks.registry import TASKS, register, task_for_data
    from compare.test_train import toy_data

    @dataclasses.dataclass
    class Reviews:  # its own type (not a TextClassificationData), with the same fields and methods
        name: str
        train_texts: list[str]
        train_labels: list[int]
        test_texts: list[str]
        test_labels: list[int]
        label_names: list[str]
        split: dict
        num_labels = TextClassificationData.num_labels
        __post_init__ = TextClassificationData.__post_init__

    class ReviewTask(Classification):
        name = "reviews"

        def data_type(self) -> type:
            return Reviews

    task = registered(TASKS, register, ReviewTask())
    toy = toy_data()
    data = Reviews(**{f.name: getattr(toy, f.name) for f in dataclasses.fields(toy)})
    assert task_for_data(data) is task
    result = _train(tiny_bert_dir, data, "uniform", scored_value.reallocate(rank=COMPARE_RANK))
    assert result["dataset"] == "toy" and 0.0 <= result["test_score"] <= 100.0
