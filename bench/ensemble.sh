#!/usr/bin/env bash
# bench/ensemble.sh: the cost of an anchor ensemble (issue 14): `ibc run` with `seeds = 0`
# (K = 1) and `seeds = 0,1,2,3,4` (K = 5), interleaved in one run, on a random-weight
# checkpoint at the Pythia-160M shape (12 layers, d 768), 8 documents x 512 ids, orders 1-3,
# all hidden states, 100 bins, one rank x 2 threads. The forward pass is shared; K multiplies
# the estimator (one sgemm [P, d] x [d, n] and one integer accumulation per set) and the rows.
# Prints per run tokens/s (the final progress line), forward and estimator seconds per thread
# and peak memory (IBC_TIMING=1), then the rate of K = 5 over K = 1 (medians) and the load
# average, since the machine may be shared.
#
#   usage: bench/ensemble.sh [REPS]   env: IBC_BIN (bin/ibc)
set -euo pipefail
cd "$(dirname "$0")/.."
IBC=$(realpath "${IBC_BIN:-bin/ibc}")
REPS=${1:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$IBC" random-checkpoint "$tmp/m" --arch gpt_neox --d 768 --layers 12 --heads 12 --ff 3072 --vocab 50304 --seed 1
python3 - "$tmp/docs.jsonl" <<'PY'
import json, random, sys
r = random.Random(1)
with open(sys.argv[1], 'w') as f:
    for _ in range(8):  # Zipf-like ids: labels repeat as on text
        f.write(json.dumps({"ids": [min(int(r.paretovariate(0.9)) - 1, 50303) for _ in range(512)]}) + "\n")
PY
for K in 1 5; do
  seeds=$(seq -s, 0 $((K - 1)))
  printf '[job]\nname = k%s\noutput = %s/out\n[checkpoints]\nm = %s/m\n[corpus]\nformat = jsonl-ids\npath = %s\n[estimator]\norders = 1,2,3\nbins = 100\nseeds = %s\n' \
    "$K" "$tmp" "$tmp" "$tmp/docs.jsonl" "$seeds" >"$tmp/k$K.ini"
done

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| K | tokens/s | forward s/thread | estimator s/thread | peak MB |"
echo "|---|---|---|---|---|"
for rep in $(seq "$REPS"); do
  for K in 1 5; do
    rm -rf "$tmp/out"
    OMP_NUM_THREADS=2 IBC_TIMING=1 mpirun --bind-to none -x OMP_NUM_THREADS -x IBC_TIMING -np 1 \
      "$IBC" run "$tmp/k$K.ini" 2>"$tmp/err" >/dev/null
    python3 - "$tmp/err" "$K" <<'PY' | tee -a "$tmp/rows"
import re, sys
err, K = open(sys.argv[1]).read(), sys.argv[2]
rate = float(re.findall(r'documents \d+/\d+, (\d+) tokens/s', err)[-1])
t = re.search(r'forward ([\d.]+) s, estimator ([\d.]+) s, .*peak memory per rank ([\d.]+) MB', err)
print('| %s | %.0f | %s | %s | %s |' % (K, rate, *t.groups()))
PY
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp/rows" <<'PY'
import statistics, sys
rows = [l.split('|') for l in open(sys.argv[1])]
rate = {k: statistics.median(float(r[2]) for r in rows if r[1].strip() == k) for k in ('1', '5')}
print('rate K=5 / K=1: %.3f (medians: %.0f / %.0f tokens/s)' % (rate['5'] / rate['1'], rate['5'], rate['1']))
PY
