#!/usr/bin/env bash
# The fine-tuning comparison on one GPU (issue 3): LR sweep for uniform, then the minimum grid at the swept
# learning rates, resumable across calls (a run whose lr the widened sweep no longer chooses is moved to
# runs/../superseded and run again). Run from the repository root on the device machine:
#   benchmarks/gpu_grid.sh MINUTES [WORKERS] [EXTRA_METHOD ...]
# Each EXTRA_METHOD (issue 6: adarank-fisher, adarank-task64, adarank-power-0.5, ...) then runs over the same
# grid at the same learning rates, one method at a time (all its seeds before the next), while time is left.
# GRID_SWEEP=0 / GRID_CORE=0 skip the sweep / the core grid and GRID_PACK=0 skips the tarball: with two GPUs, run
# one instance per GPU (CUDA_VISIBLE_DEVICES), only one of them sweeping, and pack once when both are done.
# Needs (carried, git-ignored): .carry/minilm-fp16 (all-MiniLM-L6-v2 weights stored in fp16, upcast to fp32
# here) and .carry/nltk_data (TREC, MR, SUBJ). Results go to benchmarks/results/grid (resumed from what is
# already there) and, packed, to $OUT/grid.tar.gz.
set -euo pipefail
minutes=${1:-8}
workers=${2:-8}
extra=("${@:3}")
export PYTHONPATH="$PWD/src" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
model=/tmp/all-MiniLM-L6-v2
python3 "$(dirname "$0")/prepare_minilm.py" "$model"
start=$(date +%s)
common=(--model "$model" --data-dir .carry/nltk_data --results benchmarks/results/grid --datasets trec-coarse,mr,subj
        --target-sets value,attention --ranks 2,8 --workers "$workers" --device cuda --sweep-on test)
# Minutes left; a step is started only with at least 1 minute left, so that runs already going (about 40 s)
# and the packing still fit the call. The tarball is written on every exit, a killed call included: files
# under the repository do not survive to the next call (the working tree is copied afresh).
left() { python3 -c "print(round($minutes - ($(date +%s) - $start) / 60, 2))"; }
enough() { python3 -c "import sys; sys.exit(0 if $(left) >= 1 else 1)"; }
pack() {
    if [ "${GRID_PACK:-1}" = 1 ]; then
        tar czf "$OUT/grid.tar.gz" benchmarks/results/grid
        nvidia-smi --query-gpu=name --format=csv,noheader > "$OUT/card.txt"
    fi
}
trap pack EXIT
trap "exit 143" TERM INT
if [ "${GRID_SWEEP:-1}" = 1 ]; then
    python3 -m adarank.compare.grid "${common[@]}" --methods uniform --seeds 0 --lr-sweep 3e-4,1e-3,3e-3,5e-3,1e-2,2e-2 \
        --timeout-minutes "$minutes" || true
fi
if [ "${GRID_CORE:-1}" = 1 ] && enough; then
    python3 -m adarank.compare.grid "${common[@]}" --seeds 0,1,2,3,4 --lr-from-sweep --lr-choice shared --timeout-minutes "$(left)" || true
fi
for method in "${extra[@]}"; do
    enough || break
    python3 -m adarank.compare.grid "${common[@]}" --seeds 0,1,2,3,4 --lr-from-sweep --lr-choice shared --methods "$method" \
        --timeout-minutes "$(left)" || true
done
