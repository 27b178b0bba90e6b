"""``eva-ranks``: EVA's allocation without its initialisation, so that what EVA's ranks and what EVA's init
each bring can be told apart. The trainer computes EVA's SVD on the same batches as ``eva`` and keeps only
the ranks, starting from PEFT's default LoRA init like every plan method."""

from __future__ import annotations

from .registry import Method, register

EVA_RANKS = register(Method("eva-ranks", "EVA's ranks (same SVD, same batches) with PEFT's default LoRA init",
                            "self-allocating"))
