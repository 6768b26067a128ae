# Sourced by the shell tests in tests/*.sh: paths, MPI settings for root, a scratch folder and
# check NAME CONDITION, which prints a TAP-style "ok NAME" / "not ok NAME" line.
set -u
IBC=$(realpath "${IBC_BIN:-bin/ibc}")
FX=$(realpath "${IBC_FIXTURES:-../shared/fixtures}" 2>/dev/null)
PY=/usr/bin/python3   # Debian's, where python3-numpy and python3-scipy are installed
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The numbers of a results folder without the `imbalance` timing measurement (summary.csv's last
# column, the checkpoints' HDF5 attribute), for bitwise comparisons across runs and layouts.
csv_numbers() { sed 's/,[^,]*$//' "$1"; }
# HDF5 numbers without the file name line, the timing and the row balance (rows and bytes per rank)
h5_numbers() { h5dump -m %.17g "$1" | sed 1d | sed -E '/ATTRIBUTE "(imbalance|rows_max|rows_mean|sent_max|sent_mean)"/,/^ *}$/d'; }
check() { if eval "$2"; then echo "ok $1"; else echo "not ok $1"; fi; }
