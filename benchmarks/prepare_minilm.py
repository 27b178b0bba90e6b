"""Upcast the carried fp16 all-MiniLM-L6-v2 (.carry/minilm-fp16) to an fp32 folder on the device machine.

The 64 MiB transfer limit only lets the weights travel in fp16; every GPU benchmark fine-tunes and scores
this upcast copy (fp16 values in fp32 storage), so CPU and GPU results share one set of weights.
    python3 benchmarks/prepare_minilm.py [DST]   (default /tmp/all-MiniLM-L6-v2; a no-op when DST is ready)
"""

import shutil
import sys
from pathlib import Path

import torch
from transformers import AutoModel

src = Path(".carry/minilm-fp16")
dst = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/all-MiniLM-L6-v2")
if not (dst / "model.safetensors").exists():
    shutil.copytree(src, dst, dirs_exist_ok=True)
    AutoModel.from_pretrained(src, dtype=torch.float32).save_pretrained(dst)
print("model ready:", dst)
