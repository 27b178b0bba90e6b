"""adarank: per-module LoRA ranks from output disagreement under weight noise (AdaRank)."""

__version__ = "0.1.0"
