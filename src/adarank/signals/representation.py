"""``representation``: the disagreement machinery (same noise, same seeds, same batched engine)
with another distance: the masked mean over real tokens of the per-token cosine distance
1 − cos(h1, h2) between the last hidden states of the two perturbed copies (``output="hidden"``,
``distance="cosine"``). It ignores the model's head and the scale of the hidden states."""

from __future__ import annotations

import dataclasses
from typing import Sequence

from torch import nn

from ..probes import ProbeBatch
from ..scoring import ModuleScore, ScoreConfig, score_modules
from ..targets import Target
from .registry import OnModule, Signal, register, resolve_targets


def representation_config(config: ScoreConfig | None = None) -> ScoreConfig:
    """``config`` comparing last hidden states per token by cosine distance."""
    return dataclasses.replace(config or ScoreConfig(), output="hidden", distance="cosine")


def representation_scores(model: nn.Module, probes: ProbeBatch, targets: Sequence[Target] | str | Sequence[str] = "all-linear",
                          config: ScoreConfig | None = None, *, progress: bool = False,
                          on_module: OnModule | None = None) -> list[ModuleScore]:
    """Disagreement measured on the last hidden states: masked mean over real tokens of
    1 − cos(h1, h2) between two perturbed copies (``config``'s output and distance are overridden)."""
    return score_modules(model, probes, resolve_targets(model, targets), representation_config(config),
                         progress=progress, on_module=on_module)[0]


def _score(model: nn.Module, probes: ProbeBatch, targets: list[Target], config: ScoreConfig, *,
           progress: bool, on_module: OnModule | None) -> tuple[list[ModuleScore], str]:
    scores, choice = score_modules(model, probes, targets, representation_config(config), progress=progress,
                                   on_module=on_module)
    return scores, f"{choice}:cosine"


REPRESENTATION = register(Signal(
    "representation", "cosine distance of the last block's hidden states under the same perturbations", _score))
