#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine from Debian's packages, with job accounting
# (slurmdbd + MariaDB) so that `sacct` — which snakemake-executor-plugin-slurm polls for job
# states — works. For CI and for trying profiles/slurm on a workstation.
#
#   sudo scripts/slurm-up.sh        # start (or check) the cluster; safe to rerun
#   sudo scripts/slurm-down.sh      # stop it
#
# No systemd needed: the daemons are started directly. Needs root. Installs the Debian packages
# (slurm-wlm, slurmdbd, munge, mariadb-server) when missing. Settings, from the environment:
#   DNAFM_SLURM_CLUSTER    cluster name             (default: dnafm)
#   DNAFM_SLURM_PARTITION  the default partition    (default: main)
#   DNAFM_SLURM_ACCOUNT    account for the users    (default: dnafm)
#   DNAFM_SLURM_USERS      users added to the account (default: root and $SUDO_USER)
#   DNAFM_SLURM_WAIT_S     how long to wait for the node to come up idle (default: 120)
#   DNAFM_SLURM_OVERSUBSCRIBE  the partition's OverSubscribe (default: FORCE:4, up to 4 jobs share
#                          a CPU: a workflow's small jobs mostly wait on Python start-up; NO: one per CPU)
#   DNAFM_SLURM_NODE_CPUS  CPUs the node offers to jobs (default: what it has, `slurmd -C`); more
#                          lets a job ask for more CPUs than the machine has (a group job asks
#                          for one per genome it holds)
set -euo pipefail

CLUSTER=${DNAFM_SLURM_CLUSTER:-dnafm}
PARTITION=${DNAFM_SLURM_PARTITION:-main}
ACCOUNT=${DNAFM_SLURM_ACCOUNT:-dnafm}
USERS=${DNAFM_SLURM_USERS:-root ${SUDO_USER:-}}
WAIT_S=${DNAFM_SLURM_WAIT_S:-120}
OVERSUBSCRIBE=${DNAFM_SLURM_OVERSUBSCRIBE:-FORCE:4}
NODE_CPUS=${DNAFM_SLURM_NODE_CPUS:-}

CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
STATE_DIR=/var/lib/slurm
# The first line of every config file written here: lets a rerun tell ours from a real cluster's.
MARKER="# Written by dnafm scripts/slurm-up.sh (single-node test cluster)."

die() {
    echo "slurm-up: error: $*" >&2
    exit 1
}
say() { echo "slurm-up: $*"; }

# Print the end of a daemon's log, then fail: the log usually names the cause.
die_with_log() {
    local log=$1
    shift
    echo "slurm-up: error: $*" >&2
    if [[ -f $log ]]; then
        echo "---- last lines of $log ----" >&2
        tail -n 20 "$log" >&2
    fi
    exit 1
}

# True when the pid in $1 is a live process.
pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Wait up to $1 seconds for the command "${@:2}" to succeed.
wait_for() {
    local seconds=$1
    shift
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

[[ $(id -u) -eq 0 ]] || die "needs root (it installs packages and starts daemons): run it with sudo"

install_packages() {
    local packages=(slurm-wlm slurmdbd munge mariadb-server mariadb-client)
    local missing=()
    for pkg in "${packages[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    # policy-rc.d 101: keep the packages' init scripts from starting daemons we start ourselves.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
    ((created_policy)) && rm -f "$policy"
    return 0
}

# Refuse to overwrite a Slurm configuration that this script did not write.
check_not_foreign() {
    local file=$1
    if [[ -f $file ]] && ! head -n 1 "$file" | grep -qxF "$MARKER"; then
        die "$file exists and was not written by this script (a real cluster's config?); " \
            "move it away to use the test cluster"
    fi
}

# Write $1 with the content from stdin, only when it changed; mode $2, owner $3.
write_if_changed() {
    local file=$1 mode=$2 owner=$3 tmp
    tmp=$(mktemp)
    cat >"$tmp"
    if [[ -f $file ]] && cmp -s "$tmp" "$file"; then
        rm -f "$tmp"
        return 1
    fi
    install -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$tmp" "$file"
    rm -f "$tmp"
    return 0
}

start_munge() {
    install -d -m 0755 -o munge -g munge /run/munge
    [[ -s /etc/munge/munge.key ]] || {
        say "creating /etc/munge/munge.key"
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
            dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    }
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        say "starting munged"
        runuser -u munge -- /usr/sbin/munged --force ||
            die_with_log /var/log/munge/munged.log "munged did not start"
        touch "$RUN_DIR/started-munged" # slurm-down.sh stops only what this script started
        wait_for 10 bash -c 'munge -n | unmunge' ||
            die_with_log /var/log/munge/munged.log "munge does not answer"
    fi
}

start_mariadb() {
    install -d -m 0755 -o mysql -g mysql /run/mysqld
    if ! mariadb-admin ping >/dev/null 2>&1; then
        [[ -d /var/lib/mysql/mysql ]] || {
            say "initialising the MariaDB data directory"
            mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null ||
                die "mariadb-install-db failed"
        }
        say "starting MariaDB"
        install -d -m 0755 -o mysql -g adm /var/log/mysql
        setsid /usr/sbin/mariadbd --user=mysql --skip-log-error \
            >>/var/log/mysql/dnafm-mariadbd.log 2>&1 </dev/null &
        wait_for 60 mariadb-admin ping ||
            die_with_log /var/log/mysql/dnafm-mariadbd.log "MariaDB did not come up"
        touch "$RUN_DIR/started-mariadbd"
    fi
}

# The accounting database and its user; the password lives only in slurmdbd.conf (mode 600).
db_password() {
    local conf=$CONF_DIR/slurmdbd.conf
    if [[ -f $conf ]] && grep -q '^StoragePass=' "$conf"; then
        sed -n 's/^StoragePass=//p' "$conf"
    else
        head -c 18 /dev/urandom | base64 | tr -d '/+='
    fi
}

setup_database() {
    local password=$1
    mariadb --protocol=socket -u root <<SQL || die "could not create the slurm accounting database"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '${password}';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '${password}';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
}

write_configs() {
    local password=$1 host node_line changed=0
    host=$(hostname -s)
    # The node as slurmd sees it (CPUs, sockets, cores, threads, memory): registering it with
    # more than it has would drain it.
    node_line=$(slurmd -C | head -n 1) || die "slurmd -C failed"
    [[ $node_line == NodeName=* ]] || die "unexpected output from slurmd -C: $node_line"
    # More CPUs than the machine has: a flat topology, and slurmd told to trust the config.
    local overrides=""
    if [[ -n $NODE_CPUS ]]; then
        [[ $NODE_CPUS =~ ^[1-9][0-9]*$ ]] || die "DNAFM_SLURM_NODE_CPUS must be a positive integer, not '$NODE_CPUS'"
        node_line="$(grep -o '^NodeName=[^ ]*' <<<"$node_line") CPUs=$NODE_CPUS $(grep -o 'RealMemory=[0-9]*' <<<"$node_line")"
        overrides="SlurmdParameters=config_overrides"
    fi
    install -d -m 0755 -o slurm -g slurm "$LOG_DIR" "$RUN_DIR" "$STATE_DIR" \
        "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd"

    write_if_changed "$CONF_DIR/slurm.conf" 0644 root:root <<EOF && changed=1
$MARKER
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
# No cgroups: works in containers and VMs without systemd.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs that ask for no memory get this much per CPU instead of the whole node.
DefMemPerCPU=1024
# Seconds between SIGTERM and SIGKILL when a job is cancelled, requeued or runs out of time:
# the time a preempted pretraining job has to write its checkpoint.
KillWait=30
JobRequeue=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations
# sacct shows each job's comment: snakemake-executor-plugin-slurm writes rule_<name>_wildcards_… there.
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10
JobCompType=jobcomp/none
$overrides
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=$OVERSUBSCRIBE
EOF

    write_if_changed "$CONF_DIR/slurmdbd.conf" 0600 slurm:slurm <<EOF && DBD_CONFIG_CHANGED=1
$MARKER
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=$RUN_DIR/slurmdbd.pid
LogFile=$LOG_DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$password
StorageLoc=slurm_acct_db
EOF
    CONFIG_CHANGED=$changed
}

start_slurmdbd() {
    if pid_alive "$RUN_DIR/slurmdbd.pid" && ((DBD_CONFIG_CHANGED)); then
        say "slurmdbd.conf changed: restarting slurmdbd"
        stop_pid "$RUN_DIR/slurmdbd.pid"
    fi
    if ! pid_alive "$RUN_DIR/slurmdbd.pid"; then
        say "starting slurmdbd"
        /usr/sbin/slurmdbd || die_with_log "$LOG_DIR/slurmdbd.log" "slurmdbd did not start"
    fi
    wait_for 60 sacctmgr -n list cluster ||
        die_with_log "$LOG_DIR/slurmdbd.log" "slurmdbd does not answer (sacctmgr list cluster)"
}

# The cluster, the account and its users in the accounting database (each only when missing).
setup_accounts() {
    if [[ -z $(sacctmgr -n -P list cluster "$CLUSTER" format=cluster) ]]; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster $CLUSTER failed"
    fi
    if [[ -z $(sacctmgr -n -P list account "$ACCOUNT" format=account) ]]; then
        sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" \
            Description="dnafm test account" Organization=dnafm >/dev/null ||
            die "sacctmgr add account $ACCOUNT failed"
    fi
    local user
    for user in $USERS; do
        id -u "$user" >/dev/null 2>&1 || die "user $user (DNAFM_SLURM_USERS) does not exist"
        if [[ -z $(sacctmgr -n -P list assoc user="$user" account="$ACCOUNT" format=user) ]]; then
            sacctmgr -i add user "$user" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" \
                Cluster="$CLUSTER" >/dev/null || die "sacctmgr add user $user failed"
        fi
    done
}

start_slurm_daemons() {
    if pid_alive "$RUN_DIR/slurmctld.pid" && ((CONFIG_CHANGED)); then
        say "slurm.conf changed: restarting the Slurm daemons"
        stop_pid "$RUN_DIR/slurmd.pid"
        stop_pid "$RUN_DIR/slurmctld.pid"
    fi
    if ! pid_alive "$RUN_DIR/slurmctld.pid"; then
        say "starting slurmctld"
        /usr/sbin/slurmctld || die_with_log "$LOG_DIR/slurmctld.log" "slurmctld did not start"
    fi
    wait_for 60 scontrol ping ||
        die_with_log "$LOG_DIR/slurmctld.log" "slurmctld does not answer (scontrol ping)"
    if ! pid_alive "$RUN_DIR/slurmd.pid"; then
        say "starting slurmd"
        /usr/sbin/slurmd || die_with_log "$LOG_DIR/slurmd.log" "slurmd did not start"
    fi
}

stop_pid() {
    local pidfile=$1 pid
    pid_alive "$pidfile" || return 0
    pid=$(cat "$pidfile")
    kill "$pid"
    wait_for 30 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
}

wait_node_idle() {
    local node state
    node=$(hostname -s)
    local deadline=$((SECONDS + WAIT_S))
    while :; do
        state=$(sinfo -h -n "$node" -o '%T' 2>/dev/null | head -n 1)
        case $state in
        idle | mixed | allocated) break ;;
        down* | drain* | fail*)
            # A node left down by an earlier run (e.g. stopped mid-job): bring it back.
            scontrol update nodename="$node" state=resume 2>/dev/null || true
            ;;
        esac
        ((SECONDS < deadline)) || die_with_log "$LOG_DIR/slurmd.log" \
            "node $node is '${state:-unknown}', not idle, after ${WAIT_S}s: $(scontrol show node "$node" | grep -o 'Reason=.*')"
        sleep 1
    done
    say "node $node is $state; partition $PARTITION (default), account $ACCOUNT, users: $USERS"
}

for f in "$CONF_DIR/slurm.conf" "$CONF_DIR/slurmdbd.conf"; do check_not_foreign "$f"; done
install_packages
install -d -m 0755 "$RUN_DIR"
start_munge
start_mariadb
password=$(db_password)
setup_database "$password"
CONFIG_CHANGED=0
DBD_CONFIG_CHANGED=0
write_configs "$password"
start_slurmdbd
setup_accounts
start_slurm_daemons
wait_node_idle
