"""From real-valued shares to integer ranks: one group's solve, the built-in rounding rules
(``floor``, ``exact``) and the safety trim that keeps every group within its budget."""

from __future__ import annotations

import math

import numpy as np

from .errors import AdaRankError
from .transforms import RULES, RoundingRule, register_rule
from .water_filling import _continuous_share, _snap_shares


def _solve_group(
    s: np.ndarray,
    w: np.ndarray | None,
    budget: float,
    lo: int,
    hi: int | None,
    rule: str,
    name: str,
    noun: str,
    key: np.ndarray | None = None,
) -> np.ndarray:
    """Ranks for one group. ``w is None`` means rank units (every module costs 1).

    ``key`` orders modules whose shares tie (see :func:`_transformed`); ``None`` means ``s``.
    """
    key = s if key is None else key
    m = len(s)
    weights = np.ones(m, dtype=np.int64) if w is None else w
    total_weight = math.fsum(weights.tolist())
    per = "modules" if w is None else "parameters per unit of rank"
    if lo * total_weight > budget:
        raise AdaRankError(
            f"{name}: min_rank {lo} x {total_weight:g} {per} = {lo * total_weight:g} exceeds the "
            f"budget of {budget:g} {noun}; lower --min-rank or raise --rank"
        )
    if hi is not None and hi * total_weight < budget:
        raise AdaRankError(
            f"{name}: max_rank {hi} x {total_weight:g} {per} = {hi * total_weight:g} is below the "
            f"budget of {budget:g} {noun}; raise --max-rank or lower --rank"
        )

    x = _snap_shares(_continuous_share(s, w, budget, lo, hi))
    r = np.floor(x).astype(np.int64)
    # x lies in [lo, hi] already; the clip only guards against a stray ulp.
    r = np.clip(r, lo, hi if hi is not None else None)
    remainder = x - r

    complete = RULES[rule].complete
    if complete is not None:
        complete(r, remainder, key, weights, hi, budget, w is None)
    # Both rules: never over the budget, even if float rounding put a share a hair above an
    # integer. (With exact inputs this never triggers.)
    _trim_to_budget(r, remainder, key, weights, lo, budget)
    return r


def _priority(remainder: np.ndarray, s: np.ndarray) -> list[int]:
    """Module indices by (remainder desc, score desc, index asc): who gets the next +1 first.

    Within one floor level a higher score has a remainder at least as large, so this order never
    serves a lower-scored module before a higher-scored one at the same level; the score and index
    keys make ties deterministic.
    """
    return sorted(range(len(s)), key=lambda i: (-remainder[i], -s[i], i))


def _round_up_to_count(
    r: np.ndarray, remainder: np.ndarray, s: np.ndarray, hi: int | None, target: int
) -> None:
    """Largest-remainder rounding in rank units: add +1s until sum(r) == target (in place)."""
    need = target - int(r.sum())
    if need <= 0:
        return
    order = _priority(remainder, s)
    while need > 0:
        progressed = False
        for i in order:
            if need == 0:
                break
            if hi is None or r[i] < hi:
                r[i] += 1
                need -= 1
                progressed = True
        if not progressed:  # only if the target exceeded hi * M, which the caller rules out
            break


def _round_up_within_cost(
    r: np.ndarray,
    remainder: np.ndarray,
    s: np.ndarray,
    w: np.ndarray,
    hi: int | None,
    budget: float,
) -> None:
    """Largest-remainder rounding in parameters: +1 in priority order while cost stays <= budget.

    A module whose +1 would overshoot is skipped and the next one tried. After a skip, modules of
    the same floor level with a strictly lower score are skipped as well, because giving them the
    +1 would rank them above a module with a higher score. Every skip happens when the slack is
    below that module's cost, so the final slack is below max(cost).
    """
    spent = int(np.dot(r, w))
    skipped_top: dict[int, float] = {}  # floor level -> highest score skipped at that level
    for i in _priority(remainder, s):
        if hi is not None and r[i] >= hi:
            continue
        level = int(r[i])
        if s[i] < skipped_top.get(level, -math.inf):
            continue
        if spent + int(w[i]) > budget:
            skipped_top[level] = max(skipped_top.get(level, -math.inf), float(s[i]))
            continue
        r[i] += 1
        spent += int(w[i])


def _largest_remainder(r: np.ndarray, remainder: np.ndarray, key: np.ndarray, weights: np.ndarray,
                       hi: int | None, budget: float, rank_units: bool) -> None:
    """The ``exact`` rule: largest-remainder rounding, in rank units or in parameters."""
    if rank_units:
        _round_up_to_count(r, remainder, key, hi, int(math.floor(budget)))
    else:
        _round_up_within_cost(r, remainder, key, weights, hi, budget)


register_rule(RoundingRule("floor", "the paper's rule (scale to mean r̄, then floor; may leave budget unused)"))
register_rule(RoundingRule("exact", "largest-remainder rounding that spends the budget exactly", _largest_remainder))


def _trim_to_budget(
    r: np.ndarray,
    remainder: np.ndarray,
    s: np.ndarray,
    w: np.ndarray,
    lo: int,
    budget: float,
) -> None:
    """Take back units, least-deserving first, while the group spends more than its budget.

    A safety net for shares that float rounding put a hair above an integer; it does not fire for
    ordinary inputs (and never for the paper's values).
    """
    spent = int(np.dot(r, w))
    if spent <= budget:
        return
    order = _priority(remainder, s)[::-1]
    while spent > budget:
        progressed = False
        for i in order:
            if spent <= budget:
                break
            if r[i] > lo:
                r[i] -= 1
                spent -= int(w[i])
                progressed = True
        if not progressed:
            break


# --------------------------------------------------------------------------------------------------
# module widths: a LoRA update of a d_out x d_in module has rank at most min(d_out, d_in)
# --------------------------------------------------------------------------------------------------
