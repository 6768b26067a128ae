#!/usr/bin/env bash
# bench/activations.sh: the plan's activations per thread against what a second thread adds to
# the peak memory of `ibc run` (docs/scaling.md).
#
# A random-weight checkpoint at the SmolLM-135M shape (bin/ibc random-checkpoint, F32 in the
# kernels' layout: no layer scratch), DOCS documents x 512 Zipf-like ids (default 64: 32 units
# of 1024 rows, so a round of 4 units per thread is full at 1 and 2 threads), orders 1-3, all
# hidden states, 100 bins, one rank. `ibc plan --threads 2` prints the activations per thread;
# `ibc run` at OMP_NUM_THREADS=1 and 2 prints its peak memory (VmHWM, IBC_TIMING=1). Everything
# else a rank holds (the map's pages, label index and rows, corpus) is the same at 1 and 2
# threads, so the difference of the two peaks is one thread's activations as they really are.
# (IBC_FORCE_THREADS=1: two threads even on a machine that gives this process one core.)
# DTYPE=bf16: the checkpoint as most are published (bench/to-bf16.py: BF16, tensors in name
# order, every layer converted); a rank with threads holds two layer scratches, one thread one,
# so the second thread adds its activations and one layer scratch (`ibc plan --threads 2`'s
# layer_scratch / 2), which is then the plan's figure.
#
#   usage: bench/activations.sh [DOCS]     env: IBC_BIN (bin/ibc), DTYPE (f32 or bf16)
set -euo pipefail
cd "$(dirname "$0")/.."
IBC=$(realpath "${IBC_BIN:-bin/ibc}")
DOCS=${1:-64}
DTYPE=${DTYPE:-f32}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$IBC" random-checkpoint "$tmp/smol" --d 576 --layers 30 --heads 9 --kv-heads 3 --ff 1536 --vocab 49152 --seed 1
ckpt=$tmp/smol
if [ "$DTYPE" = bf16 ]; then /usr/bin/python3 bench/to-bf16.py "$tmp/smol" "$tmp/smolbf"; ckpt=$tmp/smolbf; fi
python3 - "$tmp/docs.jsonl" "$DOCS" <<'PY'
import json, random, sys
r = random.Random(1)
with open(sys.argv[1], 'w') as f:
    for _ in range(int(sys.argv[2])):
        f.write(json.dumps({"ids": [min(int(r.paretovariate(0.9)) - 1, 49151) for _ in range(512)]}) + "\n")
PY
printf '[job]\nname = act\noutput = %s/out\n[checkpoints]\nm = %s\n[corpus]\nformat = jsonl-ids\npath = %s/docs.jsonl\n[estimator]\norders = 1,2,3\nbins = 100\n' \
  "$tmp" "$ckpt" "$tmp" >"$tmp/job.ini"
plan=$("$IBC" plan "$tmp/job.ini" --ranks 1 --threads 2 |
  awk '$1 == "activations" { a = $2 } $1 == "layer_scratch" { s = $2 } END { print a + s / 2 }')
peak() {
  OMP_NUM_THREADS=$1 IBC_FORCE_THREADS=1 IBC_TIMING=1 "$IBC" run "$tmp/job.ini" --quiet --results "$tmp/out$1" 2>&1 |
    sed -n 's/.*peak memory per rank \([0-9.]*\) MB.*/\1/p'
}
p1=$(peak 1)
p2=$(peak 2)
python3 - "$plan" "$p1" "$p2" "$DOCS" <<'PY'
import sys
plan, p1, p2, docs = int(sys.argv[1]) / 2**20, float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print('| documents | peak, 1 thread (MiB) | peak, 2 threads (MiB) | second thread (MiB) | plan, for a second thread (MiB) | plan / measured |')
print('|---|---|---|---|---|---|')
print('| %s | %.1f | %.1f | %.1f | %.1f | %.2f |' % (docs, p1, p2, p2 - p1, plan, plan / (p2 - p1)))
PY
