"""Scored-plan variants: which AdaRank plan a benchmark method allocates its ranks from.

The paper's methods (``adarank-floor``, ``adarank-exact`` and the score transforms) all allocate from
one plan per target set, scored with the paper's signal (disagreement) on the built-in probe
sentences. The issue-6 variants change what is scored, not how ranks are derived from it, so each
is a plan of its own, allocated with the ``exact`` rule like ``adarank-exact``:

======================  ==================================================================
method                  plan it allocates from
======================  ==================================================================
adarank-fisher          signal ``fisher`` (gradient sensitivity), built-in probes
adarank-representation  signal ``representation`` (hidden-state change), built-in probes
adarank-combined        signal ``combined`` (mean normalised rank of disagreement, fisher)
adarank-task16/64/256   signal ``disagreement`` on 16, 64 or 256 texts of the task's own training split
======================  ==================================================================

A task-probe plan depends on the dataset as well as the target set. Its texts are the first N of
one seeded shuffle of the training split (never the test split), so smaller N are prefixes of
larger N and the same (dataset, N, seed) always gives the same probes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from ..errors import AdaRankError

#: method -> (signal, number of task texts or None for the built-in sentences)
VARIANT_METHODS: dict[str, tuple[str, int | None]] = {
    "adarank-fisher": ("fisher", None),
    "adarank-representation": ("representation", None),
    "adarank-combined": ("combined", None),
    "adarank-task16": ("disagreement", 16),
    "adarank-task64": ("disagreement", 64),
    "adarank-task256": ("disagreement", 256),
}
#: The seed of the shuffle that picks task probes.
TASK_PROBE_SEED = 0


@dataclass(frozen=True)
class PlanVariant:
    """What a scored plan was made from; ``name`` is its file-name suffix (empty for the paper's)."""

    signal: str = "disagreement"
    task_texts: int | None = None

    @property
    def name(self) -> str:
        parts = [] if self.signal == "disagreement" else [self.signal]
        if self.task_texts is not None:
            parts.append(f"task{self.task_texts}")
        return "__".join(parts)

    @property
    def per_dataset(self) -> bool:
        return self.task_texts is not None

    @classmethod
    def of_plan(cls, settings: dict) -> "PlanVariant":
        """What a scored plan's ``settings`` say it was made from. Plans written before signals
        existed carry no ``signal`` (they were scored with disagreement); a plan without
        ``task_texts`` was scored on the built-in (or the user's) probes."""
        return cls(settings.get("signal", "disagreement"), settings.get("task_texts"))

    def describe(self) -> str:
        probes = "built-in probes" if self.task_texts is None else f"{self.task_texts} task texts"
        return f"signal {self.signal!r} on {probes}"

    def file_stem(self, target_set: str, dataset: str | None = None) -> str:
        stem = target_set if not self.name else f"{target_set}__{self.name}"
        if self.per_dataset:
            if not dataset:
                raise AdaRankError(f"plan variant {self.name!r} is per dataset; name the dataset")
            stem += f"__{dataset}"
        return stem


def variant_of(method: str) -> PlanVariant:
    """The plan ``method`` allocates from (the paper's plan for every method not listed above)."""
    signal, n = VARIANT_METHODS.get(method, ("disagreement", None))
    return PlanVariant(signal, n)


def sample_texts(texts: Sequence[str], n: int, seed: int = TASK_PROBE_SEED) -> list[str]:
    """The first ``n`` texts of one seeded shuffle: smaller samples are prefixes of larger ones."""
    if n < 1:
        raise AdaRankError(f"the number of task probe texts must be >= 1, got {n}")
    if len(texts) < n:
        raise AdaRankError(f"{n} task probe texts were asked for but the training split has only {len(texts)}")
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    return [texts[i] for i in order[:n]]
