#!/usr/bin/env bash
# bench/straggler.sh: `ibc run` at 2 ranks x 1 thread when one rank's core is shared, against
# the same run with both cores to itself (issue 15: a slower node or a noisy neighbour must
# not hold the other ranks at every round's end).
#
# Random-weight checkpoint at the SmolLM-135M shape (bin/ibc random-checkpoint), DOCS (64)
# documents x 512 ids, orders 1-3, all hidden states, 100 bins. Ranks are bound one per core
# (`mpirun --map-by core --bind-to core`: rank 0 on core 0, rank 1 on core 1); in the
# "shared" runs a busy loop is pinned to core 1 for the whole job, so rank 1 gets about half
# of its core. Per run: wall time, tokens/s (ibc's progress line), the ranks' wait at the
# agreements (share of the wall), the tokens each rank ran (IBC_TIMING's line), and from its
# per-round lines (IBC_TIMING=2: each rank's units and tokens/s in each round) how much a
# rank's rate moves: its first round's over the median of its later ones, and the largest
# change between two later rounds in a row (full rounds only: the last is shorter). With
# IBC_BASE=other/bin/ibc the same runs of that binary are interleaved (this, base, this, ...),
# and a last table gives per condition the median tokens/s of each and their ratio.
#
#   usage: bench/straggler.sh [REPS]      env: IBC_BIN (bin/ibc), IBC_BASE, DOCS (64)
set -euo pipefail
cd "$(dirname "$0")/.."
IBC=$(realpath "${IBC_BIN:-bin/ibc}")
REPS=${1:-3}
DOCS=${DOCS:-64}
[ "$(nproc)" -ge 2 ] || { echo "bench/straggler.sh: needs 2 cores, this machine has $(nproc)"; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
spin=
trap '[ -n "$spin" ] && kill "$spin" 2>/dev/null; rm -rf "$tmp"' EXIT

python3 - "$tmp/docs.jsonl" "$DOCS" <<'PY'
import json, random, sys
r = random.Random(1)
with open(sys.argv[1], 'w') as f:
    for _ in range(int(sys.argv[2])):  # Zipf-like ids: labels repeat as on text
        f.write(json.dumps({"ids": [min(int(r.paretovariate(0.9)) - 1, 49151) for _ in range(512)]}) + "\n")
PY
"$IBC" random-checkpoint "$tmp/m" --d 576 --layers 30 --heads 9 --kv-heads 3 --ff 1536 --vocab 49152 --seed 1
printf '[job]\nname = s\noutput = %s/out\n[checkpoints]\nm = %s/m\n[corpus]\nformat = jsonl-ids\npath = %s/docs.jsonl\n[estimator]\norders = 1,2,3\nbins = 100\n' \
  "$tmp" "$tmp" "$tmp" >"$tmp/job.ini"

bins=("$IBC")
[ -n "${IBC_BASE:-}" ] && bins+=("$(realpath "$IBC_BASE")")
echo "| binary | core 1 | wall s | tokens/s | agreement | tokens rank min / max | first round rate / later, per rank | largest change between rounds |"
echo "|---|---|---|---|---|---|---|---|"
for rep in $(seq "$REPS"); do
  for cond in alone shared; do
    for bi in "${!bins[@]}"; do
      [ "$cond" = shared ] && { taskset -c 1 sh -c 'while :; do :; done' & spin=$!; }
      rm -rf "$tmp/out"
      t0=$(date +%s.%N)
      OMP_NUM_THREADS=1 IBC_TIMING=2 mpirun --map-by core --bind-to core -x OMP_NUM_THREADS -x IBC_TIMING -np 2 \
        "${bins[$bi]}" run "$tmp/job.ini" --results "$tmp/out" 2>"$tmp/err" >/dev/null
      wall=$(echo "$(date +%s.%N) - $t0" | bc -l)
      [ -n "$spin" ] && { kill "$spin"; wait "$spin" 2>/dev/null || true; spin=; }
      tag=$([ "$bi" = 0 ] && echo this || echo base)
      python3 - "$tmp/err" "$wall" "$tag" "$cond" <<'PY' | tee -a "$tmp/rows"
import re, statistics, sys
err, wall, tag, cond = open(sys.argv[1]).read(), float(sys.argv[2]), sys.argv[3], sys.argv[4]
rate = float(re.findall(r'documents \d+/\d+, (\d+) tokens/s', err)[-1])
ag = float(re.search(r'agreement ([\d.]+) s', err).group(1))
tk = re.search(r'tokens per rank min (\d+) max (\d+)', err)  # older binaries: not printed
rounds = [list(map(float, l.split())) for l in re.findall(r'round \d+: units, tokens/s per rank: (.*)', err)]
first, change = '-', '-'
if len(rounds) > 2:
    P = len(rounds[0]) // 2
    units = [[r[2 * p] for r in rounds] for p in range(P)]
    rates = [[r[2 * p + 1] for r in rounds] for p in range(P)]
    full = [[x for u, x in zip(units[p][1:-1], rates[p][1:-1]) if u > 1] for p in range(P)]  # later rounds of more than a unit
    first = ' '.join('%.2f' % (rates[p][0] / statistics.median(full[p])) if full[p] else '-' for p in range(P))
    ch = [abs(b / a - 1) for p in range(P) for a, b in zip(full[p], full[p][1:])]
    change = '%.0f%%' % (100 * max(ch)) if ch else '-'
print('| %s | %s | %.1f | %.0f | %.1f%% | %s | %s | %s |' % (tag, cond, wall, rate, 100 * ag / wall, '%s / %s' % tk.groups() if tk else '-', first, change))
PY
    done
  done
done
echo
echo "| core 1 | this tokens/s (median) | base tokens/s (median) | this / base |"
echo "|---|---|---|---|"
python3 - "$tmp/rows" <<'PY'
import statistics, sys
r = {}
for line in open(sys.argv[1]):
    c = [x.strip() for x in line.strip().strip('|').split('|')]
    r.setdefault((c[0], c[1]), []).append(float(c[3]))
for cond in ('alone', 'shared'):
    t, b = r.get(('this', cond)), r.get(('base', cond))
    if t and b:
        print('| %s | %.0f | %.0f | %.2f |' % (cond, statistics.median(t), statistics.median(b), statistics.median(t) / statistics.median(b)))
    elif t:
        print('| %s | %.0f | - | - |' % (cond, statistics.median(t)))
PY
