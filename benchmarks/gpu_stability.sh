#!/usr/bin/env bash
# The stability study (benchmarks/stability.py, issue 6) on one GPU, the full study including N = 256:
#   benchmarks/gpu_stability.sh [SECONDS]   (default 300: the study stops there, cache kept, and is packed)
# Needs the carried .carry/minilm-fp16 and .carry/nltk_data. Results: benchmarks/results/stability-gpu/,
# packed to $OUT/stability-gpu.tar.gz on every exit; re-running resumes from the packed cache once extracted.
set -euo pipefail
export PYTHONPATH="$PWD/src" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
pack() {
    tar czf "$OUT/stability-gpu.tar.gz" benchmarks/results/stability-gpu
    nvidia-smi --query-gpu=name --format=csv,noheader > "$OUT/card.txt"
}
trap pack EXIT
trap "exit 143" TERM INT
python3 "$(dirname "$0")/prepare_minilm.py" /tmp/all-MiniLM-L6-v2
mkdir -p benchmarks/results/stability-gpu
timeout "${1:-300}" python3 benchmarks/stability.py --device cuda --model /tmp/all-MiniLM-L6-v2 \
    --data-dir .carry/nltk_data --out benchmarks/results/stability-gpu --budget-s 1e9 || echo "stability: stopped ($?)"
