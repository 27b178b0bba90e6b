"""The paper's methods on the paper's plan (signal ``disagreement``, built-in probes).

``adarank-floor`` is the paper's rule (it spends a bit less than the budget), ``adarank-exact`` spends
the budget r̄·M exactly; the score-transform ablations (:data:`TRANSFORM_METHODS`) are
``adarank-exact`` on transformed scores (:mod:`adarank.transforms`).
"""

from __future__ import annotations

from functools import partial

from ...plan import RankPlan
from .registry import Method, allocated, register


def _from_scores(scored: RankPlan, rank: int, seed: int, groups: str, *, rule: str, transform: str = "proportional",
                 power: float = 1.0) -> RankPlan:
    return allocated(scored, rank, groups, rule, transform, power)


FLOOR = register(Method("adarank-floor", "AdaRank disagreement, the paper's floor rule (spends a bit less)", "plan",
                        partial(_from_scores, rule="floor"), source="adarank", core=True))
EXACT = register(Method("adarank-exact", "AdaRank disagreement, budget r̄·M spent exactly", "plan",
                        partial(_from_scores, rule="exact"), source="adarank", core=True))

#: Score-transform ablations of adarank-exact.
TRANSFORM_METHODS: tuple[str, ...] = tuple(m.name for m in (
    register(Method("adarank-power-0.5", "AdaRank disagreement ** 0.5 (flatter than adarank-exact)", "plan",
                    partial(_from_scores, rule="exact", transform="power", power=0.5), source="adarank ** 0.5")),
    register(Method("adarank-power-2", "AdaRank disagreement ** 2 (more concentrated)", "plan",
                    partial(_from_scores, rule="exact", transform="power", power=2.0), source="adarank ** 2")),
    register(Method("adarank-rank-order", "position of the disagreement in its group (1 = lowest)", "plan",
                    partial(_from_scores, rule="exact", transform="rank-order"), source="rank order of adarank")),
))
