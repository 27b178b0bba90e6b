"""Module widths: a LoRA update of a d_out x d_in module has rank at most min(d_out, d_in), so a
budget no widths can hold is refused and a share above a width is capped and passed on."""

from __future__ import annotations

import math
from typing import Hashable, Sequence

from .errors import AdaRankError
from .rank_allocation import Allocation, Rule, Transform, Unit, allocate_ranks
from .water_filling import _snap


def check_width_budget(
    rank: float,
    widths: Sequence[int],
    *,
    names: Sequence[str],
    unit: Unit = "ranks",
    groups: Sequence[Hashable] | None = None,
    costs: Sequence[int] | None = None,
    min_rank: int = 0,
    max_rank: int | None = None,
) -> None:
    """Refuse a budget that no ranks within the modules' widths (and ``max_rank``) can spend.

    A rank above ``min(d_out, d_in)`` buys parameters but no capacity (the update matrix cannot have
    a higher rank), so when a group's average rank exceeds what its modules can hold, e.g. r̄ = 64 on
    32-wide modules, the request is a mistake, not something to round away.
    """
    labels = [None] * len(widths) if groups is None else list(groups)
    per_unit = [1] * len(widths) if unit == "ranks" or costs is None else list(costs)
    for i, w in enumerate(widths):
        if min_rank > w:
            raise AdaRankError(f"min_rank {min_rank} exceeds the width of module '{names[i]}' "
                               f"(min(d_out, d_in) = {w}); lower --min-rank to {w} or less")
    members: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault(label, []).append(i)
    for label, idx in members.items():
        need = _snap(float(rank) * math.fsum(per_unit[i] for i in idx))
        room = math.fsum(min(widths[i], max_rank if isinstance(max_rank, int) else widths[i]) * per_unit[i]
                         for i in idx)
        if need > room:
            most = room / math.fsum(per_unit[i] for i in idx)
            name = "all modules" if groups is None else f"the modules of type {label!r}"
            raise AdaRankError(
                f"average rank {rank:g} does not fit: {name} ({len(idx)}, at most {max(widths[i] for i in idx)} wide) "
                f"can hold an average rank of at most {most:g}, as a LoRA rank cannot exceed min(d_out, d_in)"
                f"{' or --max-rank' if max_rank is not None else ''}; "
                f"lower --rank to {math.floor(most + 1e-9):d} or less"
            )


def allocate_within_widths(
    scores: Sequence[float],
    rank: float,
    *,
    widths: Sequence[int],
    rule: Rule = "floor",
    unit: Unit = "ranks",
    groups: Sequence[Hashable] | None = None,
    costs: Sequence[int] | None = None,
    min_rank: int = 0,
    max_rank: int | None = None,
    transform: Transform = "proportional",
    power: float = 1.0,
) -> tuple[Allocation, dict[int, int]]:
    """:func:`allocate_ranks` with every module's rank also at most its width ``widths[i]``.

    A rank above min(d_out, d_in) adds parameters but no capacity. When a module's share exceeds its
    width, it is fixed at the width and the rest of its group's budget is allocated again, by the same
    rule and transform, among the group's other modules; this repeats until no share exceeds a width.
    So the budget is redistributed, not lost, and when no width binds the result is exactly
    :func:`allocate_ranks`'s. Returns the allocation and {index: the rank the module was first given}
    for each module fixed at its width.
    """
    options = dict(rule=rule, unit=unit, min_rank=min_rank, max_rank=max_rank, transform=transform, power=power)
    first = allocate_ranks(scores, rank, groups=groups, costs=costs, **options)  # type: ignore[arg-type]
    if all(r <= w for r, w in zip(first.ranks, widths)):
        return first, {}
    labels = [None] * len(scores) if groups is None else list(groups)
    per_unit = [1] * len(scores) if unit == "ranks" else [int(c) for c in costs or []]
    members: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault(label, []).append(i)
    ranks, wanted = list(first.ranks), {}
    for idx in members.values():
        if all(first.ranks[i] <= widths[i] for i in idx):
            continue
        budget = _snap(float(rank) * math.fsum(per_unit[i] for i in idx))
        fixed: dict[int, int] = {}
        while True:
            free = [i for i in idx if i not in fixed]
            if not free:
                break
            left = budget - math.fsum(fixed[i] * per_unit[i] for i in fixed)
            r_free = float(rank) if not fixed else left / math.fsum(per_unit[i] for i in free)
            part = allocate_ranks([scores[i] for i in free], r_free, groups=None,  # type: ignore[arg-type]
                                  costs=None if costs is None else [costs[i] for i in free], **options)
            over = [(i, r) for i, r in zip(free, part.ranks) if r > widths[i]]
            if not over:
                for i, r in zip(free, part.ranks):
                    ranks[i] = r
                break
            for i, r in over:
                fixed[i] = int(widths[i])
                wanted.setdefault(i, int(r))
        for i, w in fixed.items():
            ranks[i] = w
    used = sum(r * u for r, u in zip(ranks, per_unit))
    return Allocation(ranks=ranks, total=first.total, used=used), wanted
