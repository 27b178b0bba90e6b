"""Resumable scoring: finished modules are kept in a checkpoint written atomically after each one.

No random-generator state needs saving: every noise draw is seeded from (seed, module name, trial,
copy), so a module scored after a restart gets exactly the noise it would have got in one run, and
the resumed plan is identical to an uninterrupted one. What must match is everything else that
shapes a score; it is kept as a fingerprint, and a checkpoint with another fingerprint is refused
rather than mixed in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from .errors import AdaRankError
from .io import atomic_write_json
from .probes import ProbeBatch
from .scoring import ModuleScore, ScoreConfig
from .targets import Target

CHECKPOINT_NAME = ".adarank-checkpoint.json"
CHECKPOINT_VERSION = 1


def probe_digest(batch: ProbeBatch) -> str:
    h = hashlib.sha256()
    for key in sorted(batch.inputs):
        h.update(key.encode())
        h.update(batch.inputs[key].cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def fingerprint(model_name: str, targets: Sequence[Target], config: ScoreConfig, batch: ProbeBatch,
                dtype: str, device_type: str, signal: str = "disagreement") -> dict[str, Any]:
    return {
        "signal": signal,
        "model": model_name,
        "targets": [t.name for t in targets],
        "score_config": asdict(config),
        "probe_sha256": probe_digest(batch),
        "dtype": dtype,
        "device_type": device_type,
    }


class Checkpoint:
    """Per-module scores of an unfinished run, in ``folder/.adarank-checkpoint.json``."""

    def __init__(self, folder: str | Path, rank: int = 0, world: int = 1) -> None:
        name = CHECKPOINT_NAME if world == 1 else CHECKPOINT_NAME.replace(".json", f".rank{rank}-of-{world}.json")
        self.path = Path(folder) / name
        self.fingerprint: dict[str, Any] = {}
        self.scores: dict[str, list[float]] = {}

    def start(self, fp: dict[str, Any], resume: bool) -> dict[str, list[float]]:
        """Scores already done (empty when starting fresh); refuses a foreign checkpoint."""
        self.fingerprint = fp
        if resume and self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                raise AdaRankError(f"checkpoint '{self.path}' is unreadable; pass --no-resume to start fresh") from None
            theirs = data.get("fingerprint", {}) if isinstance(data, dict) else {}
            if data.get("version") != CHECKPOINT_VERSION or theirs != fp:
                differs = sorted(k for k in set(fp) | set(theirs) if fp.get(k) != theirs.get(k)) or ["version"]
                raise AdaRankError(
                    f"checkpoint '{self.path}' comes from a run with other settings (differs in: {', '.join(differs)}); "
                    "pass --no-resume to start fresh or use another --out"
                )
            self.scores = {k: [float(x) for x in v] for k, v in data.get("scores", {}).items()}
        else:
            self.scores = {}
            self._write()
        return dict(self.scores)

    def add(self, result: ModuleScore) -> None:
        self.scores[result.target.name] = list(result.scores)
        self._write()

    def _write(self) -> None:
        atomic_write_json(self.path, {"version": CHECKPOINT_VERSION, "fingerprint": self.fingerprint,
                                      "scores": self.scores})

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
