"""``linear-depth``: ranks grow linearly with depth (score = block index + 1), the cheapest heuristic."""

from __future__ import annotations

from ...errors import AdaRankError
from ...plan import ModuleEntry, RankPlan
from .registry import Method, allocated, register, with_scores


def _depth_scores(modules: list[ModuleEntry]) -> list[float]:
    missing = [m.name for m in modules if m.block is None]
    if missing:
        raise AdaRankError(
            f"linear-depth needs every module inside the block stack, but {missing[0]} has no block index; "
            "target modules of the transformer blocks only"
        )
    return [float(m.block) + 1.0 for m in modules]  # type: ignore[operator]


def _linear_depth(scored: RankPlan, rank: int, seed: int, groups: str) -> RankPlan:
    return allocated(with_scores(scored, _depth_scores(scored.modules)), rank, groups, "exact")


LINEAR_DEPTH = register(Method("linear-depth", "block index + 1 (ranks grow linearly with depth)", "score-free",
                               _linear_depth, source="block index + 1", core=True))
