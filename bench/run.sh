#!/usr/bin/env bash
# Runs every benchmark; figures go to docs/performance.md by hand, with this command.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
for b in "$BUILD"/bench/*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
done
