"""Scored plans the method tests allocate from (shared by the tests of adarank.compare.methods)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from adarank.plan import Budget, ModuleEntry, RankPlan

# docs/method.md section 4: the authors' value-module disagreement per layer, and its floor-rule ranks at r̄ = 8
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


def variant_plan(scored: RankPlan, signal: str, task_texts: int | None = None) -> RankPlan:
    settings = {**scored.settings, "signal": signal}
    if task_texts is not None:
        settings["task_texts"] = task_texts
    return replace(scored, settings=settings)
