"""Scored-plan variants: ``adarank-exact`` on a plan scored with another signal or other probes.

The paper's methods (``adarank-floor``, ``adarank-exact`` and the score transforms) all allocate from
one plan per target set, scored with the paper's signal (disagreement) on the built-in probe
sentences. The signal and probe variants change what is scored, not how ranks are derived from it, so each
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
from typing import Sequence

from ...errors import AdaRankError
from ...plan import RankPlan
from .registry import Method, PlanVariant, allocated, register

#: method -> the plan it allocates from
VARIANTS: dict[str, PlanVariant] = {
    "adarank-fisher": PlanVariant("fisher"),
    "adarank-representation": PlanVariant("representation"),
    "adarank-combined": PlanVariant("combined"),
    "adarank-task16": PlanVariant("disagreement", 16),
    "adarank-task64": PlanVariant("disagreement", 64),
    "adarank-task256": PlanVariant("disagreement", 256),
}
VARIANT_METHODS: tuple[str, ...] = tuple(VARIANTS)
#: The seed of the shuffle that picks task probes.
TASK_PROBE_SEED = 0


def _exact(scored: RankPlan, rank: int, seed: int, groups: str) -> RankPlan:
    return allocated(scored, rank, groups, "exact")


for _name, _variant in VARIANTS.items():
    register(Method(_name, f"adarank-exact on a plan scored with {_variant.describe()}", "plan", _exact,
                    source=f"adarank plan variant {_variant.name}", variant=_variant))


def sample_texts(texts: Sequence[str], n: int, seed: int = TASK_PROBE_SEED) -> list[str]:
    """The first ``n`` texts of one seeded shuffle: smaller samples are prefixes of larger ones."""
    if n < 1:
        raise AdaRankError(f"the number of task probe texts must be >= 1, got {n}")
    if len(texts) < n:
        raise AdaRankError(f"{n} task probe texts were asked for but the training split has only {len(texts)}")
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    return [texts[i] for i in order[:n]]
