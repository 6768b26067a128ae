#!/usr/bin/env bash
# `ibc run` end to end: 1, 2 and 3 ranks give bitwise-identical results; the job reproduces
# soft_h through the whole pipeline; an interrupted job (SIGUSR1, SIGTERM, SIGKILL) resumes
# to the same bits; label rows divided among the ranks (1-4 ranks, forced many exchange rounds
# with a tiny MPI chunk) change no bit and sit where `ibc plan` predicts; bad job files and
# failing checkpoints. TAP-style lines.
. "$(dirname "$0")/lib.bash"
MPIRUN="mpirun --oversubscribe -np"
trap 'pkill -f "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT # and stop any rank left behind
if [ -z "$FX" ] || [ ! -d "$FX/softh" ]; then echo "skip job tests: fixtures folder absent (set IBC_FIXTURES)"; exit 0; fi

job() { # name output checkpoints... (NAME=PATH lines)
  local name=$1 out=$2; shift 2
  { echo "[job]"; echo "name = $name"; echo "output = $out"
    echo "[checkpoints]"; for c in "$@"; do echo "$c"; done
    echo "[corpus]"; echo "format = jsonl-ids"; echo "path = $FX/softh/fortunes300_stories260K.jsonl"
    echo "[estimator]"; echo "anchors = $FX/softh/anchors_d64_n100_seed0.npy"; } >"$tmp/$name.ini"
}
dump() { h5_numbers "$1"; } # the numbers, without the file name line, the timing and the row balance

# --- 1, 2, 3, 4 ranks, and 3 ranks exchanging every round in 64 KiB MPI chunks: bitwise identical
ck=("stories260K = $FX/real/stories260K" "llama = $FX/hf-tiny/llama" "gpt2 = $FX/hf-tiny/gpt2"
    "gpt_neox = $FX/hf-tiny/gpt_neox" "olmo2 = $FX/hf-tiny/olmo2" "gemma = $FX/hf-tiny/gemma")
job multi "$tmp/out" "${ck[@]}"
for np in 1 2 3 4 t; do # t: tiny exchange rounds and chunks (a folder name as long as np1)
  sed "s|output = $tmp/out|output = $tmp/np$np|" "$tmp/multi.ini" >"$tmp/multi$np.ini"
  if [ $np = t ]; then # an exchange after every round (1-byte cap), every long MPI call in 64 KiB chunks (not a multiple of a row record: records split; ~20 sub-rounds per exchange)
    IBC_EXCHANGE_BYTES=1 IBC_MPI_CHUNK=65536 $MPIRUN 3 -x IBC_EXCHANGE_BYTES -x IBC_MPI_CHUNK "$IBC" run "$tmp/multi$np.ini" 2>"$tmp/err$np"
  else
    $MPIRUN $np "$IBC" run "$tmp/multi$np.ini" --quiet 2>"$tmp/err$np"
  fi
  echo "   ranks $np: exit $?"
done
# The job text differs only in the output folder; compare every number.
same_as_np1() { # file under multi/, compared with cmp (csv) or as h5dump numbers (h5)
  local f=$1 np
  for np in 2 3 4 t; do
    case $f in
      *.h5) diff <(dump $tmp/np1/multi/$f | grep -v "$tmp") <(dump $tmp/np$np/multi/$f | grep -v "$tmp") >/dev/null || return 1 ;;
      *) cmp -s <(csv_numbers $tmp/np1/multi/$f) <(csv_numbers $tmp/np$np/multi/$f) || return 1 ;; # without the last column (summary: imbalance, a timing)
    esac
  done
}
check "1, 2, 3, 4 ranks and tiny exchange rounds/chunks: summary.csv identical" 'same_as_np1 summary.csv'
check "1, 2, 3, 4 ranks and tiny exchange rounds/chunks: layers.csv identical" 'same_as_np1 layers.csv'
check "1, 2, 3, 4 ranks and tiny exchange rounds/chunks: every HDF5 number identical" 'same_as_np1 multi.h5'
# Rows per rank: the run's rank_rows line equals `ibc plan --ranks 3` (owner.h, one rule).
"$IBC" plan "$tmp/multit.ini" --ranks 3 >"$tmp/plan3" 2>&1
check "rows per rank of a 3-rank run equal ibc plan --ranks 3 (rank_rows)" \
  '[ "$(grep -m1 -o "rank_rows.*" $tmp/errt)" = "$(grep -m1 "^rank_rows" $tmp/plan3)" ] && grep -q "^rank_rows [0-9]* [0-9]* [0-9]*$" $tmp/plan3'
sent() { h5dump -a /checkpoints/stories260K/sent_max "$1" | awk '/\(0\)/ { print $2 }'; }
check "row balance recorded: 1 rank sends nothing; exchanging every round sends more than at the cap" \
  '[ "$(sent $tmp/np1/multi/multi.h5)" = 0 ] && [ "$(sent $tmp/npt/multi/multi.h5)" -gt "$(sent $tmp/np3/multi/multi.h5)" ] && h5dump -a /checkpoints/gpt2/rows_max $tmp/np4/multi/multi.h5 | grep -q "(0): [1-9]"'
check "six checkpoints, all complete" '[ $(wc -l <$tmp/np2/multi/summary.csv) -eq 7 ]'

# --- the job reproduces soft_h (tolerance 1e-6, as test_softent) ------------------------------
check "job on stories260K matches soft_h per layer and in the summary" "$PY - '$tmp/np2/multi' '$FX/softh/stories260K_fortunes300.json' <<'PY'
import csv, json, sys
g = json.load(open(sys.argv[2]))
rows = [r for r in csv.DictReader(open(sys.argv[1] + '/layers.csv')) if r['checkpoint'] == 'stories260K']
assert len(rows) == 6
for r, gl in zip(rows, g['per_layer']):
    assert int(r['n_positions']) == gl['N']
    assert abs(float(r['H']) - gl['H(Z)']) < 1e-6
    for k in range(1, 5):
        assert abs(float(r['I_X%d' % k]) - gl['I(X;Z)/input_%d' % k]) < 1e-6
        assert abs(float(r['I_Y%d' % k]) - gl['I(X;Z)/output_%d' % k]) < 1e-6
    assert r['I_pref'] == ''
s = [r for r in csv.DictReader(open(sys.argv[1] + '/summary.csv')) if r['checkpoint'] == 'stories260K'][0]
for k in range(1, 5):
    assert abs(float(s['optimality_%d' % k]) - g['optimality'][str(k)]) < 1e-6
    assert abs(float(s['complexity_%d' % k]) - g['mean_over_layers_1_to_L']['I(X;Z)/input_%d' % k]) < 1e-6
PY"
check "results readable by h5py-free tools: h5dump lists anchors, eps and the job text" \
  'h5dump -H $tmp/np1/multi/multi.h5 | grep -q "DATASET \"d64\"" && h5dump -a /anchors/d64/eps $tmp/np1/multi/multi.h5 | grep -q 0.0362 && h5dump -d /run/job $tmp/np1/multi/multi.h5 | grep -q "jsonl-ids"'

# --- resume: interrupted runs end bitwise equal to an uninterrupted one ------------------------
rck=()
for i in 1 2 3 4 5; do rck+=("s$i = $FX/real/stories260K"); done
job resume "$tmp/ref" "${rck[@]}"
$MPIRUN 2 "$IBC" run "$tmp/resume.ini" --quiet
for how in USR1 TERM KILL; do
  sed "s|output = $tmp/ref|output = $tmp/r$how|" "$tmp/resume.ini" >"$tmp/resume$how.ini"
  $MPIRUN 2 "$IBC" run "$tmp/resume$how.ini" --quiet 2>"$tmp/r$how.err" &
  mp=$!
  for _ in $(seq 200); do [ -f "$tmp/r$how/resume/resume.h5" ] && break; sleep 0.05; done
  case $how in
    USR1) kill -USR1 $mp ;;                                            # mpirun forwards it
    TERM) pkill -TERM -f "^$IBC run $tmp/resume$how.ini" ;;            # every rank, not mpirun
    KILL) pkill -KILL -n -f "^$IBC run $tmp/resume$how.ini" ;;         # one rank dies
  esac
  wait $mp; st=$?
  done1=$(($(wc -l <"$tmp/r$how/resume/summary.csv") - 1))
  echo "   $how: first run exit $st with $done1 of 5 checkpoints"
  [ $how != KILL ] && check "SIGTERM-like $how: exit 75 and a message to resume" '[ $st -eq 75 ] && grep -q "run the same job again to resume" $tmp/r$how.err'
  $MPIRUN 2 "$IBC" run "$tmp/resume$how.ini" 2>"$tmp/r$how.err2"
  check "resume after $how: finished checkpoints skipped, results identical" \
    'grep -q "already complete, skipped" $tmp/r$how.err2 && cmp -s <(csv_numbers $tmp/ref/resume/summary.csv) <(csv_numbers $tmp/r$how/resume/summary.csv) && cmp -s $tmp/ref/resume/layers.csv $tmp/r$how/resume/layers.csv'
done
check "no temporary file left in results" '! ls $tmp/r*/resume/*.tmp* >/dev/null 2>&1'

# --- progress on rank 0 -----------------------------------------------------------------------
$MPIRUN 2 "$IBC" run "$tmp/multi1.ini" 2>"$tmp/progress" >/dev/null
check "progress: checkpoint k/K, documents, tokens/s and ETA on stderr (skips on resume)" \
  'grep -q "already complete, skipped" $tmp/progress'
rm -rf "$tmp/np1"
$MPIRUN 2 "$IBC" run "$tmp/multi1.ini" 2>"$tmp/progress" >/dev/null
check "progress line format" 'grep -qE "^ibc: checkpoint 6/6 gemma: documents 300/300, [0-9]+ tokens/s, imbalance [0-9.]+, ETA [0-9]+s$" $tmp/progress'
rm -rf "$tmp/np1"
$MPIRUN 2 "$IBC" run "$tmp/multi1.ini" --quiet 2>"$tmp/progress" >/dev/null
check "--quiet silences progress" '[ ! -s $tmp/progress ]'

# --- bad input and failures --------------------------------------------------------------------
job bad "$tmp/bad" "s = $FX/real/stories260K"
printf '[estimator]\nbinz = 100\n' >>"$tmp/bad.ini"
"$IBC" run "$tmp/bad.ini" 2>"$tmp/e"; st=$?
check "unknown key: exit 2, file and line" '[ $st -eq 2 ] && grep -q "bad.ini:12: unknown key binz in \[estimator\]" $tmp/e && [ $(wc -l <$tmp/e) -eq 1 ]'
job bad2 "$tmp/bad" "s = $FX/real/stories260K"
sed -i 's/^\[estimator\]/[estimator]\ntemperature = hot/' "$tmp/bad2.ini"
"$IBC" run "$tmp/bad2.ini" 2>"$tmp/e"; st=$?
check "bad value: exit 2 with what was expected" '[ $st -eq 2 ] && grep -q "expected bound, leading or a positive number" $tmp/e'
job short "$tmp/short" "s = /nonexistent/model"
echo '{"ids": [1, 2, 3]}' >"$tmp/short.jsonl"
sed -i "s|path = .*jsonl|path = $tmp/short.jsonl|" "$tmp/short.ini"
"$IBC" run "$tmp/short.ini" 2>"$tmp/e"; st=$?
check "corpus without a countable position: exit 2 before any model is loaded" '[ $st -eq 2 ] && grep -q "no document has a countable position" $tmp/e && ! grep -q nonexistent $tmp/e'
job failing "$tmp/failing" "broken = $tmp/nowhere" "s = $FX/real/stories260K"
$MPIRUN 2 "$IBC" run "$tmp/failing.ini" --quiet 2>"$tmp/e"; st=$?
check "a checkpoint that cannot load is reported, marked failed, and the job goes on" \
  '[ $st -eq 0 ] && grep -q "checkpoint broken failed to load" $tmp/e && h5dump -a /checkpoints/broken/status $tmp/failing/failing/failing.h5 | grep -q failed && grep -q "^s," $tmp/failing/failing/summary.csv'
sed -i 's/^\[job\]/[job]\non_error = stop/' "$tmp/failing.ini"; rm -rf "$tmp/failing"
"$IBC" run "$tmp/failing.ini" --quiet 2>"$tmp/e"; st=$?
check "on_error = stop stops with exit 2 naming the checkpoint folder" '[ $st -eq 2 ] && grep -q "$tmp/nowhere" $tmp/e'
