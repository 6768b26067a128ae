#!/usr/bin/env bash
# Builds each fuzz/fuzz_*.c with clang's libFuzzer + ASan + UBSan and runs it for
# FUZZ_SECONDS (default 60) from seeds generated here, or until FUZZ_RUNS executions if set
# (whichever comes first). FUZZ_ONLY=target runs one. Crashes land in build-fuzz/<target>/.
# The figures of the last full run are in docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-60}
OUT=build-fuzz
mkdir -p "$OUT"
FLAGS="-g -O1 -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude $(pkg-config --cflags jansson libpcre2-8 libutf8proc)"
LIBS="$(pkg-config --libs jansson libpcre2-8 libutf8proc inih zlib libzstd liblzma) -lcsv -lm"
# Library sources each target needs (no MPI, no BLAS); every target gets COMMON.
COMMON="src/io.c src/err.c src/mem.c"
declare -A SRCS=(
  [fuzz_safetensors]="src/safetensors.c"
  [fuzz_config]="src/config.c"
  [fuzz_tokenizer_load]="src/tok_*.c src/hmap.c"
  [fuzz_tokenizer_encode]="src/tok_*.c src/hmap.c"
  [fuzz_benchtab]="src/benchtab.c"
  [fuzz_job]="src/job.c"
  [fuzz_npy]="src/npy.c"
  [fuzz_instream]="src/instream.c src/sha256.c"
  [fuzz_corpus]="src/corpus.c src/instream.c src/sha256.c src/rng.c"
)
seed() { # target dir
  case $1 in
    fuzz_safetensors)
      printf '%s' '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}}' >"$2/h.json"
      /usr/bin/python3 - "$2" <<'PY'
import struct, sys
h = open(sys.argv[1] + "/h.json", "rb").read()
open(sys.argv[1] + "/seed1", "wb").write(struct.pack("<Q", len(h)) + h + bytes(22))
PY
      rm "$2/h.json" ;;
    fuzz_config)
      for a in llama gpt2 gpt_neox gemma olmo2 qwen2 mistral; do
        printf '{"model_type":"%s","hidden_size":8,"n_embd":8,"num_hidden_layers":1,"n_layer":1,"num_attention_heads":2,"n_head":2,"intermediate_size":16,"vocab_size":16,"n_positions":8,"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192}}' "$a" >"$2/$a.json"
      done ;;
    fuzz_benchtab)
      printf 'rank,model,step,a,b\n1,"x, y",10,1.5,-\n2,z,20,NaN,3\n2,z,20,4,5\n' >"$2/t.csv" ;;
    fuzz_job)
      cp jobs/paper.ini jobs/stories260k.ini "$2/" ;;
    fuzz_tokenizer_load)
      cp fuzz/tiny_tokenizer.json "$2/tiny.json" ;;
    fuzz_npy)
      /usr/bin/python3 - "$2" <<'PY'
import struct, sys
def npy(shape, version=1):
    d = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (str(tuple(shape)),)
    pre = 10 if version == 1 else 12
    d += " " * ((64 - (pre + len(d) + 1) % 64) % 64) + "\n"
    head = b"\x93NUMPY" + bytes([version, 0]) + (struct.pack("<H", len(d)) if version == 1 else struct.pack("<I", len(d)))
    n = 1
    for s in shape: n *= s
    return head + d.encode() + struct.pack("<%df" % n, *[i * 0.5 for i in range(n)])
open(sys.argv[1] + "/a23", "wb").write(npy((2, 3)))
open(sys.argv[1] + "/v2", "wb").write(npy((4,), 2))
open(sys.argv[1] + "/scalar", "wb").write(npy(()))
PY
      ;;
    fuzz_instream) # the same lines plain, gzip (two members), zstd and xz
      printf '{"text": "one"}\n{"text": "two"}\n' >"$2/plain"
      { printf 'a\nb\n' | gzip -c; printf 'c\n' | gzip -c; } >"$2/members.gz"
      zstd -q -c "$2/plain" >"$2/p.zst"
      xz -c "$2/plain" >"$2/p.xz" ;;
    fuzz_corpus) # first byte: format (byte % 5), options in the higher bits
      printf '\x01{"text": "one"}\n{"text": "two"}\nnot json\n' >"$2/jsonl"
      printf '\x02{"ids": [1, 2, 3]}\n{"ids": [4]}\n' >"$2/ids"
      printf '\x00doc one\n\ndoc two\nmore\n' >"$2/text"
      printf '\x81{"prompt": [{"role": "user", "content": "Hi?"}], "chosen": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Yes."}], "rejected": "No."}\n' >"$2/pref"
      { printf '\x81'; printf '{"text": "a"}\n' | gzip -c; } >"$2/gz"
      /usr/bin/python3 -c "
import struct, sys
t = struct.pack('<12H', *range(1, 13)); o = struct.pack('<3Q', 0, 5, 12)
open(sys.argv[1], 'wb').write(b'\x03' + t + o)" "$2/tok16" ;;
    fuzz_tokenizer_encode)
      printf 'Hello, World! 123 caf\xc3\xa9 -x- [x] <s>  a\tb\n' >"$2/s1"
      printf 'ab ab\xe2\x96\x81a 9' >"$2/s2" ;;
  esac
}
status=0
for t in "${!SRCS[@]}"; do
  [ -n "${FUZZ_ONLY:-}" ] && [ "$t" != "$FUZZ_ONLY" ] && continue
  clang $FLAGS "fuzz/$t.c" ${SRCS[$t]} $COMMON -o "$OUT/bin-$t" $LIBS
  mkdir -p "$OUT/$t/corpus"
  seed "$t" "$OUT/$t/corpus"
  echo "fuzz: $t for ${SECS}s"
  if ! (cd "$OUT/$t" && "../bin-$t" -max_total_time="$SECS" ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -print_final_stats=1 corpus 2>&1 | grep -vE '^"|dictionary' | tail -8); then status=1; fi
  ls "$OUT/$t"/crash-* >/dev/null 2>&1 && { echo "fuzz: $t found crashes:"; ls "$OUT/$t"/crash-*; status=1; }
done
exit $status
