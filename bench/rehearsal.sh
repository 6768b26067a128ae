#!/usr/bin/env bash
# bench/rehearsal.sh: the rehearsal on real English of docs/scaling.md (issue 12 §5).
#
#   bash bench/rehearsal.sh [DOCUMENTS] [RANKS...]      (defaults: 500 documents, ranks 1 2 4)
#   EXCHANGE_MB=64 bash bench/rehearsal.sh                (a smaller exchange bound: [parallel] exchange_mb)
#   MIDRUN=0 bash bench/rehearsal.sh                      (no exchange before the merge: the test hook
#                                                         IBC_EXCHANGE_BYTES set past any outbox, so each
#                                                         row travels once, as the plan's figure counts)
#
# Corpus: DOCUMENTS documents of GCIDE dictionary text (scripts/gcide-corpus.py, Debian's
# dict-gcide), tokenised by ibc with the GPT-NeoX-20B tokenizer of the fixtures (max_length
# 512). Checkpoint: `ibc random-checkpoint`, gpt_neox, 16 layers, d 64, 4 heads, F 128, vocab
# 50304 (Pythia's vocabulary size; F32). Job: orders 1-4, bins 100, hidden states 0,4,8,12,16
# (the forward pass runs all 16 blocks). For each rank count P: `ibc plan` (rows in all and per
# rank, expected exchange), then `mpirun --oversubscribe -np P ibc run` with each rank's peak
# RSS (getrusage of a python3 parent: ru_maxrss, the VmHWM of the rank) and the wall time.
# Results must be bitwise identical across P (summary.csv compared). Singleton fractions per
# order sit next to those of bench/scaling's Zipf(1.1) stream at the same number of positions.
# Writes a Markdown table to stdout and to $OUT/rehearsal.md (OUT defaults to a temp folder).
set -euo pipefail
cd "$(dirname "$0")/.."
DOCS=${1:-500}
shift || true
RANKS=("$@")
[ ${#RANKS[@]} -gt 0 ] || RANKS=(1 2 4)
IBC=${IBC_BIN:-bin/ibc}
BUILD=${BUILD:-build}
FX=$(realpath "${IBC_FIXTURES:-../shared/fixtures}")
TOK=$FX/tokenizers/gpt-neox-20b/tokenizer.json
OUT=${OUT:-$(mktemp -d)}
EXCHANGE_MB=${EXCHANGE_MB:-256} # the job's exchange bound (its default): the outbox's cap per rank
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
[ "${MIDRUN:-1}" = 0 ] && export IBC_EXCHANGE_BYTES=100000000000
[ -f /usr/share/dictd/gcide.dict.dz ] || { echo "rehearsal: dict-gcide missing: run scripts/install-deps.sh" >&2; exit 1; }
[ -f "$TOK" ] || { echo "rehearsal: $TOK missing (fixtures)" >&2; exit 1; }
mkdir -p "$OUT"

python3 scripts/gcide-corpus.py "$DOCS" "$OUT/gcide.jsonl"
[ -d "$OUT/ckpt" ] || "$IBC" random-checkpoint "$OUT/ckpt" --arch gpt_neox --layers 16 --d 64 --heads 4 --ff 128 --vocab 50304 --seed 7
cat >"$OUT/rehearsal.ini" <<EOF
[job]
name = rehearsal
output = $OUT/results
[checkpoints]
neox16 = $OUT/ckpt
[corpus]
format = jsonl
path = $OUT/gcide.jsonl
tokenizer = $TOK
max_length = 512
[estimator]
bins = 100
orders = 1,2,3,4
layers = 0,4,8,12,16
[parallel]
exchange_mb = $EXCHANGE_MB
EOF

# Peak RSS of one rank: its parent python3 waits for it and reads ru_maxrss (kB).
cat >"$OUT/peak.py" <<'EOF'
import os, resource, subprocess, sys
rc = subprocess.run(sys.argv[2:]).returncode
rank = os.environ.get('OMPI_COMM_WORLD_RANK', '0')
open('%s.%s' % (sys.argv[1], rank), 'w').write('%d\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)
EOF

num() { awk -v k="$2" '$1 == k {print $2}' "$1"; }
rows_line() { awk '/^rows_per_rank/ {print $5, $7, $11, $13}' "$1"; } # total max mean imbalance
{
  echo "| P | rows (all) | rows per rank: max / mean (imbalance), plan | rows per rank: max / mean, run | peak RSS per rank, MiB (VmHWM) | sent by the busiest rank / mean, MiB, run | plan: expected sent by the busiest rank, MiB (exchanges) | wall time, s | time imbalance |"
  echo "|---|---|---|---|---|---|---|---|---|"
} >"$OUT/table.md"
for P in "${RANKS[@]}"; do
  "$IBC" plan "$OUT/rehearsal.ini" --ranks "$P" --threads 1 >"$OUT/plan$P.txt"
  read -r total rmax rmean imb < <(rows_line "$OUT/plan$P.txt")
  sent=$(num "$OUT/plan$P.txt" exchange_sent)
  rounds=$(grep -o 'in [0-9]* exchange' "$OUT/plan$P.txt" | awk '{print $2}')
  rm -rf "$OUT/r$P" "$OUT/peak$P".*
  t0=$(date +%s.%N)
  mpirun --oversubscribe ${IBC_EXCHANGE_BYTES:+-x IBC_EXCHANGE_BYTES} -np "$P" python3 "$OUT/peak.py" "$OUT/peak$P" "$IBC" run "$OUT/rehearsal.ini" --quiet --results "$OUT/r$P"
  t1=$(date +%s.%N)
  peaks=$(cat "$OUT/peak$P".* | awk '{printf "%s%.0f", (NR > 1 ? " / " : ""), $1 / 1024}')
  timb=$(awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "imbalance") c = i} NR == 2 && c {print $c}' "$OUT/r$P/summary.csv")
  # What the run itself recorded (results.c: attributes of the checkpoint's HDF5 group).
  run=$(/usr/bin/python3 -c "
import glob, h5py
f = h5py.File(glob.glob('$OUT/r$P/*.h5')[0], 'r'); g = f['checkpoints/neox16']
print(int(g.attrs['rows_max']), '%.1f' % g.attrs['rows_mean'], '%.1f' % (g.attrs['sent_max'] / 1048576), '%.1f' % (g.attrs['sent_mean'] / 1048576))")
  read -r run_rmax run_rmean run_smax run_smean <<<"$run"
  printf "| %s | %s | %s / %s (%s) | %s / %s | %s | %s / %s | %.1f (%s) | %.1f | %s |\n" "$P" "$total" "$rmax" "$rmean" "$imb" \
    "$run_rmax" "$run_rmean" "$peaks" "$run_smax" "$run_smean" "$(echo "$sent / 1048576" | bc -l)" "$rounds" \
    "$(echo "$t1 - $t0" | bc -l)" "${timb:-not recorded}" >>"$OUT/table.md"
done
# The numbers, without the imbalance column (the busiest rank's time over the mean: it
# describes the run, not the model, and differs with P).
numbers() { awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "imbalance") c = i}
  {s = ""; for (i = 1; i <= NF; i++) if (i != c) s = s (s == "" ? "" : ",") $i; print s}' "$1"; }
same=yes
for P in "${RANKS[@]}"; do cmp -s <(numbers "$OUT/r${RANKS[0]}/summary.csv") <(numbers "$OUT/r$P/summary.csv") || same=no; done

# Singletons per order: this corpus against the Zipf(1.1) stream at the same positions.
positions=$(grep -o '[0-9]* counted positions' "$OUT/plan${RANKS[0]}.txt" | awk '{print $1}')
zipf=""
if [ -x "$BUILD/bench/scaling" ]; then
  "$BUILD/bench/scaling" "$positions" 1 >"$OUT/zipf.txt" 2>&1 || true
  zipf=$OUT/zipf.txt
fi
{
  echo "Rehearsal: $DOCS GCIDE documents, $positions counted positions, GPT-NeoX-20B tokenizer; random gpt_neox"
  echo "checkpoint 16 layers d 64 (F32), orders 1-4, bins 100, hidden states 0,4,8,12,16; exchange_mb $EXCHANGE_MB; OMP_NUM_THREADS=1."
  echo "Results (summary.csv without its imbalance column) bitwise identical across P = ${RANKS[*]}: $same."
  echo
  cat "$OUT/table.md"
  echo
  echo "| set | labels | singletons % (GCIDE) | singletons % (Zipf 1.1, same positions) | rows |"
  echo "|---|---|---|---|---|"
  awk '/^  [XY][1-4] / {print $1, $2, $4, $5}' "$OUT/plan${RANKS[0]}.txt" | while read -r s l f r; do
    z=$([ -n "$zipf" ] && awk -v s="$s" '$1 == s && NF == 4 {print $4; exit}' "$zipf")
    echo "| $s | $l | $f | ${z:-n/a} | $r |"
  done
} | tee "$OUT/rehearsal.md"
echo "rehearsal: plans, results and rehearsal.md in $OUT" >&2
