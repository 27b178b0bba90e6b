#!/usr/bin/env bash
# The uniform learning-rate sweep scored on a validation split (10 % of each training set, stratified,
# seed 0) instead of the test split: does the published grid's test-split choice (benchmarks/gpu_grid.sh)
# survive? One grid per GPU, the target sets dealt out between them; all stop launching after MINUTES.
#   benchmarks/gpu_sweep_validation.sh MINUTES WORKERS
# Results: benchmarks/results/grid/lr-sweep-validation/, packed to $OUT/sweep-validation.tar.gz on every exit.
set -euo pipefail
minutes=${1:-3}
workers=${2:-14}
export PYTHONPATH="$PWD/src" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
pack() {
    tar czf "$OUT/sweep-validation.tar.gz" benchmarks/results/grid/lr-sweep-validation
    nvidia-smi --query-gpu=name --format=csv,noheader > "$OUT/card.txt"
}
trap pack EXIT
trap "exit 143" TERM INT
python3 "$(dirname "$0")/prepare_minilm.py" /tmp/all-MiniLM-L6-v2
gpus=$(nvidia-smi -L | grep -c '^GPU ')
sets=(value attention)
pids=()
for ((i = 0; i < gpus && i < ${#sets[@]}; i++)); do
    mine=$(for ((j = i; j < ${#sets[@]}; j += gpus)); do printf '%s,' "${sets[j]}"; done)
    CUDA_VISIBLE_DEVICES=$i python3 -m adarank.compare.grid --model /tmp/all-MiniLM-L6-v2 --data-dir .carry/nltk_data \
        --results benchmarks/results/grid --datasets trec-coarse,mr,subj --target-sets "${mine%,}" --ranks 2,8 \
        --methods uniform --seeds 0 --lr-sweep 3e-4,1e-3,3e-3,5e-3,1e-2,2e-2 --sweep-on validation \
        --workers "$workers" --device cuda --timeout-minutes "$minutes" > "$OUT/sweep_gpu$i.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
grep -h "^grid:" "$OUT"/sweep_gpu*.log || true
