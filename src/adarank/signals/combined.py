"""``combined``: the average of the normalised ranks of disagreement and fisher.

Each module's position among all modules by mean score, scaled to (0, 1]. Its K "trial" values are
the combined value repeated, so its spread is zero and means nothing. Because a rank depends on
every other module, ``combined`` is always computed over the full target list (no sharding or
resume).
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ..errors import AdaRankError
from ..probes import ProbeBatch
from ..scoring import ModuleScore, ScoreConfig, score_modules
from ..targets import Target
from .fisher import fisher_with_loss
from .registry import OnModule, Signal, register


def _normalised_ranks(scores: Sequence[ModuleScore]) -> dict[str, float]:
    """Position of each module's mean among all modules, 1/n for the smallest .. 1 for the largest;
    ties share the average of their positions."""
    means = [(s.mean, s.target.name) for s in scores]
    order = sorted(range(len(means)), key=lambda i: means[i][0])
    n = len(means)
    out: dict[str, float] = {}
    i = 0
    while i < n:
        j = i
        while j + 1 < n and means[order[j + 1]][0] == means[order[i]][0]:
            j += 1
        rank = (i + j) / 2 + 1  # average 1-based position of the tie group
        for idx in order[i:j + 1]:
            out[means[idx][1]] = rank / n
        i = j + 1
    return out


def combined_scores(a: Sequence[ModuleScore], b: Sequence[ModuleScore]) -> list[ModuleScore]:
    """Mean of the normalised ranks (in (0, 1]) of two signals over the same modules, in ``a``'s order.

    Each module keeps as many values as it has in ``a``, all equal to the combined value: the spread
    of a combined score is not meaningful (it is always zero).
    """
    ra, rb = _normalised_ranks(a), _normalised_ranks(b)
    if set(ra) != set(rb) or len(ra) != len(a):
        raise AdaRankError("combined scores need the same modules, each once, in both signals")
    return [ModuleScore(s.target, [(ra[s.target.name] + rb[s.target.name]) / 2] * len(s.scores)) for s in a]


def _score(model: nn.Module, probes: ProbeBatch, targets: list[Target], config: ScoreConfig, *,
           progress: bool, on_module: OnModule | None) -> tuple[list[ModuleScore], str]:
    fisher, loss = fisher_with_loss(model, probes, targets, folds=config.trials, seed=config.seed, progress=progress)
    dis, choice = score_modules(model, probes, targets, config, progress=progress)
    result = combined_scores(dis, fisher)
    if on_module is not None:
        for r in result:
            on_module(r)
    return result, f"{choice}+{loss}"


COMBINED = register(Signal("combined", "mean normalised rank of disagreement and fisher", _score,
                           per_module=False))
