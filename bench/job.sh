#!/usr/bin/env bash
# bench/job.sh: `ibc run` end to end (issue 15 points 2, 3, 5), in one run, interleaved.
#
# Random-weight checkpoints at the SmolLM-135M and Pythia-160M shapes (bin/ibc
# random-checkpoint), 8 documents x 512 ids (DOCS), orders 1-3, all hidden states, 100 bins; layouts
# 1x2 and 2x1 (ranks x OMP_NUM_THREADS, `mpirun --bind-to none`: binding is issue 15 point 1),
# or those LAYOUTS names (1x1 too: one core, against one sgemm, separates a core's own
# efficiency from what two busy cores cost each other).
# Per run: tokens/s (ibc's own final progress line), the share of the whole `ibc run` wall
# time in forward (and, of it, the thread-time idle: no unit step ready to take) / estimator /
# label precount / round agreement + merge / results / other (start-up, corpus, model load),
# from IBC_TIMING=1's lines; the sgemm-implied limit measured just before the run at the same
# layout (build/bench/sgemm: as many concurrent single-threaded sgemms as the layout has
# cores, on the model's MLP shape [512, d] x [d, F]) times the tokens per GFLOP of the forward
# pass; and the peak memory (VmHWM) of the largest rank. The limit is sustained: the sgemms
# run for LIMIT_S seconds (default 2) right before and again right after the job, and the
# limit is the mean rate of both windows. This machine's load comes in bursts of seconds that
# move a short sgemm measurement by up to 2x either way; a job's tokens/s is a mean over its
# whole run, so its limit is a mean over windows around it (the per-run ratio). Two last
# tables: per binary, shape and layout, the median of the per-run ratios; and the best rate
# over the repetitions over the best short (best-of-2, 10 calls each) limit measured before
# any run of the shape and layout, the earlier method, kept for comparison.
#
#   usage: bench/job.sh [REPS]        env: IBC_BIN (bin/ibc), BUILD (build), LIMIT_S (2),
#                                     LAYOUTS ("1x2 2x1"; "2x1:mpirun" runs that layout with
#                                     Open MPI's default binding instead of --bind-to none),
#                                     DTYPES ("f32"; "f32 bf16" adds each checkpoint as most
#                                     are published: BF16, tensors in name order,
#                                     bench/to-bf16.py), IBC_BASE=other/bin/ibc also
#                                     runs that binary, interleaved; BASE_JOB="round_units = 1"
#                                     runs as "base" the same binary (or IBC_BASE) with that
#                                     [parallel] line in its job; DOCS (8) documents of 512 ids;
#                                     SHAPES ("smollm-135m pythia-160m")
set -euo pipefail
cd "$(dirname "$0")/.."
IBC=$(realpath "${IBC_BIN:-bin/ibc}")
BUILD=${BUILD:-build}
SGEMM=$BUILD/bench/sgemm
REPS=${1:-2}
LIMIT_S=${LIMIT_S:-2}
LAYOUTS=${LAYOUTS:-1x2 2x1}
DTYPES=${DTYPES:-f32}
DOCS=${DOCS:-8}
SHAPES=${SHAPES:-smollm-135m pythia-160m}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name, random-checkpoint options, d, F, layers, heads, kv heads, gated (3 MLP matrices) or not
shapes=("smollm-135m|--d 576 --layers 30 --heads 9 --kv-heads 3 --ff 1536 --vocab 49152|576|1536|30|9|3|3"
        "pythia-160m|--arch gpt_neox --d 768 --layers 12 --heads 12 --ff 3072 --vocab 50304|768|3072|12|12|12|2")
keep=()
for s in "${shapes[@]}"; do [[ " $SHAPES " == *" ${s%%|*} "* ]] && keep+=("$s"); done
shapes=("${keep[@]}")
python3 - "$tmp/docs.jsonl" "$DOCS" <<'PY'
import json, random, sys
r = random.Random(1)
with open(sys.argv[1], 'w') as f:
    for _ in range(int(sys.argv[2])):  # Zipf-like ids: labels repeat as on text
        f.write(json.dumps({"ids": [min(int(r.paretovariate(0.9)) - 1, 49151) for _ in range(512)]}) + "\n")
PY
for s in "${shapes[@]}"; do
  IFS='|' read -r name opts _ <<<"$s"
  # shellcheck disable=SC2086
  "$IBC" random-checkpoint "$tmp/$name" $opts --seed 1
  for dt in $DTYPES; do
    run=$name
    [ "$dt" = f32 ] || { run=$name-$dt; /usr/bin/python3 bench/to-$dt.py "$tmp/$name" "$tmp/$run"; }
    printf '[job]\nname = %s\noutput = %s/out\n[checkpoints]\nm = %s\n[corpus]\nformat = jsonl-ids\npath = %s\n[estimator]\norders = 1,2,3\nbins = 100\n' \
      "$name" "$tmp" "$tmp/$run" "$tmp/docs.jsonl" >"$tmp/$run.ini"
    { cat "$tmp/$run.ini"; printf '[parallel]\n%s\n' "${BASE_JOB:-}"; } >"$tmp/$run-base.ini"
  done
done

# GFLOP per token of a T = 512 forward pass: every projection plus q.k and p.v over the causal
# triangle (as bench/forward counts them).
gflop_per_token() { # d F layers heads kv mlp_matrices
  awk -v d="$1" -v F="$2" -v L="$3" -v H="$4" -v KV="$5" -v M="$6" 'BEGIN {
    T = 512; D = d / H; qd = H * D; kd = KV * D
    proj = d * (qd + 2 * kd) + qd * d + d * F * M
    att = 2 * 2 * qd * T * (T + 1) / 2
    printf "%.6f", L * (2 * T * proj + att) / T / 1e9 }'
}

bins=("$IBC")
if [ -n "${IBC_BASE:-}" ] || [ -n "${BASE_JOB:-}" ]; then # the base may predate blas_select: both run this ibc's kernels
  bins+=("$(realpath "${IBC_BASE:-$IBC}")")
  OPENBLAS_CORETYPE=$("$IBC" version | awk '/^blas/ {print $4}'); export OPENBLAS_CORETYPE
fi
echo "| binary | shape | layout | tokens/s | sustained sgemm GFLOP/s | limit tokens/s | ratio | forward | of which idle | estimator | precount | agreement+merge | results | other | imbalance | peak MB/rank |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for rep in $(seq "$REPS"); do
  for s in "${shapes[@]}"; do
    IFS='|' read -r name _ d F L H KV M <<<"$s"
    gpt=$(gflop_per_token "$d" "$F" "$L" "$H" "$KV" "$M")
    for dt in $DTYPES; do
      run=$name
      [ "$dt" = f32 ] || run=$name-$dt
      for layout in $LAYOUTS; do
        IFS=: read -r lay bind <<<"$layout"
        IFS=x read -r np th <<<"$lay"
        bindopt=(--bind-to none)
        [ "$bind" = mpirun ] && bindopt=() # Open MPI's own binding, as a plain `mpirun -np` gets it
        cores=$((np * th))
        for bi in "${!bins[@]}"; do
          b=${bins[$bi]} ini=$tmp/$run.ini
          [ "$bi" -gt 0 ] && [ -n "${BASE_JOB:-}" ] && ini=$tmp/$run-base.ini
          gshort=$(OMP_NUM_THREADS=1 "$SGEMM" 512 "$F" "$d" "$cores" 2 | sed 's/.*: \([0-9.]*\) GFLOP.*/\1/')
          gbefore=$(OMP_NUM_THREADS=1 "$SGEMM" 512 "$F" "$d" "$cores" 2 "$LIMIT_S" | sed 's/.*: \([0-9.]*\) GFLOP.*/\1/')
          rm -rf "$tmp/out"
          t0=$(date +%s.%N)
          OMP_NUM_THREADS=$th IBC_TIMING=1 mpirun "${bindopt[@]}" -x OMP_NUM_THREADS -x IBC_TIMING -np "$np" \
            "$b" run "$ini" --results "$tmp/out" 2>"$tmp/err" >/dev/null
          wall=$(echo "$(date +%s.%N) - $t0" | bc -l)
          gafter=$(OMP_NUM_THREADS=1 "$SGEMM" 512 "$F" "$d" "$cores" 2 "$LIMIT_S" | sed 's/.*: \([0-9.]*\) GFLOP.*/\1/')
          gf=$(echo "($gbefore + $gafter) / 2" | bc -l)
          tag=$([ "$bi" = 0 ] && echo this || echo base)
          python3 - "$tmp/err" "$wall" "$gf" "$gpt" "$gshort" "$tag" "$run" "$layout" <<'PY'
import re, sys
err, wall, gf, gpt, gshort, tag, name, layout = open(sys.argv[1]).read(), *map(float, sys.argv[2:6]), *sys.argv[6:]
rate = float(re.findall(r'documents \d+/\d+, (\d+) tokens/s', err)[-1])
limit = gf / gpt
t = re.search(r'timing \S+: wall ([\d.]+) s, ranks \d+, threads \d+, forward ([\d.]+) s, estimator ([\d.]+) s, '
              r'precount ([\d.]+) s, agreement ([\d.]+) s, merge ([\d.]+) s, imbalance ([\d.]+), peak memory per rank ([\d.]+) MB', err)
res = re.search(r'timing results: ([\d.]+) s', err)
idle = re.search(r'forward idle ([\d.]+) s', err)  # older binaries: not printed
if t:
    ck, fw, es, pc, ag, mg, imb, mem = map(float, t.groups())
    r = float(res.group(1)) if res else 0.0
    parts = [fw, es, pc, ag + mg, r]
    sh = ['%.1f%%' % (100 * p / wall) for p in parts] + ['%.1f%%' % (100 * (wall - sum(parts)) / wall)]
    sh.insert(1, '%.1f%%' % (100 * float(idle.group(1)) / wall) if idle else '-')
    extra = sh + ['%.2f' % imb, '%.0f' % mem]
else:  # a binary without IBC_TIMING
    extra = ['-'] * 9
print('| %s | %s | %s | %.0f | %.1f | %.0f | %.2f | %s |' % (tag, name, layout, rate, gf, limit, rate / limit, ' | '.join(extra)))
open(sys.argv[1].rsplit('/', 1)[0] + '/best.tsv', 'a').write('%s\t%s\t%s\t%f\t%f\t%f\n' % (tag, name, layout, rate, limit, gshort / gpt))
PY
        done
      done
    done
  done
done
# Per binary, shape and layout: the median of the per-run ratios (each job over the sustained
# limit around it) with the interval that holds the true median with >= 95% probability
# whatever the runs' distribution (order statistics; 6 runs or more), and the earlier
# best-of reading (the fastest job over the highest short limit measured for its shape),
# which a single burst of either kind decides.
echo
echo "| binary | shape | layout | runs | per-run ratios | median ratio | median's 95% interval | best tokens/s | best short limit tokens/s | best-of ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|"
python3 - "$tmp/best.tsv" <<'PY'
import math, statistics, sys
def median_ci(x):  # order statistics k and n+1-k: k the largest with P(Binomial(n, 1/2) < k) <= 0.025
    x, n = sorted(x), len(x)
    k, below = 0, 0.0  # below: P(Binomial(n, 1/2) < k)
    while k < n // 2 and below + math.comb(n, k) / 2 ** n <= 0.025:
        below += math.comb(n, k) / 2 ** n
        k += 1
    return '%.2f-%.2f' % (x[k - 1], x[n - k]) if k else '- (%d runs: too few)' % n
runs, lim = {}, {}
for line in open(sys.argv[1]):
    tag, name, layout, rate, limit, short = line.split('\t')
    runs.setdefault((tag, name, layout), []).append((float(rate), float(limit)))
    lim[name, layout] = max(lim.get((name, layout), 0.0), float(short))  # the same sgemms before every run of a layout
for (tag, name, layout), rl in runs.items():
    ratios = [r / l for r, l in rl]
    best = max(r for r, _ in rl)
    print('| %s | %s | %s | %d | %s | %.2f | %s | %.0f | %.0f | %.2f |' % (tag, name, layout, len(rl), ' '.join('%.2f' % x for x in ratios),
          statistics.median(ratios), median_ci(ratios), best, lim[name, layout], best / lim[name, layout]))
# With IBC_BASE: each run's tokens/s over the base's run right after it (the same minute).
pairs = [(k, runs[k], runs.get(('base',) + k[1:])) for k in runs if k[0] == 'this']
if any(b for _, _, b in pairs):
    print()
    print('| shape | layout | tokens/s this / base, per run | median |')
    print('|---|---|---|---|')
    for (_, name, layout), t, b in pairs:
        q = [x[0] / y[0] for x, y in zip(t, b or [])]
        if q: print('| %s | %s | %s | %.2f |' % (name, layout, ' '.join('%.2f' % x for x in q), statistics.median(q)))
PY
