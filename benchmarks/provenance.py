"""Where a benchmark number came from, stored in its own JSON: commit, date, command and card.

The first speed and multi-GPU results were committed without these, and had to be pieced together
afterwards from ``git log`` and the project's working notes (``benchmarks/results/*.provenance.md``). Every
script that writes a result file calls :func:`run_provenance` once at its start and merges the dict
into what it writes, so the file can be traced by itself.
"""

from __future__ import annotations

import datetime as _dt
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence


def launch_command(argv: Sequence[str] | None = None) -> str:
    """The command line as it can be typed again: ``python3 <script> <args>``, under ``torchrun`` with
    its process count when torchrun started this process (torchrun's own argv is not visible here)."""
    argv = list(sys.argv if argv is None else argv)
    command = shlex.join([Path(sys.executable).name, *argv])
    if os.environ.get("TORCHELASTIC_RUN_ID") is not None or os.environ.get("LOCAL_WORLD_SIZE"):
        command = f"torchrun --nproc-per-node {os.environ.get('LOCAL_WORLD_SIZE', '?')} " + shlex.join(argv)
    return command


def card() -> str:
    """The accelerator this process runs on (its current device), or ``cpu``."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def run_provenance(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``commit`` (of the checkout adarank runs from, see :func:`adarank.version.source_commit`), ``adarank``
    (its version), ``date``
    (UTC, when the run started), ``command``, ``card``, the cards visible and the torch version."""
    import torch

    from adarank.version import __version__, source_commit

    return {"commit": source_commit(), "adarank": __version__, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": launch_command(argv), "card": card(),
            "cards_visible": torch.cuda.device_count() if torch.cuda.is_available() else 0, "torch": torch.__version__}
