#!/usr/bin/env bash
# bench/mlp.sh: what a second busy core costs the MLP products (build/bench/mlp), one unit of
# 1024 rows at the SmolLM-135M shape, 1 thread per process: alone, then two copies at once,
# with one layer's weights (in cache) and with 30 layers' (318 MB, read as a forward pass
# reads them). Repeated PAIRS times in turn; prints every line and, per weight case, the
# mean GFLOP/s of the two-copy runs over the alone runs (their mean-time rates).
#
#   usage: bench/mlp.sh [PAIRS]      (default 3; after `make build/bench/mlp`)
set -euo pipefail
cd "$(dirname "$0")/.."
MLP=${BUILD:-build}/bench/mlp
PAIRS=${1:-3}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for p in $(seq "$PAIRS"); do
  for nl in 1 30; do
    "$MLP" 1024 40 "$nl" | sed "s/^/alone $nl: /" | tee -a "$out"
    ("$MLP" 1024 40 "$nl" & "$MLP" 1024 40 "$nl"; wait) | sed "s/^/two   $nl: /" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import re, sys
rates = {}
for line in open(sys.argv[1]):
    m = re.match(r'(alone|two) +(\d+): .*mean [\d.]+ ms \(([\d.]+) GFLOP/s\)', line)
    rates.setdefault((m.group(1), m.group(2)), []).append(float(m.group(3)))
for nl in ('1', '30'):
    a, t = rates[('alone', nl)], rates[('two', nl)]
    print('layers %s: alone %.1f GFLOP/s, two at once %.1f GFLOP/s per copy (mean over runs): %.3f' %
          (nl, sum(a) / len(a), sum(t) / len(t), (sum(t) / len(t)) / (sum(a) / len(a))))
PY
