#!/usr/bin/env bash
# Run benchmarks/gpu_decoder.sh across several device calls without stopping it at each call's end (issue 13).
# A call's processes end with it, except those in a new process session, which run on while the machine stays warm
# (30 s after a call). So the first call starts the grid with setsid from a private copy of the repository
# (/tmp/bgrepo: the repository folder is laid afresh at every call, and the grid's spawned workers import from it)
# and every call then waits, up to WAIT seconds, and packs what is done to $OUT/decoder.tar.gz. A grid stopped at a
# call's end leaves its slots idle for half a run on average; this one keeps them busy until its own MINUTES.
#   benchmarks/gpu_background.sh start MINUTES WORKERS RANKS   first call (after benchmarks/gpu_stage_piece.sh 6; the
#                                                             grid's environment: JOINT, DATASETS, ADARANK_COMMIT, ...)
#   benchmarks/gpu_background.sh wait                         later calls, back to back (WAIT, default 560 s)
# A wait call on a machine where no grid started (a fresh one: a gap over 30 s between calls gave the last one back,
# its /tmp and its grid with it) says so and exits 3, instead of reporting a finished grid.
# Seen on 2026-12-01 (CoNLL-2000, max length 512): 15 runs sharing one H200 filled 142 of its 143 GB and the grid
# re-queued 8 for memory; give CoNLL-2000 about 10 workers.
# PP_CHECK=1 also runs uniform at 1e-3 on PP attachment at r̄ = 8, seeds 0-4, on one GPU worker beside the grid
# (benchmarks/pp_uniform_rate_check.sh, results in /tmp/pp-check-gpu, packed to $OUT/pp-check-gpu.tar.gz).
set -uo pipefail
mode=${1:?start or wait}
res=${RESULTS:-/tmp/decoder-results}  # the grid's (gpu_decoder.sh reads RESULTS too)
bg=${BG_REPO:-/tmp/bgrepo}  # the private copy the grid runs from
log=${BG_LOG:-/tmp/bg-grid.log}  # the grid's output; its absence on a wait call means no grid ever ran here
running() { pgrep -f "benchmarks/gpu_decoder.sh" > /dev/null; }
if [ "$mode" = start ]; then
    shift
    running && { echo "a grid is already running"; exit 3; }
    rm -rf "$bg" && mkdir -p "$bg" && tar cf - --exclude='./.carry/p[0-9]' --exclude=./.git . | tar xf - -C "$bg"
    mkdir -p /tmp/bg-out
    # exec's redirections replace this subshell's descriptors outright: a redirection on the command itself would
    # leave a saved copy of the caller's stdout open in the grid, and a caller reading that pipe would wait for it
    ( cd "$bg" || exit 3; exec > "$log" 2>&1 < /dev/null
      OUT=/tmp/bg-out setsid nohup bash benchmarks/gpu_decoder.sh "$@" & )
    if [ "${PP_CHECK:-0}" = 1 ]; then
        ( cd "$bg" || exit 3; exec > /tmp/pp-check-gpu.log 2>&1 < /dev/null
          setsid nohup bash -c 'for i in $(seq 600); do [ -f /tmp/gemma-3-270m-fp32/config.json ] && break; sleep 2; done
            export PYTHONPATH="$PWD/src:/tmp/site" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
            DEVICE=cuda DATA_DIR=.carry/data/nltk_data RESULTS=/tmp/pp-check-gpu RATES=1e-3 \
                bash benchmarks/pp_uniform_rate_check.sh' & )
    fi
    sleep 5
elif [ ! -f "$log" ]; then
    # a machine left idle for 30 s is given back with its /tmp; the next call gets a bare one, where "finished"
    # would read as a grid that ran to its end
    echo "no grid was started on this machine: it is a fresh one (the last was given back, and its grid with it)."
    echo "Stage the pieces again (benchmarks/gpu_stage_piece.sh) and start, after copying the records packed so far"
    echo "into benchmarks/results/decoder (the working tree travels with every call; a fresh grid resumes from it)."
    exit 3
fi
wait_s=${WAIT:-560}
t0=$(date +%s)
while running && [ $(( $(date +%s) - t0 )) -lt "$wait_s" ]; do sleep 5; done
running && echo "grid still running" || echo "grid finished"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$res/card.txt" 2>/dev/null
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader 2>/dev/null | sed 's/^/GPU now: /'
tar czf "$OUT/decoder.tar.gz" -C "$(dirname "$res")" "$(basename "$res")" 2>/dev/null
[ -d /tmp/pp-check-gpu ] && tar czf "$OUT/pp-check-gpu.tar.gz" -C /tmp pp-check-gpu pp-check-gpu.log 2>/dev/null
cp "$log" "$OUT/bg-grid.log" 2>/dev/null
tail -40 "$res/log.txt" 2>/dev/null; tail -5 /tmp/pp-check-gpu.log 2>/dev/null
exit 0
