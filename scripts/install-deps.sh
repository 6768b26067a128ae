#!/usr/bin/env bash
# Installs the Debian packages ibc builds, tests and runs with. Idempotent: a package already
# installed is not touched, and nothing is fetched when all are present.
set -euo pipefail

PKGS=(
  build-essential pkg-config clang
  libopenmpi-dev openmpi-bin          # MPI
  libopenblas-dev libopenblas-openmp-dev  # sgemm (the OpenMP build is the one ibc links)
  libhdf5-openmpi-dev hdf5-tools      # parallel HDF5, h5dump
  libcsv-dev                          # benchmark tables
  libjansson-dev                      # JSON: safetensors headers, config.json, tokenizer.json
  libpcre2-dev libutf8proc-dev        # tokenizer regexes and normalisers
  libinih-dev                         # job files
  libgsl-dev                          # statistics
  libcmocka-dev                       # unit tests
  gnuplot-nox                         # plots
  fortunes                            # the demo corpus
  python3-numpy python3-scipy         # reference values in tests
  procps                              # pkill/pgrep in the resume and Slurm tests
  bc                                  # arithmetic in bench/job.sh, bench/units.sh, bench/rehearsal.sh
  zlib1g-dev libzstd-dev liblzma-dev  # compressed corpora read as streams (gzip, zstd, xz)
  zstd xz-utils                       # tests/corpus.sh and fuzz seeds compress fixtures with the CLIs
  python3-h5py                        # tests/h5py.sh: a real client reads the HDF5 results
  dict-gcide                          # real English for bench/rehearsal.sh (scripts/gcide-corpus.py)
  chromium libxml2-utils              # tests/report.sh: render report.html headless; xmllint --html
)

# `install-deps.sh slurm`: the one-node Slurm that tests/slurm.sh starts (slurmctld, slurmd, munge).
if [ "${1:-}" = slurm ]; then PKGS=(slurm-wlm munge); fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another apt/dpkg process (unattended-upgrades, a parallel install) holds the lock: wait for it
# up to 10 minutes instead of failing.
LOCK=(-o DPkg::Lock::Timeout=600)
$SUDO apt-get "${LOCK[@]}" update -qq
$SUDO apt-get "${LOCK[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
