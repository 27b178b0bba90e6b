"""Warnings about a plan whose ranks do not come from what the scores say.

Zero or all-equal scores make the allocation fall back to uniform ranks, and a module held at its
width passes budget to its neighbours. Both are legitimate outcomes, but a user who reads only the
ranks would take them for AdaRank's judgement, so each is stated, naming the modules and the cause.
"""

from __future__ import annotations

import logging
from typing import Sequence

from .plan import RankPlan

log = logging.getLogger("adarank")

_SHOWN = 4


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def plan_warnings(plan: RankPlan) -> list[str]:
    """One line per problem: zero-score modules, groups whose scores are all equal, ranks held at a width."""
    notes: list[str] = []
    zero = [m.name for m in plan.modules if m.score_mean == 0.0]
    if zero:
        notes.append(
            f"{len(zero)} of {len(plan.modules)} modules scored 0 ({_names(zero)}): perturbing them did not change "
            "the compared output, because that output ignores them (e.g. a pooler when --output is not 'pooled') "
            "or --noise-scale is too small to register; their ranks say nothing about their importance"
        )
    groups: dict[str, list[float]] = {}
    for m in plan.modules:
        groups.setdefault(f"type {m.type}" if plan.budget.groups == "type" else "the joint group", []).append(m.score_mean)
    for label, scores in groups.items():
        top = max(scores)
        if len(scores) > 1 and top - min(scores) <= 1e-9 * top:
            notes.append(
                f"all {len(scores)} modules of {label} scored the same "
                f"({top:.4g}): the scores carry no preference, so their ranks are uniform"
            )
    for name, wanted in plan.budget.capped.items():
        width = next(m.width for m in plan.modules if m.name == name)
        notes.append(
            f"module {name} was given rank {wanted} but a LoRA rank cannot exceed its width min(d_out, d_in) = {width}: "
            f"it gets {width} and the rest of its budget went to the other modules of its group"
        )
    return notes


def warn_about(plan: RankPlan) -> None:
    for note in plan_warnings(plan):
        log.warning("warning: %s", note)
