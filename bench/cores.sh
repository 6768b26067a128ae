#!/usr/bin/env bash
# bench/cores.sh: what a second busy core costs each part of the work, 1 thread per process.
# Each workload runs alone, then as two copies at once, in turn, PAIRS times; per pair the
# ratio of the copies' mean rate to the alone rate, and per workload the median over pairs
# (1.0: a second busy core costs nothing). Workloads:
#   sgemm      build/bench/sgemm 512 1536 576: the job's limit, one product over and over
#   mlp-1      build/bench/mlp: a unit's MLP block (1024 rows, SmolLM-135M shape), one layer's weights
#   mlp-30     the same reading 30 layers' weights in turn (318 MB), as a forward pass does
#   forward    build/bench/stacked: the whole forward pass of two 512-id documents as one unit
#              (SmolLM-135M shape, a checkpoint from `ibc random-checkpoint`)
# Rates are each tool's own best-of figure (GFLOP/s or tokens/s).
#
#   usage: bench/cores.sh [PAIRS]      (default 5; after `make all build/bench/sgemm
#                                      build/bench/mlp build/bench/stacked`)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD:-build}/bench
PAIRS=${1:-5}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${IBC_BIN:-bin/ibc}" random-checkpoint "$tmp/smol" --d 576 --layers 30 --heads 9 --kv-heads 3 --ff 1536 --vocab 49152 --seed 1
run() { # workload -> its rate
  case $1 in
    sgemm) "$B/sgemm" 512 1536 576 1 10 | sed 's/.*: \([0-9.]*\) GFLOP.*/\1/' ;;
    mlp-1) "$B/mlp" 1024 25 1 | sed 's/.*best [0-9.]* ms (\([0-9.]*\) GFLOP.*/\1/' ;;
    mlp-30) "$B/mlp" 1024 31 30 | sed 's/.*best [0-9.]* ms (\([0-9.]*\) GFLOP.*/\1/' ;;
    forward) "$B/stacked" "$tmp/smol" 3 2 unit | sed 's/.*: \([0-9.]*\) tokens.*/\1/' ;;
  esac
}
for p in $(seq "$PAIRS"); do
  for w in sgemm mlp-1 mlp-30 forward; do
    a=$(run $w)
    run $w >"$tmp/c1" & run $w >"$tmp/c2"; wait
    echo "$w $a $(cat "$tmp/c1") $(cat "$tmp/c2")" | tee -a "$tmp/all"
  done
done
python3 - "$tmp/all" <<'PY'
import statistics, sys
r = {}
for line in open(sys.argv[1]):
    w, a, c1, c2 = line.split()
    r.setdefault(w, []).append((float(c1) + float(c2)) / 2 / float(a))
print('| workload | per-pair ratio two copies / alone | median |')
print('|---|---|---|')
for w, q in r.items():
    print('| %s | %s | %.3f |' % (w, ' '.join('%.2f' % x for x in q), statistics.median(q)))
PY
