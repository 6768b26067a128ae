#!/usr/bin/env bash
# The sbatch scripts on a real one-node Slurm (installed from Debian and started here): one
# job with 2 ranks (each on its own core), one with 1 rank x 2 threads (the rank gets both
# cores), and the array + merge chain, each equal to a plain mpirun run.
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
# Equal results: the CSVs byte for byte, and every HDF5 number outside /run (the job text and
# the manifest name each run's own job file and output folder).
h5_results() { h5_numbers "$1" | sed '/^   GROUP "run" {/,/^   }$/d'; }
same() { cmp -s <(csv_numbers "$1/summary.csv") <(csv_numbers "$2/summary.csv") && cmp -s "$1/layers.csv" "$2/layers.csv" &&
         diff <(h5_results "$1/tiny.h5") <(h5_results "$2/tiny.h5") >/dev/null; }
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
lay=$(grep -m1 "^ibc: 2 ranks" "$tmp/ibc-$id.out"); cores=${lay#*cores per rank: }
echo "   ibc.sbatch 2 x 1 layout: $lay"
check "slurm/ibc.sbatch (2 ranks x 1 cpu): each rank on its own core" \
  '[[ $lay == "ibc: 2 ranks x 1 thread, cores per rank: "* ]] && [ "${cores% | *}" != "${cores#* | }" ]'

if [ "$(nproc)" -ge 2 ]; then
  job "$tmp/two.ini" "$tmp/two"
  id=$(IBC=$IBC sbatch --parsable --chdir="$tmp" --ntasks=1 --cpus-per-task=2 "$ROOT/slurm/ibc.sbatch" "$tmp/two.ini")
  st=$(wait_job "$id")
  lay=$(grep -m1 "^ibc: 1 rank" "$tmp/ibc-$id.out")
  echo "   ibc.sbatch 1 x 2: $st; layout: $lay"
  check "slurm/ibc.sbatch (1 rank, --cpus-per-task=2): the rank gets 2 cores and runs 2 threads" \
    '[[ $st == *COMPLETED*ExitCode=0:0* ]] && [[ $lay =~ ^"ibc: 1 rank x 2 threads, cores per rank: "[0-9]+[-,][0-9]+$ ]] && ! grep -q warning $tmp/ibc-$id.out && [ -s $tmp/two/tiny/summary.csv ]'
else
  echo "skip slurm 1 rank x 2 threads: the machine has one core"
fi

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
