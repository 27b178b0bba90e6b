"""Names of the floating-point types users may ask for (`--dtype`), shared by every loader."""

from __future__ import annotations

import torch

from .errors import AdaRankError

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def parse_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name.lower()]
    except KeyError:
        raise AdaRankError(f"unknown dtype '{name}'; use fp32, bf16 or fp16") from None
