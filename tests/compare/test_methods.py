"""Rank lists of the benchmark's allocation methods: budgets, determinism, routing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adarank.compare.methods import (
    CORE_METHODS,
    METHODS,
    PLAN_METHODS,
    TRANSFORM_METHODS,
    VARIANT_METHODS,
    plan_for_method,
    random_scores,
)
from adarank.compare.methods import sample_texts, variant_of
from adarank.errors import AdaRankError
from adarank.plan import Budget, ModuleEntry, RankPlan

# METHOD.md section 4: the authors' value-module disagreement per layer, and its floor-rule ranks at r̄ = 8
PAPER_VALUE = [.107, .267, .511, .650, .660, .621, .591, .613, .602, .726, .723, .570]
PAPER_VALUE_RANKS = [1, 3, 7, 9, 9, 8, 8, 8, 8, 10, 10, 8]


def make_plan(scores_by_type: dict[str, list[float]], shape=(32, 32)) -> RankPlan:
    """A scored plan with one module per (type, block), in block-major model order."""
    blocks = len(next(iter(scores_by_type.values())))
    modules = [
        ModuleEntry(name=f"encoder.layer.{b}.{t}", type=t, block=b, shape=list(shape), scores=[s[b]],
                    score_mean=s[b], score_std=0.0, rank=0)
        for b in range(blocks) for t, s in scores_by_type.items()
    ]
    return RankPlan.allocate("toy", {"signal": "disagreement"}, modules, Budget(rank=8))


@pytest.fixture
def scored() -> RankPlan:
    key = [.034, .077, .132, .161, .201, .235, .252, .287, .330, .337, .332, .336]
    return make_plan({"attention.self.value": PAPER_VALUE, "attention.self.key": key})


def by_type(plan: RankPlan) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for m in sorted(plan.modules, key=lambda m: m.block):
        out.setdefault(m.type, []).append(m.rank)
    return out


@pytest.mark.parametrize("rank", [1, 4, 8, 13])
@pytest.mark.parametrize("groups", ["joint", "type"])
def test_uniform_gives_every_module_the_average_rank(scored, rank, groups):
    plan = plan_for_method("uniform", scored, rank, seed=0, groups=groups)
    assert [m.rank for m in plan.modules] == [rank] * len(scored.modules)
    assert plan.settings["method"] == "uniform"


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


def test_linear_depth_grows_with_block(scored):
    for groups in ("joint", "type"):
        plan = plan_for_method("linear-depth", scored, 4, seed=0, groups=groups)
        for ranks in by_type(plan).values():
            assert ranks == sorted(ranks)
            assert ranks[-1] > ranks[0]


def test_random_is_deterministic_per_seed_and_differs_across_seeds(scored):
    a = plan_for_method("random", scored, 8, seed=1)
    b = plan_for_method("random", scored, 8, seed=1)
    c = plan_for_method("random", scored, 8, seed=2)
    assert a.ranks == b.ranks
    assert a.ranks != c.ranks
    assert [m.score_mean for m in a.modules] == pytest.approx(random_scores(len(scored.modules), 1, 8).tolist())
    assert a.settings["method_seed"] == 1
    # the same seed at another rank draws other scores
    assert random_scores(24, 1, 4).tolist() != random_scores(24, 1, 8).tolist()


def test_self_allocating_methods_return_none(scored):
    assert plan_for_method("eva", scored, 8, seed=0) is None
    assert plan_for_method("adalora", scored, 8, seed=0) is None


def test_unknown_method_lists_the_valid_ones(scored):
    with pytest.raises(AdaRankError) as err:
        plan_for_method("adarank", scored, 8, seed=0)
    for name in METHODS:
        assert name in str(err.value)


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_bad_rank_is_rejected(scored, bad):
    with pytest.raises(AdaRankError):
        plan_for_method("uniform", scored, bad, seed=0)


def test_methods_keep_modules_and_do_not_touch_the_scored_plan(scored):
    before = scored.to_dict()
    for method in ("uniform", "adarank-floor", "adarank-exact", "random", "linear-depth") + TRANSFORM_METHODS:
        plan = plan_for_method(method, scored, 5, seed=0)
        assert [m.name for m in plan.modules] == [m.name for m in scored.modules]
        assert [m.shape for m in plan.modules] == [m.shape for m in scored.modules]
        assert plan.settings["method"] == method and plan.settings["signal"] == "disagreement"
        assert plan.budget.rank == 5
    assert scored.to_dict() == before


def test_linear_depth_needs_block_indices():
    plan = make_plan({"value": [1.0, 2.0]})
    plan.modules[0].block = None
    with pytest.raises(AdaRankError, match="block"):
        plan_for_method("linear-depth", plan, 4, seed=0)


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


def test_new_methods_are_appended_and_core_methods_are_the_original_seven():
    assert CORE_METHODS == ("uniform", "adarank-floor", "adarank-exact", "random", "linear-depth", "eva", "adalora")
    assert METHODS[: len(CORE_METHODS)] == CORE_METHODS
    assert TRANSFORM_METHODS == ("adarank-power-0.5", "adarank-power-2", "adarank-rank-order")
    assert METHODS[len(CORE_METHODS):] == TRANSFORM_METHODS + VARIANT_METHODS
    assert set(TRANSFORM_METHODS + VARIANT_METHODS) <= set(PLAN_METHODS)  # ordinary LoRA with a rank pattern


def _variant_plan(scored: RankPlan, signal: str, task_texts: int | None = None) -> RankPlan:
    settings = {**scored.settings, "signal": signal}
    if task_texts is not None:
        settings["task_texts"] = task_texts
    return replace(scored, settings=settings)


@pytest.mark.parametrize("method", VARIANT_METHODS)
def test_variant_methods_allocate_exactly_from_their_own_plan_only(scored, method):
    variant = variant_of(method)
    own = _variant_plan(scored, variant.signal, variant.task_texts)
    plan = plan_for_method(method, own, 4, seed=0)
    assert sum(plan.ranks.values()) == 4 * len(scored.modules)
    assert plan.ranks == plan_for_method("adarank-exact", scored, 4, seed=0).ranks  # same scores, same rule
    with pytest.raises(AdaRankError, match=f"method '{method}' needs a plan scored with signal"):
        plan_for_method(method, scored if method != "adarank-task64" else _variant_plan(scored, "fisher"), 4, seed=0)
    with pytest.raises(AdaRankError, match="needs a plan scored with signal 'disagreement' on built-in probes"):
        plan_for_method("adarank-exact", own, 4, seed=0)
    for free in ("uniform", "random", "linear-depth"):  # they use the modules, not the scores
        assert plan_for_method(free, own, 4, seed=0).ranks == plan_for_method(free, scored, 4, seed=0).ranks


def test_variant_file_names_and_task_probe_samples():
    assert variant_of("adarank-exact").file_stem("value") == "value"
    assert variant_of("adarank-fisher").file_stem("value") == "value__fisher"
    assert variant_of("adarank-task64").file_stem("attention", "mr") == "attention__task64__mr"
    with pytest.raises(AdaRankError, match="per dataset"):
        variant_of("adarank-task64").file_stem("attention")
    texts = [f"text {i}" for i in range(100)]
    small, large = sample_texts(texts, 16), sample_texts(texts, 64)
    assert large[:16] == small and len(set(large)) == 64 and large != texts[:64]
    assert sample_texts(texts, 64) == large  # seeded
    with pytest.raises(AdaRankError, match="only 100"):
        sample_texts(texts, 256)


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
