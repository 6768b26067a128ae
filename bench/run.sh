#!/usr/bin/env bash
# Runs every benchmark; figures go to docs/performance.md by hand, with this command.
# bench/units.sh (unit_rows 1 against 1024 on short documents) and bench/job.sh (the whole job
# end to end, issue 15) run last, after bench/activations.sh (the plan's activations against
# the peak memory); job.sh uses build/bench/sgemm; bench/straggler.sh (2 ranks, one core shared
# with a busy loop) last.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
for b in "$BUILD"/bench/*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
done
echo "== units (bench/units.sh)"
bash bench/units.sh
echo "== activations (bench/activations.sh)"
bash bench/activations.sh
echo "== job (bench/job.sh)"
BUILD=$BUILD bash bench/job.sh
echo "== straggler (bench/straggler.sh)"
bash bench/straggler.sh
