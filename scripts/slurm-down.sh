#!/usr/bin/env bash
# Stop the single-node Slurm cluster that scripts/slurm-up.sh started: slurmd, slurmctld,
# slurmdbd, and MariaDB/munged only if slurm-up.sh started them (a workstation's own stay up).
#
#   sudo scripts/slurm-down.sh           # stop; configs, accounting and job history are kept
#   sudo scripts/slurm-down.sh --purge   # also remove the configs, state and accounting database
set -euo pipefail

RUN_DIR=/run/slurm
CONF_DIR=/etc/slurm
STATE_DIR=/var/lib/slurm
MARKER="# Written by dnafm scripts/slurm-up.sh (single-node test cluster)."

purge=0
case ${1:-} in
"") ;;
--purge) purge=1 ;;
*)
    echo "usage: $0 [--purge]" >&2
    exit 2
    ;;
esac

die() {
    echo "slurm-down: error: $*" >&2
    exit 1
}
[[ $(id -u) -eq 0 ]] || die "needs root: run it with sudo"
if [[ -f $CONF_DIR/slurm.conf ]] && ! head -n 1 "$CONF_DIR/slurm.conf" | grep -qxF "$MARKER"; then
    die "$CONF_DIR/slurm.conf was not written by slurm-up.sh: not stopping a cluster it did not start"
fi

# Stop the process whose pid is in $2 (named $1): SIGTERM, then SIGKILL after 30 s.
stop_pidfile() {
    local name=$1 pidfile=$2 pid
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        echo "slurm-down: stopping $name ($pid)"
        kill "$pid"
        for _ in $(seq 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slurm-down: $name did not stop after 30 s: killing it" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

# Jobs still running would be orphaned (their slurmstepd outlive slurmd): cancel them first.
if command -v scontrol >/dev/null && scontrol ping >/dev/null 2>&1; then
    scancel --full --user=root 2>/dev/null || true
    [[ -n ${SUDO_USER:-} ]] && scancel --full --user="$SUDO_USER" 2>/dev/null || true
fi
stop_pidfile slurmd "$RUN_DIR/slurmd.pid"
stop_pidfile slurmctld "$RUN_DIR/slurmctld.pid"
stop_pidfile slurmdbd "$RUN_DIR/slurmdbd.pid"

if [[ -f $RUN_DIR/started-mariadbd ]]; then
    if ((purge)); then
        mariadb --protocol=socket -u root -e 'DROP DATABASE IF EXISTS slurm_acct_db;' || true
    fi
    stop_pidfile mariadbd /run/mysqld/mysqld.pid
    rm -f "$RUN_DIR/started-mariadbd"
fi
if [[ -f $RUN_DIR/started-munged ]]; then
    stop_pidfile munged /run/munge/munged.pid
    rm -f "$RUN_DIR/started-munged"
fi
if ((purge)); then
    rm -f "$CONF_DIR/slurm.conf" "$CONF_DIR/slurmdbd.conf"
    rm -rf "${STATE_DIR:?}/slurmctld" "${STATE_DIR:?}/slurmd"
fi
echo "slurm-down: stopped"
