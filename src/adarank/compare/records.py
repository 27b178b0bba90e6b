"""The results folder of a grid: where its records live and what its error log says.

The grid writes these and the report reads them, so they live here, apart from both.
"""

from __future__ import annotations

import json
from pathlib import Path

#: where each kind of learning-rate sweep lives under RESULTS (see --sweep-on)
SWEEP_DIRS = {"validation": "lr-sweep-validation", "test": "lr-sweep"}


def _jsonl(path: Path) -> list[dict]:
    """The JSON objects of a log written one per line; a torn or foreign line is skipped."""
    entries = []
    if not path.is_file():
        return entries
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _diverged(entries: list[dict]) -> set[str]:
    if not entries:
        return set()
    from .train import DIVERGED_MESSAGE  # train loads torch; only needed when there is a log to read

    return {str(e.get("key")) for e in entries if DIVERGED_MESSAGE in str(e.get("error", ""))}


def diverged_keys(errors: Path) -> set[str]:
    """Keys of runs whose training diverged (a non-finite loss), from ``errors.jsonl``."""
    return _diverged(_jsonl(errors))


def requested_keys(invocations: Path) -> set[str]:
    """Keys of the runs the grid calls logged in ``invocations.jsonl`` were asked to make (each call logs its
    ``keys`` before it starts any, and its edge extensions before it runs them); calls logged before the grid
    did so name none."""
    keys: set[str] = set()
    for entry in _jsonl(invocations):
        listed = entry.get("keys")
        if isinstance(listed, list):
            keys.update(str(k) for k in listed)
    return keys


def unfinished_keys(folder: Path) -> set[str]:
    """Keys of runs in the grid folder ``folder`` that have no record in ``folder/runs`` and did not diverge:
    runs that failed for another reason (out of memory, a crash; ``errors.jsonl``), and runs a grid call was
    asked for (``invocations.jsonl``) but never finished: stopped by its time limit, or killed with its machine.
    A retry that succeeded leaves its record; a diverged run is a result.

    A sweep with such a run has a rate it never scored, so its best rate is a best of fewer than asked."""
    entries = _jsonl(folder / "errors.jsonl")
    missing = ({str(e.get("key")) for e in entries} | requested_keys(folder / "invocations.jsonl")) - _diverged(entries)
    return {k for k in missing if not (folder / "runs" / f"{k}.json").is_file()}


def _parse_key(key: str, fields: int, tag: str, last: type) -> tuple | None:
    """(dataset slug, target set, r̄, method, fifth field) of a run key with ``fields`` ``__``-separated fields,
    ``rR`` third and ``tag`` opening the fifth, read as ``last`` (``lr`` of a sweep key as a float, ``s`` of an
    evaluation key as an int); None for any other key."""
    parts = key.split("__")
    if len(parts) != fields or not parts[2].startswith("r") or not parts[4].startswith(tag):
        return None
    try:
        return parts[0], parts[1], int(parts[2][1:]), parts[3], last(parts[4][len(tag):])
    except ValueError:
        return None


def parse_sweep_key(key: str) -> tuple[str, str, int, str, float] | None:
    """(dataset, target set, r̄, method, lr) of a sweep run key ``d__t__rR__m__lrX__sS``."""
    return _parse_key(key, 6, "lr", float)


def parse_run_key(key: str) -> tuple[str, str, int, str, int] | None:
    """(dataset slug, target set, r̄, method, seed) of an evaluation run key ``d__t__rR__m__sS``."""
    return _parse_key(key, 5, "s", int)
