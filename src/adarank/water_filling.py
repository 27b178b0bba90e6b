"""The continuous part of the allocation: normalised (transformed) scores and the real-valued share
of each module, clamped by water-filling when a clamp binds (see :mod:`adarank.allocation`)."""

from __future__ import annotations

import math

import numpy as np

from .transforms import TRANSFORMS

_SNAP_REL_TOL = 1e-9

# A continuous share within this relative distance of an integer is that integer (see _snap_shares).
_SHARE_REL_TOL = 1e-12


def _snap(budget: float) -> float:
    """Return the nearest integer if ``budget`` is one up to binary rounding, else ``budget``."""
    nearest = round(budget)
    if abs(budget - nearest) <= _SNAP_REL_TOL * max(1.0, abs(budget)):
        return float(nearest)
    return budget


def _snap_shares(x: np.ndarray) -> np.ndarray:
    """Round shares that are integers up to float error onto those integers.

    ``(B * s) / S`` for a one-module group, or for equal scores, is mathematically an integer but
    can evaluate to a few ulps below it (e.g. 2.9999999999999996), and floor would then take away a
    whole unit of rank. Moving values within ``_SHARE_REL_TOL`` of an integer onto it fixes that;
    the move is monotone (order is kept), scale-free, and far too small to touch a genuine
    fractional part (the paper's shares are all at least 0.006 away from an integer, so the
    docs/method.md §4 lists are unaffected).
    """
    nearest = np.round(x)
    close = np.abs(x - nearest) <= _SHARE_REL_TOL * np.maximum(1.0, np.abs(x))
    return np.where(close, nearest, x)


def _normalise(s: np.ndarray) -> np.ndarray:
    """Scale by a power of two so that the largest score is in [0.5, 1); all zeros -> all ones.

    A power-of-two scale is exact, so the literal floor formula gives identical results on the
    scaled scores while products like ``rank * M * s_i`` can no longer overflow. All-zero scores
    carry no preference and are read as uniform.
    """
    top = float(s.max())
    if top == 0.0:
        return np.ones_like(s)
    _, exponent = math.frexp(top)
    return np.ldexp(s, -exponent)


def _transformed(values: np.ndarray, transform: str, power: float) -> tuple[np.ndarray, np.ndarray]:
    """One group's shares-to-be and the key that orders its modules for the rounding steps.

    Returns ``(s, key)``: ``s`` is the transformed score, normalised like the raw one (largest in
    ``[0.5, 1)``, all zeros -> all ones); ``key`` orders the modules by ``s`` and, among equal
    ``s``, by the raw score. For ``"proportional"`` (and ``"power"`` with ``power == 1``) ``key`` is
    ``s`` itself, so those paths are bit for bit the untransformed computation. For the others a
    transform can map distinct raw scores to equal values (``sqrt`` rounds neighbouring floats
    together; rank positions are equal only for equal scores), and breaking those ties by the raw
    score keeps "a strictly higher score never gets a lower rank".
    """
    s = _normalise(values)
    t = TRANSFORMS[transform].apply(values, s, power)
    if t is None:
        return s, s
    t = _normalise(t)
    return t, _lexicographic_key(t, s)


def _lexicographic_key(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Dense ranks (0, 1, 2, ...) of the pairs (primary, secondary), as floats."""
    order = np.lexsort((secondary, primary))
    key = np.empty(len(primary), dtype=np.float64)
    level = 0
    for pos, i in enumerate(order):
        if pos and (primary[i] != primary[order[pos - 1]] or secondary[i] != secondary[order[pos - 1]]):
            level += 1
        key[i] = level
    return key


def _continuous_share(
    s: np.ndarray, w: np.ndarray | None, budget: float, lo: int, hi: int | None
) -> np.ndarray:
    """The real-valued share x with sum(w * x) == budget and lo <= x <= hi.

    First the paper's literal proportional formula; only when that violates a clamp, the
    water-filling solution. Returning the literal values whenever no clamp binds is what keeps the
    docs/method.md §4 oracle intact under default clamps.
    """
    if w is None:
        x = (budget * s) / math.fsum(s.tolist())
    else:
        x = (budget * s) / math.fsum((w * s).tolist())
    if x.min() >= lo and (hi is None or x.max() <= hi):
        return x
    weights = np.ones(len(s), dtype=np.int64) if w is None else w
    return _water_fill(s, weights.astype(np.float64), budget, lo, hi)


def _water_fill(s: np.ndarray, w: np.ndarray, budget: float, lo: int, hi: int | None) -> np.ndarray:
    """Solve sum_i w_i * clamp(c * s_i, lo, hi) == budget for c, and return the clamped shares.

    f(c) = sum w_i clamp(c s_i, lo, hi) is piecewise linear and non-decreasing in c with kinks at
    c = lo/s_i and c = hi/s_i. A binary search over the sorted kinks finds the piece containing the
    budget; on that piece the set of modules at lo, at hi and free is fixed, so c follows in closed
    form and the budget is met to float precision (no iterative tolerance).
    Assumes feasibility (lo * sum(w) <= budget <= hi * sum(w)) has been checked.
    """
    m = len(s)
    x = np.full(m, float(lo))
    total_weight = math.fsum(w.tolist())
    if hi is not None and lo == hi:
        return x
    if budget <= lo * total_weight:
        return x
    pos = s > 0
    zero = ~pos
    zero_weight = math.fsum(w[zero].tolist())
    if hi is not None:
        pos_weight = math.fsum(w[pos].tolist())
        cap = hi * pos_weight + lo * zero_weight
        if budget >= cap:
            # Every scored module is saturated; zero-score modules share what is left equally
            # (as if their scores were a vanishing positive constant).
            x[pos] = float(hi)
            if zero.any() and budget > cap:
                x[zero] = _water_fill(
                    np.ones(int(zero.sum())), w[zero], budget - hi * pos_weight, lo, hi
                )
            return x

    if hi is not None:
        # Scores so far below the top that hi / s overflows (a steep power transform can spread them
        # over 300 decades) have kinks no float c reaches. Either the budget saturates every other
        # scored module first, and they share the rest among themselves, rescaled into range; or it
        # does not, and their share c * s stays below lo, as for a zero score.
        with np.errstate(over="ignore", divide="ignore"):
            tiny = pos & ~np.isfinite(float(hi) / np.where(pos, s, 1.0))
        if tiny.any():
            big = pos & ~tiny
            big_weight = math.fsum(w[big].tolist())
            if budget >= hi * big_weight + lo * (total_weight - big_weight):
                x[big] = float(hi)
                rest = ~big
                x[rest] = _water_fill(_normalise(s[rest]), w[rest], budget - hi * big_weight, lo, hi)
                return x
            pos, zero = big, ~big
            zero_weight = math.fsum(w[zero].tolist())

    sp, wp = s[pos], w[pos]
    hi_f = math.inf if hi is None else float(hi)
    with np.errstate(over="ignore"):  # without a max_rank a tiny score only ever sits at lo
        kink_lo = lo / sp
    kink_hi = np.full_like(sp, math.inf) if hi is None else hi_f / sp
    kinks = np.unique(np.concatenate([kink_lo, kink_hi[np.isfinite(kink_hi)]]))

    def spent(c: float) -> float:
        return lo * zero_weight + math.fsum((wp * np.clip(c * sp, lo, hi_f)).tolist())

    left, right = 0, len(kinks)  # first k with spent(kinks[k]) >= budget; len(kinks) = beyond all
    while left < right:
        mid = (left + right) // 2
        if spent(float(kinks[mid])) >= budget:
            right = mid
        else:
            left = mid + 1
    k = left
    c_left = float(kinks[k - 1]) if k > 0 else 0.0
    c_right = float(kinks[k]) if k < len(kinks) else math.inf
    at_lo = kink_lo >= c_right
    at_hi = kink_hi <= c_left
    free = ~(at_lo | at_hi)
    xp = np.where(at_lo, float(lo), np.where(at_hi, hi_f, 0.0))
    if free.any():
        fixed = lo * (zero_weight + math.fsum(wp[at_lo].tolist())) + (
            hi_f * math.fsum(wp[at_hi].tolist()) if at_hi.any() else 0.0
        )
        c = (budget - fixed) / math.fsum((wp[free] * sp[free]).tolist())
        xp[free] = np.clip(c * sp[free], lo, hi_f)
    else:
        # Only reachable when the budget sits on a kink up to rounding; take that kink.
        c = c_right if math.isfinite(c_right) else c_left
        xp = np.clip(c * sp, lo, hi_f)
    x[pos] = xp
    return x
