"""The method registry: listing order, kinds, routing, and a new method reaching every reader."""

from __future__ import annotations

import pytest

from adarank.compare.methods import (
    CORE_METHODS,
    METHODS,
    PLAN_METHODS,
    REGISTRY,
    TRANSFORM_METHODS,
    VARIANT_METHODS,
    Method,
    plan_for_method,
    register,
)
from adarank.compare.methods.registry import allocated, with_scores
from adarank.errors import AdaRankError
from adarank.plan import RankPlan

from method_plans import scored  # noqa: F401  (fixture)


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


def test_new_methods_are_appended_and_core_methods_are_the_original_seven():
    assert CORE_METHODS == ("uniform", "adarank-floor", "adarank-exact", "random", "linear-depth", "eva", "adalora")
    assert METHODS[: len(CORE_METHODS)] == CORE_METHODS
    assert TRANSFORM_METHODS == ("adarank-power-0.5", "adarank-power-2", "adarank-rank-order")
    assert METHODS[len(CORE_METHODS):] == TRANSFORM_METHODS + VARIANT_METHODS + ("eva-ranks", "base-model", "full-ft")
    assert set(TRANSFORM_METHODS + VARIANT_METHODS) <= set(PLAN_METHODS)  # ordinary LoRA with a rank pattern


def _reverse_depth(scored: RankPlan, rank: int, seed: int, groups: str) -> RankPlan:
    """A toy rival: ranks shrink with depth (score = blocks - block index)."""
    top = max(m.block for m in scored.modules)
    return allocated(with_scores(scored, [float(top - m.block + 1) for m in scored.modules]), rank, groups, "exact")


@pytest.fixture
def new_methods():
    """Two methods registered from a test: a core score-free rival and a non-core plan variant."""
    added = [register(Method("reverse-depth", "ranks shrink with depth", "score-free", _reverse_depth,
                             source="blocks - block index", core=True)),
             register(Method("adarank-cubed", "AdaRank disagreement ** 3", "plan",
                             lambda s, r, seed, g: allocated(s, r, g, "exact", "power", 3.0), source="adarank ** 3"))]
    try:
        yield added
    finally:
        for m in added:
            del REGISTRY[m.name]


def test_a_registered_method_reaches_the_grid_trainer_report_and_decision(new_methods, scored, tmp_path, capsys):
    from adarank.compare import decision, grid, report, train

    assert CORE_METHODS[-1] == "reverse-depth" and "reverse-depth" in PLAN_METHODS
    assert METHODS[-1] == "adarank-cubed"
    assert "reverse-depth" in train.PLAN_METHODS and train.check_method("adarank-cubed") == "adarank-cubed"
    plan = plan_for_method("reverse-depth", scored, 4, seed=0)
    by_block = {m.block: m.rank for m in plan.modules if m.type == "attention.self.value"}
    assert by_block[0] > by_block[max(by_block)] and plan.settings["score_source"] == "blocks - block index"
    assert sum(m.rank for m in plan.modules) == 4 * len(scored.modules)

    # the grid runs a new core method by default and accepts the other by name
    argv = ["--dry-run", "--model", str(tmp_path), "--results", str(tmp_path / "res"), "--datasets", "subj",
            "--target-sets", "value", "--ranks", "2", "--seeds", "0"]
    assert grid.main(argv) == 0
    todo = [line.split()[-1].split("__")[3] for line in capsys.readouterr().out.splitlines() if line.startswith("todo")]
    assert todo == list(CORE_METHODS) and todo[-1] == "reverse-depth"
    assert grid.main(argv + ["--methods", "adarank-cubed"]) == 0
    assert "__adarank-cubed__" in capsys.readouterr().out

    # reports list core methods first, in registration order; the rest by name
    ordered = sorted(["adarank-cubed", "adarank-fisher", "reverse-depth", "adalora", "uniform"], key=report.method_sort_key)
    assert ordered == ["uniform", "adalora", "reverse-depth", "adarank-cubed", "adarank-fisher"]
    # a plan-kind method is a candidate of the decision rule, a score-free one is not
    assert "adarank-cubed" in decision.DEFAULT_CANDIDATES and "reverse-depth" not in decision.DEFAULT_CANDIDATES


def test_a_method_is_registered_once_and_its_kind_fits_its_plan_for():
    with pytest.raises(ValueError, match="registered twice"):
        register(Method("uniform", "again", "score-free", _reverse_depth))
    with pytest.raises(ValueError, match="self-allocating method has no plan_for"):
        Method("peft-x", "", "self-allocating", _reverse_depth)
    with pytest.raises(ValueError, match="plan method needs a plan_for"):
        Method("adarank-x", "", "plan")
    with pytest.raises(ValueError, match="kind must be one of"):
        Method("x", "", "magic", _reverse_depth)  # type: ignore[arg-type]
