#!/usr/bin/env bash
# A private one-node Slurm cluster for tests (Debian's slurm-wlm 22.05, munge, slurmdbd and
# MariaDB, run as root), never the system's: its own munge socket and key, database, config
# (SLURM_CONF), ports, state, spool, pid and log files, all under one directory.
#
#   cluster.sh start   stop leftovers of an earlier run in the same directory, start munged,
#                      MariaDB, slurmdbd, slurmctld and slurmd, wait until the node is idle,
#                      print `export SLURM_CONF=...`
#   cluster.sh stop    cancel every job, stop the daemons (TERM, then KILL), remove the directory
#
# Directory: ${FLARE_DEPLOY_SLURM_DIR:-/tmp/flare-deploy-slurm}. Ports: ${FLARE_DEPLOY_SLURM_PORT:-36817}
# (slurmctld) and the next two (slurmd, slurmdbd), MariaDB on the third after it, all on this
# host. The node has 8 CPUs whatever the machine has (SlurmdParameters=config_overrides): two
# client parents and a job part per client run at once. NVFlare 2.9's Slurm job launcher needs
# accounting (it reads job results with sacct), hence slurmdbd.
set -euo pipefail

D=${FLARE_DEPLOY_SLURM_DIR:-/tmp/flare-deploy-slurm}
PORT=${FLARE_DEPLOY_SLURM_PORT:-36817}
case "$D" in /?*) ;; *) echo "cluster.sh: FLARE_DEPLOY_SLURM_DIR must be an absolute path" >&2; exit 2 ;; esac
case "$PORT" in *[!0-9]*|'') echo "cluster.sh: FLARE_DEPLOY_SLURM_PORT must be a number" >&2; exit 2 ;; esac
DAEMONS=(slurmd slurmctld slurmdbd mariadb munged)

# The processes of this cluster's job steps (slurmstepd keeps running when slurmd stops):
# those whose environment names this cluster's SLURM_CONF, and their descendants.
job_processes() {
    local pid child
    for pid in $(pgrep -x slurmstepd || true); do
        tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "SLURM_CONF=$D/slurm.conf" || continue
        echo "$pid"
        for child in $(pgrep -P "$pid" || true); do
            echo "$child"
            pgrep -P "$child" || true
        done
    done
}

stop() {
    if [ -f "$D/slurm.conf" ]; then
        SLURM_CONF="$D/slurm.conf" scancel --full --quiet --user=root >/dev/null 2>&1 || true
        queue_empty() { [ -z "$(SLURM_CONF="$D/slurm.conf" squeue -h 2>/dev/null)" ]; }
        wait_for 20 queue_empty || true
    fi
    local d pid
    for pid in $(job_processes); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    for signal in TERM KILL; do
        for d in "${DAEMONS[@]}"; do
            pid=$(cat "$D/run/$d.pid" 2>/dev/null || true)
            case "$pid" in ''|*[!0-9]*) continue ;; esac
            kill "-$signal" "$pid" 2>/dev/null || true
        done
        for _ in $(seq 40); do
            local alive=0
            for d in "${DAEMONS[@]}"; do
                pid=$(cat "$D/run/$d.pid" 2>/dev/null || true)
                case "$pid" in ''|*[!0-9]*) continue ;; esac
                kill -0 "$pid" 2>/dev/null && alive=1
            done
            [ "$alive" = 0 ] && break
            sleep 0.25
        done
    done
    rm -rf -- "$D"
}

wait_for() { # seconds, command...
    local tries=$(($1 * 4))
    shift
    for _ in $(seq "$tries"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fail() {
    echo "cluster.sh: $1; logs:" >&2
    tail -n 20 "$D"/log/*.log >&2 2>/dev/null || true
    stop
    exit 1
}

start() {
    stop
    local host db_port=$((PORT + 3))
    host=$(hostname -s)
    mkdir -p "$D"/{munge,db,state,spool,log,run}
    chmod 0700 "$D" "$D/munge"
    dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$D/munge/munge.key"
    munged --force --socket="$D/munge/munge.sock" --key-file="$D/munge/munge.key" \
        --pid-file="$D/run/munged.pid" --log-file="$D/log/munged.log" --seed-file="$D/munge/seed" ||
        fail "munged did not start"

    mariadb-install-db --datadir="$D/db" --user=root --auth-root-authentication-method=normal \
        >"$D/log/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed"
    mariadbd --datadir="$D/db" --user=root --socket="$D/run/mysql.sock" --port="$db_port" \
        --bind-address=127.0.0.1 --pid-file="$D/run/mariadb.pid" --log-error="$D/log/mariadb.log" \
        </dev/null >/dev/null 2>&1 &
    wait_for 60 test -S "$D/run/mysql.sock" || fail "MariaDB did not start"
    mariadb --socket="$D/run/mysql.sock" -uroot -e "CREATE DATABASE slurm_acct_db;
        CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm-test';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || fail "MariaDB setup failed"

    cat >"$D/slurm.conf" <<CONF
ClusterName=flaredeploy
SlurmctldHost=$host
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$((PORT + 2))
AccountingStoragePass=$D/munge/munge.sock
NodeName=$host CPUs=8 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    # slurmdbd reads slurmdbd.conf from the directory of SLURM_CONF.
    cat >"$D/slurmdbd.conf" <<CONF
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.sock
DbdHost=localhost
DbdPort=$((PORT + 2))
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=slurm-test
StorageLoc=slurm_acct_db
PidFile=$D/run/slurmdbd.pid
LogFile=$D/log/slurmdbd.log
CONF
    chmod 0600 "$D/slurmdbd.conf"
    export SLURM_CONF="$D/slurm.conf"
    slurmdbd || fail "slurmdbd did not start"
    wait_for 30 port_open $((PORT + 2)) || fail "slurmdbd does not listen"
    slurmctld || fail "slurmctld did not start"
    slurmd || fail "slurmd did not start"
    idle() { [ "$(sinfo -h -o %T 2>/dev/null)" = idle ]; }
    wait_for 60 idle || fail "the node did not become idle"
    echo "export SLURM_CONF=$D/slurm.conf"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: cluster.sh start|stop" >&2; exit 2 ;;
esac
