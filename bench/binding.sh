#!/usr/bin/env bash
# Binding (issue 15 point 1): `ibc run` with 1 rank x 2 threads under plain `mpirun -np 1`
# against the same under `mpirun -np 1 --bind-to none`, on a SmolLM-135M-shaped random
# checkpoint (d 576, 30 layers, 9 heads, 3 kv heads, F 1536, vocab 49152), DOCS documents of
# 512 random ids, orders 1-3. The two commands run in turn (A B A B ...), PAIRS times, timed
# whole-process by /usr/bin/time; prints every pair's wall seconds and the ratio of the
# medians (B/A: the plain run's rate over the unbound one's; 1.0 = binding costs nothing).
#   bash bench/binding.sh [PAIRS] [DOCS]        (from the repository root, after `make`)
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-5} DOCS=${2:-2}
IBC=$(realpath "${IBC_BIN:-bin/ibc}")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$IBC" random-checkpoint "$dir/smol" --d 576 --layers 30 --heads 9 --kv-heads 3 --ff 1536 --vocab 49152 --seed 1
/usr/bin/python3 -c "
import json, random
r = random.Random(5)
for _ in range($DOCS): print(json.dumps({'ids': [r.randrange(49152) for _ in range(512)]}))" >"$dir/docs.jsonl"
printf '[job]\nname = smol\noutput = %s/out\n[checkpoints]\nsmol = %s/smol\n[corpus]\nformat = jsonl-ids\npath = %s/docs.jsonl\n[estimator]\norders = 1,2,3\n' \
  "$dir" "$dir" "$dir" >"$dir/job.ini"
one() { # RESULTS-DIR MPIRUN-OPTIONS...: wall seconds of one whole run
  local out=$1; shift
  rm -rf "$out"
  /usr/bin/time -f %e -o "$dir/t" mpirun -np 1 "$@" "$IBC" run "$dir/job.ini" --quiet --results "$out"
  cat "$dir/t"
}
one "$dir/warm" >/dev/null # page cache and first-touch costs out of the pairs
a=() b=()
for i in $(seq "$PAIRS"); do
  a+=("$(one "$dir/a")"); b+=("$(one "$dir/b" --bind-to none)")
  echo "pair $i: plain mpirun ${a[-1]} s, --bind-to none ${b[-1]} s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ma=$(median "${a[@]}") mb=$(median "${b[@]}")
echo "median wall: plain mpirun $ma s, --bind-to none $mb s; rate ratio plain / unbound = $(awk "BEGIN {printf \"%.3f\", $mb / $ma}")"
