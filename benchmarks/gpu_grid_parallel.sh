#!/usr/bin/env bash
# The fine-tuning grid on every GPU of the machine: one benchmarks/gpu_grid.sh per GPU, packed once.
#   benchmarks/gpu_grid_parallel.sh MINUTES WORKERS_PER_GPU [EXTRA_METHOD ...]
# GPU 0 runs the uniform LR sweep and the core grid (both resume, so usually little is left), then its share
# of the extra methods; GPU i > 0 runs extra methods i, i+N, i+2N, ... (N = number of GPUs). Each instance
# stops starting work with a minute left. $OUT/grid.tar.gz and $OUT/card.txt are written on every exit,
# a killed call included, and each instance's log goes to $OUT/grid_gpu<i>.log.
set -euo pipefail
minutes=${1:-8}
workers=${2:-8}
extra=("${@:3}")
here=$(cd "$(dirname "$0")" && pwd)
gpus=$(nvidia-smi -L | grep -c '^GPU ')
pack() {
    tar czf "$OUT/grid.tar.gz" benchmarks/results/grid
    nvidia-smi --query-gpu=name --format=csv,noheader > "$OUT/card.txt"
}
trap pack EXIT
trap "exit 143" TERM INT
# model preparation once, before the instances start (they would race on the same folder)
GRID_SWEEP=0 GRID_CORE=0 GRID_PACK=0 "$here/gpu_grid.sh" "$minutes" 1
pids=()
for ((i = 0; i < gpus; i++)); do
    mine=()
    for ((j = i; j < ${#extra[@]}; j += gpus)); do mine+=("${extra[j]}"); done
    if ((i == 0)); then flags=(); else flags=(GRID_SWEEP=0 GRID_CORE=0); fi
    [ "$i" -gt 0 ] && [ ${#mine[@]} -eq 0 ] && continue
    env "${flags[@]}" GRID_PACK=0 CUDA_VISIBLE_DEVICES="$i" "$here/gpu_grid.sh" "$minutes" "$workers" "${mine[@]}" \
        > "$OUT/grid_gpu$i.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
grep -h "^grid:\|^timeout\|failed runs" "$OUT"/grid_gpu*.log || true
