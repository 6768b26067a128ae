#!/usr/bin/env bash
# Runs every unit-test binary in $BUILD/tests, then the command-line and MPI tests in
# tests/*.sh, and ends with one summary line "tests: N passed, N failed, N skipped".
set -u
BUILD=${BUILD:-build}
export IBC_BIN=${IBC_BIN:-bin/ibc}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
if [ -z "${IBC_FIXTURES:-}" ] && [ ! -d ../shared/fixtures ]; then
  echo "NOTE: ../shared/fixtures is absent and IBC_FIXTURES unset: fixture tests will be SKIPPED"
fi
pass=0 fail=0 skip=0 failed=()
log=$(mktemp)
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  "$t" >"$log" 2>&1
  rc=$?
  cat "$log"
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0})); skip=$((skip + ${s:-0}))
  if [ $rc -ne 0 ] && [ -z "$f" ]; then fail=$((fail + 1)); failed+=("$t (crashed, status $rc)"); fi
  [ -n "$f" ] && [ "${f:-0}" -gt 0 ] && failed+=("$t")
done
for t in tests/*.sh; do
  [ -f "$t" ] || continue
  bash "$t" >"$log" 2>&1
  rc=$?
  cat "$log"
  p=$(grep -c '^ok ' "$log"); s=$(grep -c '^skip ' "$log"); f=$(grep -c '^not ok ' "$log")
  pass=$((pass + p)); skip=$((skip + s)); fail=$((fail + f))
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then fail=$((fail + 1)); failed+=("$t (status $rc)"); fi
  [ "$f" -gt 0 ] && failed+=("$t")
done
rm -f "$log"
for t in "${failed[@]}"; do echo "FAILED: $t"; done
echo "tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
