#!/usr/bin/env bash
# The decoder study's one-off checks (README.md beside this script), each on the materialised Gemma 3 270M folder
# (adarank.gguf.materialize_gguf of gemma-3-270m-q4_k_m.gguf) and an NLTK data folder. From the repository root:
#   experiments/decoder-checks/run.sh conll-format --model DIR --data-dir DIR --results DIR
#       CoNLL-2000 as bare tags (conll2000) or bracketed chunks (conll2000-brackets), uniform LoRA on the CPU:
#       60 steps x 8 at lr 3e-3 (r̄ = 8, all-linear, params budget), 2,000 training sentences, the first 48 test
#       sentences, seeds SEEDS (default 0; the published check ran 0 and 1), 10-30 min a run on 2 cores.
#   experiments/decoder-checks/run.sh pp-rate --model DIR --data-dir DIR --results DIR
#       uniform on PP attachment at r̄ = 8 at 1e-3 and 3e-3 (RATES) on seeds 0-4 (SEEDS) with the decoder grid's
#       options, on DEVICE (default cpu, fp32; cuda applies bf16 autocast); one results folder per rate.
#   experiments/decoder-checks/run.sh line-stop|loss-memory --model DIR --data-dir DIR --out FILE.json [OPTIONS]
#       python experiments/decoder-checks/line_stop_check.py / completion_loss_memory.py (see their --help).
# The plans are copied from PLANS (default: none; the grid then scores one) so that a check uses the study's plan:
# unpack experiments/decoder/records.jsonl.gz and pass PLANS=DIR/decoder/plans.
set -euo pipefail
check=${1:-}
shift || true
here=$(dirname "$0")
case $check in
line-stop) exec python "$here/line_stop_check.py" "$@" ;;
loss-memory) exec python "$here/completion_loss_memory.py" "$@" ;;
conll-format|pp-rate) ;;
*) echo "adarank: error: usage: experiments/decoder-checks/run.sh conll-format|pp-rate|line-stop|loss-memory ..." >&2
   exit 2 ;;
esac
model= data= res=
while [ $# -gt 0 ]; do
    case $1 in
        --model) model=$2; shift 2 ;;
        --data-dir) data=$2; shift 2 ;;
        --results) res=$2; shift 2 ;;
        *) echo "adarank: error: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -d "$model" ] && [ -d "$data" ] && [ -n "$res" ] \
    || { echo "adarank: error: $check needs --model DIR --data-dir DIR --results DIR (existing folders)" >&2; exit 2; }
export PYTHONPATH="$PWD/src" HF_HUB_OFFLINE=1
plans() { mkdir -p "$1/plans"; [ -z "${PLANS:-}" ] || cp -n "$PLANS"/all-linear.json "$1/plans/"; }
if [ "$check" = conll-format ]; then
    plans "$res"
    python -m adarank.compare.grid --model "$model" --task generation --data-dir "$data" \
        --results "$res" --target-sets all-linear --ranks 8 --unit params --device cpu --max-train 2000 --max-test 48 \
        --epochs 1 --max-steps 60 --batch-size 8 --max-length 512 --max-new-tokens 256 --eval-batch-size 16 \
        --datasets conll2000-brackets,conll2000 --methods uniform --seeds "${SEEDS:-0}" --lr 3e-3 --workers 1
else
    for rate in ${RATES:-1e-3 3e-3}; do
        plans "$res/lr$rate"
        python -m adarank.compare.grid --model "$model" --task generation --data-dir "$data" --results "$res/lr$rate" \
            --target-sets all-linear --ranks 8 --unit params --device "${DEVICE:-cpu}" --max-train 4000 --max-test 1000 \
            --epochs 1 --max-steps 100 --batch-size 32 --max-length 256 --max-new-tokens 256 --eval-batch-size 32 \
            --datasets ppattach --workers 1 --methods uniform --seeds "${SEEDS:-0,1,2,3,4}" --lr "$rate"
    done
fi
