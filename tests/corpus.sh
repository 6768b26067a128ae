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

# Compressed and multi-file input, bad streams, over-long lines, the manifest and resuming.
mf() { $PY -c "import json,sys; m=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; } # FILE EXPR(m)
noout() { [ ! -e "$tmp/out/$1/$1.h5" ] && ! ls "$tmp/out/$1" 2>/dev/null | grep -q tmp; }
gzip -c "$tmp/ids.jsonl" >"$tmp/ids.jsonl.gz"
job gz "format = jsonl-ids" "path = $tmp/ids.jsonl.gz"; run gz
check "gzip input: the same documents as the plain file" 'sed 1d $tmp/out/gz/layers.csv | diff -q - <(sed 1d $tmp/ids.csv) >/dev/null'
check "manifest.json: the input's size and SHA-256 as on disk, gzip" \
  '[ "$(mf $tmp/out/gz/manifest.json "m[\"inputs\"][0][\"sha256\"], m[\"inputs\"][0][\"size\"], m[\"inputs\"][0][\"kind\"]")" = "('"'"'$(sha256sum <$tmp/ids.jsonl.gz | cut -c1-64)'"'"', $(stat -c %s $tmp/ids.jsonl.gz), '"'"'gzip'"'"')" ]'
job nomatch "format = jsonl-ids" "path = $tmp/nothing-*.jsonl.gz"; run nomatch; st=$?
check "a glob that matches nothing: exit 2, one line, nothing written" \
  '[ $st -eq 2 ] && grep -q "nothing-\*.jsonl.gz: no file matches this pattern" $tmp/nomatch.err && [ $(wc -l <$tmp/nomatch.err) -eq 1 ] && noout nomatch'
head -c $(( $(stat -c %s "$tmp/ids.jsonl.gz") - 9 )) "$tmp/ids.jsonl.gz" >"$tmp/cut.jsonl.gz"
job cut "format = jsonl-ids" "path = $tmp/cut.jsonl.gz"; run cut; st=$?
check "a truncated gzip file: exit 2 naming it, nothing written" '[ $st -eq 2 ] && grep -q "cut.jsonl.gz: truncated gzip stream" $tmp/cut.err && noout cut'
job cuts "format = jsonl-ids" "path = $tmp/cut.jsonl.gz" "on_bad_document = skip"; run cuts; st=$?
check "a truncated stream is never skipped as a bad document" '[ $st -eq 2 ] && grep -q "truncated gzip stream" $tmp/cuts.err'
xz -c "$tmp/ids.jsonl" >"$tmp/bad.jsonl.xz"
printf 'XXXXXXXX' | dd of="$tmp/bad.jsonl.xz" bs=1 seek=200 conv=notrunc 2>/dev/null
job xzc "format = jsonl-ids" "path = $tmp/bad.jsonl.xz"; run xzc; st=$?
check "a corrupt xz file: exit 2 naming it and the byte offset" '[ $st -eq 2 ] && grep -q "bad.jsonl.xz: corrupt xz stream at compressed byte [0-9]" $tmp/xzc.err && noout xzc'
$PY - "$tmp" <<'PY'
import gzip, sys
with gzip.open(sys.argv[1] + "/long.jsonl.gz", "wt", compresslevel=1) as f:
    f.write('{"ids": [1, 2, 3, 4, 5, 6]}\n{"ids": [' + "7, " * 35_000_000 + '7]}\n{"ids": [3, 4, 5, 6, 7, 8]}\n')
PY
job long "format = jsonl-ids" "path = $tmp/long.jsonl.gz"; run long; st=$?
check "a 100 MB JSON line: exit 2, file, line and the 64 MiB limit" '[ $st -eq 2 ] && grep -q "long.jsonl.gz:2: a line longer than 64 MiB (IBC_LINE_MAX)" $tmp/long.err'
job longs "format = jsonl-ids" "path = $tmp/long.jsonl.gz" "on_bad_document = skip"; run longs
check "... skipped and counted with on_bad_document = skip" \
  '[ "$(attr $tmp/out/longs/longs.h5 n_documents)" = 2 ] && [ "$(mf $tmp/out/longs/manifest.json "m[\"documents\"][\"bad_skipped\"]")" = 1 ]'
# Resuming over changed inputs: refused with the input named; nothing rewritten.
cp "$tmp/out/gz/gz.h5" "$tmp/gz_before.h5"
printf '{"ids": [9, 8, 7, 6, 5, 4]}\n' | gzip -c >>"$tmp/ids.jsonl.gz" # another member: one more document
run gz; st=$?
check "resuming after an input changed: exit 2, one line naming the input" \
  '[ $st -eq 2 ] && grep -q "manifest.json: cannot resume: input .*ids.jsonl.gz: size changed" $tmp/gz.err && [ $(wc -l <$tmp/gz.err) -eq 1 ] && cmp -s $tmp/gz_before.h5 $tmp/out/gz/gz.h5'
# Merging Slurm array tasks: the same manifest is copied (and lands in /run/manifest); tasks of
# other inputs are refused.
job mg "format = jsonl-ids" "path = $tmp/ids.jsonl"
for k in 0 1; do "$IBC" run "$tmp/mg.ini" --only 0 --results "$tmp/mg$k" --quiet 2>/dev/null; done
"$IBC" merge "$tmp/mg.ini" "$tmp/mg0" "$tmp/mg1" 2>/dev/null; st=$?
check "merge: the tasks' manifest copied to the merged folder and its HDF5 file" \
  '[ $st -eq 0 ] && cmp -s $tmp/mg0/manifest.json $tmp/out/mg/manifest.json && h5dump -d /run/manifest $tmp/out/mg/mg.h5 | grep -q ids.jsonl'
sed -i 's/"size": [0-9]*/"size": 1/' "$tmp/mg1/manifest.json"; rm -rf "$tmp/out/mg"
"$IBC" merge "$tmp/mg.ini" "$tmp/mg0" "$tmp/mg1" 2>"$tmp/mg.err"; st=$?
check "merge: tasks of other inputs refused, naming the folder" '[ $st -eq 2 ] && grep -q "mg1/manifest.json: these results are of other inputs than" $tmp/mg.err'

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
  # Chat-format preference pairs (Tulu: chosen repeats the prompt turns; UltraFeedback: a string
  # prompt that chosen repeats as its user turn) measure the same as their documented rendering.
  $PY - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
u = lambda c: {"role": "user", "content": c}; a = lambda c: {"role": "assistant", "content": c}
recs = [{"prompt": [u("What is two and two?")], "chosen": [u("What is two and two?"), a("Four, as anyone knows.")],
         "rejected": [u("What is two and two?"), a("Five, said the cat.")]},
        {"prompt": "Say hello.", "chosen": [u("Say hello."), a("Hello there, friend!")], "rejected": [u("Say hello."), a("No.")]}]
with open(d + "/chat.jsonl", "w") as f:
    for r in recs: f.write(json.dumps(r) + "\n")
flat = [{"prompt": "user: What is two and two?\n", "chosen": "assistant: Four, as anyone knows.", "rejected": "assistant: Five, said the cat."},
        {"prompt": "user: Say hello.\n", "chosen": "assistant: Hello there, friend!", "rejected": "assistant: No."}]
with open(d + "/flat.jsonl", "w") as f:
    for r in flat: f.write(json.dumps(r) + "\n")
with open(d + "/chat_bad.jsonl", "w") as f:
    f.write(json.dumps(recs[0]) + "\n" + json.dumps({"prompt": "x", "chosen": 3, "rejected": "y"}) + "\n")
PY
  for n in chat flat chat_bad; do sed "s|name = pref|name = $n|;s|$tmp/pref.jsonl|$tmp/$n.jsonl|" "$tmp/pref.ini" >"$tmp/$n.ini"; done
  run chat; run flat
  check "chat-format preference pairs: the same numbers as their rendering as strings (4 documents)" \
    'cmp -s $tmp/out/chat/layers.csv $tmp/out/flat/layers.csv && [ "$(h5dump -a /checkpoints/model_a/n_documents $tmp/out/chat/chat.h5 | sed -n "s/^ *(0): //p")" = 4 ]'
  run chat_bad; st=$?
  check "chosen of the wrong type: exit 2, file, line and cause" \
    '[ $st -eq 2 ] && grep -q "chat_bad.jsonl:2: chosen: expected a string or a list of {role, content} messages, got a number" $tmp/chat_bad.err && noout chat_bad'
  C4="$FX/corpora/c4"
  if [ -d "$C4" ] && ls "$C4"/c4-sample.*.json.gz >/dev/null 2>&1; then
    # C4 as distributed: gzip files, a glob, numbered across files in sorted-name order.
    zcat "$C4"/c4-sample.0{1,2,3}.json.gz >"$tmp/c4.jsonl"
    ndoc=$(wc -l <"$tmp/c4.jsonl")
    zstd -q -c "$tmp/c4.jsonl" >"$tmp/c4.jsonl.zst"; xz -c "$tmp/c4.jsonl" >"$tmp/c4.jsonl.xz"
    cat "$C4"/c4-sample.0{1,2,3}.json.gz >"$tmp/c4.members.gz"
    printf '# the three files, in another order\n%s\n%s\n%s\n' "$C4/c4-sample.03.json.gz" "$C4/c4-sample.01.json.gz" "$C4/c4-sample.02.json.gz" >"$tmp/c4.list"
    for v in "glob:$C4/c4-sample.*.json.gz" "plain:$tmp/c4.jsonl" "zst:$tmp/c4.jsonl.zst" "xz:$tmp/c4.jsonl.xz" "members:$tmp/c4.members.gz" "list:@$tmp/c4.list"; do
      tjob "c4${v%%:*}" "format = jsonl" "path = ${v#*:}" "documents = 7" "seed = 3"; run "c4${v%%:*}"
    done
    check "C4 files as distributed (glob over 3 gzip files): $ndoc documents read, 7 sampled" \
      '[ "$(mf $tmp/out/c4glob/manifest.json "m[\"documents\"][\"total\"], m[\"documents\"][\"kept\"], len(m[\"inputs\"])")" = "($ndoc, 7, 3)" ] && [ "$(attr $tmp/out/c4glob/c4glob.h5 n_documents)" = 7 ]'
    for v in plain zst xz members list; do
      check "C4: the same sample and numbers from $v" 'cmp -s $tmp/out/c4glob/layers.csv $tmp/out/c4$v/layers.csv && [ "$(mf $tmp/out/c4glob/manifest.json "m[\"documents\"][\"indices\"]")" = "$(mf $tmp/out/c4$v/manifest.json "m[\"documents\"][\"indices\"]")" ]'
    done
    check "C4 manifest: each file's SHA-256 equals sha256sum's" \
      '[ "$(mf $tmp/out/c4glob/manifest.json "\" \".join(i[\"sha256\"] for i in m[\"inputs\"])")" = "$(sha256sum "$C4"/c4-sample.0{1,2,3}.json.gz | cut -c1-64 | tr "\n" " " | sed "s/ $//")" ]'
    # One thread per rank, so that only the rank count differs (issue 15: the BLAS's bits depend
    # on its thread count).
    for P in 1 2 3; do
      sed "s|name = c4glob|name = c4p$P|" "$tmp/c4glob.ini" >"$tmp/c4p$P.ini"
      OMP_NUM_THREADS=1 mpirun -np $P "$IBC" run "$tmp/c4p$P.ini" --quiet 2>"$tmp/c4p$P.err"
    done
    for P in 2 3; do
      check "C4 sample on $P ranks: the same documents and bits as on 1" 'cmp -s $tmp/out/c4p1/layers.csv $tmp/out/c4p$P/layers.csv && cmp -s $tmp/out/c4p1/manifest.json <(sed "s/c4p$P/c4p1/g" $tmp/out/c4p$P/manifest.json)'
    done
    "$IBC" tokenize --tokenizer "$FX/tokenizers/gpt2/tokenizer.json" --jsonl "$C4/c4-sample.01.json.gz" >"$tmp/tk_gz.txt"
    zcat "$C4/c4-sample.01.json.gz" >"$tmp/c401.jsonl"
    "$IBC" tokenize --tokenizer "$FX/tokenizers/gpt2/tokenizer.json" --jsonl "$tmp/c401.jsonl" >"$tmp/tk_plain.txt"
    check "tokenize --jsonl reads a gzip file as its plain text" '[ -s $tmp/tk_gz.txt ] && cmp -s $tmp/tk_gz.txt $tmp/tk_plain.txt && [ $(wc -l <$tmp/tk_gz.txt) -eq $(wc -l <$tmp/c401.jsonl) ]'
  else
    echo "skip C4 files: $C4 absent"
  fi
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
