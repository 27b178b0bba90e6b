"""``eva``: PEFT's EVA, which picks ranks from data at initialisation (``init_lora_weights="eva"``).
The trainer (:mod:`adarank.compare.train`) sets it up; here it is only registered."""

from __future__ import annotations

from .registry import Method, register

EVA = register(Method("eva", "PEFT EVA: ranks from data at initialisation", "self-allocating", core=True))
