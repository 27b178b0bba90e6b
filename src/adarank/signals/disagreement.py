"""``disagreement``, the paper's signal: the l1 distance between the outputs of two copies of the
model with independent Gaussian noise in the module's weights. The engine is
:func:`adarank.scoring.score_modules`; this module only registers it."""

from __future__ import annotations

from torch import nn

from ..probes import ProbeBatch
from ..scoring import ModuleScore, ScoreConfig, score_modules
from ..targets import Target
from .registry import OnModule, Signal, register


def _score(model: nn.Module, probes: ProbeBatch, targets: list[Target], config: ScoreConfig, *,
           progress: bool, on_module: OnModule | None) -> tuple[list[ModuleScore], str]:
    return score_modules(model, probes, targets, config, progress=progress, on_module=on_module)


DISAGREEMENT = register(Signal(
    "disagreement", "the paper: output l1 between two perturbed copies", _score))
