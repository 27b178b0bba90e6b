"""One learning rate past a sweep's edge, for each choice that landed on one.

A method whose best swept rate is the largest (or the smallest) rate it tried has not been tuned:
its best may lie beyond, and comparing it at the edge charges the method for the sweep's range.
``--extend-edges N`` (``adarank.compare.grid``) therefore runs, after the sweep, one more rate past
each edge choice and repeats while choices stay on an edge, at most N times. A rate at which a run
diverged is never chosen (:func:`~adarank.compare.report.summarize_sweep`), so a sweep whose top rate
diverged is not extended upwards.

The next rate keeps the sweep's own ladder: on the usual 1-3-10 ladder 1e-2 goes to 3e-2 and 3e-4 down
to 1e-4; other rates step by the ratio to their tried neighbour.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Sequence

#: (dataset, target set, r̄, method) of one swept setting
SweptCell = tuple[str, str, int, str]


def next_rate(lr: float, neighbour: float) -> float:
    """The rate one step past ``lr``, away from ``neighbour`` (the tried rate next to it)."""
    up = lr > neighbour
    mantissa = lr / 10 ** math.floor(math.log10(lr))
    if math.isclose(mantissa, 1.0, rel_tol=1e-6):
        new = lr * (3.0 if up else 0.3)
    elif math.isclose(mantissa, 3.0, rel_tol=1e-6):
        new = lr * (10 / 3 if up else 1 / 3)
    else:
        new = lr * lr / neighbour
    return float(f"{new:.2g}")


def edge_extensions(rows: Sequence[Any]) -> dict[SweptCell, float]:
    """For each swept cell whose chosen rate is its largest or smallest tried rate, the rate beyond it.

    ``rows`` are :class:`~adarank.compare.report.SweepRow` (one per cell and rate, ``chosen`` marking
    the best); a cell with fewer than two tried rates has no edge to speak of and is left alone.
    """
    tried: dict[SweptCell, set[float]] = defaultdict(set)
    chosen: dict[SweptCell, float] = {}
    for r in rows:
        cell = (r.dataset, r.target_set, int(r.rank), r.method)
        tried[cell].add(float(r.lr))
        if r.chosen:
            chosen[cell] = float(r.lr)
    out: dict[SweptCell, float] = {}
    for cell, lr in chosen.items():
        rates = sorted(tried[cell])
        if len(rates) < 2:
            continue
        if lr == rates[-1]:
            out[cell] = next_rate(lr, rates[-2])
        elif lr == rates[0]:
            out[cell] = next_rate(lr, rates[1])
    return out
