#!/usr/bin/env bash
# Issue 13, a check after the fact: did uniform LoRA's swept rate (3e-3) cost it the PP-attachment setting at r̄ = 8?
# Its validation scores at 3e-4 / 1e-3 / 3e-3 were 76.00 / 76.00 / 76.50 % (400 examples, one seed), and every
# method that beat it there ran at a lower rate. This runs uniform at 1e-3 and at 3e-3 on the evaluation seeds, with
# the GPU grid's data and training options, on the CPU (fp32: TrainConfig's bf16 autocast is CUDA-only), so that the
# two rates are compared on one device and seed by seed; the GPU's own 3e-3 runs are the third column.
#   SEEDS=0,1,2,3,4 RATES="1e-3 3e-3" benchmarks/pp_uniform_rate_check.sh     (repository root; ~8.3 min a run on 2 cores)
# On the GPU machine (benchmarks/gpu_background.sh runs it beside the grid): DEVICE=cuda, and bf16 autocast applies.
# Needs the fp32 Gemma 3 270M folder (adarank.gguf.materialize_gguf of the GGUF, /tmp/gemma-3-270m-fp32) and the NLTK
# corpora. Resumable: each rate has its own results folder under RESULTS (run records are named without the rate).
set -euo pipefail
model=${MODEL:-/tmp/gemma-3-270m-fp32}
data=${DATA_DIR:-../shared/datasets/nltk_data}
res=${RESULTS:-benchmarks/results/pp-rate-check-cpu}
for rate in ${RATES:-1e-3 3e-3}; do
    mkdir -p "$res/lr$rate/plans"
    cp -n benchmarks/results/decoder/plans/all-linear.json "$res/lr$rate/plans/"  # uniform needs no scores, the grid reads the plan
    python -m adarank.compare.grid --model "$model" --task generation --data-dir "$data" --results "$res/lr$rate" \
        --target-sets all-linear --ranks 8 --unit params --device "${DEVICE:-cpu}" --max-train 4000 --max-test 1000 --epochs 1 \
        --max-steps 100 --batch-size 32 --max-length 256 --max-new-tokens 256 --eval-batch-size 32 \
        --datasets ppattach --workers 1 --methods uniform --seeds "${SEEDS:-0,1,2,3,4}" --lr "$rate"
done
