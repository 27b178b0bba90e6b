"""``adalora``: PEFT's AdaLoRA, which prunes ranks during training. The trainer
(:mod:`adarank.compare.train`) sets it up; here it is only registered."""

from __future__ import annotations

from .registry import Method, register

ADALORA = register(Method("adalora", "PEFT AdaLoRA: ranks pruned during training", "self-allocating", core=True))
