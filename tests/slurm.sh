#!/usr/bin/env bash
# The sbatch scripts on a real one-node Slurm (installed from Debian and started here): one
# job with 2 ranks, and the array + merge chain, each equal to a plain mpirun run.
. "$(dirname "$0")/lib.bash"
ROOT=$(pwd)
if [ -z "$FX" ] || [ ! -d "$FX/softh" ]; then echo "skip slurm tests: fixtures folder absent (set IBC_FIXTURES)"; exit 0; fi
if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then echo "skip slurm tests: need root to start slurmctld/slurmd"; exit 0; fi
bash scripts/install-deps.sh slurm || { echo "not ok installing slurm-wlm and munge"; exit 1; }

cluster=$tmp/cluster
export SLURM_CONF=$cluster/slurm.conf
cleanup() { bash "$ROOT/scripts/slurm-local.sh" stop "$cluster"; rm -rf "$tmp"; }
trap cleanup EXIT
bash scripts/slurm-local.sh start "$cluster" || { echo "not ok starting a one-node Slurm"; exit 1; }
echo "ok a one-node Slurm is up ($(sinfo -h -o '%P %T %c'))"

job() { # FILE OUTPUT
  cat >"$1" <<INI
[job]
name = tiny
output = $2
[checkpoints]
stories260K = $FX/real/stories260K
llama = $FX/hf-tiny/llama
gpt2 = $FX/hf-tiny/gpt2
[corpus]
format = jsonl-ids
path = $FX/softh/fortunes300_stories260K.jsonl
documents = 120
seed = 7
[estimator]
anchors = $FX/softh/anchors_d64_n100_seed0.npy
INI
}
# Equal results: the CSVs byte for byte, and every HDF5 number (the job text differs only in
# its output line).
same() { cmp -s <(csv_numbers "$1/summary.csv") <(csv_numbers "$2/summary.csv") && cmp -s "$1/layers.csv" "$2/layers.csv" &&
         diff <(h5_numbers "$1/tiny.h5" | grep -v "output =") <(h5_numbers "$2/tiny.h5" | grep -v "output =") >/dev/null; }
wait_job() { # ID: waits, then prints its state and exit code
  for _ in $(seq 600); do [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && break; sleep 1; done
  scontrol show job "$1" | grep -oE "JobState=[A-Z]+|ExitCode=[0-9:]+" | tr '\n' ' '
}

job "$tmp/ref.ini" "$tmp/ref"
mpirun -np 2 "$IBC" run "$tmp/ref.ini" --quiet

job "$tmp/one.ini" "$tmp/one"
id=$(IBC=$IBC sbatch --parsable --chdir="$tmp" --ntasks=2 "$ROOT/slurm/ibc.sbatch" "$tmp/one.ini")
st=$(wait_job "$id")
echo "   ibc.sbatch: $st"
check "slurm/ibc.sbatch (2 ranks) completes and equals plain mpirun" '[[ $st == *COMPLETED*ExitCode=0:0* ]] && same $tmp/ref/tiny $tmp/one/tiny'

job "$tmp/arr.ini" "$tmp/arr"
printf 'model,score_a,score_b\nstories260K,1.5,20\nllama,2.5,10\ngpt2,2.0,30\n' >"$tmp/bench.csv"
out=$(cd "$tmp" && IBC=$IBC bash "$ROOT/slurm/submit-array.sh" "$tmp/arr.ini" "$tmp/bench.csv")
echo "   submit-array.sh: $out"
array=$(sed -n 's/^array \([0-9]*\).*/\1/p' <<<"$out"); merge=$(sed -n 's/.*merge \([0-9]*\)$/\1/p' <<<"$out")
wait_job "$array" >/dev/null
st=$(wait_job "$merge")
echo "   ibc-merge.sbatch: $st"
check "slurm/ibc-array.sbatch ran one task per checkpoint" '[ $(ls -d $tmp/arr/tiny/tasks/* | wc -l) -eq 3 ]'
check "slurm/ibc-merge.sbatch after the array: merged results equal plain mpirun" '[[ $st == *COMPLETED*ExitCode=0:0* ]] && same $tmp/ref/tiny $tmp/arr/tiny'
check "slurm/ibc-merge.sbatch with a benchmark table runs ibc correlate" '[ -s $tmp/arr/tiny/correlate/correlations.csv ] && grep -q "^optimality_1,score_a,3," $tmp/arr/tiny/correlate/correlations.csv'
