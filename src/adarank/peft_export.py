r"""From a plan to PEFT: ``LoraConfig``, ``adapter_config.json``-style JSON and a YAML snippet.

A plan's names are those of the model it was scored on (``encoder.layer.3.attention.self.value``),
but the config is often applied to a wrapper whose names carry a prefix (``bert.encoder...`` in
``AutoModelForSequenceClassification``, ``model.layers...`` in a causal LM). PEFT matches the two
parts of a config by different rules: a ``target_modules`` *list* entry hits any name that equals it
or ends with ``.``+entry, while ``rank_pattern`` / ``alpha_pattern`` keys are tried in order with
``re.match(rf"(.*\.)?({key})$", name)`` and a key that matches nothing is ignored. A list of names
beside anchored keys therefore selects every module of a wrapper at the default rank: uniform LoRA,
with only a warning.

So both parts are written with one rule, "the full planned name, on its own or after a ``.``":
every rank/alpha key is the escaped full name (PEFT's own ``(.*\.)?`` prefix supplies the
boundary), and ``target_modules`` is one regex, ``(?:.*\.)?(?:name|name|...)``, which PEFT
full-matches. On a model named as scored, or on any wrapper that only adds a prefix, each planned
module gets exactly its rank and nothing else is adapted; on a model whose names differ otherwise,
the regex selects nothing and PEFT refuses the config. Keys are ordered deepest name first, so a
name that is a ``.``-suffix of another planned name can never take that module's rank, and every
key is checked against the names it will meet before the config is returned.
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


def pattern_key(name: str) -> str:
    r"""The rank/alpha key of one module: its escaped full name (PEFT adds the ``(.*\.)?`` prefix)."""
    return re.escape(name)


def target_regex(names: Sequence[str]) -> str:
    """``target_modules`` as one regex: exactly these names, alone or under any ``.``-separated prefix."""
    return r"(?:.*\.)?(?:" + "|".join(re.escape(n) for n in names) + ")"


def peft_pattern_matches(key: str, module_name: str) -> bool:
    """PEFT's own rule for rank_pattern / alpha_pattern keys."""
    return re.match(rf"(.*\.)?({key})$", module_name) is not None


def peft_pattern_key(keys: Iterable[str], module_name: str) -> str | None:
    """The key PEFT uses for ``module_name``: the first in order that matches (``get_pattern_key``)."""
    return next((k for k in keys if peft_pattern_matches(k, module_name)), None)


def deepest_first(names: Sequence[str]) -> list[str]:
    """Names with more ``.``-parts first: a ``.``-suffix of a name then never comes before it."""
    return sorted(names, key=lambda n: -n.count("."))


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
    """The config's entries must adapt exactly ``targets`` among ``all_names``, each with its own key.

    Checked with PEFT's two rules: ``target_modules`` (one regex, full-matched) must select exactly
    the targets, and for each of them the first matching rank key (in the order written) must be its
    own. A failure means two module names overlap (one is a ``.``-suffix of the other) in a way no
    prefix-tolerant name can separate.
    """
    names = list(dict.fromkeys(all_names))
    keys = [pattern_key(t) for t in deepest_first(targets)]
    regex = re.compile(target_regex(targets))
    selected = {n for n in names if regex.fullmatch(n)}
    extra = sorted(selected - set(targets))
    if extra:
        planned = next(t for t in targets if matches_key(extra[0], t))
        raise AdaRankError(
            f"module '{extra[0]}' ends with the name of planned module '{planned}', so no PEFT pattern can adapt "
            "one without the other; adapt both (target both, with --min-rank 1) or neither"
        )
    for target in targets:
        if peft_pattern_key(keys, target) != pattern_key(target):
            raise AdaRankError(f"the rank key for '{target}' is shadowed by another planned module's key; "
                               "this is a bug in adarank, please report it")


def lora_config_from_plan(plan: "RankPlan", model: "nn.Module | None" = None, *,
                          lora_alpha: float | None = None, **lora_kwargs: Any) -> "LoraConfig":
    """A ``LoraConfig`` that gives every planned module its rank and leaves rank-0 modules out.

    ``r`` is the plan's average rank r̄ and ``lora_alpha`` defaults to 2·r̄; ``alpha_pattern`` sets
    α_i = lora_alpha·r_i/r̄ so that every module keeps the uniform baseline's scale α/r̄
    (α_i = lora_alpha·√(r_i/r̄) with ``use_rslora=True``, whose scale is α/√r; see :func:`module_alpha`).
    With ``model`` given, names are resolved against that model (see :func:`resolve_module_names`) and
    checked against all its module names; without it they are the scored model's own. Either way the
    keys and ``target_modules`` follow the module docstring's one rule, so the config gives the
    planned ranks on that model and on any wrapper that adds a prefix, and is refused by PEFT on a
    model whose names differ otherwise.
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
    by_depth = deepest_first([full for full, _ in active])
    ranks = dict(active)
    rslora = bool(lora_kwargs.get("use_rslora", False))
    rank_pattern = {pattern_key(full): int(ranks[full]) for full in by_depth}
    alpha_pattern = {pattern_key(full): _clean_number(module_alpha(alpha, ranks[full], base_r, rslora))
                     for full in by_depth}
    check_patterns([full for full, _ in active], all_names)
    for key in ("target_modules", "rank_pattern", "alpha_pattern", "r"):
        if key in lora_kwargs:
            raise AdaRankError(f"'{key}' comes from the plan; do not pass it to to_lora_config")
    return LoraConfig(r=base_r, lora_alpha=_clean_number(alpha), target_modules=target_regex([f for f, _ in active]),
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
            "# keys are full module names, matched alone or after a wrapper's prefix (bert., model.);\n"
            "# lora_target_modules is one regex of exactly the planned modules (rank-0 modules left out)\n")
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write_exports(plan: "RankPlan", out_dir: Any, config: "LoraConfig") -> None:
    """``lora_config.json`` (adapter_config style) and ``lora_patterns.yaml`` beside the plan."""
    from pathlib import Path

    out = Path(out_dir)
    atomic_write_json(out / "lora_config.json", config_to_json_dict(config))
    atomic_write_text(out / "lora_patterns.yaml", yaml_snippet(config, plan))
