"""``random``: ranks from uniform(0, 1) scores, the ablation that says whether the scores matter at all.

The generator is seeded with ``seed + 10_000 * rank`` so that different average ranks of one seed do
not reuse the same draw, and the same (seed, rank) always gives the same list.
"""

from __future__ import annotations

import numpy as np

from ...plan import RankPlan
from .registry import Method, allocated, register, with_scores

RANDOM_SEED_STRIDE = 10_000


def random_scores(n: int, seed: int, rank: int) -> np.ndarray:
    """The random ablation's scores: uniform(0, 1) from ``Generator(seed + 10_000 * rank)``."""
    return np.random.default_rng(seed + RANDOM_SEED_STRIDE * rank).uniform(0.0, 1.0, size=n)


def _random(scored: RankPlan, rank: int, seed: int, groups: str) -> RankPlan:
    values = random_scores(len(scored.modules), seed, rank).tolist()
    return allocated(with_scores(scored, values), rank, groups, "exact")


RANDOM = register(Method("random", f"uniform(0, 1) scores from Generator(seed + {RANDOM_SEED_STRIDE} * rank)",
                         "score-free", _random,
                         source=f"uniform(0,1) from numpy Generator(seed + {RANDOM_SEED_STRIDE}*rank)", core=True))
