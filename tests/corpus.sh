#!/usr/bin/env bash
# Corpus readers through `ibc run`: separators, token files, sampling, bad documents (stop with
# file and line, or skip and count), preference pairs, checkpoint lists. Files made here.
. "$(dirname "$0")/lib.bash"
attr() { h5dump -a "/checkpoints/m/$2" "$1" | sed -n 's/^ *(0): //p'; } # FILE ATTR

"$IBC" random-checkpoint "$tmp/m" --d 16 --layers 1 --heads 2 --kv-heads 1 --ff 32 --vocab 512
job() { # NAME, then [corpus] lines
  local name=$1; shift
  { printf '[job]\nname = %s\noutput = %s/out\n[checkpoints]\nm = %s/m\n[corpus]\n' "$name" "$tmp" "$tmp"
    for l in "$@"; do echo "$l"; done
    printf '[estimator]\norders = 1,2\n'; } >"$tmp/$name.ini"
}
run() { "$IBC" run "$tmp/$1.ini" --quiet 2>"$tmp/$1.err"; }

# Pre-tokenized documents: 40 of random lengths, as JSONL ids and as u16 / u32 token files.
$PY - "$tmp" <<'PY'
import json, random, struct, sys
d = sys.argv[1]; random.seed(3)
docs = [[random.randrange(512) for _ in range(random.randrange(3, 60))] for _ in range(40)]
with open(d + "/ids.jsonl", "w") as f:
    for x in docs: f.write(json.dumps({"ids": x}) + "\n")
flat = [t for x in docs for t in x]; offs = [0]
for x in docs: offs.append(offs[-1] + len(x))
open(d + "/tok16.bin", "wb").write(struct.pack("<%dH" % len(flat), *flat))
open(d + "/tok32.bin", "wb").write(struct.pack("<%dI" % len(flat), *flat))
open(d + "/offsets.bin", "wb").write(struct.pack("<%dQ" % len(offs), *offs))
with open(d + "/bad_ids.jsonl", "w") as f:
    for i, x in enumerate(docs[:5]): f.write(json.dumps({"ids": x + ([600] if i == 2 else [])}) + "\n")
PY
job ids "format = jsonl-ids" "path = $tmp/ids.jsonl"; run ids; cp "$tmp/out/ids/layers.csv" "$tmp/ids.csv"
job t16 "format = tokens-u16" "path = $tmp/tok16.bin" "offsets = $tmp/offsets.bin"; run t16
check "tokens-u16 + offsets equal the same documents as jsonl-ids" 'sed 1d $tmp/out/t16/layers.csv | diff -q - <(sed 1d $tmp/ids.csv) >/dev/null'
job t32 "format = tokens-u32" "path = $tmp/tok32.bin" "offsets = $tmp/offsets.bin"; run t32
check "tokens-u32 + offsets equal them too" 'sed 1d $tmp/out/t32/layers.csv | diff -q - <(sed 1d $tmp/ids.csv) >/dev/null'
head -c 40 "$tmp/offsets.bin" >"$tmp/short_offsets.bin"
job toff "format = tokens-u16" "path = $tmp/tok16.bin" "offsets = $tmp/short_offsets.bin"; run toff; st=$?
check "offsets that do not end at the token count: exit 2 naming the offsets file" '[ $st -eq 2 ] && grep -q short_offsets.bin $tmp/toff.err'

job s1 "format = jsonl-ids" "path = $tmp/ids.jsonl" "documents = 10" "seed = 5"; run s1; cp "$tmp/out/s1/summary.csv" "$tmp/s1a.csv"
rm -rf "$tmp/out/s1"; run s1
job s2 "format = jsonl-ids" "path = $tmp/ids.jsonl" "documents = 10" "seed = 6"; run s2
check "documents = 10: a seeded sample, the same on every run" 'cmp -s $tmp/s1a.csv $tmp/out/s1/summary.csv && [ "$(attr $tmp/out/s1/s1.h5 n_documents)" = 10 ]'
check "another seed, another sample" '[ "$(cut -d, -f3 $tmp/out/s1/summary.csv)" != "$(cut -d, -f3 $tmp/out/s2/summary.csv)" ]'

job bad "format = jsonl-ids" "path = $tmp/bad_ids.jsonl"; run bad; st=$?
check "an id past the vocabulary: exit 2, file and line" '[ $st -eq 2 ] && grep -q "bad_ids.jsonl:3: token id 600 is outside the vocabulary of 512" $tmp/bad.err'
job bads "format = jsonl-ids" "path = $tmp/bad_ids.jsonl" "on_bad_document = skip"; run bads
check "on_bad_document = skip: skipped and counted" '[ "$(attr $tmp/out/bads/bads.h5 n_skipped)" = 1 ]'
printf '{"ids": [1, 2, 3, 4, 5, 6]}\nnot json\n' >"$tmp/badjson.jsonl"
job bj "format = jsonl-ids" "path = $tmp/badjson.jsonl"; run bj; st=$?
check "a JSONL line that does not parse: exit 2, file and line" '[ $st -eq 2 ] && grep -q "badjson.jsonl:2: not a JSON object" $tmp/bj.err'
printf '' >"$tmp/empty.jsonl"
job em "format = jsonl-ids" "path = $tmp/empty.jsonl"; run em; st=$?
check "an empty corpus: exit 2" '[ $st -eq 2 ] && grep -q "holds no document" $tmp/em.err'

if [ -n "$FX" ] && [ -d "$FX/tokenizers" ]; then
  "$IBC" random-checkpoint "$tmp/g" --d 16 --layers 1 --heads 2 --kv-heads 1 --ff 32 --vocab 50257
  printf 'first document\nstill the first\n\nsecond one here\n\n\nthird, after two blank lines\n' >"$tmp/blank.txt"
  printf 'good text here\n%%\nbad \xff byte here\n%%\nmore good text here\n' >"$tmp/badutf.txt"
  tjob() { local n=$1; shift; { printf '[job]\nname = %s\noutput = %s/out\n[checkpoints]\nm = %s/g\n[corpus]\ntokenizer = %s\n' \
      "$n" "$tmp" "$tmp" "$FX/tokenizers/gpt2/tokenizer.json"; for l in "$@"; do echo "$l"; done; printf '[estimator]\norders = 1\n'; } >"$tmp/$n.ini"; }
  tjob bl "format = text" "path = $tmp/blank.txt"; run bl
  check "text, blank-line separator: three documents" '[ "$(attr $tmp/out/bl/bl.h5 n_documents)" = 3 ]'
  tjob bu "format = text" "path = $tmp/badutf.txt" "separator = %"; run bu; st=$?
  check "invalid UTF-8: exit 2, file and line" '[ $st -eq 2 ] && grep -q "badutf.txt:3: invalid UTF-8" $tmp/bu.err'
  tjob bus "format = text" "path = $tmp/badutf.txt" "separator = %" "on_bad_document = skip"; run bus
  check "invalid UTF-8 skipped: two documents" '[ "$(attr $tmp/out/bus/bus.h5 n_documents)" = 2 ]'
  printf '{"prompt": "Q: what is two and two? A:", "chosen": " four, as anyone knows.", "rejected": " five, said the cat loudly."}\n{"prompt": "Say hello.", "chosen": " Hello there, friend!", "rejected": " No, I will not do that."}\n' >"$tmp/pref.jsonl"
  { printf '[job]\nname = pref\noutput = %s/out\n[checkpoints]\nlist = %s/models.txt\n[corpus]\ntokenizer = %s\n[preference]\npath = %s\n[estimator]\norders = 1\n' \
      "$tmp" "$tmp" "$FX/tokenizers/gpt2/tokenizer.json" "$tmp/pref.jsonl"; } >"$tmp/pref.ini"
  printf '# name path\nmodel_a %s/g\n%s/g\n' "$tmp" "$tmp" >"$tmp/models.txt"
  run pref
  check "preference pairs: I_pref and pref_info reported, 4 documents" \
    '[ -n "$(cut -d, -f13 $tmp/out/pref/layers.csv | sed -n 2p)" ] && [ -n "$(cut -d, -f17 $tmp/out/pref/summary.csv | sed -n 2p)" ] && [ "$(h5dump -a /checkpoints/model_a/n_documents $tmp/out/pref/pref.h5 | sed -n "s/^ *(0): //p")" = 4 ]'
  check "[checkpoints] list = FILE: named and bare paths" '[ "$(cut -d, -f1 $tmp/out/pref/summary.csv | tr "\n" " ")" = "checkpoint model_a g " ]'
else
  echo "skip text corpus readers: fixtures folder absent"
fi

# More bad input: anchors, results of another job, --only, and correlate's options.
$PY -c "
import numpy as np
np.save('$tmp/anch_shape.npy', np.ones((100, 8), np.float32))
w = np.random.default_rng(0).standard_normal((100, 16)).astype(np.float32); np.save('$tmp/anch_norm.npy', w)
np.save('$tmp/anch_f64.npy', np.ones((100, 16)))"
job an "format = jsonl-ids" "path = $tmp/ids.jsonl"
printf 'anchors = %s\n' "$tmp/anch_shape.npy" >>"$tmp/an.ini"; run an; st=$?
check "anchors of the wrong shape: exit 2 naming the file and the shape expected" '[ $st -eq 2 ] && grep -q "anch_shape.npy: anchors have shape \[100, 8\], expected \[100, 16\]" $tmp/an.err && [ $(wc -l <$tmp/an.err) -eq 1 ]'
sed -i "s|anch_shape|anch_norm|" "$tmp/an.ini"; run an; st=$?
check "anchors whose rows are not unit length: exit 2" '[ $st -eq 2 ] && grep -q "anch_norm.npy: anchor row 0 has norm" $tmp/an.err'
sed -i "s|anch_norm|anch_f64|" "$tmp/an.ini"; run an; st=$?
check "anchors that are not float32: exit 2" '[ $st -eq 2 ] && grep -q "anch_f64.npy: dtype is not float32" $tmp/an.err'
sed -i 's/orders = 1,2/orders = 1/' "$tmp/ids.ini"; run ids; st=$?
check "a results file made by another job text: exit 2, nothing overwritten" \
  '[ $st -eq 2 ] && grep -q "ids.h5: holds results of a different job file" $tmp/ids.err && cmp -s $tmp/ids.csv $tmp/out/ids/layers.csv'
"$IBC" run "$tmp/t16.ini" --only 5 --quiet 2>"$tmp/only.err"; st=$?
check "--only past the checkpoints: exit 2" '[ $st -eq 2 ] && grep -q "the job has 1 checkpoints" $tmp/only.err'
printf 'model,a\nm,1\n' >"$tmp/b.csv"
printf 'a,b,c\n' >"$tmp/al.csv"
"$IBC" correlate "$tmp/out/t16" --benchmarks "$tmp/b.csv" --aliases "$tmp/al.csv" --out "$tmp/co" 2>"$tmp/co.err"; st=$?
check "an alias file row without two fields: exit 2, file and line" '[ $st -eq 2 ] && grep -q "al.csv:1: expected two fields" $tmp/co.err'
"$IBC" correlate "$tmp/out/t16" --benchmarks "$tmp/b.csv" --covariates size --out "$tmp/co" 2>"$tmp/co.err"; st=$?
check "an unknown covariate: exit 2" '[ $st -eq 2 ] && grep -q "covariates: expected log_params, got size" $tmp/co.err'
