"""The paper's methods and the score-transform ablations: budgets, the paper's list, transforms."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adarank.compare.methods import TRANSFORM_METHODS, plan_for_method

from method_plans import PAPER_VALUE_RANKS, by_type, make_plan, scored  # noqa: F401  (fixture)


@pytest.mark.parametrize("method", ["adarank-exact", "random", "linear-depth"])
@pytest.mark.parametrize("rank", [1, 3, 8])
def test_exact_methods_spend_the_budget_exactly(scored, method, rank):
    plan = plan_for_method(method, scored, rank, seed=3)
    assert sum(m.rank for m in plan.modules) == rank * len(scored.modules)
    per_type = plan_for_method(method, scored, rank, seed=3, groups="type")
    for ranks in by_type(per_type).values():
        assert sum(ranks) == rank * len(ranks)


@pytest.mark.parametrize("rank", [2, 8])
def test_floor_stays_within_budget_and_is_the_plain_rule(scored, rank):
    plan = plan_for_method("adarank-floor", scored, rank, seed=0)
    assert sum(m.rank for m in plan.modules) <= rank * len(scored.modules)
    assert plan.ranks == scored.reallocate(rank=rank, rule="floor", groups="joint").ranks
    exact = plan_for_method("adarank-exact", scored, rank, seed=0)
    # largest remainder only adds: every module keeps at least its floor rank
    assert all(exact.ranks[n] >= r for n, r in plan.ranks.items())


def test_floor_per_type_reproduces_the_papers_value_list(scored):
    plan = plan_for_method("adarank-floor", scored, 8, seed=0, groups="type")
    assert by_type(plan)["attention.self.value"] == PAPER_VALUE_RANKS


def test_on_a_scored_tiny_bert(tiny_bert_dir):
    from transformers import AutoModel, AutoTokenizer

    from adarank.predict import predict_ranks
    from adarank.scoring import ScoreConfig

    model = AutoModel.from_pretrained(tiny_bert_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    scored = predict_ranks(model, tokenizer, rank=4, targets=["query", "value"],
                           score_config=ScoreConfig(trials=2), progress=False)
    m = len(scored.modules)
    assert sum(plan_for_method("adarank-exact", scored, 4, seed=0).ranks.values()) == 4 * m
    assert sum(plan_for_method("adarank-floor", scored, 4, seed=0).ranks.values()) <= 4 * m
    assert set(plan_for_method("uniform", scored, 4, seed=0).ranks.values()) == {4}


@settings(max_examples=40, deadline=None)
@given(scores=st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=2, max_size=12),
       rank=st.integers(1, 16), seed=st.integers(0, 10))
def test_budgets_hold_for_any_scores(scores, rank, seed):
    if sum(scores) == 0:
        scores = [s + 1.0 for s in scores]
    plan = make_plan({"value": scores})
    m = len(scores)
    assert sum(plan_for_method("adarank-exact", plan, rank, seed).ranks.values()) == rank * m
    assert sum(plan_for_method("adarank-floor", plan, rank, seed).ranks.values()) <= rank * m
    assert sum(plan_for_method("random", plan, rank, seed).ranks.values()) == rank * m
    for method in TRANSFORM_METHODS:
        assert sum(plan_for_method(method, plan, rank, seed).ranks.values()) == rank * m, method
    assert set(plan_for_method("uniform", plan, rank, seed).ranks.values()) == {rank}


@pytest.mark.parametrize("method", TRANSFORM_METHODS)
@pytest.mark.parametrize("rank", [1, 3, 8])
def test_transform_methods_spend_the_budget_exactly(scored, method, rank):
    plan = plan_for_method(method, scored, rank, seed=3)
    assert sum(m.rank for m in plan.modules) == rank * len(scored.modules)
    assert plan.budget.rule == "exact" and plan.budget.total == plan.budget.used == rank * len(scored.modules)
    per_type = plan_for_method(method, scored, rank, seed=3, groups="type")
    for ranks in by_type(per_type).values():
        assert sum(ranks) == rank * len(ranks)


def test_transform_methods_use_their_transform(scored):
    expected = {"adarank-power-0.5": ("power", 0.5), "adarank-power-2": ("power", 2.0),
                "adarank-rank-order": ("rank-order", 1.0)}
    for method, (transform, power) in expected.items():
        plan = plan_for_method(method, scored, 8, seed=0)
        assert (plan.budget.transform, plan.budget.power) == (transform, power)
        assert plan.ranks == scored.reallocate(rank=8, rule="exact", groups="joint", transform=transform,
                                               power=power).ranks
    spread = {m: max(p.ranks.values()) - min(p.ranks.values())
              for m in ("adarank-power-0.5", "adarank-exact", "adarank-power-2")
              for p in [plan_for_method(m, scored, 8, seed=0)]}
    assert spread["adarank-power-2"] > spread["adarank-exact"] > spread["adarank-power-0.5"]


def test_core_methods_ignore_the_scored_plans_transform(scored):
    tempered = scored.reallocate(transform="power", power=2.0)
    for method in ("adarank-floor", "adarank-exact", "random", "linear-depth", "uniform"):
        assert plan_for_method(method, tempered, 4, seed=1).ranks == plan_for_method(method, scored, 4, seed=1).ranks
        assert plan_for_method(method, tempered, 4, seed=1).budget.transform == "proportional"
