"""Checks on what :func:`adarank.allocation.allocate_ranks` is given; each failure is the user's to
fix, so it is an :class:`AdaRankError` naming the fix."""

from __future__ import annotations

import math
from typing import Hashable, Sequence

import numpy as np

from .errors import AdaRankError
from .transforms import TRANSFORMS

UNITS: tuple[str, ...] = ("ranks", "params")
_UNITS = UNITS


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
