"""The audit trail: the plan that built an adapter is stored beside it and checked against its shapes."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import AdaRankError
from .plan import RankPlan
from .targets import matches_key

PLAN_BESIDE_ADAPTER = "adarank_plan.json"
_LORA_A = re.compile(r"^(?:base_model\.model\.)?(?P<name>.+)\.lora_A(?:\.[^.]+)?\.weight$")


def adapter_ranks(folder: Path) -> dict[str, int]:
    """Module name -> LoRA rank, read from the saved adapter's lora_A shapes (the truth on disk)."""
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        return {}
    from safetensors import SafetensorError, safe_open

    ranks: dict[str, int] = {}
    try:
        with safe_open(str(weights), framework="pt") as fh:
            for key in fh.keys():
                m = _LORA_A.match(key)
                if m:
                    ranks[m.group("name")] = int(fh.get_slice(key).get_shape()[0])
    except (SafetensorError, OSError) as exc:
        raise AdaRankError(f"'{weights}' is not a readable safetensors file ({str(exc).splitlines()[0]}); "
                           "it may be truncated: save the adapter again") from None
    return ranks


def compare_shapes(plan: RankPlan, actual: dict[str, int]) -> list[str]:
    """Mismatches between planned and actual ranks; module names may differ by a wrapper prefix."""
    problems = []
    used: set[str] = set()
    for m in plan.modules:
        hits = [n for n in actual if matches_key(n, m.name) or matches_key(m.name, n)]
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
        if not any(matches_key(extra, m.name) for m in plan.modules):
            problems.append(f"{extra}: adapted (rank {actual[extra]}) but not in the plan")
    return problems



def save_adapter(peft_model: Any, plan: RankPlan, path: str | Path) -> Path:
    """``peft_model.save_pretrained(path)`` plus the plan as ``adarank_plan.json`` beside
    ``adapter_config.json``, then a check that the saved LoRA shapes are the planned ranks.

    Everything is saved into a staging folder beside ``path`` and checked there, so an adapter that
    does not follow the plan leaves no files behind; the plan is moved into place last, so a folder
    that holds it holds a complete adapter.
    """
    folder = Path(path)
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.adarank-staging-", dir=folder.parent))
    try:
        peft_model.save_pretrained(stage)
        problems = compare_shapes(plan, adapter_ranks(stage))
        if problems:
            raise AdaRankError(f"the adapter for '{folder}' does not follow the plan: {problems[0]}"
                               + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                               + "; nothing was written: build the PEFT model from this plan's to_lora_config")
        plan.save(stage / PLAN_BESIDE_ADAPTER)
        folder.mkdir(exist_ok=True)
        _move_into(stage, folder, last=PLAN_BESIDE_ADAPTER)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return folder


def _move_into(src: Path, dest: Path, last: str) -> None:
    """Rename every entry of ``src`` into ``dest`` (merging sub-folders), the entry ``last`` at the end."""
    for entry in sorted(src.iterdir(), key=lambda e: e.name == last):
        target = dest / entry.name
        if entry.is_dir() and target.is_dir():
            _move_into(entry, target, last)
        else:
            os.replace(entry, target)
