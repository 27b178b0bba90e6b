"""The user's LoRA config (``--current``) and the cheaper configurations the pilot tests against it.

Cost is the number of LoRA parameters, sum_i r_i (d_in + d_out) over the adapted modules, then the largest
rank (what a server's ``--max-lora-rank`` must cover). Every arm keeps the current config's alpha / r for
every module, so an arm differs from the reference only in where its rank goes and how much of it there is,
never in the effective LoRA scale (which would otherwise act like a second learning rate).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AdaRankError
from ..peft_export import peft_pattern_key
from ..plan import Budget, ModuleEntry, RankPlan

#: arms the user may name in --arms / --drop-arms: uniform-r4, uniform-r4-attention, adarank-r2, ...
ARM_NAME = re.compile(r"^(uniform|adarank)-r([0-9]+)(?:-(attention|mlp|all-linear))?$")
ALPHA_CONVENTION = ("alpha / r is held at the current config's ratio for every arm and every module "
                    "(lora_alpha = ratio x r, alpha_pattern alpha_i = ratio x r_i), so no arm changes the LoRA scale")


@dataclass(frozen=True)
class CurrentConfig:
    """The user's LoRA configuration, whichever form it came in."""

    r: int
    lora_alpha: float
    targets: list[str] | str  # names / suffixes, "all-linear", or one regex (PEFT's forms)
    lr: float | None
    rank_pattern: dict[str, int] = field(default_factory=dict)
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    source: str = ""

    @property
    def ratio(self) -> float:
        return self.lora_alpha / self.r

    def describe(self) -> str:
        targets = self.targets if isinstance(self.targets, str) else ",".join(self.targets)
        extra = f", rank_pattern {len(self.rank_pattern)} keys" if self.rank_pattern else ""
        return f"r={self.r}, alpha={self.lora_alpha:g}, targets={targets}, lr={self.lr:g}{extra}" if self.lr else \
            f"r={self.r}, alpha={self.lora_alpha:g}, targets={targets}{extra}"


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise AdaRankError(f"--current: {what} must be an integer >= 1, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise AdaRankError(f"--current: {what} must be an integer >= 1, got {value!r}") from None
    if not number.is_integer() or number < 1:
        raise AdaRankError(f"--current: {what} must be an integer >= 1, got {value!r}")
    return int(number)


def _positive_float(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AdaRankError(f"--current: {what} must be a number > 0, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise AdaRankError(f"--current: {what} must be a number > 0, got {value!r}")
    return number


def _targets(value: Any) -> list[str] | str:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise AdaRankError("--current: targets is empty")
        if text.lower() in ("all-linear", "all_linear"):
            return "all-linear"
        if "," in text:
            return [t.strip() for t in text.split(",") if t.strip()]
        return [text] if re.fullmatch(r"[\w.]+", text) else text
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    raise AdaRankError(f"--current: target modules must be names, 'all-linear' or a regex, got {value!r}")


def parse_current(text: str, lr: float | None = None) -> CurrentConfig:
    """``r=16,alpha=32,targets=q_proj,v_proj,lr=2e-4``, a PEFT adapter_config.json, or an axolotl YAML."""
    path = Path(text)
    if path.suffix.lower() == ".json" or path.suffix.lower() in (".yaml", ".yml"):
        if not path.is_file():
            raise AdaRankError(f"--current: no such file '{text}'")
        raw = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise AdaRankError(f"--current: '{text}' is not valid JSON ({exc})") from None
            return _from_peft(data, text, lr)
        import yaml

        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise AdaRankError(f"--current: '{text}' is not valid YAML ({exc})") from None
        return _from_axolotl(data, text, lr)
    return _from_pairs(text, lr)


def _from_pairs(text: str, lr: float | None) -> CurrentConfig:
    values: dict[str, str] = {}
    key = None
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if "=" in token:
            key, _, value = token.partition("=")
            key = key.strip().lower()
            if key not in ("r", "alpha", "lora_alpha", "targets", "target_modules", "lr", "learning_rate"):
                raise AdaRankError(f"--current: unknown key {key!r}; use r=, alpha=, targets=, lr=")
            key = {"lora_alpha": "alpha", "target_modules": "targets", "learning_rate": "lr"}.get(key, key)
            values[key] = value.strip()
        elif key == "targets":  # targets=query,value: the names after the first run on until the next key
            values["targets"] += "," + token
        else:
            raise AdaRankError(f"--current: {token!r} is not key=value (expected r=16,alpha=32,targets=...,lr=...)")
    if "r" not in values:
        raise AdaRankError(f"--current: no r= in {text!r}")
    r = _positive_int(values["r"], "r")
    alpha = _positive_float(values.get("alpha", 2 * r), "alpha")
    chosen = _positive_float(values["lr"], "lr") if "lr" in values else lr
    return CurrentConfig(r, alpha, _targets(values.get("targets", "all-linear")), chosen, source=text)


def _from_peft(data: Any, where: str, lr: float | None) -> CurrentConfig:
    if not isinstance(data, dict) or "r" not in data:
        raise AdaRankError(f"--current: '{where}' is not a PEFT LoRA adapter_config.json (no 'r')")
    r = _positive_int(data["r"], "r")
    alpha = _positive_float(data.get("lora_alpha", 8), "lora_alpha")
    targets = data.get("target_modules")
    if targets is None:
        raise AdaRankError(f"--current: '{where}' has no target_modules")
    ranks = {str(k): _positive_int(v, f"rank_pattern[{k}]") for k, v in (data.get("rank_pattern") or {}).items()}
    alphas = {str(k): _positive_float(v, f"alpha_pattern[{k}]") for k, v in (data.get("alpha_pattern") or {}).items()}
    chosen = lr if lr is not None else (_positive_float(data["learning_rate"], "learning_rate")
                                        if "learning_rate" in data else None)
    return CurrentConfig(r, alpha, _targets(targets), chosen, ranks, alphas, source=where)


def _from_axolotl(data: Any, where: str, lr: float | None) -> CurrentConfig:
    if not isinstance(data, dict) or "lora_r" not in data:
        raise AdaRankError(f"--current: '{where}' is not an axolotl LoRA config (no lora_r)")
    r = _positive_int(data["lora_r"], "lora_r")
    alpha = _positive_float(data.get("lora_alpha", 2 * r), "lora_alpha")
    if data.get("lora_target_linear"):
        targets: Any = "all-linear"
    elif data.get("lora_target_modules"):
        targets = data["lora_target_modules"]
    else:
        raise AdaRankError(f"--current: '{where}' sets neither lora_target_modules nor lora_target_linear")
    ranks = {str(k): _positive_int(v, f"lora_rank_pattern[{k}]") for k, v in (data.get("lora_rank_pattern") or {}).items()}
    alphas = {str(k): _positive_float(v, f"lora_alpha_pattern[{k}]")
              for k, v in (data.get("lora_alpha_pattern") or {}).items()}
    chosen = _positive_float(data["learning_rate"], "learning_rate") if "learning_rate" in data else lr
    return CurrentConfig(r, alpha, _targets(targets), chosen, ranks, alphas, source=where)


# ---------------------------------------------------------------------------------------------- arms
@dataclass(frozen=True)
class Module:
    """One adaptable module of the base model (the names a scored plan and ``run_one`` use)."""

    name: str
    type: str
    block: int | None
    shape: tuple[int, int]  # (d_out, d_in)

    @property
    def cost(self) -> int:
        return int(self.shape[0]) + int(self.shape[1])

    @property
    def attention(self) -> bool:
        return "attn" in self.type.lower() or "attention" in self.type.lower()


@dataclass(frozen=True)
class Arm:
    """One configuration of the pilot: which modules get which rank, trained how."""

    name: str
    label: str
    method: str            # run_one's method: "uniform" (plain ranks) or "adarank-exact" (a scored plan)
    base_r: int            # the config's r (lora_alpha = ratio x base_r)
    ranks: dict[str, int]  # module -> rank (> 0), base-model names
    shapes: dict[str, tuple[int, int]]
    target_set: str        # "current", "attention", "mlp", "all-linear"
    fixed_lr: bool = False  # the current config at the user's own rate (not swept)

    @property
    def trainable_params(self) -> int:
        return sum(r * (self.shapes[n][0] + self.shapes[n][1]) for n, r in self.ranks.items())

    @property
    def max_rank(self) -> int:
        return max(self.ranks.values())

    def cost_key(self) -> tuple[int, int]:
        return (self.trainable_params, self.max_rank)

    def plan(self, model: str, ratio: float) -> RankPlan:
        """The ranks as a :class:`RankPlan` over exactly this arm's modules, for ``run_one``."""
        modules = [ModuleEntry(name=n, type=n.rsplit(".", 1)[-1], block=None, shape=list(self.shapes[n]),
                               scores=[1.0], score_mean=1.0, score_std=0.0, rank=int(r)) for n, r in self.ranks.items()]
        total = sum(self.ranks.values())
        budget = Budget(rank=self.base_r, unit="ranks", rule="exact", groups="joint", total=float(total),
                        used=float(total), max_rank_used=self.max_rank)
        return RankPlan(model=model, settings={"pilot_arm": self.name, "lora_alpha_ratio": ratio}, modules=modules,
                        budget=budget)


def model_modules(model: Any) -> list[Module]:
    """Every Linear / Conv1D in the block stack (``all-linear``), as the pilot counts them."""
    from ..targets import select_targets

    return [Module(t.name, t.type, t.block, tuple(t.shape)) for t in select_targets(model, "all-linear")]


def current_modules(model: Any, current: CurrentConfig) -> list[Module]:
    """The modules the current config adapts; a config that matches none, or only part, of it is refused."""
    from ..targets import select_targets

    try:
        found = select_targets(model, current.targets)
    except AdaRankError as exc:
        raise AdaRankError(f"--current targets do not match this model's modules: {exc}") from None
    for key in current.rank_pattern:
        if not any(peft_pattern_key([key], t.name) for t in found):
            raise AdaRankError(f"--current rank_pattern key {key!r} matches none of the targeted modules "
                               f"(e.g. {found[0].name})")
    return [Module(t.name, t.type, t.block, tuple(t.shape)) for t in found]


def current_ranks(current: CurrentConfig, modules: Sequence[Module]) -> dict[str, int]:
    """Each module's rank under the current config: its rank_pattern entry (PEFT's first match), else r."""
    keys = list(current.rank_pattern)
    ranks = {}
    for m in modules:
        key = peft_pattern_key(keys, m.name)
        ranks[m.name] = current.rank_pattern[key] if key is not None else current.r
    return ranks


def halvings(r: int) -> list[int]:
    """r/2, r/4, ... down to 1 (integer halving), the cheaper uniform budgets."""
    out, k = [], r // 2
    while k >= 1:
        out.append(k)
        k //= 2
    return out


def largest_rank_within(modules: Sequence[Module], params: int) -> int:
    """The largest uniform rank whose parameter count stays at or below ``params`` (0 if none)."""
    per_rank = sum(m.cost for m in modules)
    return params // per_rank if per_rank else 0


def target_sets(all_modules: Sequence[Module], current: Sequence[Module]) -> dict[str, list[Module]]:
    """The other target sets: attention-only and MLP-only where the model has both, and all-linear,
    each left out when it is the current set."""
    names = {m.name for m in current}
    sets = {"attention": [m for m in all_modules if m.attention], "mlp": [m for m in all_modules if not m.attention],
            "all-linear": list(all_modules)}
    return {k: v for k, v in sets.items() if v and {m.name for m in v} != names}


def uniform_arm(name: str, label: str, modules: Sequence[Module], r: int, target_set: str, method: str = "uniform",
                fixed_lr: bool = False) -> Arm:
    return Arm(name, label, method, r, {m.name: r for m in modules}, {m.name: m.shape for m in modules}, target_set,
               fixed_lr)


def adarank_arm(scored: RankPlan, r: int, params: int) -> Arm | None:
    """AdaRank's scored plan re-allocated to ``params`` parameters with the exact rule, joint budget (the
    uniform r-arm's count on the same modules); None if the rule leaves every module at rank 0."""
    plan = scored.reallocate(rank=r, unit="params", rule="exact", groups="joint", min_rank=0, max_rank=None,
                             transform="proportional", power=1.0)
    ranks = {m.name: m.rank for m in plan.modules if m.rank > 0}
    if not ranks:
        return None
    shapes = {m.name: (int(m.shape[0]), int(m.shape[1])) for m in plan.modules}
    arm = Arm(f"adarank-r{r}", f"AdaRank plan, budget of uniform r={r} (exact rule)", "adarank-exact", r, ranks,
              shapes, "current")
    if arm.trainable_params > params:  # a bug in the budget rule, not a user error
        raise RuntimeError(f"{arm.name}: {arm.trainable_params} parameters exceed the budget {params}")
    return arm


def build_arms(current: CurrentConfig, all_modules: Sequence[Module], cur_modules: Sequence[Module],
               scored: RankPlan | None, add: Sequence[str] = (), drop: Sequence[str] = ()) -> list[Arm]:
    """Every arm, most expensive first (parameters, then largest rank); the two current arms lead."""
    ranks = current_ranks(current, cur_modules)
    shapes = {m.name: m.shape for m in cur_modules}
    text = current.describe()
    arms = [Arm("current", f"current ({text}) at your rate", "uniform", current.r, ranks, shapes, "current", True),
            Arm("current-tuned", f"current ({text}) at its tuned rate", "uniform", current.r, ranks, shapes, "current")]
    budget = arms[0].trainable_params
    cheaper: list[Arm] = []
    for k in halvings(current.r):
        cheaper.append(uniform_arm(f"uniform-r{k}", f"uniform r={k}, current targets", cur_modules, k, "current"))
        if scored is not None:
            arm = adarank_arm(scored, k, sum(m.cost for m in cur_modules) * k)
            if arm is not None:
                cheaper.append(arm)
    sets = target_sets(all_modules, cur_modules)
    for set_name, modules in sets.items():
        k = min(largest_rank_within(modules, budget), min(min(m.shape) for m in modules))
        if k >= 1:
            cheaper.append(uniform_arm(f"uniform-r{k}-{set_name}", f"uniform r={k}, {set_name}", modules, k, set_name))
    for name in add:
        found = ARM_NAME.match(name)
        if not found:
            raise AdaRankError(f"--arms: unknown arm {name!r}; names look like uniform-r4, uniform-r2-mlp, adarank-r4")
        kind, k, set_name = found.group(1), int(found.group(2)), found.group(3)
        if any(a.name == name for a in arms + cheaper):
            continue
        if kind == "adarank":
            if set_name or scored is None:
                raise AdaRankError(f"--arms: {name!r}: AdaRank arms are on the current targets only (adarank-r<k>)")
            arm = adarank_arm(scored, k, sum(m.cost for m in cur_modules) * k)
            if arm is None:
                raise AdaRankError(f"--arms: {name!r} gives every module rank 0")
        else:
            modules = sets.get(set_name, cur_modules) if set_name else cur_modules
            if set_name and set_name not in sets:
                raise AdaRankError(f"--arms: {name!r}: this model has no other {set_name} target set")
            arm = uniform_arm(name, f"uniform r={k}, {set_name or 'current targets'}", modules, k, set_name or "current")
        cheaper.append(arm)
    known = {a.name for a in arms + cheaper}
    unknown = sorted(set(drop) - known)
    if unknown:
        raise AdaRankError(f"--drop-arms: no arm named {', '.join(unknown)}; the arms are {', '.join(sorted(known))}")
    if "current-tuned" in drop:
        raise AdaRankError("--drop-arms: current-tuned is the reference's candidate and stays")
    cheaper = [a for a in cheaper if a.name not in drop]
    arms = [a for a in arms if a.name not in drop]
    cheaper.sort(key=lambda a: (-a.trainable_params, -a.max_rank, a.name))
    return arms + cheaper
