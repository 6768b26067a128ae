#!/usr/bin/env bash
# Command-line tests: `ibc inspect` and `ibc hidden` on the shared fixtures. Prints TAP-style
# "ok", "not ok" and "skip" lines that scripts/run-tests.sh counts.
. "$(dirname "$0")/lib.bash"

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
