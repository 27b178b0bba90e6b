"""``adarank show``: a plan, or an adapter folder with the plan that built it, checked shape by shape."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import AdaRankError
from .plan import RankPlan

PLAN_BESIDE_ADAPTER = "adarank_plan.json"
_LORA_A = re.compile(r"^(?:base_model\.model\.)?(?P<name>.+)\.lora_A(?:\.[^.]+)?\.weight$")


def adapter_ranks(folder: Path) -> dict[str, int]:
    """Module name -> LoRA rank, read from the saved adapter's lora_A shapes (the truth on disk)."""
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        return {}
    from safetensors import safe_open

    ranks: dict[str, int] = {}
    with safe_open(str(weights), framework="pt") as fh:
        for key in fh.keys():
            m = _LORA_A.match(key)
            if m:
                ranks[m.group("name")] = int(fh.get_slice(key).get_shape()[0])
    return ranks


def compare_shapes(plan: RankPlan, actual: dict[str, int]) -> list[str]:
    """Mismatches between planned and actual ranks; module names may differ by a wrapper prefix."""
    problems = []
    used: set[str] = set()
    for m in plan.modules:
        hits = [n for n in actual if n == m.name or n.endswith("." + m.name) or m.name.endswith("." + n)]
        if m.rank == 0:
            if hits:
                problems.append(f"{m.name}: planned rank 0 (no adapter) but the adapter has rank {actual[hits[0]]}")
            continue
        if len(hits) != 1:
            problems.append(f"{m.name}: planned rank {m.rank} but the adapter has {'no' if not hits else 'several'} LoRA weights for it")
            continue
        used.add(hits[0])
        if actual[hits[0]] != m.rank:
            problems.append(f"{m.name}: planned rank {m.rank}, adapter rank {actual[hits[0]]}")
    for extra in sorted(set(actual) - used):
        if not any(extra.endswith("." + m.name) or extra == m.name for m in plan.modules):
            problems.append(f"{extra}: adapted (rank {actual[extra]}) but not in the plan")
    return problems


def show(path: str | Path) -> str:
    p = Path(path)
    if not p.exists():
        raise AdaRankError(f"'{p}' does not exist; give a plan.json, a plan folder or an adapter folder")
    adapter_dir = p if p.is_dir() and (p / "adapter_config.json").is_file() else None
    if adapter_dir is not None and not (p / PLAN_BESIDE_ADAPTER).is_file():
        raise AdaRankError(f"adapter folder '{p}' holds no {PLAN_BESIDE_ADAPTER}; it was not built through adarank")
    plan = RankPlan.load(p / PLAN_BESIDE_ADAPTER if adapter_dir else p)
    lines = [f"model: {plan.model}", f"created: {plan.created}   versions: " +
             ", ".join(f"{k} {v}" for k, v in plan.versions.items())]
    lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in plan.settings.items()))
    lines.append(plan.table())
    lines.append(f"budget: {plan.budget_summary()}")
    if adapter_dir is not None:
        actual = adapter_ranks(adapter_dir)
        if not actual:
            config = json.loads((adapter_dir / "adapter_config.json").read_text())
            lines.append(f"adapter: no adapter_model.safetensors to check (config r={config.get('r')})")
        else:
            problems = compare_shapes(plan, actual)
            if problems:
                lines.append(f"adapter shapes: MISMATCH in {len(problems)} module(s)")
                lines.extend("  " + x for x in problems)
            else:
                lines.append(f"adapter shapes: match the plan ({len(actual)} LoRA modules)")
    return "\n".join(lines)
