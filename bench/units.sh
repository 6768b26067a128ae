#!/usr/bin/env bash
# bench/units.sh: what stacking documents into units buys (`[parallel] unit_rows`, issue 15).
#
# `ibc run` at 1 rank x 2 threads (`mpirun --bind-to none`) on a random-weight checkpoint at the
# SmolLM-135M shape, orders 1-3, all hidden states, 100 bins, with unit_rows = 1 (every
# document alone: one product per document and projection) against unit_rows = 1024 (the
# default), the two in turn, PAIRS times. Corpus: DOCS documents of LO..HI Zipf-like ids
# (defaults 128 of 32-128: short documents, such as preference pairs, where a product of one
# document has few rows). Prints each run's tokens/s (ibc's final progress line), each pair's
# ratio (1024 over 1) and their median.
#
#   usage: bench/units.sh [PAIRS] [DOCS] [LO] [HI]     (defaults 5 128 32 128; after `make`)
set -euo pipefail
cd "$(dirname "$0")/.."
IBC=$(realpath "${IBC_BIN:-bin/ibc}")
PAIRS=${1:-5} DOCS=${2:-128} LO=${3:-32} HI=${4:-128}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$IBC" random-checkpoint "$tmp/smol" --d 576 --layers 30 --heads 9 --kv-heads 3 --ff 1536 --vocab 49152 --seed 1 >/dev/null
python3 - "$tmp/docs.jsonl" "$DOCS" "$LO" "$HI" <<'PY'
import json, random, sys
path, n, lo, hi = sys.argv[1], *map(int, sys.argv[2:])
r = random.Random(3)
with open(path, 'w') as f:
    for _ in range(n):  # Zipf-like ids: labels repeat as on text
        f.write(json.dumps({"ids": [min(int(r.paretovariate(0.9)) - 1, 49151) for _ in range(r.randint(lo, hi))]}) + "\n")
PY
for u in 1 1024; do
  printf '[job]\nname = u\noutput = %s/unused\n[checkpoints]\nm = %s/smol\n[corpus]\nformat = jsonl-ids\npath = %s/docs.jsonl\n[estimator]\norders = 1,2,3\nbins = 100\n[parallel]\nunit_rows = %s\n' \
    "$tmp" "$tmp" "$tmp" "$u" >"$tmp/u$u.ini"
done
rate() { # UNIT_ROWS -> tokens/s
  rm -rf "$tmp/out"
  OMP_NUM_THREADS=2 mpirun --bind-to none -x OMP_NUM_THREADS -np 1 "$IBC" run "$tmp/u$1.ini" --results "$tmp/out" 2>&1 |
    grep -o '[0-9]* tokens/s' | tail -1 | cut -d' ' -f1
}
ratios=()
for p in $(seq "$PAIRS"); do
  a=$(rate 1) b=$(rate 1024)
  r=$(echo "$b / $a" | bc -l)
  ratios+=("$r")
  printf 'pair %d: unit_rows 1 %s tokens/s, unit_rows 1024 %s tokens/s, ratio %.2f\n' "$p" "$a" "$b" "$r"
done
printf '%s\n' "${ratios[@]}" | sort -g | awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
  printf "median ratio unit_rows 1024 / 1: %.2f over %d pairs\n", m, NR}'
