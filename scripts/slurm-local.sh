#!/usr/bin/env bash
# A one-node Slurm cluster on localhost for tests (../shared/docs/local-slurm.md), as root.
#   scripts/slurm-local.sh start DIR   writes DIR/slurm.conf, starts munged (if needed),
#                                      slurmctld and slurmd; waits until the node is idle
#   scripts/slurm-local.sh stop DIR    stops what start started
# Clients find the cluster through SLURM_CONF=DIR/slurm.conf; /etc/slurm is not touched.
set -euo pipefail
cmd=${1:?start|stop} dir=${2:?DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
export SLURM_CONF=$dir/slurm.conf
host=$(hostname)

if [ "$cmd" = stop ]; then
  scontrol shutdown >/dev/null 2>&1 || true
  for f in slurmctld slurmd munged; do
    [ -f "$dir/$f.pid" ] && kill "$(cat "$dir/$f.pid")" 2>/dev/null || true
  done
  exit 0
fi

# munge: a key if there is none, the daemon if it is not running
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force
  pgrep -u munge -n munged >"$dir/munged.pid"
fi
munge -n | unmunge | grep -q "STATUS: *Success"

mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p "$dir/state" "$dir/spool" "$dir/log"
cat >"$SLURM_CONF" <<CONF
ClusterName=ibc-local
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -qE "^idle" && exit 0
  sleep 1
done
echo "slurm-local: the node did not become idle; see $dir/log" >&2
exit 1
