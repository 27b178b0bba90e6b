"""linear-depth: ranks grow with depth; modules outside the block stack are refused."""

from __future__ import annotations

import pytest

from adarank.compare.methods import plan_for_method
from adarank.errors import AdaRankError

from method_plans import by_type, make_plan, scored  # noqa: F401  (fixture)


def test_linear_depth_grows_with_block(scored):
    for groups in ("joint", "type"):
        plan = plan_for_method("linear-depth", scored, 4, seed=0, groups=groups)
        for ranks in by_type(plan).values():
            assert ranks == sorted(ranks)
            assert ranks[-1] > ranks[0]


def test_linear_depth_needs_block_indices():
    plan = make_plan({"value": [1.0, 2.0]})
    plan.modules[0].block = None
    with pytest.raises(AdaRankError, match="block"):
        plan_for_method("linear-depth", plan, 4, seed=0)
