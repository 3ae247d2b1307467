#!/usr/bin/env bash
# A real one-node Slurm on this machine, for tests and for trying `lowbit run --scheduler slurm`:
# Debian 12's munge, slurmctld and slurmd, configured for the local host only.
#
#   tools/slurm_local.sh start    # as root: write the config (if ours or absent), start all three
#   tools/slurm_local.sh stop     # stop what `start` started
#   tools/slurm_local.sh status   # exit 0 when the node answers and is idle or busy
#
# Packages: slurm-wlm and munge (tools/setup.sh installs them). The config goes to
# /etc/slurm/slurm.conf and carries a marker line; a config without the marker (a real cluster's)
# is never overwritten. Daemon state and logs live under $LOWBIT_SLURM_STATE
# (default /var/lib/lowbit-slurm).
set -euo pipefail

STATE=${LOWBIT_SLURM_STATE:-/var/lib/lowbit-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# lowbit: tools/slurm_local.sh (one-node test cluster)"

die() { echo "slurm_local.sh: $*" >&2; exit 1; }

have_tools() {
    for t in munged slurmctld slurmd sbatch squeue scontrol; do
        command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || return 1
    done
}

node_ready() {
    local st
    st=$(sinfo -h -o '%t' 2>/dev/null | head -1) || return 1
    case "$st" in idle*|mix*|alloc*|comp*) return 0 ;; *) return 1 ;; esac
}

write_conf() {
    if [ -f "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
        die "$CONF exists and is not ours; not touching a real cluster's config"
    fi
    local node
    node=$(/usr/sbin/slurmd -C | head -1)  # NodeName=... CPUs=... RealMemory=...
    local host=${node#NodeName=}; host=${host%% *}
    mkdir -p "$STATE/ctld" "$STATE/d" /etc/slurm
    cat > "$CONF.tmp" <<EOF
$MARKER
ClusterName=lowbit
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=300
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
}

start() {
    [ "$(id -u)" = 0 ] || die "start needs root (it starts munged, slurmctld and slurmd)"
    have_tools || die "slurm-wlm and munge are not installed (apt-get install slurm-wlm munge)"
    if node_ready; then echo "slurm_local.sh: already running"; return 0; fi
    write_conf
    if ! pgrep -x munged >/dev/null; then
        [ -f /etc/munge/munge.key ] || { /usr/sbin/mungekey --create 2>/dev/null ||
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; }
        chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        chown munge:munge /run/munge /var/log/munge /var/lib/munge
        runuser -u munge -- /usr/sbin/munged
    fi
    pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
    pgrep -x slurmd >/dev/null || /usr/sbin/slurmd
    for _ in $(seq 1 60); do
        if node_ready; then echo "slurm_local.sh: running (one node, $CONF)"; return 0; fi
        scontrol update nodename="$(sinfo -h -o '%n' | head -1)" state=resume >/dev/null 2>&1 || true
        sleep 0.5
    done
    die "the node did not come up; see $STATE/slurmctld.log and $STATE/slurmd.log"
}

stop_pid() {
    local f=$1
    [ -f "$f" ] || return 0
    local p; p=$(cat "$f")
    kill "$p" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.25; done
    kill -9 "$p" 2>/dev/null || true
}

stop() {
    [ -f "$CONF" ] && grep -qF "$MARKER" "$CONF" || { echo "slurm_local.sh: not ours, nothing to stop"; return 0; }
    scancel --user="$(id -un)" >/dev/null 2>&1 || true
    stop_pid "$STATE/slurmd.pid"
    stop_pid "$STATE/slurmctld.pid"
    echo "slurm_local.sh: stopped (munged left running)"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) node_ready ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
