"""Checks on a plan read from JSON, before any of it is trusted.

A plan file may be hand-edited or written by another tool. Python's dataclasses take whatever they
are given, so without these checks a rank of ``-3``, ``2.5``, ``true``, ``"8"`` or ``10**9`` would be
printed by ``show`` and then dropped, truncated or crash deep inside PEFT. Each problem is reported
as one :class:`AdaRankError` that names the module and the field, so the user can fix that line.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .errors import AdaRankError

_MODULE_FIELDS: dict[str, str] = {
    "name": "a module name (string)", "type": "a module type (string)", "block": "a block index or null",
    "shape": "[d_out, d_in] (two positive integers)", "scores": "a list of numbers >= 0",
    "score_mean": "a number >= 0", "score_std": "a number >= 0", "rank": "a whole number >= 0",
}
_OPTIONAL_MODULE_FIELDS = {"aliases"}
_FIX = "fix that entry or re-run `adarank predict`"


def is_int(value: Any) -> bool:
    """A JSON whole number: ``True`` and ``2.0`` are not ranks, whatever Python's int() makes of them."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_plan_dict(data: Mapping[str, Any], source: str, budget_fields: Sequence[str],
                    budget_choices: Mapping[str, Sequence[Any]]) -> None:
    """Raise one clear :class:`AdaRankError` for the first thing in ``data`` that is not a valid plan.

    ``budget_fields`` and ``budget_choices`` come from :class:`adarank.plan.Budget` (its fields and
    the values each may take, read from the registries at the time of the call), so a rule or
    transform registered by a plugin is as valid in a plan file as a built-in one."""
    for key, what in (("model", str), ("settings", dict), ("modules", list), ("budget", dict)):
        if key not in data:
            raise AdaRankError(f"{source} is not a valid rank plan (no '{key}' field); {_FIX}")
        if not isinstance(data[key], what):
            raise AdaRankError(f"{source}: '{key}' must be a JSON {_json_name(what)}, got {_describe(data[key])}; {_FIX}")
    if not data["modules"]:
        raise AdaRankError(f"{source} lists no modules; re-run `adarank predict`")
    seen: dict[str, int] = {}
    for i, entry in enumerate(data["modules"]):
        for name in _check_module(entry, i, source):
            if name in seen:
                raise AdaRankError(f"{source}: module name '{name}' appears twice (entries {seen[name]} and {i}); "
                                   "each module may be listed once: remove the duplicate")
            seen[name] = i
    _check_budget(data["budget"], source, budget_fields, budget_choices)


def check_entry_rank(name: str, rank: Any, shape: Any, where: str) -> None:
    """A rank is a whole number from 0 to min(d_out, d_in): LoRA cannot use more than the module's width."""
    if not is_int(rank):
        raise AdaRankError(f"{where}: module '{name}' has rank {rank!r}; a rank must be a whole number >= 0, {_FIX}")
    if rank < 0:
        raise AdaRankError(f"{where}: module '{name}' has negative rank {rank}; {_FIX}")
    width = min(int(shape[0]), int(shape[1]))
    if rank > width:
        raise AdaRankError(f"{where}: module '{name}' has rank {rank}, above its width min(d_out, d_in) = {width}; "
                           f"a LoRA rank can be at most {width}, {_FIX}")


def _check_module(entry: Any, i: int, source: str) -> list[str]:
    """Check one module entry; return the names it claims (its name and aliases)."""
    if not isinstance(entry, dict):
        raise AdaRankError(f"{source}: module entry {i} must be a JSON object, got {_describe(entry)}; {_FIX}")
    label = f"module entry {i}" + (f" ('{entry['name']}')" if isinstance(entry.get("name"), str) else "")
    missing = [k for k in _MODULE_FIELDS if k not in entry]
    if missing:
        raise AdaRankError(f"{source}: {label} lacks {', '.join(missing)}; {_FIX}")
    unknown = sorted(set(entry) - set(_MODULE_FIELDS) - _OPTIONAL_MODULE_FIELDS)
    if unknown:
        raise AdaRankError(f"{source}: {label} has unknown field(s) {', '.join(unknown)}; remove them or {_FIX}")
    bad = _first_bad_field(entry)
    if bad is not None:
        raise AdaRankError(f"{source}: {label} field '{bad}' must be {_MODULE_FIELDS.get(bad, 'a list of strings')}, "
                           f"got {_describe(entry[bad])}; {_FIX}")
    check_entry_rank(entry["name"], entry["rank"], entry["shape"], source)
    return [entry["name"], *entry.get("aliases", [])]


def _first_bad_field(entry: dict[str, Any]) -> str | None:
    checks = {
        "name": lambda v: isinstance(v, str) and bool(v.strip()),
        "type": lambda v: isinstance(v, str),
        "block": lambda v: v is None or (is_int(v) and v >= 0),
        "shape": lambda v: isinstance(v, list) and len(v) == 2 and all(is_int(d) and d > 0 for d in v),
        "scores": lambda v: isinstance(v, list) and all(is_number(s) and s >= 0 for s in v),
        "score_mean": lambda v: is_number(v) and v >= 0,
        "score_std": lambda v: is_number(v) and v >= 0,
        "aliases": lambda v: isinstance(v, list) and all(isinstance(a, str) and a for a in v),
    }
    for key, ok in checks.items():
        if key in entry and not ok(entry[key]):
            return key
    return None


def _check_budget(budget: dict[str, Any], source: str, budget_fields: Sequence[str],
                  budget_choices: Mapping[str, Sequence[Any]]) -> None:
    known = set(budget_fields)
    unknown = sorted(set(budget) - known)
    if unknown:
        raise AdaRankError(f"{source}: budget has unknown field(s) {', '.join(unknown)}; {_FIX}")
    if "rank" not in budget:
        raise AdaRankError(f"{source}: budget has no 'rank' field; {_FIX}")
    if not is_number(budget["rank"]) or budget["rank"] <= 0:
        raise AdaRankError(f"{source}: budget rank must be a number > 0, got {_describe(budget['rank'])}; {_FIX}")
    for key, choices in budget_choices.items():
        if key in budget and budget[key] not in choices:
            raise AdaRankError(f"{source}: budget {key} must be one of {', '.join(map(str, choices))}, "
                               f"got {_describe(budget[key])}; {_FIX}")
    for key in ("min_rank", "max_rank"):
        value = budget.get(key)
        if value is not None and not (is_int(value) and value >= 0):
            raise AdaRankError(f"{source}: budget {key} must be a whole number >= 0"
                               f"{' or null' if key == 'max_rank' else ''}, got {_describe(value)}; {_FIX}")
    capped = budget.get("capped", {})
    if not isinstance(capped, dict) or not all(is_int(v) and v >= 0 for v in capped.values()):
        raise AdaRankError(f"{source}: budget capped must map module names to whole numbers, "
                           f"got {_describe(capped)}; {_FIX}")
    for key in ("total", "used", "power"):
        if key in budget and not is_number(budget[key]):
            raise AdaRankError(f"{source}: budget {key} must be a number, got {_describe(budget[key])}; {_FIX}")


def _json_name(kind: type) -> str:
    return {str: "string", dict: "object", list: "array"}[kind]


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
