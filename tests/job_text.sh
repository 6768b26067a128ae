#!/usr/bin/env bash
# `ibc run` on text corpora: documents read from plain text (fortunes, `%` separators) and from
# JSONL, tokenized by ibc's tokenizer on every rank, 1, 2 and 3 ranks bitwise identical, and
# the positions counted equal to what `ibc tokenize` gives for the same documents.
. "$(dirname "$0")/lib.bash"
if [ -z "$FX" ] || [ ! -d "$FX/tokenizers" ]; then echo "skip text-corpus job tests: fixtures folder absent"; exit 0; fi

# Two random checkpoints with GPT-2's vocabulary; the fortunes' first 200 entries.
"$IBC" random-checkpoint "$tmp/m1" --d 32 --layers 2 --heads 2 --kv-heads 1 --ff 64 --vocab 50257 --seed 1
"$IBC" random-checkpoint "$tmp/m2" --d 32 --layers 2 --heads 2 --kv-heads 1 --ff 64 --vocab 50257 --seed 2
awk 'BEGIN{n=0} /^%$/{n++} n<200' "$FX/corpora/debian_fortunes_text.txt" >"$tmp/fortunes.txt"
for np in 1 2 3 c; do # c: 3 ranks with every long MPI call (text broadcast, id gather, exchange) in 5-byte chunks
  cat >"$tmp/t$np.ini" <<INI
[job]
name = text
output = $tmp/np$np
[checkpoints]
m1 = $tmp/m1
m2 = $tmp/m2
[corpus]
format = text
path = $tmp/fortunes.txt
separator = %
tokenizer = $FX/tokenizers/gpt2/tokenizer.json
max_length = 64
[estimator]
orders = 1,2
layers = 0,2
INI
  [ $np = c ] && chunk=5 || chunk=
  IBC_MPI_CHUNK=$chunk mpirun --oversubscribe -np ${np/c/3} -x IBC_MPI_CHUNK "$IBC" run "$tmp/t$np.ini" --quiet || echo "   ranks $np failed"
done
check "text corpus: 1, 2 and 3 ranks, and 3 ranks in 5-byte MPI chunks, give identical results" \
  'cmp -s $tmp/np1/text/layers.csv $tmp/np2/text/layers.csv && cmp -s $tmp/np1/text/layers.csv $tmp/np3/text/layers.csv && cmp -s $tmp/np1/text/layers.csv $tmp/npc/text/layers.csv && cmp -s <(csv_numbers $tmp/np1/text/summary.csv) <(csv_numbers $tmp/np3/text/summary.csv) && cmp -s <(csv_numbers $tmp/np1/text/summary.csv) <(csv_numbers $tmp/npc/text/summary.csv)'
check "layers = 0,2 tracks those two hidden states" '[ "$(cut -d, -f1,2 $tmp/np2/text/layers.csv | tr "\n" " ")" = "checkpoint,layer m1,0 m1,2 m2,0 m2,2 " ]'
# The positions: every fortune through `ibc tokenize`, truncated to 64, minus 2 n_max - 1.
$PY - "$tmp/fortunes.txt" >"$tmp/docs.jsonl" <<'PY'
import json, sys
docs, cur = [], []
for line in open(sys.argv[1], encoding="utf-8"):
    if line.rstrip("\r\n") == "%":
        docs.append("".join(cur)); cur = []
    else:
        cur.append(line)
docs.append("".join(cur))
for d in docs:
    d = d.rstrip("\r\n")
    if d: print(json.dumps({"text": d}))
PY
"$IBC" tokenize --tokenizer "$FX/tokenizers/gpt2/tokenizer.json" --jsonl "$tmp/docs.jsonl" >"$tmp/ids.txt"
want=$($PY -c "
import json, sys
print(sum(max(0, min(len(json.loads(l)), 64) - 3) for l in open('$tmp/ids.txt')))")
got=$(sed -n 2p "$tmp/np1/text/summary.csv" | cut -d, -f3)
check "text corpus: positions counted equal the tokenizer's ids ($got = $want)" '[ "$got" = "$want" ]'
# The same documents as JSONL give the same numbers.
sed -e 's/format = text/format = jsonl/' -e "s|path = .*|path = $tmp/docs.jsonl|" -e 's/separator = %//' \
    -e "s|output = .*|output = $tmp/jl|" "$tmp/t1.ini" >"$tmp/jl.ini"
mpirun --oversubscribe -np 2 "$IBC" run "$tmp/jl.ini" --quiet
check "jsonl corpus of the same documents: identical layers.csv" 'cmp -s $tmp/np1/text/layers.csv $tmp/jl/text/layers.csv'
