#!/usr/bin/env bash
# The same bits on any layout (issue 15 point 4): `ibc run` with ranks x OMP_NUM_THREADS =
# 1x1, 1x2 and 2x1 at the SmolLM-135M shape (random weights, a few short documents), and
# 1x1, 1x3, 3x1 and 3x2 at a tiny shape, give byte-identical summary.csv (without its
# `imbalance` column, a timing measurement), layers.csv and HDF5 numbers (h5dump, without the
# `imbalance` attribute). Threads, like ranks, carry whole units (documents stacked in corpus
# order, `[parallel] unit_rows`; here small, so that the short documents make several units,
# some of one document and some of several) with single-threaded BLAS calls whose shapes depend
# only on the unit, and counts are exact integers (design.md "Run loop"), so no tolerance: any
# difference is a failure. Also with units handed over between ranks mid-model (IBC_SLOW makes
# one rank slower; F32, BF16, folds and anchor sets). TAP-style lines.
. "$(dirname "$0")/lib.bash"
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT # KEEP=1: the runs stay, for a look


# ids.jsonl: N documents of lengths 9..(9+N*5) over a vocabulary of V ids (repeats: labels with rows)
docs() { # FILE N V
  $PY - "$@" <<'PY'
import json, random, sys
f, n, v = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(7)
with open(f, 'w') as o:
    for i in range(n):
        T = 9 + (i * 37) % (5 * n)
        o.write(json.dumps({"ids": [r.randrange(min(v, 60)) * (v // 60 or 1) for _ in range(T)]}) + "\n")
PY
}

job() { # NAME CKPT IDS ORDERS UNIT_ROWS
  cat >"$tmp/$1.ini" <<EOF
[job]
name = $1
output = $tmp/unused
[checkpoints]
m = $2
[corpus]
format = jsonl-ids
path = $3
[estimator]
orders = $4
bins = 100
[parallel]
unit_rows = $5
EOF
}

run_layout() { # NAME RANKS THREADS
  OMP_NUM_THREADS=$3 mpirun --oversubscribe --bind-to none -np "$2" "$IBC" run "$tmp/$1.ini" --quiet \
    --results "$tmp/$1-$2x$3" 2>"$tmp/$1-$2x$3.err"
  echo "   $1 ${2}x$3: exit $?"
}

same() { # NAME LAYOUT LAYOUT
  local a=$tmp/$1-$2 b=$tmp/$1-$3
  [ -s "$a/summary.csv" ] && [ -s "$a/$1.h5" ] && [ -s "$b/$1.h5" ] && cmp -s <(csv_numbers "$a/summary.csv") <(csv_numbers "$b/summary.csv") &&
    cmp -s "$a/layers.csv" "$b/layers.csv" && cmp -s <(h5_numbers "$a/$1.h5") <(h5_numbers "$b/$1.h5")
}

# --- SmolLM-135M shape: d 576, 30 layers, 9 heads, 3 kv heads, F 1536, vocab 49152 -----------
"$IBC" random-checkpoint "$tmp/smol" --d 576 --layers 30 --heads 9 --kv-heads 3 --ff 1536 --vocab 49152 --seed 3
docs "$tmp/smol.jsonl" 7 49152
job smol "$tmp/smol" "$tmp/smol.jsonl" 1,2,3 32 # lengths 9-21: five units, two of two documents
for l in "1 1" "1 2" "2 1"; do run_layout smol $l; done
check "SmolLM-135M shape: 1x2 (ranks x threads) bitwise equal to 1x1" 'same smol 1x1 1x2'
check "SmolLM-135M shape: 2x1 bitwise equal to 1x1" 'same smol 1x1 2x1'
# [parallel] round_units = 1: rounds of one unit per thread regroup the same exact sums (the
# HDF5 file records the job file, which has that line more: the CSVs are compared)
sed 's/^unit_rows = .*/&\nround_units = 1/' "$tmp/smol.ini" >"$tmp/smolr.ini"
OMP_NUM_THREADS=2 mpirun --oversubscribe --bind-to none -np 1 "$IBC" run "$tmp/smolr.ini" --quiet \
  --results "$tmp/smol-r1" 2>"$tmp/smol-r1.err"
check "SmolLM-135M shape: round_units = 1 at 1x2 gives the default 1x1's numbers bit for bit" \
  'cmp -s <(csv_numbers $tmp/smol-1x1/summary.csv) <(csv_numbers $tmp/smol-r1/summary.csv) && cmp -s $tmp/smol-1x1/layers.csv $tmp/smol-r1/layers.csv'
# A slower rank at this shape (IBC_SLOW: rank 1's unit steps stretched 20x), on twelve documents
# (lengths 9-68: more units than one round of 2 ranks x 4 holds, so the first round is a
# probe): after it the deal gives the slow rank only what its rate earns, and the numbers are
# those of 1x1 bit for bit.
docs "$tmp/smol12.jsonl" 12 49152
job smol12 "$tmp/smol" "$tmp/smol12.jsonl" 1,2,3 32
run_layout smol12 1 1
IBC_SLOW=1:20 IBC_TIMING=2 OMP_NUM_THREADS=1 mpirun --oversubscribe --bind-to none -x IBC_SLOW -x IBC_TIMING -np 2 \
  "$IBC" run "$tmp/smol12.ini" --results "$tmp/smol12-slow" 2>"$tmp/smol12-slow.err"
check "SmolLM-135M shape: 2x1 with rank 1 twenty times slower bitwise equal to 1x1, and it ran fewer tokens" \
  'same smol12 1x1 slow && grep -o "tokens per rank min [0-9]* max [0-9]*" $tmp/smol12-slow.err | awk "{ exit !(\$5 * 2 <= \$7) }"'
# Five units fit in one round of 2 ranks x 4: no probe round, the units dealt at once (one
# agreement, not two, for a corpus that has nothing left to deal after the first round).
IBC_TIMING=2 OMP_NUM_THREADS=1 mpirun --oversubscribe --bind-to none -x IBC_TIMING -np 2 \
  "$IBC" run "$tmp/smol.ini" --quiet --results "$tmp/smol-one" 2>"$tmp/smol-one.err"
check "SmolLM-135M shape: a corpus that fits in one round at 2x1 runs as one round" \
  '[ "$(grep -c "^ibc: round " $tmp/smol-one.err)" = 1 ]'
# A unit handed over at a layer boundary (run.c's handover): with rank 1's unit steps stretched
# 4x, rank 0 finishes its units of the one round first and takes one of rank 1's from its next
# layer on, with its residual stream; the counts are the same exact sums.
taken() { grep -o "units taken over [0-9]*" "$1" | awk '{ s += $4 } END { exit !(s >= 1) }'; }
IBC_SLOW=1:4 IBC_TIMING=1 OMP_NUM_THREADS=1 mpirun --oversubscribe --bind-to none -x IBC_SLOW -x IBC_TIMING -np 2 \
  "$IBC" run "$tmp/smol.ini" --quiet --results "$tmp/smol-ho" 2>"$tmp/smol-ho.err"
check "SmolLM-135M shape: 2x1 with a unit taken over mid-model bitwise equal to 1x1" \
  "taken $tmp/smol-ho.err && same smol 1x1 ho"
check "SmolLM-135M shape: seven documents, 31 hidden states" \
  '[ "$(cut -d, -f2 $tmp/smol-1x1/summary.csv | sed -n 2p)" = 7 ] && [ $(wc -l <$tmp/smol-1x1/layers.csv) -eq 32 ]'
check "imbalance recorded: summary.csv column, HDF5 attribute" \
  '[ "$(head -1 $tmp/smol-2x1/summary.csv | sed "s/.*,//")" = imbalance ] && h5dump -a /checkpoints/m/imbalance $tmp/smol-2x1/smol.h5 | grep -q "(0): [1-9]"'

# --- SmolLM-135M shape as checkpoints are published: BF16, tensors in name order ------------
# (bench/to-bf16.py): every layer is converted per round, with threads into two scratches, one
# converted while the threads compute with the other (model.c's tasks); 1x2, 1x3 and 2x1
# bitwise equal to 1x1.
$PY bench/to-bf16.py "$tmp/smol" "$tmp/smolbf"
job smolbf "$tmp/smolbf" "$tmp/smol.jsonl" 1,2,3 32
for l in "1 1" "1 2" "1 3" "2 1"; do run_layout smolbf $l; done
check "SmolLM-135M shape in BF16 (layers converted): 1x2, 1x3 and 2x1 bitwise equal to 1x1" \
  'same smolbf 1x1 1x2 && same smolbf 1x1 1x3 && same smolbf 1x1 2x1'
# Rank 0 slowed: rank 1 takes a unit over and converts the layers left into its own scratch.
IBC_SLOW=0:4 IBC_TIMING=1 OMP_NUM_THREADS=1 mpirun --oversubscribe --bind-to none -x IBC_SLOW -x IBC_TIMING -np 2 \
  "$IBC" run "$tmp/smolbf.ini" --quiet --results "$tmp/smolbf-ho" 2>"$tmp/smolbf-ho.err"
check "SmolLM-135M shape in BF16: 2x1 with a unit taken over bitwise equal to 1x1" \
  "taken $tmp/smolbf-ho.err && same smolbf 1x1 ho"

# --- the same under OpenBLAS's Haswell kernels (AVX2 + FMA) ----------------------------------
# Their sgemm gives other bits for the same rows in a taller product, so there the units being
# fixed by the corpus, never by the layout, is what keeps the bits: checked by the layouts
# agreeing, and by the job with unit_rows = 1 (every document alone) disagreeing (the check can
# see a difference). SkylakeX's kernels, which this machine picks, give the same bits either way.
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  job smolh "$tmp/smol" "$tmp/smol.jsonl" 1,2,3 32
  job smol1 "$tmp/smol" "$tmp/smol.jsonl" 1,2,3 1
  for l in "1 1" "1 2" "2 1"; do OPENBLAS_CORETYPE=Haswell run_layout smolh $l; done
  OPENBLAS_CORETYPE=Haswell run_layout smol1 1 1
  check "Haswell kernels: 1x2 and 2x1 bitwise equal to 1x1" 'same smolh 1x1 1x2 && same smolh 1x1 2x1'
  check "Haswell kernels: other units give other bits (the check sees stacking)" \
    '[ -s $tmp/smol1-1x1/layers.csv ] && ! cmp -s $tmp/smolh-1x1/layers.csv $tmp/smol1-1x1/layers.csv'
else
  echo "skip Haswell-kernel layouts: this CPU has no AVX2 + FMA"
fi

# --- tiny shape, 3 ranks and 3 threads ---------------------------------------------------------
"$IBC" random-checkpoint "$tmp/tiny" --seed 5
docs "$tmp/tiny.jsonl" 23 512
job tiny "$tmp/tiny" "$tmp/tiny.jsonl" 1,2,3,4 150 # lengths 9-124: fourteen units, seven stacked
for l in "1 1" "1 3" "3 1" "3 2"; do run_layout tiny $l; done
for l in 1x3 3x1 3x2; do check "tiny shape: $l bitwise equal to 1x1" "same tiny 1x1 $l"; done

# --- a slower rank: the deal moves units away from it, the bits stay -------------------------
# IBC_SLOW=2:20 stretches each unit step of rank 2 to twenty times its length, as a rank on a busier
# core would run. After the first round (one unit per thread) every rank's share follows how
# fast it ran, so rank 2 runs fewer tokens than the others (the timing line's per-rank
# tokens); whichever rank runs a unit, the counts are the same exact sums.
IBC_SLOW=2:20 IBC_TIMING=1 OMP_NUM_THREADS=1 mpirun --oversubscribe --bind-to none -x IBC_SLOW -x IBC_TIMING -np 3 \
  "$IBC" run "$tmp/tiny.ini" --results "$tmp/tiny-slow" 2>"$tmp/tiny-slow.err"
check "tiny shape: 3x1 with rank 2 twenty times slower bitwise equal to 1x1" "same tiny 1x1 slow"
check "tiny shape: the slower rank ran at most half the tokens of the busiest" \
  'grep -o "tokens per rank min [0-9]* max [0-9]*" $tmp/tiny-slow.err | awk "{ exit !(\$5 * 2 <= \$7) }"'
# Ranks with threads: a rank gives a unit only while it keeps one per thread; rank 1 slowed.
# (Whether units are taken over here depends on the timing of this tiny model's short steps;
# the SmolLM-135M-shape checks above are the ones that make sure of a handover.)
IBC_SLOW=1:6 IBC_TIMING=1 OMP_NUM_THREADS=2 mpirun --oversubscribe --bind-to none -x IBC_SLOW -x IBC_TIMING -np 3 \
  "$IBC" run "$tmp/tiny.ini" --results "$tmp/tiny-slow2" 2>"$tmp/tiny-slow2.err"
check "tiny shape: 3x2 with rank 1 six times slower bitwise equal to 1x1" "same tiny 1x1 slow2"
# Folds and an anchor ensemble: a unit taken over adds its later layers to its documents'
# folds and to every anchor set on the rank that took it (se_doc_resume on each accumulator).
# At the SmolLM-135M shape, whose steps are long enough for the handover to happen every time.
sed -e 's/^bins = 100/&\nfolds = 3\nseeds = 1,2/' -e 's/^name = .*/name = smolf/' "$tmp/smol.ini" >"$tmp/smolf.ini"
run_layout smolf 1 1
IBC_SLOW=1:4 IBC_TIMING=1 OMP_NUM_THREADS=1 mpirun --oversubscribe --bind-to none -x IBC_SLOW -x IBC_TIMING -np 2 \
  "$IBC" run "$tmp/smolf.ini" --quiet --results "$tmp/smolf-ho" 2>"$tmp/smolf-ho.err"
check "SmolLM-135M shape with folds and two anchor sets: 2x1 with a unit taken over bitwise equal to 1x1" \
  "taken $tmp/smolf-ho.err && same smolf 1x1 ho"
