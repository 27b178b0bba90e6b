"""adarank: per-module LoRA ranks from output disagreement under weight noise (AdaRank)."""

from .version import __version__
from .allocation import Allocation, allocate_ranks
from .audit import save_adapter
from .errors import AdaRankError
from .plan import Budget, ModuleEntry, RankPlan
from .predict import predict_ranks
from .probes import BUILTIN_SENTENCES, ProbeSet, load_probe_file, tokenize_probes
from .scoring import ModuleScore, ScoreConfig, score_modules
from .targets import Target, select_targets

__all__ = [
    "__version__", "AdaRankError", "Allocation", "Budget", "BUILTIN_SENTENCES", "ModuleEntry", "ModuleScore", "ProbeSet",
    "RankPlan", "ScoreConfig", "Target", "allocate_ranks", "load_probe_file", "predict_ranks", "save_adapter", "score_modules",
    "select_targets", "tokenize_probes",
]
