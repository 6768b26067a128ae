#!/usr/bin/env bash
# bench/ab.sh: bench/tokenize and bench/estimator of this tree (B, "new") against a base commit
# (A, "old"), interleaved A B A B ..., and per case the ratio new/old of the median rates.
#
# The base is built from `git archive BASE` in a folder of its own (kept under build/ab/ so a
# rerun does not rebuild it); this tree's benches are built with make. Interleaving the runs
# means a drift of the machine's speed touches both sides alike; the median of each side then
# drops the odd disturbed run. A ratio above 1 means this tree is faster.
#
# Cases: bench/tokenize's steady-state MB/s per (text, tokenizer) (first pass too, as
# "first"), and bench/estimator's estimator tokens/s per (threads, mode). The estimator's
# forward pass is in its process but not in its rate.
#
#   usage: bench/ab.sh [-n ROUNDS] [-d DOCS] [-o tokenize|estimator] [BASE]
#     -n ROUNDS  pairs per bench (default 5)
#     -d DOCS    bench/estimator's document count (default 40, as in docs/performance.md)
#     -o BENCH   only that bench
#     BASE       a commit (default dcdabc9: before the tokenizer rooms and hmap, issue 10)
#   env: IBC_FIXTURES (default ../shared/fixtures), BUILD (build), TMPDIR
# Quote figures from a quiet machine (load average well under the core count): one ROUNDS run
# prints every round's raw lines to build/ab/last.log.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5 docs=40 only=""
while getopts n:d:o: opt; do
  case $opt in
    n) rounds=$OPTARG ;;
    d) docs=$OPTARG ;;
    o) only=$OPTARG ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
base=$(git rev-parse --short "${1:-dcdabc9}")
BUILD=${BUILD:-build}
fx=$(realpath "${IBC_FIXTURES:-../shared/fixtures}")
benches="tokenize estimator"
[ -n "$only" ] && benches=$only

# Both sides built the same way (the Makefile's flags of each tree).
bdir=$BUILD/ab/$base
if [ ! -x "$bdir/build/bench/estimator" ] || [ ! -x "$bdir/build/bench/tokenize" ]; then
  rm -rf "$bdir" && mkdir -p "$bdir"
  git archive "$base" | tar -x -C "$bdir"
  make -s -C "$bdir" -j2 GIT_REV="$base" build/bench/tokenize build/bench/estimator >/dev/null
fi
make -s -j2 "$BUILD/bench/tokenize" "$BUILD/bench/estimator" "${IBC_BIN:-bin/ibc}" >/dev/null
# The same OpenBLAS kernels on both sides (the base may predate blas_select, blas.h).
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$("${IBC_BIN:-bin/ibc}" version | awk '/^blas/ {print $4}')}
export OPENBLAS_CORETYPE

log=$BUILD/ab/last.log
: >"$log"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One run of a bench: "case rate" lines on stdout.
run_one() { # side bench
  local bin=$BUILD/bench/$2
  [ "$1" = old ] && bin=$bdir/build/bench/$2
  if [ "$2" = tokenize ]; then
    OMP_NUM_THREADS=1 "$bin" "$fx" | tee -a "$log" |
      awk '{split($1, t, "_"); print t[1] "/" $2 " " $12; print t[1] "/" $2 "/first " $9}'
  else
    "$bin" "${TMPDIR:-/tmp}" "$docs" | tee -a "$log" |
      awk '{print $1 "/" $2 " " $7}'
  fi
}

for b in $benches; do
  for r in $(seq "$rounds"); do
    for side in old new; do
      echo "# $b $side round $r" >>"$log"
      run_one $side "$b" | sed "s/^/$side /" >>"$tmp/$b"
    done
    echo "ab: $b round $r/$rounds done" >&2
  done
done

# Per case: median of each side, then new/old.
cat "$tmp"/* | python3 -c '
import statistics, sys
rates = {}
for line in sys.stdin:
    side, case, rate = line.split()
    rates.setdefault(case, {"old": [], "new": []})[side].append(float(rate))
print("%-44s %10s %10s %8s  (medians of %s runs each)" % ("case", "old", "new", "new/old", sys.argv[1]))
for case, r in rates.items():
    a, b = statistics.median(r["old"]), statistics.median(r["new"])
    print("%-44s %10.2f %10.2f %8.3f" % (case, a, b, b / a))
' "$rounds"
echo "base $base; OpenBLAS kernels $OPENBLAS_CORETYPE; raw output: $log; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
