#!/usr/bin/env bash
# bench/weights-memory.sh: per-rank memory and forward rate, `main` (every weight converted to
# a private f32 copy at load) against this tree (weights mapped, one layer's scratch), 2 ranks
# on one node, 1 thread each, on a SmolLM-135M-shaped BF16 and a Pythia-160M-shaped F32
# checkpoint (random weights). A and B alternate, REPS times each, in one run; the rate ratio
# is B / A of the medians. Figures: Pss, Private_Clean, Private_Dirty (smaps_rollup) per rank,
# read during the last document's last layer, in MB.
#
#   usage: bash bench/weights-memory.sh [DOCS] [T] [REPS]     (from the project root; make all first)
set -euo pipefail
cd "$(dirname "$0")/.."
DOCS=${1:-4} T=${2:-256} REPS=${3:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
BLAS=/usr/lib/x86_64-linux-gnu/openblas-openmp
libs() { echo "-L$BLAS -Wl,-rpath,$BLAS -lopenblas $(pkg-config --libs jansson libpcre2-8 libutf8proc inih hdf5-openmpi) -lgsl -lcsv -lm"; }
flags="-O2 -std=c17 -D_GNU_SOURCE -fopenmp -I/usr/include/x86_64-linux-gnu/openblas-openmp"
# A: BASE (default dcdabc9, the tree before mapped weights), from `git archive`; B: this tree's build/libibc.a
mkdir -p "$tmp/main"
git archive "${BASE:-dcdabc9}" | tar -x -C "$tmp/main"
make -C "$tmp/main" -j2 build/libibc.a >/dev/null
mpicc $flags -DIBC_OLD_API -I"$tmp/main/include" bench/memory/driver.c "$tmp/main/build/libibc.a" -o "$tmp/A" $(libs)
make -j2 all build/libibc.a >/dev/null
mpicc $flags -Iinclude bench/memory/driver.c build/libibc.a -o "$tmp/B" $(libs)
# Both builds run the kernels this tree's ibc chooses (blas.h): the base has no blas_select.
export OPENBLAS_CORETYPE=$(bin/ibc version | awk '/^blas/ {print $4}')
echo "blas: $OPENBLAS_CORETYPE"
echo "| checkpoint | build | rank | tokens/s | Pss MB | Private_Clean MB | Private_Dirty MB | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|"
for kind in smollm-bf16 pythia-f32; do
  "$tmp/B" write "$tmp/$kind" "$kind"
  for rep in $(seq "$REPS"); do
    for b in A B; do
      mpirun --oversubscribe -np 2 --bind-to none "$tmp/$b" run "$tmp/$kind" "$DOCS" "$T" | sort >"$tmp/out.$kind.$b.$rep"
      name=$([ $b = A ] && echo main || echo mapped)
      awk -v k="$kind" -v n="$name" '{printf "| %s | %s | %s | %.1f | %.0f | %.0f | %.0f | %.0f |\n", k, n, $2, $4, $6/1024, $8/1024, $10/1024, $12/1024}' "$tmp/out.$kind.$b.$rep"
    done
  done
  for b in A B; do cat "$tmp"/out.$kind.$b.* | awk '{print $4}' | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}' >"$tmp/med.$b"; done
  echo "| $kind | rate ratio mapped/main (medians over ranks and reps) | | $(awk -v a="$(cat "$tmp/med.A")" -v b="$(cat "$tmp/med.B")" 'BEGIN {printf "%.3f", b / a}') | | | | |"
  rm -rf "${tmp:?}/$kind"
done
