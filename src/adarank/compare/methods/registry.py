"""The method registry: every rank-allocation method ``adarank compare`` can run.

A method is registered once, with what the grid, the trainer, the report and the decision rule need
to know about it; they all read :data:`REGISTRY` (or the name views below), so a new rival is one
module that calls :func:`register`.

Kinds:

``plan``
    ranks derived from the scores of an AdaRank-scored plan (its :attr:`Method.variant` says
    which plan: signal and probes); these are also the decision rule's default candidates.
``score-free``
    ranks from the scored plan's modules only (uniform, random, linear-depth): any plan will do.
``self-allocating``
    PEFT picks the ranks itself (EVA from data at initialisation, AdaLoRA during training);
    the trainer dispatches on the name and there is no ``plan_for``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Literal, overload

from ...errors import AdaRankError
from ...registries import add_unique
from ...plan import RankPlan

Kind = Literal["plan", "score-free", "self-allocating", "reference"]
KINDS: tuple[str, ...] = ("plan", "score-free", "self-allocating", "reference")
#: kinds without a plan: PEFT picks the ranks, or no LoRA is trained at all (references)
PLANLESS: tuple[str, ...] = ("self-allocating", "reference")
#: (scored plan, average rank, seed, groups) -> the plan with this method's ranks
PlanFor = Callable[[RankPlan, int, int, str], RankPlan]


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


@dataclass(frozen=True)
class Method:
    """One rank-allocation method.

    ``source`` is stored in each plan as ``settings["score_source"]`` (what the ranks were derived
    from). ``core`` methods are the grid's default list and come first in reports, in registration
    order; the others run when asked for by name and are reported after them, by name.
    """

    name: str
    help: str
    kind: Kind
    plan_for: PlanFor | None = None
    source: str = ""
    variant: PlanVariant = field(default_factory=PlanVariant)
    core: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"method {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if (self.plan_for is None) != (self.kind in PLANLESS):
            raise ValueError(f"method {self.name!r}: a {self.kind} method "
                             f"{'has no' if self.kind in PLANLESS else 'needs a'} plan_for")


#: name -> method, in registration order
REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    return add_unique(REGISTRY, method, "method")


def listed() -> list[Method]:
    """Every method in listing order: the core ones, then the others, each in registration order."""
    return [m for m in REGISTRY.values() if m.core] + [m for m in REGISTRY.values() if not m.core]


class Names(Sequence[str]):
    """A read-only tuple of the registered method names that ``keep`` accepts, in listing order.

    It is computed on every use, so a method registered later is in it too; it compares equal to
    the tuple of the same names.
    """

    def __init__(self, keep: Callable[[Method], bool]) -> None:
        self._keep = keep

    def _names(self) -> tuple[str, ...]:
        return tuple(m.name for m in listed() if self._keep(m))

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[str, ...]: ...
    def __getitem__(self, i: Any) -> Any:
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Names, tuple)):
            return self._names() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Sequence[str]) -> tuple[str, ...]:
        return self._names() + tuple(other)

    def __radd__(self, other: Sequence[str]) -> tuple[str, ...]:
        return tuple(other) + self._names()

    def __repr__(self) -> str:
        return repr(self._names())


def check_method(method: str) -> str:
    if method not in REGISTRY:
        raise AdaRankError(f"unknown method {method!r}; choose one of: {', '.join(m.name for m in listed())}")
    return method


def variant_of(method: str) -> PlanVariant:
    """The plan ``method`` allocates from (the paper's plan for a method that is not registered)."""
    found = REGISTRY.get(method)
    return found.variant if found is not None else PlanVariant()


# --------------------------------------------------------------------------- helpers for plan_for

def with_scores(plan: RankPlan, values: Sequence[float]) -> RankPlan:
    """A copy whose allocation scores are ``values`` (one value per module, no spread)."""
    modules = [replace(m, scores=[float(v)], score_mean=float(v), score_std=0.0)
               for m, v in zip(plan.modules, values)]
    return replace(plan, modules=modules)


def allocated(scored: RankPlan, rank: int, groups: str, rule: str, transform: str = "proportional",
              power: float = 1.0) -> RankPlan:
    """``scored`` re-allocated at ``rank`` with ``rule`` and ``transform``, keeping its unit and clamps,
    so that the methods share one budget definition; the transform is always set, so a method's name
    alone says how its ranks were derived, whatever the scored plan was made with."""
    return scored.reallocate(rank=rank, rule=rule, groups=groups, transform=transform, power=power)
