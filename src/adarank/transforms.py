"""The registries of allocation transforms and rounding rules (``--transform``, ``--rule``).

:func:`adarank.allocation.allocate_ranks` looks both up here, and the CLI builds its choices and
help from them, so a new transform or rule is one :func:`register_transform` /
:func:`register_rule` call with its function, and nothing else changes.

A **transform** says what a group's shares are proportional to. Its function gets the group's raw
scores and the same scores normalised (largest in [0.5, 1), all zeros -> all ones), and returns the
values to use, or ``None`` for "the normalised scores as they are": the paper's path stays bit for
bit the untransformed computation. Whatever it returns is normalised again and ties among its
values are broken by the raw score, so "a strictly higher score never gets a lower rank" holds for
every transform that keeps the order of the scores.

A **rule** says how the real-valued shares become integers. Every rule starts from the floor of
each share (clamped); its ``complete`` function may then add units in place while the group stays
within budget (``None``: keep the floors, as the paper does). The built-in rules live in
:mod:`adarank.allocation`, beside the rounding steps they use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from .registries import add_unique

TransformFn = Callable[[np.ndarray, np.ndarray, float], "np.ndarray | None"]


@dataclass(frozen=True)
class ScoreTransform:
    """``apply(raw, normalised, power)``; ``uses_power`` says whether ``--power`` means anything to it
    (for the others a power other than 1 is refused, so that a forgotten ``--transform power`` is not
    silently ignored)."""

    name: str
    help: str
    apply: TransformFn
    uses_power: bool = False


class Completion(Protocol):
    def __call__(self, ranks: np.ndarray, remainder: np.ndarray, key: np.ndarray, weights: np.ndarray,
                 hi: int | None, budget: float, rank_units: bool) -> None:
        """Add units to the floored ``ranks`` in place (never above ``hi``, never over ``budget``).

        ``remainder`` is each share minus its floor, ``key`` orders modules whose shares tie,
        ``weights`` is what one unit costs per module (all ones when ``rank_units``)."""
        ...


@dataclass(frozen=True)
class RoundingRule:
    name: str
    help: str
    complete: Completion | None = None


#: name -> transform, in the order they are listed (the first is the default)
TRANSFORMS: dict[str, ScoreTransform] = {}
#: name -> rounding rule, in the order they are listed (the first is the default)
RULES: dict[str, RoundingRule] = {}


def register_transform(transform: ScoreTransform) -> ScoreTransform:
    return add_unique(TRANSFORMS, transform, "transform")


def register_rule(rule: RoundingRule) -> RoundingRule:
    return add_unique(RULES, rule, "rounding rule")


def choices_help(registry: dict[str, ScoreTransform] | dict[str, RoundingRule]) -> str:
    """``name: help; name: help`` for a CLI option's help text."""
    return "; ".join(f"{entry.name}: {entry.help}" for entry in registry.values())


# ------------------------------------------------------------------------------ the transforms

def _proportional(raw: np.ndarray, s: np.ndarray, power: float) -> None:
    return None


def _power(raw: np.ndarray, s: np.ndarray, power: float) -> np.ndarray | None:
    if power == 1.0:
        return None
    # s is in [0, 1) with its largest in [0.5, 1): s ** power cannot overflow, and for an integer
    # power it equals the scaled power of the raw scores exactly. Only an enormous power could flush
    # the largest value into subnormals (0.5 ** 1023); then take the power of s / max(s) instead,
    # whose largest value is exactly 1.
    t = np.power(s, power)
    if float(t.max()) < np.finfo(np.float64).tiny:
        t = np.power(s / float(s.max()), power)
    return t


def average_positions(values: np.ndarray) -> np.ndarray:
    """1-based positions in ascending order; a run of equal values shares its average position."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    positions = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[start]:
            end += 1
        # positions start+1 .. end+1; their mean is exact in binary (an integer or a half)
        positions[order[start:end + 1]] = (start + end + 2) / 2.0
        start = end + 1
    return positions


def _rank_order(raw: np.ndarray, s: np.ndarray, power: float) -> np.ndarray:
    return average_positions(raw)


register_transform(ScoreTransform("proportional", "the scores (the paper)", _proportional))
register_transform(ScoreTransform("power", "scores ** --power", _power, uses_power=True))
register_transform(ScoreTransform(
    "rank-order", "each score's position in ascending order within its group (ties averaged)", _rank_order))
