#!/bin/bash
# Submits one array task per checkpoint of JOB.ini, then the merge (and `ibc correlate` when a
# benchmark table is given) as a dependent job. Prints both job ids.
#   slurm/submit-array.sh JOB.ini [BENCHMARKS.csv [CORRELATE ARGS...]]
set -euo pipefail
JOB=${1:?usage: slurm/submit-array.sh JOB.ini [BENCHMARKS.csv ...]}
here=$(cd "$(dirname "$0")" && pwd)
IBC=${IBC:-$here/../bin/ibc}
export IBC
k=$("$IBC" checkpoints "$JOB")
array=$(sbatch --parsable --array=0-$((k - 1)) "$here/ibc-array.sbatch" "$JOB")
merge=$(sbatch --parsable --dependency=afterany:"$array" "$here/ibc-merge.sbatch" "$@")
echo "array $array ($k tasks), merge $merge"
