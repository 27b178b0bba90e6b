"""The pilot's settings, declared once: the CLI (:mod:`adarank.pilot.cli`) is generated from these fields.

Seeds and rates are comma-separated strings on the command line and in this class (so that the generated
parser stays one option per field); :attr:`PilotConfig.eval_seeds` and :attr:`PilotConfig.sweep_seed_list`
give them as integers, checked in ``__post_init__`` before anything is loaded or written.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..cli_args import split_list
from ..errors import AdaRankError

#: the demo's defaults: small enough for a few minutes on a CPU, large enough for the test to have seeds
DEMO_OVERRIDES: dict[str, Any] = {
    "current": "r=8,alpha=16,targets=query,value,lr=1e-3",
    "seeds": "0,1,2", "sweep_seeds": "100", "epochs": 2.0, "batch_size": 16, "max_length": 32,
    "lr_extend": 1, "arms": None, "drop_arms": "adarank-r1,uniform-r1",
}

#: fields that do not change what a run computes (a resumed pilot may change them freely)
VOLATILE = ("out", "force", "workers", "budget_minutes", "demo", "device")


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in split_list(str(text)))
    except ValueError:
        raise AdaRankError(f"--{what} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise AdaRankError(f"--{what} is empty")
    if any(v < 0 for v in values):
        raise AdaRankError(f"--{what} must be non-negative integers, got {text!r}")
    if len(set(values)) != len(values):
        raise AdaRankError(f"--{what} must be distinct, got {text!r}")
    return values


@dataclass
class PilotConfig:
    """What ``adarank pilot`` runs: the model, the data, the user's LoRA config and the test's settings."""

    model: str | None = field(default=None, metadata={"help": "model to fine-tune: hub id, folder or .gguf "
                              "(default: the packaged all-MiniLM-L6-v2)"})
    data: str | None = field(default=None, metadata={"help": "training data as `adarank compare` reads it: a "
                             ".jsonl/.csv/.tsv/.json file, hf:<id> or a built-in name"})
    test: str | None = field(default=None, metadata={"help": "test file for a local --data file (default: a "
                             "seeded share of --data is held out)"})
    task: str = field(default="classification", metadata={"help": "classification (a new head, accuracy) or "
                      "generation (causal-LM SFT, the dataset's metric)", "choices": ("classification", "generation")})
    data_dir: str | None = field(default=None, metadata={"help": "NLTK data directory for the built-in corpora"})
    current: str = field(default="r=16,alpha=32,targets=all-linear,lr=2e-4", metadata={
        "help": "your LoRA config: r=..,alpha=..,targets=..,lr=.. ; or a PEFT adapter_config.json ; or an "
                "axolotl YAML"})
    lr: float | None = field(default=None, metadata={"help": "your learning rate when --current is an "
                             "adapter_config.json without one (default: lr= of --current, else 2e-4)"})
    margin: float = field(default=1.0, metadata={"help": "non-inferiority margin in points of the metric "
                          "(1.0 = one accuracy point)"})
    alpha: float = field(default=0.05, metadata={"help": "one-sided level of each test in the fixed sequence"})
    seeds: str = field(default="0,1,2,3,4", metadata={"help": "evaluation seeds (comma-separated)"})
    sweep_seeds: str = field(default="100,101", metadata={"help": "learning-rate sweep seeds, disjoint from "
                             "--seeds; their validation scores are averaged"})
    lr_extend: int = field(default=2, metadata={"help": "how many more rates a sweep may try past an edge choice"})
    arms: str | None = field(default=None, metadata={"help": "add arms by name (uniform-r<k>[-<set>], "
                             "adarank-r<k>; sets: attention, mlp, all-linear, current)"})
    drop_arms: str | None = field(default=None, metadata={"help": "drop arms by name (the reference stays)"})
    epochs: float = field(default=2.0, metadata={"help": "training passes per run"})
    max_steps: int | None = field(default=None, metadata={"help": "cap on optimiser steps per run"})
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    max_length: int = field(default=64, metadata={"help": "tokens per example"})
    max_train: int | None = field(default=None, metadata={"help": "stratified subsample of the training split"})
    out: str = field(default="pilot", metadata={"help": "output folder (runs/, report.md, recommended/)"})
    workers: int = field(default=0, metadata={"help": "worker processes (0: runs in this process, one by one)"})
    budget_minutes: float | None = field(default=None, metadata={"help": "stop launching runs the remaining time "
                                         "cannot hold, and report what could be decided"})
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:1 or auto"})
    force: bool = field(default=False, metadata={"help": "start over in an --out made with other settings"})
    demo: bool = field(default=False, metadata={"help": "the packaged MiniLM on the packaged demo data, on CPU"})

    def __post_init__(self) -> None:
        if not (isinstance(self.margin, (int, float)) and math.isfinite(self.margin) and self.margin > 0):
            raise AdaRankError(f"--margin must be a finite number > 0 (points of the metric), got {self.margin!r}")
        if not (isinstance(self.alpha, (int, float)) and 0 < self.alpha < 0.5):
            raise AdaRankError(f"--alpha must lie in (0, 0.5), got {self.alpha!r}")
        evals, sweeps = _ints(self.seeds, "seeds"), _ints(self.sweep_seeds, "sweep-seeds")
        shared = sorted(set(evals) & set(sweeps))
        if shared:
            raise AdaRankError(f"--sweep-seeds must be disjoint from --seeds; both hold {shared}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise AdaRankError(f"--lr must be a finite number > 0, got {self.lr!r}")
        for name in ("lr_extend", "workers"):
            if getattr(self, name) < 0:
                raise AdaRankError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "max_length", "max_steps", "max_train"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise AdaRankError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if not (math.isfinite(self.epochs) and self.epochs > 0):
            raise AdaRankError(f"--epochs must be > 0, got {self.epochs}")
        if self.budget_minutes is not None and not (math.isfinite(self.budget_minutes) and self.budget_minutes > 0):
            raise AdaRankError(f"--budget-minutes must be > 0, got {self.budget_minutes}")
        if self.test is not None and self.data is None:
            raise AdaRankError("--test needs --data")
        if self.data is None and not self.demo:
            raise AdaRankError("give --data (training data), or --demo")

    @property
    def eval_seeds(self) -> tuple[int, ...]:
        return _ints(self.seeds, "seeds")

    @property
    def sweep_seed_list(self) -> tuple[int, ...]:
        return _ints(self.sweep_seeds, "sweep-seeds")

    def fingerprint(self) -> dict[str, Any]:
        """What a finished run depends on: a resumed pilot with other values would mix incomparable runs."""
        return {k: v for k, v in asdict(self).items() if k not in VOLATILE}
