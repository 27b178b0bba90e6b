"""RankPlan: the scores, the ranks and how they were made, as one JSON document.

A plan keeps the importance scores next to the ranks, so a new budget or rule is a re-allocation,
not a re-scoring, and so anyone can later see why a module got its rank.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, Sequence, get_args

from .allocation import Allocation, allocate_within_widths, budget_line, check_width_budget
from .allocation_inputs import UNITS, _check_clamps, _check_rank, _check_transform
from .cli_args import field_choices
from .errors import AdaRankError
from .io import atomic_write_json
from .peft_export import lora_config_from_plan
from .transforms import RULES, TRANSFORMS, choices_help
from .version import __version__
from .plan_checks import check_plan_dict

SCHEMA_VERSION = 1
Groups = Literal["type", "joint"]
GROUPS: tuple[str, ...] = get_args(Groups)


@dataclass
class ModuleEntry:
    """One target module: where it is, what it scored, and the rank it got (0 = no adapter)."""

    name: str
    type: str
    block: int | None
    shape: list[int]  # [d_out, d_in]
    scores: list[float]
    score_mean: float
    score_std: float
    rank: int
    aliases: list[str] = field(default_factory=list)

    @property
    def cost(self) -> int:
        return int(self.shape[0]) + int(self.shape[1])

    @property
    def width(self) -> int:
        """The highest rank a LoRA update of this module can have: min(d_out, d_in)."""
        return min(int(self.shape[0]), int(self.shape[1]))


def _no_cli(**metadata: Any) -> dict[str, Any]:
    """Metadata of a field that a plan records but no one sets (it is what the allocation produced)."""
    return {"cli": False, **metadata}


@dataclass
class Budget:
    """The allocation settings and what they produced; ``total`` and ``used`` are in ``unit``.

    This class is where every budget setting is declared: its help text (``metadata``, which the
    CLI turns into ``--rank``, ``--rule``, ...), its choices (read from the registries when asked,
    so a newly registered rule or transform is accepted everywhere at once) and its checks
    (:meth:`__post_init__`, the same ones :func:`adarank.allocation.allocate_ranks` makes).

    ``transform`` and ``power`` (see :func:`adarank.allocation.allocate_ranks`) have defaults that
    mean "plain proportional", so plans written before they existed load unchanged.
    ``max_rank_used`` is the largest rank the plan gives any module: servers such as vLLM size every
    adapter slot by it (``max_lora_rank``), so it, not r̄, sets a peaked plan's serving memory.
    ``capped`` maps
    each module whose share exceeded its width min(d_out, d_in) to that share; its rank is the
    width, and the rest of its group's budget went to the other modules
    (:func:`adarank.allocation.allocate_within_widths`).
    """

    rank: float = field(default=8, metadata={"help": "target average rank r̄ per module (a number > 0; fractional values such as 2.5 spend 2.5·M rank units)"})
    unit: Literal["ranks", "params"] = field(default="ranks", metadata={"help": "count the budget in rank units (sum r_i = r̄·M) or in LoRA parameters (sum r_i·(d_in+d_out) = uniform r̄'s count)"})
    rule: str = field(default="floor", metadata={"choices": lambda: RULES, "help": lambda: choices_help(RULES)})
    groups: Groups = field(default="type", metadata={"help": "type: each module type shares its own budget over the blocks; joint: all targets compete for one budget"})
    min_rank: int = field(default=0, metadata={"help": "smallest rank a module may get; 0 means a module may get no adapter"})
    max_rank: int | None = field(default=None, metadata={"help": "largest rank a module may get (default: no limit)"})
    total: float = field(default=0.0, metadata=_no_cli())
    used: float = field(default=0.0, metadata=_no_cli())
    transform: str = field(default="proportional", metadata={"choices": lambda: TRANSFORMS, "help": lambda: "what ranks are proportional to: " + choices_help(TRANSFORMS)})
    power: float = field(default=1.0, metadata={"help": "exponent for --transform power (> 0): above 1 concentrates ranks on the top modules, below 1 flattens them"})
    max_rank_used: int | None = field(default=None, metadata=_no_cli())
    capped: dict[str, int] = field(default_factory=dict, metadata=_no_cli())

    def __post_init__(self) -> None:
        _check_rank(self.rank)
        if self.unit not in UNITS:
            raise AdaRankError(f"unknown budget unit {self.unit!r}; use one of {', '.join(UNITS)}")
        if self.rule not in RULES:
            raise AdaRankError(f"unknown rounding rule {self.rule!r}; use one of {', '.join(RULES)}")
        if self.groups not in GROUPS:
            raise AdaRankError(f"groups must be 'type' or 'joint', got {self.groups!r}")
        _check_clamps(self.min_rank, self.max_rank)
        _check_transform(self.transform, self.power)

    @classmethod
    def settings(cls) -> tuple[str, ...]:
        """The fields a caller may set (the others record what the allocation produced)."""
        return tuple(f.name for f in fields(cls) if f.metadata.get("cli") is not False)

    @classmethod
    def choices(cls) -> dict[str, tuple[str, ...]]:
        """Each field with a fixed set of values -> those values, as registered right now."""
        return field_choices(cls)


#: the fields a plan file's budget may hold (plan_checks refuses others)
_BUDGET_FIELDS = tuple(f.name for f in fields(Budget))


def _versions() -> dict[str, str]:
    import peft
    import torch
    import transformers

    return {"adarank": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "python": platform.python_version()}


@dataclass
class RankPlan:
    """Everything ``adarank predict`` decided. Save with :meth:`save`, read with :meth:`load`."""

    model: str
    settings: dict[str, Any]
    modules: list[ModuleEntry]
    budget: Budget
    versions: dict[str, str] = field(default_factory=_versions)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    schema_version: int = SCHEMA_VERSION

    # ----------------------------------------------------------------- allocation
    @classmethod
    def allocate(cls, model: str, settings: dict[str, Any], modules: list[ModuleEntry], budget: Budget) -> "RankPlan":
        """Fill every module's rank and the budget's totals from the scores."""
        plan = cls(model=model, settings=settings, modules=modules, budget=budget)
        return plan.reallocate()

    def reallocate(self, **changes: Any) -> "RankPlan":
        """A copy with ranks re-derived from the stored scores under changed budget settings
        (``rank``, ``unit``, ``rule``, ``groups``, ``min_rank``, ``max_rank``, ``transform``, ``power``);
        no model needed. Changing ``transform`` to one other than ``"power"`` without giving ``power``
        resets ``power`` to 1 (the only value those transforms accept)."""
        unknown = set(changes) - set(Budget.settings())
        if unknown:
            raise AdaRankError(f"cannot change budget field(s) {sorted(unknown)}; "
                               f"use {', '.join(Budget.settings())}")
        chosen = TRANSFORMS.get(changes.get("transform", ""))
        if "transform" in changes and "power" not in changes and not (chosen and chosen.uses_power):
            changes = {**changes, "power": 1.0}
        budget = replace(self.budget, **changes)
        groups = [m.type for m in self.modules] if budget.groups == "type" else None
        check_width_budget(budget.rank, [m.width for m in self.modules], names=[m.name for m in self.modules],
                           unit=budget.unit, groups=groups, costs=[m.cost for m in self.modules],
                           min_rank=budget.min_rank if isinstance(budget.min_rank, int) else 0,
                           max_rank=budget.max_rank)
        alloc, wanted = allocate_within_widths(
            [m.score_mean for m in self.modules],
            budget.rank,
            widths=[m.width for m in self.modules],
            rule=budget.rule,
            unit=budget.unit,
            groups=groups,
            costs=[m.cost for m in self.modules],
            min_rank=budget.min_rank,
            max_rank=budget.max_rank,
            transform=budget.transform,
            power=budget.power,
        )
        modules = [replace(m, rank=int(r)) for m, r in zip(self.modules, alloc.ranks)]
        budget = replace(budget, total=float(alloc.total), used=float(alloc.used),
                         max_rank_used=max((int(r) for r in alloc.ranks), default=0),
                         capped={self.modules[i].name: share for i, share in wanted.items()})
        return replace(self, modules=modules, budget=budget)

    # ------------------------------------------------------------------ accessors
    @property
    def ranks(self) -> dict[str, int]:
        return {m.name: m.rank for m in self.modules}

    def budget_summary(self) -> str:
        b = self.budget
        alloc = Allocation(ranks=[m.rank for m in self.modules], total=b.total, used=int(b.used))
        groups = "one group per module type" if b.groups == "type" else "all modules jointly"
        transform = {"proportional": "", "power": f", scores ** {b.power:g}", "rank-order": ", rank-order scores"}
        capped = f"; {len(b.capped)} module(s) capped at their width" if b.capped else ""
        return (f"r̄={b.rank:g}, rule {b.rule}{transform.get(b.transform, f', {b.transform} scores')}, {groups}, {len(self.modules)} modules: "
                + budget_line(alloc, b.unit) + capped)

    def serving_line(self) -> str:
        """The largest rank next to uniform's, and why it matters when the adapter is served.

        vLLM and similar servers allocate every adapter slot at ``max_lora_rank``, so a plan whose
        largest rank is 14 at r̄ = 8 costs serving memory as if every module had rank 14.
        """
        largest = max(m.rank for m in self.modules)
        uniform = max(1, int(round(self.budget.rank)))
        line = f"largest rank {largest} (uniform: {uniform})"
        if largest > uniform:
            top = [m.name for m in self.modules if m.rank == largest]
            line += f" at {top[0]}" + (f" (+{len(top) - 1} more)" if len(top) > 1 else "")
            line += " — servers such as vLLM size adapter slots by max_lora_rank; cap with --max-rank"
        return line

    def table(self) -> str:
        """Module, score ± std, rank: the summary printed after ``adarank predict``."""
        width = max(len(m.name) for m in self.modules)
        lines = [f"{'module':<{width}}  {'score ± std':>21}  rank"]
        for m in self.modules:
            lines.append(f"{m.name:<{width}}  {m.score_mean:>10.4g} ± {m.score_std:<8.3g}  {m.rank:>4}")
        return "\n".join(lines)

    # ------------------------------------------------------------------------- io
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "plan") -> "RankPlan":
        if not isinstance(data, dict):
            raise AdaRankError(f"{source} is not a rank plan (expected a JSON object)")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise AdaRankError(
                f"{source} has schema_version {version!r}, this adarank reads version {SCHEMA_VERSION}; "
                "re-run `adarank predict` or use a matching adarank version"
            )
        check_plan_dict(data, source, _BUDGET_FIELDS, Budget.choices())
        try:
            modules = [ModuleEntry(**m) for m in data["modules"]]
            budget = Budget(**data["budget"])
            plan = cls(model=data["model"], settings=dict(data["settings"]), modules=modules, budget=budget,
                       versions=dict(data.get("versions", {})), created=data.get("created", ""),
                       schema_version=version)
        except (KeyError, TypeError) as exc:
            raise AdaRankError(f"{source} is not a valid rank plan ({exc}); re-run `adarank predict`") from None
        if not plan.modules:
            raise AdaRankError(f"{source} lists no modules; re-run `adarank predict`")
        if plan.budget.max_rank_used is None:  # a plan written before the field existed
            plan.budget.max_rank_used = max(m.rank for m in plan.modules)
        return plan

    def save(self, path: str | Path) -> Path:
        """Write atomically: a reader sees the old plan or the new one, never half of one."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "RankPlan":
        p = Path(path)
        try:
            if p.is_dir():
                for name in ("plan.json", "adarank_plan.json"):
                    if (p / name).is_file():
                        p = p / name
                        break
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AdaRankError(f"plan file '{p}' does not exist; give the plan.json that `adarank predict` wrote") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AdaRankError(f"cannot read plan file '{p}': {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AdaRankError(f"plan file '{p}' is not valid JSON ({exc.msg} at line {exc.lineno}); "
                               "it may be truncated: re-run `adarank predict`") from None
        except RecursionError:
            raise AdaRankError(f"plan file '{p}' nests JSON too deeply to be a rank plan; "
                               "give the plan.json that `adarank predict` wrote") from None
        return cls.from_dict(data, source=f"plan file '{p}'")

    # ----------------------------------------------------------------------- PEFT
    def to_lora_config(self, model: Any = None, *, lora_alpha: float | None = None, **lora_kwargs: Any):
        """A ``peft.LoraConfig`` with these ranks; see :func:`adarank.peft_export.lora_config_from_plan`."""
        check_plan_dict(self.to_dict(), "plan", _BUDGET_FIELDS, Budget.choices())  # a plan built or edited in Python gets the checks a file gets
        return lora_config_from_plan(self, model, lora_alpha=lora_alpha, **lora_kwargs)


def entries_from_scores(scores: Sequence[Any]) -> list[ModuleEntry]:
    """Plan entries (rank 0 until allocated) from :class:`adarank.scoring.ModuleScore` results."""
    return [
        ModuleEntry(name=s.target.name, type=s.target.type, block=s.target.block, shape=list(s.target.shape),
                    scores=[float(v) for v in s.scores], score_mean=s.mean, score_std=s.std, rank=0,
                    aliases=list(s.target.aliases))
        for s in scores
    ]
