# Sourced by the shell tests in tests/*.sh: paths, MPI settings for root, a scratch folder and
# check NAME CONDITION, which prints a TAP-style "ok NAME" / "not ok NAME" line.
set -u
IBC=$(realpath "${IBC_BIN:-bin/ibc}")
FX=$(realpath "${IBC_FIXTURES:-../shared/fixtures}" 2>/dev/null)
PY=/usr/bin/python3   # Debian's, where python3-numpy and python3-scipy are installed
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { if eval "$2"; then echo "ok $1"; else echo "not ok $1"; fi; }
