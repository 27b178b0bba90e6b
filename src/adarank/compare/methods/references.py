"""References that train no LoRA, so a reader can judge whether LoRA's capacity (and so its
allocation) can matter on a task: ``base-model`` (the pretrained model prompted, no training) and
``full-ft`` (every weight trained). The trainer (:mod:`adarank.compare.train`) implements them."""

from __future__ import annotations

from .registry import Method, register

BASE_MODEL = register(Method("base-model", "reference: the pretrained model evaluated without training", "reference"))
FULL_FT = register(Method("full-ft", "reference: full fine-tuning of every weight (no LoRA)", "reference"))
