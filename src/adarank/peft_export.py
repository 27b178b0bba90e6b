"""From a plan to PEFT: ``LoraConfig``, ``adapter_config.json``-style JSON and a YAML snippet.

PEFT reads ``rank_pattern`` keys with ``re.match(rf"(.*\\.)?({key})$", name)``, so a bare key such as
``layer.1.attention.self.value`` can also hit a module under an unexpected prefix, and a key that
matches nothing is ignored: the module then trains at the default rank and the comparison silently
becomes uniform LoRA. Every key written here is therefore an anchored, escaped full module name,
and is checked against the names it will meet before the config is returned.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .errors import AdaRankError
from .io import atomic_write_json, atomic_write_text
from .targets import adaptable_modules, matches_key

if TYPE_CHECKING:
    from peft import LoraConfig
    from torch import nn

    from .plan import RankPlan


def anchored_key(name: str) -> str:
    return "^" + re.escape(name)


def peft_pattern_matches(key: str, module_name: str) -> bool:
    """PEFT's own rule for rank_pattern / alpha_pattern keys."""
    return re.match(rf"(.*\.)?({key})$", module_name) is not None


def resolve_module_names(plan_names: Sequence[str], model: "nn.Module") -> dict[str, str]:
    """Map each plan name to the one adaptable module of ``model`` it means.

    The plan may come from another wrapper of the same network: scored on ``AutoModel``
    (``encoder.layer.0...``) and applied to ``AutoModelForSequenceClassification``
    (``bert.encoder.layer.0...``), or the other way round. A name resolves when exactly one
    adaptable module's name equals it, ends with ``.``+name, or is a ``.``-suffix of it.
    """
    adaptable = [name for name, _ in adaptable_modules(model)[0]]
    resolved: dict[str, str] = {}
    for plan_name in plan_names:
        hits = [n for n in adaptable if matches_key(n, plan_name)]
        if not hits:
            hits = [n for n in adaptable if matches_key(plan_name, n)]
        if len(hits) != 1:
            what = "is missing from" if not hits else f"is ambiguous in ({', '.join(hits[:3])})"
            raise AdaRankError(
                f"plan module '{plan_name}' {what} the model it is applied to; "
                "apply the plan to the model it was scored on (or a wrapper of it), or re-run `adarank predict`"
            )
        resolved[plan_name] = hits[0]
    if len(set(resolved.values())) != len(resolved):
        raise AdaRankError("two plan modules resolve to the same module of the model; re-run `adarank predict` on this model")
    return resolved


def check_patterns(targets: Sequence[str], all_names: Iterable[str]) -> None:
    """Each target's pattern key and ``target_modules`` entry must select exactly that module.

    Both PEFT rules are checked: the regex rule of ``rank_pattern``/``alpha_pattern`` keys and the
    exact-or-suffix rule of a ``target_modules`` list.
    """
    names = list(all_names)
    for target in targets:
        key = anchored_key(target)
        by_key = [n for n in names if peft_pattern_matches(key, n)]
        by_list = [n for n in names if matches_key(n, target)]
        if by_key != [target] or by_list != [target]:
            raise AdaRankError(
                f"the PEFT entries for '{target}' would select {sorted(set(by_key + by_list)) or 'nothing'}; "
                "this is a bug in adarank, please report it"
            )


def lora_config_from_plan(plan: "RankPlan", model: "nn.Module | None" = None, *,
                          lora_alpha: float | None = None, **lora_kwargs: Any) -> "LoraConfig":
    """A ``LoraConfig`` that gives every planned module its rank and leaves rank-0 modules out.

    ``r`` is the plan's average rank r̄ and ``lora_alpha`` defaults to 2·r̄; ``alpha_pattern`` sets
    α_i = lora_alpha·r_i/r̄ so that every module keeps the uniform baseline's scale α/r̄
    (α_i = lora_alpha·√(r_i/r̄) with ``use_rslora=True``, whose scale is α/√r; see :func:`module_alpha`).
    With ``model`` given, names are resolved against that model (see :func:`resolve_module_names`) and
    ``target_modules`` is a list of full names. Without it the names are the scored model's own and
    ``target_modules`` is one anchored regex of them, so PEFT refuses (rather than half-applies) the
    config on a wrapper whose names differ.
    """
    from peft import LoraConfig

    base_r = max(1, int(round(plan.budget.rank)))
    alpha = float(lora_alpha) if lora_alpha is not None else 2.0 * base_r
    names = [m.name for m in plan.modules]
    if model is not None:
        mapping = resolve_module_names(names, model)
        all_names = [n for n, _ in model.named_modules() if n]
    else:
        mapping = {n: n for n in names}
        all_names = names + [a for m in plan.modules for a in m.aliases]
    active = [(mapping[m.name], m.rank) for m in plan.modules if m.rank > 0]
    if not active:
        raise AdaRankError("every module got rank 0, so there is nothing to adapt; raise --rank or set --min-rank 1")
    rank_pattern = {anchored_key(full): int(r) for full, r in active}
    rslora = bool(lora_kwargs.get("use_rslora", False))
    alpha_pattern = {anchored_key(full): _clean_number(module_alpha(alpha, r, base_r, rslora)) for full, r in active}
    check_patterns([full for full, _ in active], all_names)
    for key in ("target_modules", "rank_pattern", "alpha_pattern", "r"):
        if key in lora_kwargs:
            raise AdaRankError(f"'{key}' comes from the plan; do not pass it to to_lora_config")
    targets: list[str] | str = [full for full, _ in active]
    if model is None:
        # Unresolved names: a list would also suffix-match a wrapper's prefixed names (bert.encoder...)
        # while the anchored rank keys would not, silently giving every module rank r̄. One anchored
        # regex makes PEFT refuse such a model loudly instead.
        targets = "^(?:" + "|".join(re.escape(full) for full, _ in active) + ")$"
    return LoraConfig(r=base_r, lora_alpha=_clean_number(alpha), target_modules=targets,
                      rank_pattern=rank_pattern, alpha_pattern=alpha_pattern, **lora_kwargs)


def module_alpha(alpha: float, rank: int, base_rank: int, rslora: bool = False) -> float:
    """α_i that gives a rank-``rank`` module the uniform baseline's scale.

    PEFT scales a LoRA update by α/r, or by α/√r under ``use_rslora``; keeping α_i/r_i = α/r̄ (or
    α_i/√r_i = α/√r̄) means the plan changes how much each module can learn, not how loud it is.
    """
    ratio = rank / base_rank
    return alpha * (math.sqrt(ratio) if rslora else ratio)


def _clean_number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def config_to_json_dict(config: "LoraConfig") -> dict[str, Any]:
    """What ``LoraConfig.save_pretrained`` writes as ``adapter_config.json``, as plain JSON types."""
    data = config.to_dict()

    def plain(v: Any) -> Any:
        if isinstance(v, (set, frozenset)):
            return sorted(plain(x) for x in v)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if hasattr(v, "value") and not isinstance(v, (int, float, str, bool)):
            return v.value
        if v is None or isinstance(v, (int, float, str, bool)):
            return v
        return str(v)

    return plain(data)


def yaml_snippet(config: "LoraConfig", plan: "RankPlan") -> str:
    """Keys that training-config tools (axolotl-style ``lora_*``) pass through to PEFT."""
    import yaml

    data = {
        "lora_r": config.r,
        "lora_alpha": config.lora_alpha,
        "lora_target_modules": (config.target_modules if isinstance(config.target_modules, str)
                                else sorted(config.target_modules)),
        "lora_rank_pattern": dict(config.rank_pattern),
        "lora_alpha_pattern": dict(config.alpha_pattern),
    }
    head = (f"# adarank plan for {plan.model}\n# {plan.budget_summary()}\n"
            "# keys are anchored full module names; rank-0 modules are left out of lora_target_modules\n")
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write_exports(plan: "RankPlan", out_dir: Any, config: "LoraConfig") -> None:
    """``lora_config.json`` (adapter_config style) and ``lora_patterns.yaml`` beside the plan."""
    from pathlib import Path

    out = Path(out_dir)
    atomic_write_json(out / "lora_config.json", config_to_json_dict(config))
    atomic_write_text(out / "lora_patterns.yaml", yaml_snippet(config, plan))
