"""Sweep choices that won by less than the noise of the score that chose them.

A sweep picks each method's rate by its best validation score; on one seed and a few hundred
validation examples, that score carries a binomial standard error of about two points at 75 %
accuracy. A rate that wins by less than that is a coin toss among the rates near it, and a
comparison between methods then also compares their luck in the sweep. Seen in the decoder study: uniform
LoRA on PP attachment chose 3e-3 at 76.50 % over 76.00 % at 1e-3 and 3e-4 (2 of 400 examples),
and every method that beat it there ran at a lower rate. The report lists such choices, so that a
reader weighs a gain against them; nothing in the grid changes.

The standard error is that of an accuracy, ``sqrt(p (1 − p) / (n · seeds))`` at the chosen score
``p`` over ``n`` validation examples per seed; for chunk F1 it is a rough guide.
"""

from __future__ import annotations

import math
from statistics import fmean
from dataclasses import dataclass
from typing import Any, Sequence

from .sweep_edges import SweptCell


@dataclass(frozen=True)
class CloseChoice:
    """A chosen rate and the runner-up it beat by ``margin_pp`` (≤ ``se_pp``)."""

    lr: float
    runner_up: float
    margin_pp: float
    se_pp: float


def close_choices(rows: Sequence[Any]) -> dict[SweptCell, CloseChoice]:
    """For each swept cell whose chosen rate beat its best other eligible rate by at most one standard
    error of the chosen score, that choice; ``rows`` are :class:`~adarank.compare.report.SweepRow`
    with ``acc`` in percent and ``examples`` the validation examples of one run (0: unknown, skipped)."""
    by_cell: dict[SweptCell, list[Any]] = {}
    for r in rows:
        by_cell.setdefault((r.dataset, r.target_set, int(r.rank), r.method), []).append(r)
    out: dict[SweptCell, CloseChoice] = {}
    for cell, cell_rows in by_cell.items():
        chosen = next((r for r in cell_rows if r.chosen), None)
        if chosen is None or not chosen.examples:
            continue
        others = [r for r in cell_rows if r is not chosen and r.acc and not r.diverged]
        if not others:
            continue
        runner = max(others, key=lambda r: (fmean(r.acc), -r.lr))
        p = min(max(fmean(chosen.acc) / 100.0, 0.0), 1.0)
        se = 100.0 * math.sqrt(p * (1.0 - p) / (chosen.examples * len(chosen.acc)))
        margin = fmean(chosen.acc) - fmean(runner.acc)
        if margin <= se:
            out[cell] = CloseChoice(float(chosen.lr), float(runner.lr), margin, se)
    return out
