"""The signal registry: every importance signal ``adarank predict --signal`` can use.

A signal is a name, a line of help and a scoring function. Everything that lists signals (the
CLI's choices and help, the error for an unknown one, :func:`adarank.predict.predict_ranks`) reads
:data:`SIGNALS`, so a new signal is one module that calls :func:`register`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from torch import nn

from ..registries import add_unique, lookup
from ..probes import ProbeBatch
from ..scoring import ModuleScore, ScoreConfig
from ..targets import Target, select_targets

OnModule = Callable[[ModuleScore], None]


class Scorer(Protocol):
    def __call__(self, model: nn.Module, probes: ProbeBatch, targets: list[Target], config: ScoreConfig, *,
                 progress: bool, on_module: OnModule | None) -> tuple[list[ModuleScore], str]:
        """Scores of ``targets`` (in their order) and a description of what was compared, stored as
        the plan's ``output``. ``on_module`` is called once per finished module."""
        ...


@dataclass(frozen=True)
class Signal:
    """One importance signal.

    ``per_module`` is False when a module's score depends on the other modules' (a rank among
    them): such a signal is always computed over the whole target list, so it is neither split
    over processes nor resumed module by module from a checkpoint.
    """

    name: str
    help: str
    score: Scorer
    per_module: bool = True


#: name -> signal, in the order they are listed (the first is the default)
SIGNALS: dict[str, Signal] = {}


def register(signal: Signal) -> Signal:
    """Add ``signal`` to :data:`SIGNALS`; a second signal of the same name is a bug, so it raises."""
    return add_unique(SIGNALS, signal, "signal")


def check_signal(signal: str) -> str:
    """The signal itself, or an AdaRankError naming the valid ones."""
    lookup(SIGNALS, signal, "signal")
    return signal


def resolve_targets(model: nn.Module, targets: Sequence[Target] | str | Sequence[str]) -> list[Target]:
    """``targets`` as :class:`Target` objects: patterns are resolved, Targets kept as they are."""
    if not isinstance(targets, (list, tuple)) or (targets and not isinstance(targets[0], Target)):
        return select_targets(model, targets)  # type: ignore[arg-type]
    return list(targets)
