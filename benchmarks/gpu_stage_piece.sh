#!/usr/bin/env bash
# Stage one piece of a file too large for one transfer to the GPU machine (issue 13: the Gemma 3 270M GGUF,
# 253,113,024 B, is larger than the 64 MiB a call may carry). Files under /tmp survive between calls while the
# machine stays warm (30 s after a call), the repository folder does not, so each piece travels in its own
# git-ignored folder in its own call and is copied to /tmp/stage/ here. benchmarks/prepare_decoder_carry.sh lays
# the pieces out in .carry/p0..pN (as large as lets every call fit: the working tree travels with every call too)
# and adds up what each call carries. Then one device call per piece, back to back: carry [".carry/pI"], command
# `benchmarks/gpu_stage_piece.sh I`; the last piece travels with the call that runs benchmarks/gpu_decoder.sh,
# which joins the pieces and checks the sha256 before anything uses it.
set -euo pipefail
i=${1:?piece number}
mkdir -p /tmp/stage
cp ".carry/p$i/gemma.part$i" /tmp/stage/
ls -l /tmp/stage
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
