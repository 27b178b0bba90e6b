#!/usr/bin/env bash
# Re-run one setting of the grid at a fixed learning rate, every method, into its own results folder: the
# check for a setting whose swept rate made seeds collapse (issue 3: subj · attention · r̄=8 at 3e-3).
#   benchmarks/gpu_lr_check.sh MINUTES WORKERS DATASET TARGET_SET RANK LR [METHODS]
# METHODS defaults to the core methods and every issue-6 variant. The plans are copied from
# benchmarks/results/grid/plans, so every method uses the plan it used in the grid. Results go to
# benchmarks/results/lr-check/<dataset>__<target set>__r<rank>__lr<lr>/ and, packed, to $OUT/lr-check.tar.gz
# (written on every exit). Needs the carried .carry/minilm-fp16 and .carry/nltk_data, as gpu_grid.sh does.
set -euo pipefail
minutes=$1 workers=$2 dataset=$3 targets=$4 rank=$5 lr=$6
methods=${7:-uniform,adarank-floor,adarank-exact,random,linear-depth,eva,adalora,adarank-power-0.5,adarank-power-2,adarank-rank-order,adarank-fisher,adarank-representation,adarank-combined,adarank-task16,adarank-task64,adarank-task256}
export PYTHONPATH="$PWD/src" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
results=benchmarks/results/lr-check/${dataset}__${targets}__r${rank}__lr${lr}
pack() {
    tar czf "$OUT/lr-check.tar.gz" benchmarks/results/lr-check
    nvidia-smi --query-gpu=name --format=csv,noheader > "$OUT/card.txt"
}
trap pack EXIT
trap "exit 143" TERM INT
mkdir -p "$results/plans"
cp benchmarks/results/grid/plans/*.json "$results/plans/"
python3 "$(dirname "$0")/prepare_minilm.py" /tmp/all-MiniLM-L6-v2
python3 -m adarank.compare.grid --model /tmp/all-MiniLM-L6-v2 --data-dir .carry/nltk_data --results "$results" \
    --datasets "$dataset" --target-sets "$targets" --ranks "$rank" --methods "$methods" --seeds 0,1,2,3,4 \
    --lr "$lr" --workers "$workers" --device cuda --timeout-minutes "$minutes"
