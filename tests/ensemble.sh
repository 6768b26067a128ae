#!/usr/bin/env bash
# Anchor ensembles (`[estimator] seeds`) and data folds (`folds`), end to end (issue 14):
# the default is today's output (also against an earlier ibc when IBC_REF_BIN names one);
# seeds = 0,1,2 with folds = 3 gives the same bits on 1, 2 and 3 ranks (3 exchanging every
# round); each set's numbers equal a one-set run with that seed, bit for bit; folds leave the
# means alone; `ibc report` shows the spreads; bad seeds and folds are one line, exit 2, and
# write nothing. TAP-style lines.
. "$(dirname "$0")/lib.bash"
MPIRUN="mpirun --oversubscribe -np"
if [ -z "$FX" ] || [ ! -d "$FX/softh" ]; then echo "skip ensemble tests: fixtures folder absent (set IBC_FIXTURES)"; exit 0; fi

job() { # name estimator-lines (anchors generated from the seeds: two widths, 64 and the tiny model's)
  printf '[job]\nname = %s\noutput = %s/%s\n[checkpoints]\nstories260K = %s\nneox = %s\n[corpus]\nformat = jsonl-ids\npath = %s\ndocuments = 120\nseed = 3\n[estimator]\n%b\n' \
    "$1" "$tmp" "$1" "$FX/real/stories260K" "$FX/hf-tiny/gpt_neox" "$FX/softh/fortunes300_stories260K.jsonl" "$2" >"$tmp/$1.ini"
}
res() { echo "$tmp/$1/$2"; } # the results folder of job $1 is $tmp/$1/$2 (output $tmp/$1, name $2)
dump() { h5_numbers "$1" | grep -v "$tmp"; }

# --- (a) the default: no seeds key, seed = 0 and seeds = 0 are one thing, today's ------------------
job def "orders = 1,2,3"
job s0 "orders = 1,2,3\nseeds = 0"
for n in def s0; do "$IBC" run "$tmp/$n.ini" --quiet; done
check "default and seeds = 0: summary.csv, layers.csv identical" \
  'cmp -s <(csv_numbers $(res def def)/summary.csv) <(csv_numbers $(res s0 s0)/summary.csv) && cmp -s $(res def def)/layers.csv $(res s0 s0)/layers.csv'
check "one anchor set: no _sd or _se column, no per-set dataset" \
  '! grep -q "_sd\|_se" $(res def def)/summary.csv && ! grep -q "_sd" $(res def def)/layers.csv && ! h5dump -n $(res def def)/def.h5 | grep -q "_seed\|_sd\|fold"'
norev() { grep -v 'git_revision\|(0): "[0-9a-f]\{7,\}\(-dirty\)\?"$'; } # the revisions that wrote the files differ
if [ -n "${IBC_REF_BIN:-}" ]; then # an ibc built before ensembles existed
  job ref "orders = 1,2,3"
  sed -i 's/^name = ref/name = def/' "$tmp/ref.ini" # the same job text but for the output folder (as long)
  "$IBC_REF_BIN" run "$tmp/ref.ini" --quiet
  check "default equals $IBC_REF_BIN's output: CSVs byte for byte, every HDF5 number" \
    'cmp -s <(csv_numbers $(res def def)/summary.csv) <(csv_numbers $(res ref def)/summary.csv) && cmp -s $(res def def)/layers.csv $(res ref def)/layers.csv &&
     diff <(dump $(res def def)/def.h5 | norev) <(dump $(res ref def)/def.h5 | norev) >/dev/null'
else
  echo "skip default against an earlier ibc: set IBC_REF_BIN to one (e.g. main's bin/ibc)"
fi

# --- (b, d) seeds = 0,1,2 and folds = 3 on 1, 2, 3 ranks (3: an exchange every round) ---------------
for np in 1 2 3; do
  job e$np "orders = 1,2,3\nseeds = 0,1,2\nfolds = 3"
  sed -i "s/^name = e$np/name = e/" "$tmp/e$np.ini"
  if [ $np = 3 ]; then IBC_EXCHANGE_BYTES=1 $MPIRUN 3 -x IBC_EXCHANGE_BYTES "$IBC" run "$tmp/e$np.ini" --quiet
  else $MPIRUN $np "$IBC" run "$tmp/e$np.ini" --quiet; fi
done
same_ranks() { # file under e, compared with np 1
  local np
  for np in 2 3; do
    case $1 in
      *.h5) diff <(dump $(res e1 e)/$1) <(dump $(res e$np e)/$1) >/dev/null || return 1 ;;
      *) cmp -s <(csv_numbers $(res e1 e)/$1) <(csv_numbers $(res e$np e)/$1) || return 1 ;;
    esac
  done
}
check "seeds and folds, 1, 2, 3 ranks: summary.csv identical" 'same_ranks summary.csv'
check "seeds and folds, 1, 2, 3 ranks: layers.csv identical" 'same_ranks layers.csv'
check "seeds and folds, 1, 2, 3 ranks: every HDF5 number identical" 'same_ranks e.h5'
check "summary.csv: means, then 14 _sd and 14 _se columns, then imbalance" \
  '[ "$(head -1 $(res e1 e)/summary.csv | tr , "\n" | grep -c "_sd$")" = 14 ] && [ "$(head -1 $(res e1 e)/summary.csv | tr , "\n" | grep -c "_se$")" = 14 ] &&
   head -1 $(res e1 e)/summary.csv | grep -q "pref_info,H_mean_sd,.*,pref_info_sd,H_mean_se,.*,pref_info_se,imbalance$"'

# --- (c) each set equals a one-set run with its seed, bit for bit; folds leave the means alone ------
job s2 "orders = 1,2,3\nseeds = 2"
job e0 "orders = 1,2,3\nseeds = 0,1,2"
for n in s2 e0; do "$IBC" run "$tmp/$n.ini" --quiet; done
if $PY -c "import h5py" 2>/dev/null; then
  check "set 0 of seeds = 0,1,2 equals seeds = 0, set 2 equals seeds = 2 (H, I_X, I_Y, summary), bit for bit" "$PY - '$(res e1 e)/e.h5' '$(res s0 s0)/s0.h5' '$(res s2 s2)/s2.h5' <<'PY'
import sys, h5py, numpy as np
e, one = h5py.File(sys.argv[1]), {0: h5py.File(sys.argv[2]), 2: h5py.File(sys.argv[3])}
for k, f in one.items():
    for c in ('stories260K', 'neox'):
        a, b = e['checkpoints/' + c], f['checkpoints/' + c]
        for q in ('H', 'I_X', 'I_Y'): assert np.array_equal(a[q + '_seeds'][k], b[q][()], equal_nan=True), (k, c, q)
        assert np.array_equal(a['summary_seeds'][k, 1:5], b.attrs['complexity'], equal_nan=True), (k, c)
        assert np.array_equal(e['anchors/d64' + ('_seed2' if k else '')][()], f['anchors/d64'][()])
PY"
else
  echo "skip per-set comparison: python3-h5py is not installed"
fi
check "folds change no mean and no spread: seeds = 0,1,2 alone gives the same columns" \
  'cmp -s <(cut -d, -f1-31 $(res e1 e)/summary.csv) <(cut -d, -f1-31 $(res e0 e0)/summary.csv) && cmp -s $(res e1 e)/layers.csv $(res e0 e0)/layers.csv'

# --- the report reads the spreads ---------------------------------------------------------------
"$IBC" report "$(res e1 e)" --out "$tmp/r.html" >/dev/null 2>&1
check "ibc report shows the anchor spread of an ensemble" 'grep -q "spread over the anchor sets" $tmp/r.html'

# --- bad input: one line naming the job file (and line), exit 2, no results folder ---------------
bad() { # name estimator-lines expected-message
  job "$1" "$2"
  "$IBC" run "$tmp/$1.ini" 2>"$tmp/$1.err"; local st=$?
  check "bad input ($2): exit 2, one line: $3" \
    "[ $st -eq 2 ] && [ \$(wc -l <$tmp/$1.err) -eq 1 ] && grep -q '$tmp/$1.ini.*$3' $tmp/$1.err && [ ! -e $tmp/$1 ]"
}
bad dup "seeds = 0,1,1" "seeds: 1 is listed twice"
bad neg "seeds = 0,-1" "seeds: expected distinct integers >= 0"
bad frac "seeds = 0,1.5" "seeds: expected distinct integers >= 0"
bad both "seed = 1\nseeds = 0,1" "seed and seeds: give one"
bad file "seeds = 0,1\nanchors = $FX/softh/anchors_d64_n100_seed0.npy" "seeds lists 2 anchor sets but anchors names one file"
bad f1 "folds = 1" "folds: expected an integer in \[2, 64\]"
job many "folds = 5"
sed -i 's/^documents = 120/documents = 4/' "$tmp/many.ini"
"$IBC" run "$tmp/many.ini" --quiet 2>"$tmp/many.err"; st=$?
check "bad input (folds = 5 over 4 documents): exit 2, one line naming the job file and folds, nothing written" \
  '[ $st -eq 2 ] && [ $(wc -l <$tmp/many.err) -eq 1 ] && grep -q "$tmp/many.ini: \[estimator\] folds = 5, but only 4 documents" $tmp/many.err && [ ! -e $tmp/many ]'
