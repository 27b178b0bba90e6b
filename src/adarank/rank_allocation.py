"""``allocate_ranks``: per group, shares proportional to the (transformed) scores, then a rounding
rule; plus the uniform baseline and the budget line (see :mod:`adarank.allocation` for the vocabulary
and the numerics)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Literal, Sequence

import numpy as np

from .allocation_inputs import UNITS as _UNITS, _check_clamps, _check_costs, _check_groups, _check_rank, _check_scores, _check_transform
from .errors import AdaRankError
from .rounding import _solve_group
from .transforms import RULES
from .water_filling import _snap, _transformed

Rule = str  # a name in adarank.transforms.RULES
Unit = Literal["ranks", "params"]
Transform = str  # a name in adarank.transforms.TRANSFORMS


@dataclass(frozen=True)
class Allocation:
    """The outcome of :func:`allocate_ranks`.

    Attributes:
        ranks: one integer rank per module, in the order the scores were given. 0 means "no
            adapter on this module".
        total: the budget, summed over groups: ``rank * M_g`` (unit ``"ranks"``) or
            ``rank * sum(costs in g)`` (unit ``"params"``). Kept next to ``used`` so that a report
            can say how much of the budget the integer ranks actually spend.
        used: what the ranks spend in the same unit: ``sum(ranks)`` or ``sum(ranks[i] * costs[i])``.
    """

    ranks: list[int]
    total: float
    used: int


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------


def allocate_ranks(
    scores: Sequence[float],
    rank: float,
    *,
    rule: Rule = "floor",
    unit: Unit = "ranks",
    groups: Sequence[Hashable] | None = None,
    costs: Sequence[int] | None = None,
    min_rank: int = 0,
    max_rank: int | None = None,
    transform: Transform = "proportional",
    power: float = 1.0,
) -> Allocation:
    """Give each module a rank proportional to its (transformed) score, with average ``rank`` per group.

    Args:
        scores: importance of each module (e.g. its disagreement D_m); finite and ``>= 0``. Only
            ratios within a group matter. A group whose scores are all zero is treated as uniform,
            since "no module matters" carries no information about how to split the budget.
        rank: the target average rank r̄ (> 0, may be fractional). Group g's budget is
            ``B_g = rank * M_g`` rank units, or ``rank * sum(costs in g)`` parameters.
        rule: ``"floor"`` – the paper's rule, ``r_i = floor(x_i)`` where ``x`` is the continuous
            proportional share; never exceeds the budget but usually under-spends it.
            ``"exact"`` – floor, then +1 for the modules with the largest fractional parts
            (largest-remainder / Hamilton rounding). In unit ``"ranks"`` this spends exactly
            ``B_g``; when ``rank * M_g`` is not an integer it spends exactly ``floor(B_g)``, the
            largest whole number of rank units inside the budget. In unit ``"params"`` exact
            equality is in general impossible with mixed costs, so the +1 units are handed out in
            largest-remainder order while the group's cost stays ``<= B_g``; a module whose +1
            would overshoot is skipped and the next one is tried (and, so that a higher score never
            ends with a lower rank, a lower-scored module with the same floor as a skipped one is
            skipped too). The result is then within ``max(cost)`` of ``B_g``; with equal costs it
            is exact, identical to unit ``"ranks"``.
        unit: ``"ranks"`` or ``"params"`` (see above). ``"params"`` needs ``costs``.
        groups: a label per module; modules with the same label share a budget. ``None`` puts all
            modules in one joint group.
        costs: parameters per unit of rank for each module (``d_in + d_out``), positive integers.
            Required for unit ``"params"``; ignored by unit ``"ranks"``.
        min_rank: lower clamp (``>= 0``). ``min_rank >= 1`` guarantees every module an adapter.
        max_rank: upper clamp (``>= max(1, min_rank)``), or ``None`` for none.
        transform: what the shares are proportional to, within each group. ``"proportional"`` –
            the scores (the paper; the default). ``"power"`` – ``s ** power``; ``power=1`` is
            exactly ``"proportional"``. ``"rank-order"`` – the 1-based position of each score in
            ascending order within its group, ties getting the average of their positions (so a
            zero score still gets a positive share, and the result depends only on the order of the
            scores). A group whose scores are all zero stays uniform under every transform.
        power: the exponent of transform ``"power"`` (finite, ``> 0``). Must be 1 for the other
            transforms, so that a forgotten ``transform="power"`` is not silently ignored.

    With clamps, the continuous share becomes ``x_i = clamp(c * s_i, min_rank, max_rank)`` with the
    one constant ``c`` that makes ``x`` spend the budget exactly (water-filling), and the rule then
    rounds ``x``: what a clamp takes from (or gives to) one module is spread over the others in
    proportion to their scores, instead of being lost. When no clamp binds, ``x`` is exactly the
    unclamped formula, so clamps that do not bind change nothing. If a group's positive-score
    modules all sit at ``max_rank`` and budget remains, the zero-score modules of that group share
    the rest equally (the limit of giving them a vanishing positive score).

    Returns:
        An :class:`Allocation` with one rank per module in input order.

    Raises:
        AdaRankError: for invalid input (negative/NaN/Inf scores, bad rank or clamps, length
            mismatch, missing or non-positive costs) or when a group's clamps cannot meet its
            budget (``min_rank`` too high or ``max_rank`` too low for the average ``rank``).

    Guarantees (for every transform): clamps hold; floor never exceeds the budget; within a group
    a strictly higher score never gets a lower rank; the output is a pure function of the input
    and, for distinct scores, permuting the modules (with their labels and costs) permutes the
    ranks the same way. Ties in the largest-remainder step are broken by (remainder desc,
    transformed score desc, score desc, index asc).
    """
    values = _check_scores(scores)
    n = len(values)
    r_bar = _check_rank(rank)
    if rule not in RULES:
        raise AdaRankError(f"unknown rounding rule {rule!r}; use one of {', '.join(RULES)}")
    if unit not in _UNITS:
        raise AdaRankError(f"unknown budget unit {unit!r}; use one of {', '.join(_UNITS)}")
    lo, hi = _check_clamps(min_rank, max_rank)
    exponent = _check_transform(transform, power)
    labels = _check_groups(groups, n)
    weights = _check_costs(costs, n, required=(unit == "params"))

    members: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault(label, []).append(i)

    ranks = [0] * n
    budgets: list[float] = []
    used = 0
    for label, idx in members.items():
        where = np.asarray(idx, dtype=np.intp)
        s, key = _transformed(values[where], transform, exponent)
        name = "the joint group" if groups is None else f"group {label!r}"
        if unit == "ranks":
            budget = _snap(r_bar * len(idx))
            r = _solve_group(s, None, budget, lo, hi, rule, name, "rank units", key)
            group_used = int(r.sum())
        else:
            assert weights is not None
            w = weights[where]
            budget = _snap(r_bar * math.fsum(w.tolist()))
            if np.all(w == w[0]):
                # Equal costs: a parameter budget is just a rank budget times one constant, so
                # solve in rank units (exactly the same problem, without the extra rounding that
                # multiplying by the cost would add).
                r = _solve_group(
                    s, None, _snap(r_bar * len(idx)), lo, hi, rule, name, "rank units", key
                )
            else:
                r = _solve_group(s, w, budget, lo, hi, rule, name, "parameters", key)
            group_used = int(np.dot(r, w))
        budgets.append(budget)
        used += group_used
        for pos, i in enumerate(idx):
            ranks[i] = int(r[pos])
    return Allocation(ranks=ranks, total=math.fsum(budgets), used=used)


def uniform_ranks(n: int, rank: int) -> list[int]:
    """The baseline plan: the same ``rank`` for each of ``n`` modules (plain LoRA).

    Kept here so that the uniform baseline and the AdaRank plan are built by the same module and
    compared at the same budget (``n * rank`` rank units).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise AdaRankError(f"number of modules must be a non-negative integer, got {n!r}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
        raise AdaRankError(f"uniform rank must be an integer >= 1, got {rank!r}; pass --rank 1 or more")
    return [int(rank)] * int(n)


def budget_line(alloc: Allocation, unit: Unit) -> str:
    """One human line on how much of the budget the integer ranks spend.

    E.g. ``"used 357 of 384 rank units (93.0%)"``: the floor rule under-spends by design, and a
    reader comparing against uniform LoRA needs to see by how much.
    """
    if unit not in _UNITS:
        raise AdaRankError(f"unknown budget unit {unit!r}; use one of {', '.join(_UNITS)}")
    noun = "rank units" if unit == "ranks" else "parameters"
    total = alloc.total
    shown = str(int(total)) if float(total).is_integer() else f"{total:.2f}"
    pct = f"{100.0 * alloc.used / total:.1f}%" if total > 0 else "n/a"
    return f"used {alloc.used} of {shown} {noun} ({pct})"


# --------------------------------------------------------------------------------------------------
# input checks (each failure is the user's to fix, so it is an AdaRankError naming the fix)
# --------------------------------------------------------------------------------------------------
