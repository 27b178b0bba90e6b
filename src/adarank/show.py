"""``adarank show``: a plan, or an adapter folder with the plan that built it, checked shape by shape."""

from __future__ import annotations

import json
from pathlib import Path

from .audit import PLAN_BESIDE_ADAPTER, adapter_ranks, compare_shapes
from .errors import AdaRankError
from .plan import RankPlan


def show(path: str | Path) -> str:
    """The printable report; see :func:`show_report` for the shape check's verdict."""
    return show_report(path)[0]


def show_report(path: str | Path) -> tuple[str, list[str]]:
    """The report and the adapter's shape mismatches (empty for a plan, or an adapter that follows it)."""
    p = Path(path)
    try:
        exists = p.exists()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise AdaRankError(f"cannot read '{p}': {exc.strerror or exc}; give a plan.json, a plan folder or an adapter folder") from None
    if not exists:
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
    lines.append(f"serving: {plan.serving_line()}")
    problems: list[str] = []
    if adapter_dir is not None:
        actual = adapter_ranks(adapter_dir)
        if not actual:
            try:
                config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError) as exc:
                raise AdaRankError(f"'{adapter_dir / 'adapter_config.json'}' is unreadable ({exc}); "
                                   "save the adapter again") from None
            lines.append(f"adapter: no adapter_model.safetensors to check (config r={config.get('r')})")
        else:
            problems = compare_shapes(plan, actual)
            if problems:
                lines.append(f"adapter shapes: MISMATCH in {len(problems)} module(s)")
                lines.extend("  " + x for x in problems)
            else:
                lines.append(f"adapter shapes: match the plan ({len(actual)} LoRA modules)")
    return "\n".join(lines), problems
