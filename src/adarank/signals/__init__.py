"""Importance signals (docs/method.md section 6): which modules matter most.

One module per signal, each registering itself in :data:`SIGNALS` (see :mod:`.registry`):
``disagreement`` (the paper, :mod:`.disagreement`), ``fisher`` (:mod:`.fisher`), ``representation``
(:mod:`.representation`) and ``combined`` (:mod:`.combined`). To add a signal, write a module that
calls :func:`register` with a :class:`Signal` and import it below; the CLI's ``--signal`` choices
and help, and every check, read the registry.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ..probes import ProbeBatch
from ..scoring import ModuleScore, ScoreConfig
from ..targets import Target
from .registry import SIGNALS, OnModule, Signal, check_signal, register, resolve_targets

# The built-in signals, in the order they are listed (the first is the default).
from . import disagreement, fisher, representation, combined  # noqa: E402,F401  isort: skip
from .combined import combined_scores  # noqa: E402
from .fisher import fisher_scores  # noqa: E402
from .representation import representation_config, representation_scores  # noqa: E402


def score_by_signal(signal: str, model: nn.Module, probes: ProbeBatch, targets: Sequence[Target] | str | Sequence[str],
                    config: ScoreConfig | None = None, progress: bool = False,
                    on_module: OnModule | None = None) -> tuple[list[ModuleScore], str]:
    """Scores of ``targets`` by ``signal`` and a description of what was compared (stored as the
    plan's ``output``): the output choice for disagreement, ``hidden:cosine`` for representation,
    the loss for fisher, both joined by ``+`` for combined.

    ``config.trials`` is K for every signal (the number of folds for fisher); ``config.seed`` seeds
    the noise, and the fold assignment for fisher.
    """
    check_signal(signal)
    return SIGNALS[signal].score(model, probes, resolve_targets(model, targets), config or ScoreConfig(),
                                 progress=progress, on_module=on_module)


__all__ = ["SIGNALS", "Signal", "check_signal", "combined_scores", "fisher_scores", "register",
           "representation_config", "representation_scores", "score_by_signal"]
