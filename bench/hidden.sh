#!/usr/bin/env bash
# bench/hidden.sh: the forward pass of one 512-id document at the SmolLM-135M shape (random
# weights, `ibc hidden`, 1 thread), whole process, under two environments A and B in turn
# (A B A B ...): wall seconds of every pair and the ratio of the medians (A over B).
#   bash bench/hidden.sh [PAIRS] [ENV_A] [ENV_B]      (after `make`; default: 5 pairs,
#   A = ibc's own OpenBLAS kernels, B = OPENBLAS_CORETYPE=Prescott, OpenBLAS's generic ones)
#   IBC_BASE=other/bin/ibc runs that binary as B instead (same environment as A).
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-5} ENV_A=${2:-IBC_NOTHING=1} ENV_B=${3:-OPENBLAS_CORETYPE=Prescott}
IBC=$(realpath "${IBC_BIN:-bin/ibc}") BASE=$(realpath "${IBC_BASE:-${IBC_BIN:-bin/ibc}}")
[ -n "${IBC_BASE:-}" ] && ENV_B=$ENV_A
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$IBC" random-checkpoint "$dir/smol" --d 576 --layers 30 --heads 9 --kv-heads 3 --ff 1536 --vocab 49152 --seed 1
ids=$(/usr/bin/python3 -c "import random; r = random.Random(5); print(','.join(str(r.randrange(49152)) for _ in range(512)))")
one() { # BIN ENV: wall seconds
  /usr/bin/time -f %e -o "$dir/t" env OMP_NUM_THREADS=1 "$2" "$1" hidden "$dir/smol" --ids "$ids" --out "$dir/h.npy"
  cat "$dir/t"
}
one "$IBC" "$ENV_A" >/dev/null # warm-up: page cache
a=() b=()
for p in $(seq "$PAIRS"); do
  a+=("$(one "$IBC" "$ENV_A")"); b+=("$(one "$BASE" "$ENV_B")")
  echo "pair $p: A ${a[-1]} s, B ${b[-1]} s"
done
med() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
echo "A = $ENV_A $IBC; B = $ENV_B $BASE"
echo "median wall: A $(med "${a[@]}") s, B $(med "${b[@]}") s; A / B = $(awk -v x="$(med "${a[@]}")" -v y="$(med "${b[@]}")" 'BEGIN {printf "%.3f", x / y}')"
