#!/usr/bin/env bash
# Every failure loud and the same on every rank (issue 11): the fault matrix (IBC_FAULT=PHASE:RANK
# for every phase x every rank of a 3-rank job: exit 2 within 30 s, the injected message printed
# exactly once), an allocation-failure sweep (IBC_FAIL_ALLOC=N over a small 2-rank job, at a
# stride: no signal, no hang, no half-written results), results on a full filesystem (a 64 KiB
# tmpfs: exit 2 naming the file, the previous results intact and resumable), and a job with odd
# `bins` and odd position counts (run under `make asan` by the suite). TAP-style lines.
. "$(dirname "$0")/lib.bash"
trap 'pkill -f "$tmp" 2>/dev/null; umount "$tmp/full" 2>/dev/null; rm -rf "$tmp"' EXIT
if [ -z "$FX" ] || [ ! -d "$FX/tokenizers" ]; then echo "skip failure tests: fixtures folder absent (set IBC_FIXTURES)"; exit 0; fi
# The time limit of every run: 30 s (issue 11); FAILURE_TIMEOUT raises it for slow builds
# (ASan on a loaded machine), where a run that hits it still fails the test.
lim=${FAILURE_TIMEOUT:-30}
run() { # np ini [env...]: runs the job within the limit; sets st and leaves stderr in $tmp/err
  local np=$1 ini=$2; shift 2
  env "$@" timeout -k 5 $lim mpirun --oversubscribe -np "$np" "$IBC" run "$ini" --quiet >/dev/null 2>"$tmp/err"
  st=$?
}

# A text corpus (so the tokenize phase runs), two checkpoints, small.
"$IBC" random-checkpoint "$tmp/m1" --d 16 --layers 2 --heads 2 --kv-heads 1 --ff 32 --vocab 50257 --seed 1
"$IBC" random-checkpoint "$tmp/m2" --d 16 --layers 2 --heads 2 --kv-heads 1 --ff 32 --vocab 50257 --seed 2
awk 'BEGIN{n=0} /^%$/{n++} n<40' "$FX/corpora/debian_fortunes_text.txt" >"$tmp/fortunes.txt"
mkjob() { # file output [extra estimator lines]
  cat >"$1" <<INI
[job]
name = f
output = $2
on_error = stop
[checkpoints]
m1 = $tmp/m1
m2 = $tmp/m2
[corpus]
format = text
path = $tmp/fortunes.txt
separator = %
tokenizer = $FX/tokenizers/gpt2/tokenizer.json
max_length = 32
[estimator]
orders = 1,2
${3:-}
INI
}
mkjob "$tmp/f.ini" "$tmp/out"

# --- the fault matrix: 7 phases x ranks 0, 1, 2 --------------------------------------------------
for phase in corpus tokenize precount load forward merge write; do
  bad=""
  for r in 0 1 2; do
    run 3 "$tmp/f.ini" IBC_FAULT=$phase:$r
    msg="injected fault: $phase on rank $r (IBC_FAULT)"
    n=$(grep -cF "$msg" "$tmp/err")
    if [ $st -ne 2 ] || [ "$n" -ne 1 ]; then bad="$bad rank $r (exit $st, message $n times)"; fi
    ls "$tmp/out/f/"*.tmp* >/dev/null 2>&1 && bad="$bad rank $r (temporary files left)"
  done
  check "fault $phase on rank 0, 1, 2 of 3: exit 2 within $lim s, the message once${bad:+:$bad}" '[ -z "$bad" ]'
done

# --- allocation failures: IBC_FAIL_ALLOC=N (the N-th allocation of each process fails) --------
# A small 2-rank job that resumes from the first checkpoint's results. Every run must end within
# 30 s, exit 0, 2, or 1 with the out-of-memory line (the abort path), and leave the results folder
# either as it was or complete: never a temporary file, never a mix. The stride keeps the suite
# fast; FAIL_ALLOC_STRIDE=1 runs the full sweep (the figures in docs/reliability.md).
awk 'BEGIN{n=0} /^%$/{n++} n<10' "$FX/corpora/debian_fortunes_text.txt" >"$tmp/fortunes.txt"
mpirun --oversubscribe -np 2 "$IBC" run "$tmp/f.ini" --quiet --only 0 --results "$tmp/base" 2>/dev/null
cp -r "$tmp/base" "$tmp/ref" && mpirun --oversubscribe -np 2 "$IBC" run "$tmp/f.ini" --quiet --results "$tmp/ref" 2>/dev/null
cp -r "$tmp/base" "$tmp/count"
total=$(IBC_FAIL_ALLOC=count mpirun --oversubscribe -np 2 "$IBC" run "$tmp/f.ini" --quiet --results "$tmp/count" 2>&1 >/dev/null |
  sed -n 's/.*allocations: \([0-9]*\).*/\1/p' | sort -n | tail -1)
stride=${FAIL_ALLOC_STRIDE:-$(( ${total:-400} / 40 + 1 ))} # about 40 runs spread over every allocation
# Equal results: every number but `imbalance` (a timing measurement, lib.bash).
same() { cmp -s "$1/layers.csv" "$2/layers.csv" && [ "$(csv_numbers "$1/summary.csv")" = "$(csv_numbers "$2/summary.csv")" ] &&
  [ "$(h5_numbers "$1/f.h5")" = "$(h5_numbers "$2/f.h5")" ]; }
bad=""; runs=0; last=0
for ((N = 1; ; N += stride)); do
  rm -rf "$tmp/sw" && cp -r "$tmp/base" "$tmp/sw"
  IBC_FAIL_ALLOC=$N timeout -k 5 $lim mpirun --oversubscribe -np 2 "$IBC" run "$tmp/f.ini" --quiet --results "$tmp/sw" >/dev/null 2>"$tmp/err"
  st=$?; runs=$((runs + 1))
  case $st in
    0|2) ;;
    1) grep -q "out of memory: .* bytes at " "$tmp/err" || bad="$bad N=$N(exit 1 without the out-of-memory line)" ;;
    124|137) bad="$bad N=$N(no end within $lim s)"; break ;;
    *) bad="$bad N=$N(exit $st)" ;;
  esac
  ls "$tmp/sw" | grep -q '\.tmp' && bad="$bad N=$N(temporary file left)"
  same "$tmp/sw" "$tmp/base" || same "$tmp/sw" "$tmp/ref" || bad="$bad N=$N(results neither the previous nor complete)"
  [ $st -eq 0 ] && { last=$N; break; }
  [ $N -gt $(( ${total:-20000} + stride )) ] && { bad="$bad (no N up to ${total:-20000} passes)"; break; }
done
echo "   allocation sweep: $runs runs, stride $stride, first passing N = $last"
check "IBC_FAIL_ALLOC=1..$last step $stride: no signal, no hang, results the previous or complete${bad:+:$bad}" '[ -z "$bad" ]'

# --- a full filesystem: exit 2 naming the file, the previous results intact and resumable -----
mkdir -p "$tmp/full"
if ! mount -t tmpfs -o size=64k tmpfs "$tmp/full" 2>/dev/null; then
  echo "skip full filesystem: mount -t tmpfs not permitted here"
else
  mpirun --oversubscribe -np 2 "$IBC" run "$tmp/f.ini" --quiet --only 0 --results "$tmp/full/r" 2>/dev/null
  cp -r "$tmp/full/r" "$tmp/before"
  dd if=/dev/zero of="$tmp/full/filler" bs=1k count=64 2>/dev/null # fills what is left
  timeout -k 5 $lim mpirun --oversubscribe -np 2 "$IBC" run "$tmp/f.ini" --quiet --results "$tmp/full/r" >/dev/null 2>"$tmp/err"
  st=$?
  echo "   full filesystem: $(grep "^ibc: " "$tmp/err")"
  check "full filesystem: exit 2, one line naming the file in the results folder" \
    '[ $st -eq 2 ] && [ $(grep -c "^ibc: " $tmp/err) -eq 1 ] && grep -q "^ibc: $tmp/full/r/[a-z.]*: " $tmp/err'
  check "full filesystem: the previous results are intact, no temporary file" \
    'same "$tmp/full/r" "$tmp/before" && ! ls "$tmp/full/r" | grep -q "\.tmp"'
  rm -f "$tmp/full/filler"
  timeout -k 5 $lim mpirun --oversubscribe -np 2 "$IBC" run "$tmp/f.ini" --quiet --results "$tmp/full/r" 2>"$tmp/err"
  check "full filesystem, space freed: the job resumes and ends equal to an uninterrupted run" '[ $? -eq 0 ] && same "$tmp/full/r" "$tmp/ref"'
  umount "$tmp/full"
fi

# --- odd bins and odd position counts (under `make asan` this runs with UBSan, no recovery) ----
mkjob "$tmp/odd.ini" "$tmp/odd" "bins = 3"
awk 'BEGIN{srand(7); for (d = 0; d < 6; d++) { n = 9 + d; s = "["; for (i = 0; i < n; i++) s = s (i ? ", " : "") int(rand() * 50000); print "{\"ids\": " s "]}" } }' >"$tmp/odd.jsonl"
sed -i -e 's/^format = text/format = jsonl-ids/' -e "s|^path = .*|path = $tmp/odd.jsonl|" -e '/^separator/d' -e '/^tokenizer/d' "$tmp/odd.ini"
timeout -k 5 60 mpirun --oversubscribe -np 2 "$IBC" run "$tmp/odd.ini" --quiet 2>"$tmp/err"
st=$?
check "bins = 3 with documents of 9..14 ids (odd and even positions): completes cleanly (exit $st)" '[ $st -eq 0 ] && [ $(wc -l <$tmp/odd/f/summary.csv) -eq 3 ]'
