"""The results folder of a grid: where its records live and what its error log says.

The grid writes these and the report reads them, so they live here, apart from both.
"""

from __future__ import annotations

import json
from pathlib import Path

#: where each kind of learning-rate sweep lives under RESULTS (see --sweep-on)
SWEEP_DIRS = {"validation": "lr-sweep-validation", "test": "lr-sweep"}


def diverged_keys(errors: Path) -> set[str]:
    """Keys of runs whose training diverged (a non-finite loss), from ``errors.jsonl``."""
    keys: set[str] = set()
    if not errors.is_file():
        return keys
    from .train import DIVERGED_MESSAGE  # train loads torch; only needed when there is a log to read

    for line in errors.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if DIVERGED_MESSAGE in str(entry.get("error", "")):
            keys.add(str(entry.get("key")))
    return keys
