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
run() { # np ini [env...]: runs the job with a 30 s limit; sets st and leaves stderr in $tmp/err
  local np=$1 ini=$2; shift 2
  env "$@" timeout -k 5 30 mpirun --oversubscribe -np "$np" "$IBC" run "$ini" --quiet >/dev/null 2>"$tmp/err"
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
  check "fault $phase on rank 0, 1, 2 of 3: exit 2 within 30 s, the message once${bad:+:$bad}" '[ -z "$bad" ]'
done
