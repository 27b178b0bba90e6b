"""Turn per-module importance scores into integer LoRA ranks under a budget (docs/method.md §3).

Everything here is a pure function of its arguments: no torch, no randomness, no global state, so a
rank plan can be recomputed from a stored importance vector for any new budget without re-probing
the model.

Vocabulary
----------
* **group** – a set of modules sharing one budget. One group per module type reproduces the
  paper's per-type lists; a single joint group lets types with higher scores take budget from the
  others. Groups never exchange budget.
* **unit** – what the budget counts. ``"ranks"``: the group's budget is ``rank * M_g`` rank units
  (the paper). ``"params"``: the budget is ``rank * sum(costs)`` parameters, where ``costs[i]`` is
  what one unit of rank costs in module ``i`` (``d_in + d_out``), so "same number of parameters as
  uniform LoRA of rank ``rank``" holds even when modules differ in shape.
* **transform** – what the shares are proportional to. ``"proportional"``: the scores themselves
  (the paper). ``"power"``: ``s ** power`` (tempered: ``power > 1`` concentrates the budget on the
  top modules, ``power < 1`` flattens it). ``"rank-order"``: the 1-based position of each score in
  its group sorted ascending (ties share the average position), so only the order of the scores
  matters, not their spread. The transform is applied per group; everything after it (clamps,
  units, rules) is the same for all transforms.
* **rule** – how the continuous proportional share becomes an integer. ``"floor"`` is the paper's
  rule (it under-spends the budget by a few percent); ``"exact"`` adds largest-remainder rounding so
  that the budget is spent exactly (ranks unit) or as nearly as whole ranks allow (params unit).

Numerics
--------
The unclamped floor rule is evaluated literally as ``floor((rank * M_g) * s_i / sum(s))`` in float64
because the paper's rank lists (docs/method.md §4) come from exactly that expression, and a
mathematically equivalent reordering could move a value across an integer boundary and change a
rank. Sums use :func:`math.fsum` (correctly rounded), so the result does not depend on the order of
the modules. Scores are first rescaled by a power of two so that the largest is in ``[0.5, 1)``:
that is exact in floating point, so it changes no result, and it keeps ``rank * M * s_i`` from
overflowing for huge scores and makes the output exactly invariant to rescaling the scores by
powers of two. A share that is an integer up to a few ulps (``(3 * s) / s`` can come out as
2.9999999999999996) is moved onto that integer before flooring, so rounding noise never costs a
module a whole unit of rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Literal, Sequence

import numpy as np

from .errors import AdaRankError
from .transforms import RULES, TRANSFORMS, RoundingRule, register_rule

Rule = str  # a name in adarank.transforms.RULES
Unit = Literal["ranks", "params"]
Transform = str  # a name in adarank.transforms.TRANSFORMS

_UNITS: tuple[str, ...] = ("ranks", "params")

# A budget that is an integer up to this relative distance is taken to be that integer: rank * M
# with a decimal rank such as 0.57 * 100 evaluates to 56.99999999999999 in binary floating point,
# and the user meant 57.
_SNAP_REL_TOL = 1e-9

# A continuous share within this relative distance of an integer is that integer (see _snap_shares).
_SHARE_REL_TOL = 1e-12

__all__ = [
    "Allocation",
    "Rule",
    "Transform",
    "Unit",
    "allocate_ranks",
    "budget_line",
    "uniform_ranks",
]


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


def _check_scores(scores: Sequence[float]) -> np.ndarray:
    try:
        values = np.asarray([float(v) for v in scores], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AdaRankError(f"scores must be numbers: {exc}; pass one float per module") from None
    if values.size == 0:
        raise AdaRankError("no scores given: nothing to allocate; check which modules were targeted")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise AdaRankError(
            f"score of module {i} is {values[i]!r}; scores must be finite, re-run the importance probe"
        )
    neg = np.flatnonzero(values < 0)
    if neg.size:
        i = int(neg[0])
        raise AdaRankError(
            f"score of module {i} is negative ({values[i]!r}); importance scores must be >= 0"
        )
    return values


def _check_rank(rank: float) -> float:
    try:
        value = float(rank)
    except (TypeError, ValueError):
        raise AdaRankError(f"rank must be a number, got {rank!r}; pass e.g. --rank 8") from None
    if not math.isfinite(value) or value <= 0:
        raise AdaRankError(f"average rank must be finite and > 0, got {rank!r}; pass e.g. --rank 8")
    return value


def _as_int(value: object, what: str, fix: str) -> int:
    if isinstance(value, bool):
        raise AdaRankError(f"{what} must be an integer, got {value!r}; {fix}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    raise AdaRankError(f"{what} must be an integer, got {value!r}; {fix}")


def _check_clamps(min_rank: int, max_rank: int | None) -> tuple[int, int | None]:
    lo = _as_int(min_rank, "min_rank", "pass a whole number such as --min-rank 1")
    if lo < 0:
        raise AdaRankError(f"min_rank must be >= 0, got {lo}; pass --min-rank 0 or more")
    if max_rank is None:
        return lo, None
    hi = _as_int(max_rank, "max_rank", "pass a whole number such as --max-rank 32")
    if hi < 1:
        raise AdaRankError(f"max_rank must be >= 1, got {hi}; raise --max-rank or omit it")
    if hi < lo:
        raise AdaRankError(
            f"max_rank {hi} is below min_rank {lo}; raise --max-rank or lower --min-rank"
        )
    return lo, hi


def _check_transform(transform: str, power: float) -> float:
    if transform not in TRANSFORMS:
        raise AdaRankError(
            f"unknown score transform {transform!r}; use one of {', '.join(TRANSFORMS)}"
        )
    if isinstance(power, bool):
        raise AdaRankError(f"power must be a number, got {power!r}; pass e.g. --power 2")
    try:
        value = float(power)
    except (TypeError, ValueError):
        raise AdaRankError(f"power must be a number, got {power!r}; pass e.g. --power 2") from None
    if not math.isfinite(value) or value <= 0:
        raise AdaRankError(f"power must be finite and > 0, got {power!r}; pass e.g. --power 0.5 or 2")
    if not TRANSFORMS[transform].uses_power and value != 1.0:
        raise AdaRankError(
            f"power {value:g} only applies to transform 'power', not {transform!r}; "
            "pass --transform power or leave power at 1"
        )
    return value


def _check_groups(groups: Sequence[Hashable] | None, n: int) -> list[Hashable]:
    if groups is None:
        return [None] * n
    labels = list(groups)
    if len(labels) != n:
        raise AdaRankError(
            f"got {len(labels)} group labels for {n} scores; pass one group label per module"
        )
    for label in labels:
        try:
            hash(label)
        except TypeError:
            raise AdaRankError(
                f"group label {label!r} is not hashable; use strings or numbers as labels"
            ) from None
    return labels


def _check_costs(costs: Sequence[int] | None, n: int, *, required: bool) -> np.ndarray | None:
    if costs is None:
        if required:
            raise AdaRankError(
                "unit 'params' needs the cost of each module (d_in + d_out); pass costs or use unit 'ranks'"
            )
        return None
    values = list(costs)
    if len(values) != n:
        raise AdaRankError(f"got {len(values)} costs for {n} scores; pass one cost per module")
    out = np.empty(n, dtype=np.int64)
    for i, c in enumerate(values):
        ci = _as_int(c, f"cost of module {i}", "pass d_in + d_out of that module")
        if ci <= 0:
            raise AdaRankError(
                f"cost of module {i} is {ci}; costs must be positive (d_in + d_out of the module)"
            )
        out[i] = ci
    return out


# --------------------------------------------------------------------------------------------------
# the computation
# --------------------------------------------------------------------------------------------------


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
