"""uniform: every module gets exactly r̄."""

from __future__ import annotations

import pytest

from adarank.compare.methods import plan_for_method

from method_plans import scored  # noqa: F401  (fixture)


@pytest.mark.parametrize("rank", [1, 4, 8, 13])
@pytest.mark.parametrize("groups", ["joint", "type"])
def test_uniform_gives_every_module_the_average_rank(scored, rank, groups):
    plan = plan_for_method("uniform", scored, rank, seed=0, groups=groups)
    assert [m.rank for m in plan.modules] == [rank] * len(scored.modules)
    assert plan.settings["method"] == "uniform"
