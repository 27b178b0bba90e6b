"""The rank heatmap: module types (rows) by blocks (columns), scores on the left, ranks on the right."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .io import atomic_write

if TYPE_CHECKING:
    from .plan import RankPlan


def _grid(plan: "RankPlan") -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    types = list(dict.fromkeys(m.type for m in plan.modules))
    blocks = sorted({m.block for m in plan.modules if m.block is not None})
    columns = [str(b) for b in blocks] or ["-"]
    scores = np.full((len(types), len(columns)), np.nan)
    ranks = np.full((len(types), len(columns)), np.nan)
    for m in plan.modules:
        col = columns.index(str(m.block)) if m.block is not None and blocks else 0
        row = types.index(m.type)
        scores[row, col], ranks[row, col] = m.score_mean, m.rank
    return types, columns, scores, ranks


def plot_plan(plan: "RankPlan", path: str | Path, title: str | None = None) -> Path:
    """Write the heatmap as a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    types, columns, scores, ranks = _grid(plan)
    width = max(8.0, 1.2 + 0.55 * len(columns) * 2 + 0.12 * max(len(t) for t in types))
    fig, axes = plt.subplots(1, 2, figsize=(width, 1.4 + 0.45 * len(types)), constrained_layout=True)
    panels = ((scores, "disagreement score (mean over trials)", "viridis", "{:.3g}"),
              (ranks, f"rank (r̄={plan.budget.rank:g}, {plan.budget.rule}, {plan.budget.groups})", "magma", "{:.0f}"))
    for ax, (values, label, cmap, fmt) in zip(axes, panels):
        image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap=cmap)
        ax.set_title(label, fontsize=10)
        ax.set_xticks(range(len(columns)), columns)
        ax.set_yticks(range(len(types)), types if ax is axes[0] else [""] * len(types))
        ax.set_xlabel("block")
        fig.colorbar(image, ax=ax, shrink=0.8)
        if len(columns) * len(types) <= 400:
            finite = values[np.isfinite(values)]
            mid = (finite.min() + finite.max()) / 2 if finite.size else 0
            for (i, j), v in np.ndenumerate(values):
                if np.isfinite(v):
                    ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                            color="black" if v > mid else "white")
    fig.suptitle(title or plan.model.split("/")[-1], fontsize=11)
    dest = Path(path)
    atomic_write(dest, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
    return dest
