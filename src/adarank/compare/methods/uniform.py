"""``uniform``: every module gets exactly r̄, plain LoRA; the baseline every other method is paired with."""

from __future__ import annotations

from ...plan import RankPlan
from .registry import Method, register, with_scores


def _uniform(scored: RankPlan, rank: int, seed: int, groups: str) -> RankPlan:
    # r̄ everywhere by definition, whatever unit or clamps the scored plan was made with.
    return with_scores(scored, [1.0] * len(scored.modules)).reallocate(
        rank=rank, rule="exact", groups=groups, transform="proportional", power=1.0,
        unit="ranks", min_rank=0, max_rank=None)


UNIFORM = register(Method("uniform", "all equal: every module gets exactly r̄ (plain LoRA)", "score-free",
                          _uniform, source="equal", core=True))
