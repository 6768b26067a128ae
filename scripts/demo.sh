#!/usr/bin/env bash
# make demo: the whole pipeline on the embedded default, from scratch (make has built bin/ibc).
#   1. ibc train: a byte-level BPE and a 4-layer Llama trained on Debian's fortunes, with
#      checkpoints at log-spaced steps and their held-out scores (loss, top-1, cloze)
#   2. ibc run jobs/demo.ini on 2 ranks: every checkpoint's entropies and informations
#   3. ibc correlate: the metrics against the checkpoints' scores, and the plots
#   4. ibc report: all of it on one HTML page (results/demo/report.html)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
start=$(date +%s)
rm -rf results/demo-train results/demo
bin/ibc train --out results/demo-train --steps "${DEMO_STEPS:-600}"
trained=$(date +%s)
mpirun --oversubscribe -np 2 bin/ibc run jobs/demo.ini
bin/ibc correlate results/demo --benchmarks results/demo-train/scores.csv --out results/demo/correlate
report=$(bin/ibc report results/demo --benchmarks results/demo-train/scores.csv --out results/demo/report.html)
end=$(date +%s)
cat <<TXT

ibc demo done in $((end - start)) s (training $((trained - start)) s):
  checkpoints and scores   results/demo-train/ (scores.csv: held-out loss, top-1, cloze)
  HDF5 results             results/demo/demo.h5
  CSV results              results/demo/summary.csv, results/demo/layers.csv
  correlations             results/demo/correlate/correlations.csv, regression.csv, correlations.md
  information plane        results/demo/correlate/plots/information_plane_k1.png (and k2..k4, SVG too)
  report, one page          $(realpath "$report")
TXT
