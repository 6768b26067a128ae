#!/usr/bin/env bash
# Command-line tests: the command table and the option parser (no fixtures needed), then
# `ibc inspect`, `ibc hidden`, `ibc tokenize` and the start-up layout (cores and threads per rank)
# on the shared fixtures. Prints TAP-style "ok", "not ok" and "skip" lines that
# scripts/run-tests.sh counts.
. "$(dirname "$0")/lib.bash"

# --- the command table --------------------------------------------------------------------------
cmds="run merge checkpoints tokenize inspect hidden correlate train random-checkpoint version"
"$IBC" >"$tmp/out" 2>"$tmp/err"; st=$?
check "ibc without a command: usage on stderr, exit 2" '[ $st -eq 2 ] && [ ! -s $tmp/out ] && grep -q "^usage: ibc COMMAND" $tmp/err'
"$IBC" help >"$tmp/out" 2>"$tmp/err"; st=$?
check "ibc help: every command's usage line on stdout, exit 0" \
  '[ $st -eq 0 ] && [ ! -s $tmp/err ] && for c in $cmds; do grep -q "^  ibc $c " $tmp/out || exit 1; done'
"$IBC" help train >"$tmp/out"; st=$?
check "ibc help train: that command only" '[ $st -eq 0 ] && [ $(wc -l <$tmp/out) -eq 2 ] && grep -q "^  ibc train \[--out DIR\]" $tmp/out'
"$IBC" run --help >"$tmp/out"; st=$?
check "ibc run --help: the same as ibc help run" '[ $st -eq 0 ] && cmp -s $tmp/out <("$IBC" help run)'
"$IBC" frobnicate 2>"$tmp/err"; st=$?
check "unknown command: exit 2, one line" '[ $st -eq 2 ] && [ $(wc -l <$tmp/err) -eq 1 ] && grep -q "^ibc: unknown command .frobnicate." $tmp/err'

# --- the BLAS kernels (blas.h) ---------------------------------------------------------------------
"$IBC" version >"$tmp/out" 2>"$tmp/err"; st=$?
check "ibc version: version and the OpenBLAS kernels" '[ $st -eq 0 ] && grep -q "^ibc [0-9]" $tmp/out && grep -q "^blas OpenBLAS [0-9.]* [A-Za-z]" $tmp/out'
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  check "an AVX2 CPU runs OpenBLAS's vector kernels, whatever OpenBLAS detected" \
    'grep -Eq "^blas OpenBLAS [0-9.]* (Haswell|SkylakeX|Cooperlake|SapphireRapids|Zen)" $tmp/out'
else
  echo "skip an AVX2 CPU runs OpenBLAS's vector kernels (this CPU has no AVX2 + FMA)"
fi
OPENBLAS_CORETYPE=Prescott "$IBC" version >"$tmp/out"
check "OPENBLAS_CORETYPE set by the user is kept" 'grep -q "^blas OpenBLAS [0-9.]* Prescott$" $tmp/out'

# --- the option parser: every error is exit 2 and one line "ibc: CMD: ..." ------------------------
bad() { # NAME EXPECTED-TEXT COMMAND...
  local name=$1 want=$2 cmd=$3; shift 2
  "$IBC" "$@" >"$tmp/out" 2>"$tmp/err"; local st=$?
  check "option error: $name (exit 2, one line)" \
    '[ $st -eq 2 ] && [ $(wc -l <$tmp/err) -eq 1 ] && grep -qF -- "ibc: $cmd: $want" $tmp/err && [ ! -s $tmp/out ]'
}
bad "trailing junk" "--steps: expected an integer in [1, 1000000000], got '12x'" train --steps 12x
bad "out of range" "--steps: expected an integer in [1, 1000000000], got '0'" train --steps 0
bad "beyond 64 bits" "--seed: expected an integer in [0, 9223372036854775807], got '99999999999999999999'" train --seed 99999999999999999999
bad "missing value" "--steps: expected N, got nothing" train --steps
bad "unknown option" "unknown option '--step' (ibc help train)" train --step 3
bad "value given to a flag" "--quiet: takes no value, got '1'" train --quiet=1
bad "option given twice" "--steps: given twice" train --steps 3 --steps=4
bad "bad --name=value integer" "--d: expected an integer in [1, 1000000], got '6e1'" random-checkpoint "$tmp/rc" --d=6e1
bad "not one of the choices" "--arch: expected one of llama|gpt_neox, got 'gpt2'" random-checkpoint "$tmp/rc" --arch gpt2
bad "integer list with an empty item" "--ids: expected integers in [0, 2147483647] separated by commas, got '1,,2'" hidden "$tmp" --ids 1,,2 --out "$tmp/h.npy"
bad "negative id" "--ids: expected integers in [0, 2147483647] separated by commas, got '1,-2'" hidden "$tmp" --ids 1,-2 --out "$tmp/h.npy"
bad "required option missing" "--tokenizer FILE is required" tokenize
bad "positional missing" "expected one checkpoint folder (ibc help inspect)" inspect
bad "one positional too many" "unexpected argument 'b' (ibc help inspect)" inspect a b
bad "run without a job file" "expected a job file (ibc help run)" run --quiet
check "random-checkpoint with bad options writes nothing" '[ ! -e $tmp/rc ]'
mpirun -np 2 "$IBC" run "$tmp/none.ini" --quiet --bogus 2>"$tmp/err" >/dev/null; st=$?
check "an option error under mpirun -np 2 is printed once (rank 0)" '[ $st -eq 2 ] && [ $(grep -c "^ibc: run: unknown option" $tmp/err) -eq 1 ]'

# --- checkpoint defaults (ckpt_default_config) through random-checkpoint ------------------------------
"$IBC" random-checkpoint "$tmp/neox" --arch gpt_neox --heads 2 --kv-heads 1 >/dev/null && out=$("$IBC" inspect "$tmp/neox")
check "random-checkpoint --arch gpt_neox: the family's defaults (untied, kv heads = heads)" \
  'grep -q "architecture gpt_neox" <<<"$out" && grep -q "tied         no" <<<"$out" && grep -q "kv_heads     2" <<<"$out" && grep -q "d            64" <<<"$out"'
"$IBC" random-checkpoint "$tmp/rc3" --d 64 --heads 3 2>"$tmp/err"; st=$?
check "random-checkpoint: heads not dividing d is exit 2, one line" '[ $st -eq 2 ] && [ $(wc -l <$tmp/err) -eq 1 ] && grep -q "must divide d (64)" $tmp/err'

if [ ! -d "$FX/hf-tiny" ]; then
  echo "skip inspect/hidden: fixtures folder absent (set IBC_FIXTURES)"; exit 0
fi

out=$("$IBC" inspect "$FX/hf-tiny/gemma")
check "inspect gemma reports its shape" \
  'grep -q "architecture gemma" <<<"$out" && grep -q "head_dim     32" <<<"$out" && grep -q "kv_heads     1" <<<"$out"'
out=$("$IBC" inspect "$FX/hf-tiny/llama_bf16")
check "inspect llama_bf16 reports BF16" 'grep -q "dtype        BF16" <<<"$out"'

# hidden: row 0 of the hf-tiny batch; compare every layer and the logits with numpy
# (tolerance as in test_model: 1e-4 of each tensor's scale).
for m in gpt2 llama3 olmo2; do
  ids=$($PY -c "import json;print(','.join(map(str,json.load(open('$FX/hf-tiny/index.json'))['input_ids'][0])))")
  "$IBC" hidden "$FX/hf-tiny/$m" --ids "$ids" --out "$tmp/$m.npy" --logits "$tmp/$m.logits.npy"
  check "hidden $m matches transformers" "$PY - '$FX/hf-tiny/$m' '$tmp/$m' <<'PY'
import sys, glob, numpy as np
d, out = sys.argv[1], sys.argv[2]
h = np.load(out + '.npy'); lg = np.load(out + '.logits.npy')
files = sorted(glob.glob(d + '/hidden_state_*.bin'))
assert h.dtype == np.float32 and h.shape[0] == len(files) and h.shape[1] == 32, h.shape
for l, f in enumerate(files):
    g = np.fromfile(f, np.float32).reshape(2, 32, -1)[0]
    assert np.abs(h[l] - g).max() <= 1e-4 * max(1, np.abs(g).max()), (f, np.abs(h[l] - g).max())
g = np.fromfile(d + '/logits.bin', np.float32).reshape(2, 32, -1)[0]
assert lg.shape == g.shape and np.abs(lg - g).max() <= 1e-4 * max(1, np.abs(g).max())
PY"
done

"$IBC" hidden "$FX/hf-tiny/gpt2" --ids 1,2,999 --out "$tmp/bad.npy" 2>"$tmp/err"; st=$?
check "hidden: id past the vocabulary is exit 2, one line, no file left" \
  '[ $st -eq 2 ] && [ $(wc -l <"$tmp/err") -eq 1 ] && grep -q "999" "$tmp/err" && ! ls "$tmp"/bad.npy* >/dev/null 2>&1'
"$IBC" inspect /nonexistent 2>"$tmp/err"; st=$?
check "inspect of a folder without config.json is exit 2" '[ $st -eq 2 ] && grep -q "config.json" "$tmp/err"'

# tokenize: the CLI, and a section it does not support names its JSON path (exit 2)
TK=$FX/tokenizers
out=$(printf 'a  b' | "$IBC" tokenize --tokenizer "$TK/gpt-neox-20b/tokenizer.json")
check "tokenize: NeoX space-run added token" '[ "$out" = "66 50276 67" ]'
printf '{"text": "Hello world"}\n{"text": "x"}\n' >"$tmp/in.jsonl"
out=$("$IBC" tokenize --tokenizer "$TK/lenml-llama2/tokenizer.json" --jsonl "$tmp/in.jsonl")
check "tokenize --jsonl: one JSON array per line, BOS by default" '[ "$(sed -n 1p <<<"$out")" = "[1, 22557, 1526]" ] && [ $(wc -l <<<"$out") -eq 2 ]'
out=$("$IBC" tokenize --tokenizer "$TK/lenml-llama2/tokenizer.json" --jsonl "$tmp/in.jsonl" --no-special | head -1)
check "tokenize --no-special drops BOS" '[ "$out" = "[22557, 1526]" ]'
sed 's/"type": "Sequence", "pretokenizers"/"type": "Whitespace", "pretokenizers"/' fuzz/tiny_tokenizer.json >"$tmp/bad_tok.json"
echo x | "$IBC" tokenize --tokenizer "$tmp/bad_tok.json" 2>"$tmp/err"; st=$?
check "tokenizer.json with an unsupported pre-tokenizer: exit 2, JSON path named" \
  '[ $st -eq 2 ] && grep -q "bad_tok.json: pre_tokenizer.type: unsupported Whitespace" $tmp/err && [ $(wc -l <$tmp/err) -eq 1 ]'
sed 's/"type": "Digits"/"type": "Punctuation"/' fuzz/tiny_tokenizer.json >"$tmp/bad_tok2.json"
echo x | "$IBC" tokenize --tokenizer "$tmp/bad_tok2.json" 2>"$tmp/err"; st=$?
check "nested unsupported part: its full path" '[ $st -eq 2 ] && grep -q "pre_tokenizer.pretokenizers\[2\].type: unsupported Punctuation" $tmp/err'
sed 's/"type": "BPE"/"type": "WordPiece"/' fuzz/tiny_tokenizer.json >"$tmp/bad_tok3.json"
echo x | "$IBC" tokenize --tokenizer "$tmp/bad_tok3.json" 2>"$tmp/err"; st=$?
check "model type other than BPE: exit 2" '[ $st -eq 2 ] && grep -q "model.type: unsupported WordPiece" $tmp/err'
printf '{"text": 3}\n' >"$tmp/bad.jsonl"
"$IBC" tokenize --tokenizer "$TK/gpt2/tokenizer.json" --jsonl "$tmp/bad.jsonl" 2>"$tmp/err" >/dev/null; st=$?
check "tokenize --jsonl with a bad line: file and line, exit 2" '[ $st -eq 2 ] && grep -q "bad.jsonl:1:" $tmp/err'

# --- start-up layout: cores and threads per rank (dist_init; issue 15) ------------------------------
n=$(nproc)
if [ "$n" -lt 2 ] || [ ! -d "$FX/softh" ]; then echo "skip start-up layout: needs 2 cores and the softh fixtures"; exit 0; fi
cat >"$tmp/lay.ini" <<INI
[job]
name = lay
output = $tmp/lay
[checkpoints]
stories260K = $FX/real/stories260K
[corpus]
format = jsonl-ids
path = $FX/softh/fortunes300_stories260K.jsonl
documents = 8
seed = 7
[estimator]
anchors = $FX/softh/anchors_d64_n100_seed0.npy
INI
lay() { rm -rf "$tmp/lay"; env "$@" "$IBC" run "$tmp/lay.ini" 2>"$tmp/lay.err" >/dev/null; }
lay OMP_NUM_THREADS=$n mpirun -np 1
check "OMP_NUM_THREADS=$n mpirun -np 1: Open MPI's default one-core binding replaced, the rank uses all $n cores" \
  'grep -q "^ibc: 1 rank x $n threads, cores per rank: 0-$((n - 1)) (Open MPI.s default binding replaced" $tmp/lay.err'
lay mpirun -np 1
check "mpirun -np 1 without OMP_NUM_THREADS: the one core Open MPI gave, 1 thread (as before)" \
  'grep -q "^ibc: 1 rank x 1 thread, cores per rank: [0-9]*$" $tmp/lay.err'
lay OMP_NUM_THREADS=2 mpirun -np 1 --bind-to core
check "explicit --bind-to core with OMP_NUM_THREADS=2: one warning, 1 thread on the 1 core given" \
  '[ $(grep -c "^ibc: warning: OMP_NUM_THREADS=2 exceeds the cores of 1 of 1 rank .*--map-by slot:PE=2" $tmp/lay.err) -eq 1 ] && grep -q "^ibc: 1 rank x 1 thread, cores per rank: [0-9]*$" $tmp/lay.err'
lay OMP_NUM_THREADS=2 IBC_FORCE_THREADS=1 mpirun -np 1 --bind-to core
check "IBC_FORCE_THREADS=1 runs the threads asked for, without a warning" '! grep -q warning $tmp/lay.err && grep -q "^ibc: 1 rank x 2 threads" $tmp/lay.err'
lay mpirun -np 2
check "mpirun -np 2: each rank its own core, 1 thread" 'grep -qE "^ibc: 2 ranks x 1 thread, cores per rank: [0-9]+ \| [0-9]+$" $tmp/lay.err'
lay mpirun -np 1 --bind-to none
check "--bind-to none: the whole mask, no note" 'grep -q "^ibc: 1 rank x $n threads, cores per rank: 0-$((n - 1))$" $tmp/lay.err'
rm -rf "$tmp/lay"; mpirun -np 2 "$IBC" run "$tmp/lay.ini" --quiet 2>"$tmp/lay.err" >/dev/null
check "--quiet: no layout line" '[ ! -s $tmp/lay.err ]'
