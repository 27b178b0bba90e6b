#!/usr/bin/env bash
# The decoder study (experiments/decoder/README.md): does AdaRank pay on a decoder LLM? Gemma 3 270M (Q4_K_M GGUF,
# dequantised), all-linear targets, budget in parameters, generation tasks scored by greedy decoding, every method at
# its own learning rate (validation sweep on seed 100, then seeds 0-4), plus two references (no training; full
# fine-tuning). From the repository root:
#   experiments/decoder/run.sh --gguf FILE --data-dir DIR [--tokenizer DIR] [--results DIR] MINUTES [WORKERS] [RANKS]
# FILE is gemma-3-270m-q4_k_m.gguf (its sha256 is checked), DIR an NLTK data folder (ppattach, treebank-style
# CoNLL-2000, TREC, SUBJ); --tokenizer a folder with Gemma 3's tokenizer saved by a transformers whose GGUF loader
# rebuilds it correctly (5.24 does; 5.17 rebuilds it character by character, which adarank refuses); --results the
# records folder (default ./decoder-results; to resume the published grid, unpack it there first:
# python experiments/archive.py unpack experiments/decoder/records.jsonl.gz DIR and pass DIR/decoder).
# Each sweep runs one more rate past every choice on an edge of its rates (EDGES rounds, default 2; 0 = off),
# and the evaluation then re-runs the seeds whose method's choice moved (grid.stale_runs).
# MINUTES bounds the whole run: the grid launches no run that its median run time says would end after it.
# LANES (default 2) grids run side by side, each with WORKERS/LANES workers and its share of DATASETS, each
# dataset sweep then evaluation: one lane's sweep fills the slots the other's evaluation leaves idle, and a run
# cut short leaves complete settings behind. JOINT=1 instead runs one grid over every dataset for the sweeps,
# then one for the evaluations, all WORKERS busy until each phase's tail. BATCH x STEPS (default 32 x 100) sets the
# training length.
# MAX_LENGTH (default 256) is the tokens per training example and per evaluation prompt plus its 256 decoded tokens;
# CoNLL-2000 takes MAX_LENGTH_CONLL (default 512: its completions run to 201 tokens), in grids of its own. CoNLL-2000
# runs as conll2000-brackets (the words bracketed by chunk): as bare tags (conll2000) its sweep scored F1 0-10 %.
# MAX_TEST (default 1000) caps the test sentences of an evaluation run; CoNLL-2000 takes MAX_TEST_CONLL (500), and
# decodes EVAL_BS_CONLL (128) prompts a batch where the others take EVAL_BS (32): a batch decodes until its longest
# completion ends, and fewer, larger batches cut those sequential steps.
# The references (REFERENCES=1: the base model, full fine-tuning swept then seeds 0-2) follow the evaluations.
# SIDE_DATASETS (default none) runs those datasets at r̄ = SIDE_RANKS (default 2) beside the lanes, with SIDE_WORKERS
# (default 4) of the WORKERS, per group of one length its sweep and then its evaluation, the groups in the order
# SIDE_DATASETS first names them (name CoNLL-2000, a group of its own, last). SIDE_TARGETS (default all-linear) gives
# the side lane its own target set, e.g. attention-proj (a decoder's q/k/v/o) at SIDE_RANKS=8.
# STABILITY=1 (default) runs benchmarks/stability.py on the same model beside the lanes.
# A check on a CPU: DEVICE=cpu MAX_TRAIN=40 MAX_TEST=8 STEPS=2 BATCH=2 METHODS=uniform,adarank-floor RATES=1e-3
# SEEDS=0 REFERENCES=0 STABILITY=0 experiments/decoder/run.sh --gguf FILE --data-dir DIR --results /tmp/x 30 2 8
set -uo pipefail
gguf= data= tok= res=decoder-results
while [ $# -gt 0 ]; do
    case $1 in
        --gguf) gguf=$2; shift 2 ;;
        --data-dir) data=$2; shift 2 ;;
        --tokenizer) tok=$2; shift 2 ;;
        --results) res=$2; shift 2 ;;
        --*) echo "adarank: error: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ -z "$gguf" ] || [ -z "$data" ] || [ $# -lt 1 ]; then
    echo "adarank: error: usage: experiments/decoder/run.sh --gguf FILE --data-dir DIR [--tokenizer DIR] [--results DIR] MINUTES [WORKERS] [RANKS]" >&2
    exit 2
fi
[ -f "$gguf" ] || { echo "adarank: error: no GGUF file at $gguf" >&2; exit 2; }
[ -d "$data" ] || { echo "adarank: error: no data folder at $data" >&2; exit 2; }
minutes=$1
workers=${2:-12}
ranks=${3:-8}
start=$(date +%s)
mkdir -p "$res"
log="$res/log.txt"
export PYTHONPATH="$PWD/src" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
note_card() {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$res/card.txt" 2>/dev/null
    git rev-parse HEAD > "$res/commit.txt" 2>/dev/null || true
}
trap note_card EXIT
trap "exit 143" TERM INT
left() { python3 -c "print(round($minutes - ($(date +%s) - $start) / 60, 2))"; }
enough() { python3 -c "import sys; sys.exit(0 if $(left) >= 1.5 else 1)"; }
say() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$log"; }

sum=$(sha256sum "$gguf" | cut -d' ' -f1)
if [ "$sum" != a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 ]; then
    say "sha256 mismatch: $sum is not the GGUF file the study used"; exit 3
fi
model=$res/model-fp32
if [ ! -f "$model/config.json" ]; then
    say "materialising $gguf -> $model (fp32${tok:+, tokenizer from $tok})"
    t0=$(date +%s.%N)
    python3 -c "from adarank.loading import materialize_gguf; materialize_gguf('$gguf', '$model', dtype='fp32', tokenizer=('$tok' or None))" 2>&1 | tail -3 | tee -a "$log"
    [ -f "$model/config.json" ] || { say "materialising failed"; exit 3; }
    say "materialised in $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s"
fi
common=(--model "$model" --task generation --data-dir "$data" --results "$res" --target-sets all-linear
        --ranks "$ranks" --unit params --device "${DEVICE:-cuda}" --max-train "${MAX_TRAIN:-4000}" --epochs 1
        --max-steps "${STEPS:-100}" --batch-size "${BATCH:-32}" --max-new-tokens 256)
methods=${METHODS:-uniform,adarank-floor,adarank-exact,linear-depth,adarank-fisher,eva,eva-ranks,adalora}
grid() { say "grid $*"; python3 -m adarank.compare.grid "${common[@]}" "$@" --timeout-minutes "$(left)" 2>&1 \
           | grep -v "^grid:.*it/s\]$" | tail -25 | tee -a "$log"; }
all=(${DATASETS:-ppattach trec-fine subj conll2000-brackets})
lanes=${LANES:-2}
[ "${JOINT:-0}" = 1 ] && lanes=1
per=$(( workers / lanes > 0 ? workers / lanes : 1 ))
# tokens per training example and per evaluation prompt plus its 256 decoded tokens: CoNLL-2000's completions run to
# 201 tokens, so it gets MAX_LENGTH_CONLL (512); a grid takes one length, so datasets are grouped by theirs
maxlen() { case $1 in conll2000*) echo "${MAX_LENGTH_CONLL:-512}" ;; *) echo "${MAX_LENGTH:-256}" ;; esac; }
# test sentences per evaluation: CoNLL-2000 decodes up to 201 tokens per prompt, so it takes MAX_TEST_CONLL (500
# sentences, about 12,000 tagged tokens) to keep an evaluation run near the others' length
maxtest() { case $1 in conll2000*) echo "${MAX_TEST_CONLL:-500}" ;; *) echo "${MAX_TEST:-1000}" ;; esac; }
# CoNLL-2000's decoding (up to 201 tokens a prompt) is most of its run time and bound by per-step latency, not by the
# batch: EVAL_BS_CONLL (128) prompts a batch cuts its sequential steps
evalbs() { case $1 in conll2000*) echo "${EVAL_BS_CONLL:-128}" ;; *) echo "${EVAL_BS:-32}" ;; esac; }
groups() {  # "LENGTH TEST EVALBATCH DS1,DS2,..." per length, test size and evaluation batch, in first-seen order
    local -A by=() ; local order=() ds k
    for ds in "$@"; do
        k="$(maxlen "$ds") $(maxtest "$ds") $(evalbs "$ds")"
        if [ -n "${by[$k]:-}" ]; then by[$k]+=",$ds"; else by[$k]=$ds; order+=("$k"); fi
    done
    for k in "${order[@]}"; do echo "$k ${by[$k]}"; done
}
# sweep/evaluate LENGTH TEST EVALBATCH DATASETS [GRID OPTIONS...]: later options win (the side lane's --ranks, --workers)
sweep() { local n=$1 t=$2 e=$3 list=$4; shift 4
          grid --datasets "$list" --max-length "$n" --max-test "$t" --eval-batch-size "$e" --workers "$per" \
            --methods "$methods" --seeds 100 \
            --lr-sweep "${RATES:-3e-4,1e-3,3e-3,1e-2}" --extend-edges "${EDGES:-2}" "$@"; }
evaluate() { local n=$1 t=$2 e=$3 list=$4; shift 4
             grid --datasets "$list" --max-length "$n" --max-test "$t" --eval-batch-size "$e" --workers "$per" \
               --methods "$methods" \
               --seeds "${SEEDS:-0,1,2,3,4}" --lr-from-sweep "$@"; }
references() {  # references WORKERS, one setting per task: the base model prompted, and full fine-tuning at a swept rate
    local n t e list ref sets=() g
    [ "${REFERENCES:-1}" = 1 ] || return 0
    mapfile -t sets < <(groups "${all[@]}")
    for g in "${sets[@]}"; do
        read -r n t e list <<< "$g"
        ref=(--datasets "$list" --max-length "$n" --max-test "$t" --eval-batch-size "$e" --workers "$1")
        enough && grid "${ref[@]}" --methods base-model --seeds 0 --lr 1e-3
        enough && grid "${ref[@]}" --methods full-ft --seeds 100 --lr-sweep 1e-5,3e-5,1e-4 --extend-edges "${EDGES:-2}"
        enough && grid "${ref[@]}" --methods full-ft --seeds 0,1,2 --lr-from-sweep
    done
}
lane() {  # lane I: datasets I, I+LANES, ... one after another; JOINT=1: one lane, every sweep and then every evaluation
    local i=$1 k ds sets=()
    if [ "${JOINT:-0}" = 1 ]; then
        mapfile -t sets < <(groups "${all[@]}")
        for g in "${sets[@]}"; do enough && sweep $g; done
        for g in "${sets[@]}"; do enough && evaluate $g; done
        references "$per"
        return
    fi
    for ((k = i; k < ${#all[@]}; k += lanes)); do
        ds=${all[$k]}
        enough || break
        sweep "$(maxlen "$ds")" "$(maxtest "$ds")" "$(evalbs "$ds")" "$ds"
        enough || break
        evaluate "$(maxlen "$ds")" "$(maxtest "$ds")" "$(evalbs "$ds")" "$ds"
    done
}
side() {  # SIDE_DATASETS at r̄ = SIDE_RANKS with SIDE_WORKERS workers, beside the lanes: per group of one length,
          # its sweep and then its evaluation, so that a run cut short leaves the short tasks' settings complete
          # (all sweeps first would leave TREC fine's evaluation waiting behind CoNLL-2000's 12-minute sweep)
    local sets=() g
    mapfile -t sets < <(groups "${side_sets[@]}")
    for g in "${sets[@]}"; do
        enough && sweep $g --ranks "$side_ranks" --workers "$side_workers" --target-sets "$side_targets"
        enough && evaluate $g --ranks "$side_ranks" --workers "$side_workers" --target-sets "$side_targets"
    done
}
side_sets=(${SIDE_DATASETS:-})
side_ranks=${SIDE_RANKS:-2}
side_targets=${SIDE_TARGETS:-all-linear}
side_workers=0
if [ ${#side_sets[@]} -gt 0 ]; then
    side_workers=${SIDE_WORKERS:-4}
    per=$(( (workers - side_workers) / lanes > 0 ? (workers - side_workers) / lanes : 1 ))
fi
# the plans are scored once, before the lanes start (two lanes would both score them), with the grid's own options
plans() {  # plans RANKS DATASET [GRID OPTIONS...]
    local r=$1 ds=$2; shift 2
    say "plans for $methods at r̄ = $r ($ds $*)"
    python3 - "${common[@]}" --ranks "$r" --datasets "$ds" --max-length "$(maxlen "$ds")" --methods "$methods" "$@" <<'PY' 2>&1 | tee -a "$log"
import sys
from adarank.compare.grid import build_parser, ensure_plans, options_from_args
ensure_plans(options_from_args(build_parser().parse_args(sys.argv[1:])))
PY
}
plans "$ranks" "${all[0]}"
[ ${#side_sets[@]} -gt 0 ] && plans "$side_ranks" "${side_sets[0]}" --target-sets "$side_targets"
pids=()
for ((i = 0; i < lanes; i++)); do lane "$i" & pids+=($!); done
[ ${#side_sets[@]} -gt 0 ] && { side & pids+=($!); }
# beside the lanes, one process: the stability of the disagreement scores on this model (seeds 0-2 at K = 5;
# K = 1, 2, 5 against K = 10 of seeds 0 and 100; built-in sentences against 16 training texts of TREC, MR and
# SUBJ), cached per configuration under $res/stability, so that it resumes where a run stopped
if [ "${STABILITY:-1}" = 1 ] && [ ! -f "$res/stability/stability.json" ]; then
    ( timeout "$(python3 -c "print(max(1, int(($(left) - 1) * 60)))")" python3 benchmarks/stability.py --device cuda \
        --model "$model" --data-dir "$data" --out "$res/stability" --seeds 0 1 2 --ks 1 2 5 --k-ref 10 \
        --n 16 --small-n --extra-n > "$res/stability.log" 2>&1 || say "stability: stopped ($?), cache kept" ) &
    pids+=($!)
fi
wait "${pids[@]}"
[ "${JOINT:-0}" = 1 ] || references "$workers"
say "done after $(left) min left"
