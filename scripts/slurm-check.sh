#!/usr/bin/env bash
# Sharded sweeps through a real Slurm: starts a single-node Slurm on this machine (Debian's
# slurm-wlm and munge, installed with apt when absent), submits the job-array recipe of
# docs/running.md for a small sweep, merges the shards with `statesim merge` in a job that depends
# on the array, and checks that the merged folder equals a local run of the same sweep byte for
# byte. Everything stays on this machine; every daemon it starts is stopped by PID on exit, and
# the whole check is bounded in time.
#
#   scripts/slurm-check.sh [STATESIM_BINARY]     (default: target/release/statesim, built if absent)
#
# Needs root (slurmd runs jobs as their user, munged needs its key). Exit code 0 when the merged
# result matches.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
statesim=${1:-$root/target/release/statesim}
limit=${SLURM_CHECK_TIMEOUT:-300}

if [ ! -x "$statesim" ]; then
  cargo build --release --quiet
fi
statesim=$(realpath "$statesim")

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/statesim-slurm.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    $sudo kill "$pid" 2>/dev/null || true
  done
  sleep 0.5
  for pid in "${pids[@]}"; do
    $sudo kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

host=$(hostname -s)
mkdir -p "$work/spool" "$work/state" "$work/munge" "$work/shards"
chmod 700 "$work/munge"

# munge: a key of our own and a socket in the work folder, so a munged already running is not
# touched.
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
socket="$work/munge/munge.socket"
$sudo munged --key-file="$work/munge/munge.key" --socket="$socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" \
  --seed-file="$work/munge/munged.seed" --force
for _ in $(seq 50); do [ -s "$work/munge/munged.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/munge/munged.pid")")

cpus=$(nproc)
cat > "$work/slurm.conf" <<CONF
ClusterName=statesim-check
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=10 State=UP
CONF
export SLURM_CONF="$work/slurm.conf"

$sudo env SLURM_CONF="$SLURM_CONF" slurmctld -i
for _ in $(seq 100); do [ -s "$work/slurmctld.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/slurmctld.pid")")
$sudo env SLURM_CONF="$SLURM_CONF" slurmd
for _ in $(seq 100); do [ -s "$work/slurmd.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/slurmd.pid")")

deadline=$((SECONDS + limit))
until sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; do
  if [ $SECONDS -ge $deadline ]; then
    echo "slurm-check: the node never became idle" >&2
    sinfo >&2 || true
    tail -20 "$work/slurmctld.log" "$work/slurmd.log" >&2 || true
    exit 1
  fi
  sleep 0.5
done

# The sweep: 3 server counts x 3 topologies x 2 replications = 18 jobs, in 4 shards.
scenario="$root/scenarios/quickstart.toml"
args=(run "$scenario" --set duration=60s --set warmup=20s --set fault.0.at=40s
  --sweep servers.count=6,8,10 --replications 2 --quiet)
shards=4

cat > "$work/array.sh" <<JOB
#!/bin/bash
#SBATCH --array=0-$((shards - 1)) --cpus-per-task=1 --output=$work/array-%a.log
exec "$statesim" ${args[@]} --shard "\$SLURM_ARRAY_TASK_ID/$shards" --jobs 1 \\
  --out "$work/shards/\$SLURM_ARRAY_TASK_ID"
JOB
array=$(sbatch --parsable "$work/array.sh")
merge=$(sbatch --parsable --dependency="afterok:$array" --output="$work/merge.log" \
  --wrap "\"$statesim\" merge $work/shards/* --out $work/merged --quiet")
echo "slurm-check: submitted array job $array ($shards shards) and merge job $merge" >&2

# Local reference while Slurm works.
"$statesim" "${args[@]}" --out "$work/local" > /dev/null

while squeue -h -j "$array,$merge" 2>/dev/null | grep -q .; do
  if [ $SECONDS -ge $deadline ]; then
    echo "slurm-check: jobs still queued or running after ${limit}s" >&2
    squeue >&2 || true
    exit 1
  fi
  sleep 1
done
if [ ! -d "$work/merged" ]; then
  echo "slurm-check: the merge job wrote nothing" >&2
  cat "$work"/array-*.log "$work/merge.log" >&2 2>/dev/null || true
  exit 1
fi
if ! diff -r "$work/local" "$work/merged" >&2; then
  echo "slurm-check: the merged shards differ from the local run" >&2
  exit 1
fi
echo "slurm-check: $shards shards run by Slurm and merged equal the local run byte for byte ($(ls "$work/merged" | wc -l) files)"
