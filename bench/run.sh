#!/usr/bin/env bash
# Runs every benchmark; figures go to docs/performance.md by hand, with this command.
# bench/job.sh (the whole job end to end, issue 15) runs last; it uses build/bench/sgemm.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
for b in "$BUILD"/bench/*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
done
echo "== job (bench/job.sh)"
BUILD=$BUILD bash bench/job.sh
