#!/usr/bin/env bash
# A private Docker Engine for tests: Debian's dockerd (package docker.io) as root, with its own
# data root, exec root, socket and cgroup parent, never the system daemon or its socket.
#
#   dockerd.sh start [--owner-pid PID]   start it (stopping leftovers of an earlier run first),
#                                        wait until it answers, print `export DOCKER_HOST=...`
#   dockerd.sh stop                      remove every container, network and volume, stop the
#                                        daemon (TERM, then KILL), remove the state directory
#   dockerd.sh status                    say whether it runs (exit 0 if it answers, else 1)
#   dockerd.sh run [--] CMD [ARG...]     start, run CMD with DOCKER_HOST exported, always stop;
#                                        exits with CMD's status
#
# State lives in ${FLARE_DEPLOY_DOCKERD_DIR:-/tmp/flare-deploy-dockerd} (an absolute path of at
# most 64 characters from [A-Za-z0-9._/-], not under /run): docker.sock (the API socket),
# env (DOCKER_HOST=... and FLARE_DEPLOY_DOCKER_SOCK=..., one per line), dockerd.log, data/
# (--data-root), exec/ (--exec-root), storage-driver, address-pool, and pid files. A start
# that fails leaves its daemon's log beside it, in <state dir>.failed.log.
#
# The daemon runs in its own mount and PID namespaces. In the mount namespace a fresh tmpfs
# covers /run (= /var/run) and /etc/docker, and the daemon listens on a second socket,
# /var/run/docker.sock, that exists only there: a container started with
# `-v /var/run/docker.sock:/var/run/docker.sock` (as NVFlare 2.8's start_docker.sh does; the
# daemon resolves bind-mount sources in its own mount namespace) gets the private daemon, while
# the host's /var/run stays untouched. The private socket's own path (on disk) is the same in
# both namespaces, so NVFlare 2.9's NVFL_DOCKER_SOCK=<socket> works too. Mounts made on the host
# after `start` are not seen by the daemon (private propagation): create bind-mount sources on
# an already-mounted filesystem (any directory under /tmp or the work tree is fine).
# The PID namespace ties every process of the daemon (containerd, shims, containers) to one
# init: killing it (or `stop`) kills them all, even after a `kill -9` of dockerd.
#
# Storage driver: overlay2 when it works here, else vfs (FLARE_DEPLOY_DOCKERD_STORAGE_DRIVER
# forces one). Networking: --iptables=false --ip6tables=false --ip-forward=false and no default
# bridge (--bridge=none; containers without --network get no network); user-defined networks
# (docker network create) are bridges br-<id> in the host's network namespace with DNS between
# containers by name and alias, their subnets /24s of a /16 in 172.18-31 that no host route and
# no other running dockerd uses (FLARE_DEPLOY_DOCKERD_ADDRESS_POOL sets it); `-p` ports are
# served on the host by docker-proxy. `docker run` warns "IPv4 forwarding is disabled": harmless.
# After a crash, `stop` removes the daemon's leftover bridges and cgroups.
#
# Guaranteeing `stop`: call `stop` before `start` (start does it for leftovers too) and on every
# exit path: `trap '"$DOCKERD_SH" stop' EXIT` in scripts (or use `run`), a Drop guard in Rust.
# `--owner-pid PID` also starts a watcher that runs `stop` as soon as process PID ends (e.g. the
# test process after a kill -9 or Ctrl-C, where no Drop guard runs).
#
# Environment: FLARE_DEPLOY_DOCKERD_DIR, FLARE_DEPLOY_DOCKERD_STORAGE_DRIVER (a list, tried in
# order; default "overlay2 vfs"), FLARE_DEPLOY_DOCKERD_ADDRESS_POOL, FLARE_DEPLOY_DOCKERD_START_TIMEOUT
# (s, default 60), FLARE_DEPLOY_DOCKERD_STOP_TIMEOUT (s, default 20). Needs root, dockerd and docker (docker.io), unshare, flock, setsid (util-linux).
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
DIR="${FLARE_DEPLOY_DOCKERD_DIR:-/tmp/flare-deploy-dockerd}"
START_TIMEOUT="${FLARE_DEPLOY_DOCKERD_START_TIMEOUT:-60}"
STOP_TIMEOUT="${FLARE_DEPLOY_DOCKERD_STOP_TIMEOUT:-20}"
MARKER=.flare-deploy-dockerd

log() { printf '[dockerd.sh] %s\n' "$*" >&2; }
die() { printf '[dockerd.sh] ERROR: %s\n' "$*" >&2; exit 1; }

case "$DIR" in
    /*) ;;
    *) DIR="$PWD/$DIR" ;;
esac
DIR="$(realpath -m -- "$DIR")"
case "$DIR" in
    *[!A-Za-z0-9._/-]*) die "FLARE_DEPLOY_DOCKERD_DIR may hold only [A-Za-z0-9._/-]: $DIR" ;;
    / | /run | /run/* | /var/run | /var/run/* | /etc/docker | /etc/docker/*)
        die "FLARE_DEPLOY_DOCKERD_DIR must not be / or under /run, /var/run or /etc/docker (hidden in the daemon's namespace): $DIR" ;;
esac
# Unix socket paths are limited to 107 bytes; the longest one below DIR is containerd's.
[ "${#DIR}" -le 64 ] || die "FLARE_DEPLOY_DOCKERD_DIR is longer than 64 characters: $DIR"
SOCK="$DIR/docker.sock"
# Container cgroups go under a parent of their own (one per state directory).
CGROUP_PARENT="flare-deploy-docker-$(printf '%s' "$DIR" | sha256sum | cut -c1-8)"

# docker, always at the private socket, whatever the caller's DOCKER_* settings; bounded, so that
# a daemon that hangs cannot hang start or stop.
dk() { timeout 30 env -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH docker --host "unix://$SOCK" "$@"; }
answers() { [ -S "$SOCK" ] && timeout 10 env -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH docker --host "unix://$SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
# A live process (a zombie, e.g. an orphan its new parent has not reaped yet, is not).
alive() {
    [ -n "${1:-}" ] || return 1
    local state
    state="$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null || true)"
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
readpid() { cat "$DIR/$1" 2>/dev/null || true; }
# Start time of a process (field 22 of /proc/PID/stat), to tell it from a later one with its pid.
starttime() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null || true; }

# Serializes start and stop: a lock on the state directory's parent (the state directory itself
# comes and goes). Children started in the background never inherit the lock (8<&-).
lock() {
    mkdir -p "$(dirname "$DIR")"
    exec 8<"$(dirname "$DIR")"
    flock 8
}

# The address pool of the daemon's networks: a /16 in 172.18-31 (/24 per network) that no route
# on the host and no other running dockerd uses, so that two private daemons (or a system one)
# never hand out the same subnet on two bridges. FLARE_DEPLOY_DOCKERD_ADDRESS_POOL sets it.
ip2int() {
    local IFS=. a b c d
    read -r a b c d <<<"$1"
    echo $(((a << 24) | (b << 16) | (c << 8) | d))
}
overlaps() { # CIDR CIDR
    local n1="${1%/*}" l1="${1#*/}" n2="${2%/*}" l2="${2#*/}"
    [ "$l1" != "$1" ] || l1=32
    [ "$l2" != "$2" ] || l2=32
    local l=$((l1 < l2 ? l1 : l2))
    local mask=$(((0xffffffff << (32 - l)) & 0xffffffff))
    [ $(($(ip2int "$n1") & mask)) -eq $(($(ip2int "$n2") & mask)) ]
}
choose_address_pool() {
    if [ -n "${FLARE_DEPLOY_DOCKERD_ADDRESS_POOL:-}" ]; then
        echo "$FLARE_DEPLOY_DOCKERD_ADDRESS_POOL"
        return
    fi
    local -a used=()
    local r
    while read -r r; do
        case "$r" in [0-9]*.*) used+=("$r") ;; esac
    done < <(ip -4 route show table all 2>/dev/null | awk '{ print ($1 == "local" || $1 == "broadcast") ? $2 : $1 }')
    while read -r r; do
        used+=("$r")
    done < <(pgrep -a -x dockerd | grep -o -- '--default-address-pool[= ]base=[0-9./]*' | sed 's/.*base=//')
    # docker0's default subnet, in case a system daemon starts later.
    used+=(172.17.0.0/16)
    local h i n cand ok
    h=$((16#$(printf '%s' "$DIR" | sha256sum | cut -c1-4)))
    for ((i = 0; i < 14; i++)); do
        n=$((18 + (h + i) % 14))
        cand="172.$n.0.0/16"
        ok=true
        for r in "${used[@]}"; do
            if overlaps "$cand" "$r"; then ok=false; break; fi
        done
        if [ "$ok" = true ]; then
            echo "$cand"
            return
        fi
    done
    die "no free /16 in 172.18.0.0-172.31.255.255 for the daemon's networks; set FLARE_DEPLOY_DOCKERD_ADDRESS_POOL"
}

# --- inside the namespaces (PID 1 of the new PID namespace) ---------------------------------
ns_init() {
    local driver="$1" pool="$2"
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    local run
    run="$(readlink -f /var/run)"
    mount -t tmpfs -o mode=0755,nosuid,nodev flare-deploy-run "$run"
    if [ -d /etc/docker ]; then
        # dockerd 20.10 writes /etc/docker/key.json; keep it (and any daemon.json) private.
        mount -t tmpfs -o mode=0700 flare-deploy-etc-docker /etc/docker
    fi
    dockerd \
        --data-root "$DIR/data" \
        --exec-root "$DIR/exec" \
        --pidfile "$DIR/exec/dockerd.pid" \
        --config-file "$DIR/daemon.json" \
        -H "unix://$SOCK" \
        -H "unix://$run/docker.sock" \
        --storage-driver "$driver" \
        --iptables=false --ip6tables=false --ip-forward=false \
        --bridge=none \
        --cgroup-parent "/$CGROUP_PARENT" \
        --default-address-pool "base=$pool,size=24" \
        --userland-proxy=true &
    local pid=$!
    # PID 1 gets only the signals it handles: pass TERM and INT to dockerd. As PID 1 this shell
    # also reaps orphans (exited shims). When it exits, the kernel kills the whole namespace.
    trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT
    while alive "$pid"; do
        wait "$pid" || true
    done
}

# --- start ------------------------------------------------------------------------------------
# Starts the namespace and dockerd with one storage driver and waits until it answers. Returns 1
# when the daemon exited or uses another driver (the driver does not work here), 2 when it did
# not answer within START_TIMEOUT.
launch() {
    local driver="$1" pool
    pool="$(choose_address_pool)"
    rm -rf "$DIR/data" "$DIR/exec"
    mkdir -p "$DIR/data" "$DIR/exec"
    echo "$driver" >"$DIR/storage-driver"
    echo "$pool" >"$DIR/address-pool"
    # setsid: its own session, so a Ctrl-C meant for the caller does not reach it.
    # --kill-child: if unshare dies (even by SIGKILL) the namespace's init is killed too.
    FLARE_DEPLOY_DOCKERD_DIR="$DIR" setsid unshare --mount --propagation private \
        --pid --fork --kill-child=KILL --mount-proc \
        -- "$SELF" __ns-init "$driver" "$pool" \
        </dev/null >>"$DIR/dockerd.log" 2>&1 8<&- &
    local unshare_pid=$!
    echo "$unshare_pid" >"$DIR/unshare.pid"
    local init_pid="" i
    for ((i = 0; i < 50; i++)); do
        init_pid="$(pgrep -P "$unshare_pid" 2>/dev/null | head -n 1 || true)"
        [ -n "$init_pid" ] && break
        sleep 0.1
    done
    [ -n "$init_pid" ] || { tail -n 20 "$DIR/dockerd.log" >&2; die "the daemon's namespace did not start"; }
    echo "$init_pid" >"$DIR/ns.pid"
    local deadline=$((SECONDS + START_TIMEOUT))
    while ! answers; do
        if ! alive "$unshare_pid"; then
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            return 2
        fi
        sleep 0.1
    done
    [ "$(dk info --format '{{.Driver}}' 2>/dev/null)" = "$driver" ] || { log "the daemon does not use $driver"; return 1; }
}

start_owner_watcher() {
    local owner="$1" since
    alive "$owner" || die "--owner-pid $owner: no such process"
    since="$(starttime "$owner")"
    FLARE_DEPLOY_DOCKERD_DIR="$DIR" setsid "$SELF" __watch "$owner" "$since" \
        </dev/null >>"$DIR/watcher.log" 2>&1 8<&- &
    echo "$!" >"$DIR/watcher.pid"
}

do_start() {
    local owner=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --owner-pid) owner="${2:?--owner-pid needs a PID}"; shift 2 ;;
            *) die "start: unknown argument: $1" ;;
        esac
    done
    [ "$(id -u)" = 0 ] || die "must run as root"
    local tool
    for tool in dockerd docker unshare setsid flock pgrep; do
        command -v "$tool" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 ||
            die "$tool not found (apt-get install docker.io util-linux procps; .ci/install-tools.sh installs docker.io)"
    done
    lock
    if [ -f "$DIR/$MARKER" ] && alive "$(readpid ns.pid)" && answers; then
        log "already running ($SOCK)"
        [ -z "$owner" ] || alive "$(readpid watcher.pid)" || start_owner_watcher "$owner"
        print_env
        return 0
    fi
    stop_locked quiet
    mkdir -p "$DIR"
    touch "$DIR/$MARKER"
    echo '{}' >"$DIR/daemon.json"
    local t0=$SECONDS driver drivers
    read -r -a drivers <<<"${FLARE_DEPLOY_DOCKERD_STORAGE_DRIVER:-overlay2 vfs}"
    local ok=false rc
    rm -f "$DIR.failed.log"
    for driver in "${drivers[@]}"; do
        rc=0
        launch "$driver" || rc=$?
        if [ "$rc" = 0 ]; then
            ok=true
            break
        fi
        if [ "$rc" = 2 ]; then
            log "dockerd ($driver) did not answer within ${START_TIMEOUT}s; the end of its log:"
            tail -n 20 "$DIR/dockerd.log" >&2
            break
        fi
        log "storage driver $driver does not work here; the end of the daemon's log:"
        tail -n 15 "$DIR/dockerd.log" >&2
        kill_namespace
        printf '\n--- retrying with another storage driver ---\n' >>"$DIR/dockerd.log"
    done
    if [ "$ok" != true ]; then
        cp "$DIR/dockerd.log" "$DIR.failed.log" 2>/dev/null || true
        stop_locked silent
        die "dockerd did not start (storage drivers tried: ${drivers[*]}; its whole log: $DIR.failed.log)"
    fi
    {
        echo "DOCKER_HOST=unix://$SOCK"
        echo "FLARE_DEPLOY_DOCKER_SOCK=$SOCK"
    } >"$DIR/env"
    [ -z "$owner" ] || start_owner_watcher "$owner"
    log "running: storage driver $driver, socket $SOCK, started in $((SECONDS - t0)) s"
    print_env
}

print_env() { echo "export DOCKER_HOST=unix://$SOCK"; }

# --- stop -------------------------------------------------------------------------------------
# Kills the daemon's namespace: TERM to its init (dockerd shuts down), KILL after the bound.
kill_namespace() {
    local init unshare_pid
    init="$(readpid ns.pid)"
    unshare_pid="$(readpid unshare.pid)"
    if alive "$init"; then
        kill -TERM "$init" 2>/dev/null || true
        local deadline=$((SECONDS + STOP_TIMEOUT))
        while alive "$init" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
        if alive "$init"; then
            log "dockerd did not stop within ${STOP_TIMEOUT}s: killing its namespace"
            kill -KILL "$init" 2>/dev/null || true
        fi
    fi
    if alive "$unshare_pid"; then kill -KILL "$unshare_pid" 2>/dev/null || true; fi
    # Processes of this daemon whose pid files are gone (or that outlived them): the init of
    # every namespace whose dockerd uses this data root.
    local pid parent
    for pid in $(pgrep -f -x "dockerd --data-root $DIR/data .*" 2>/dev/null || true); do
        parent="$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ' || true)"
        if [ -n "$parent" ] && [ "$parent" != 1 ] && ps -o args= -p "$parent" 2>/dev/null | grep -q -- ' __ns-init '; then
            kill -KILL "$parent" 2>/dev/null || true
        fi
        kill -KILL "$pid" 2>/dev/null || true
    done
    local i
    for ((i = 0; i < 100; i++)); do
        alive "$init" || alive "$unshare_pid" || pgrep -f -x "dockerd --data-root $DIR/data .*" >/dev/null 2>&1 || break
        sleep 0.1
    done
    rm -f "$DIR/ns.pid" "$DIR/unshare.pid"
}

# Network interfaces the daemon made in the host's network namespace: the bridges of its
# networks (named in its network store) survive a daemon that was killed.
remove_bridges() {
    local db="$DIR/data/network/files/local-kv.db" name
    [ -f "$db" ] || return 0
    { grep -ao '"BridgeName":"[^"]*"' "$db" 2>/dev/null || true; } | sed 's/.*:"\(.*\)"/\1/' | sort -u |
        while read -r name; do
            if [ -n "$name" ] && [ -d "/sys/class/net/$name/bridge" ] && ip link delete "$name" type bridge 2>/dev/null; then
                log "removed leftover bridge $name"
            fi
        done
}

remove_cgroups() {
    local d
    for d in /sys/fs/cgroup/*/"$CGROUP_PARENT" /sys/fs/cgroup/"$CGROUP_PARENT"; do
        [ -d "$d" ] || continue
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}

stop_locked() {
    local quiet="${1:-}"
    if [ -e "$DIR" ] && [ ! -f "$DIR/$MARKER" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
        die "$DIR is not a state directory of dockerd.sh (no $MARKER): not touching it"
    fi
    # The owner watcher, unless this is the watcher itself.
    local watcher
    watcher="$(readpid watcher.pid)"
    if [ -n "$watcher" ] && [ "$watcher" != "$$" ] && alive "$watcher"; then
        kill -TERM "$watcher" 2>/dev/null || true
    fi
    local was_running=false had_state=false
    [ ! -e "$DIR" ] || had_state=true
    if alive "$(readpid ns.pid)" || pgrep -f -x "dockerd --data-root $DIR/data .*" >/dev/null 2>&1; then
        was_running=true
    fi
    if answers; then
        # Through the API (each call bounded: a daemon that hangs is killed below anyway).
        local ids
        ids="$(dk ps -aq 2>/dev/null || true)"
        # shellcheck disable=SC2086 # one id per word
        [ -z "$ids" ] || dk rm -f -v $ids >/dev/null 2>&1 || true
        dk network prune -f >/dev/null 2>&1 || true
        ids="$(dk volume ls -q 2>/dev/null || true)"
        # shellcheck disable=SC2086
        [ -z "$ids" ] || dk volume rm -f $ids >/dev/null 2>&1 || true
    fi
    kill_namespace
    remove_bridges
    remove_cgroups
    # Every mount of the daemon lived in its namespace; nothing of it should be mounted here.
    awk -v d="$DIR" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$DIR"
    if [ "$quiet" = silent ]; then
        :
    elif [ "$was_running" = true ]; then
        log "stopped"
    elif [ "$had_state" = true ]; then
        log "was not running; removed the leftovers of an earlier daemon"
    elif [ "$quiet" != quiet ]; then
        log "not running"
    fi
}

do_stop() {
    [ "$(id -u)" = 0 ] || die "must run as root"
    lock
    stop_locked
}

do_status() {
    if [ -f "$DIR/$MARKER" ] && answers; then
        echo "running: socket $SOCK, storage driver $(cat "$DIR/storage-driver" 2>/dev/null), namespace init pid $(readpid ns.pid)"
        return 0
    fi
    if alive "$(readpid ns.pid)"; then
        echo "not answering (namespace init pid $(readpid ns.pid) is alive; see $DIR/dockerd.log)"
    else
        echo "not running"
    fi
    return 1
}

RUN_CHILD=""
# A signal to `run`: passed on to CMD (KILL after STOP_TIMEOUT), then exit (the EXIT trap stops).
# shellcheck disable=SC2317 # invoked by the traps of do_run
run_signal() {
    local sig="$1" code="$2"
    trap - INT TERM HUP
    if alive "$RUN_CHILD"; then
        kill -"$sig" "$RUN_CHILD" 2>/dev/null || true
        local deadline=$((SECONDS + STOP_TIMEOUT))
        while alive "$RUN_CHILD" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
        if alive "$RUN_CHILD"; then kill -KILL "$RUN_CHILD" 2>/dev/null || true; fi
    fi
    exit "$code"
}

do_run() {
    [ "${1:-}" != -- ] || shift
    [ $# -gt 0 ] || die "usage: $0 run [--] CMD [ARG...]"
    local env_line
    trap '"$SELF" stop' EXIT
    trap 'run_signal INT 130' INT
    trap 'run_signal TERM 143' TERM
    trap 'run_signal HUP 129' HUP
    # --owner-pid: even a kill -9 of this shell stops the daemon (through the watcher).
    env_line="$("$SELF" start --owner-pid $$)"
    export DOCKER_HOST="${env_line#export DOCKER_HOST=}"
    export FLARE_DEPLOY_DOCKER_SOCK="$SOCK"
    # CMD runs in the background (with this shell's stdin) so that a signal is handled at once
    # (bash runs traps only between commands, and `wait` is interruptible).
    exec 3<&0
    "$@" <&3 3<&- &
    RUN_CHILD=$!
    exec 3<&-
    local rc=0
    wait "$RUN_CHILD" || rc=$?
    exit "$rc"
}

do_watch() {
    local owner="$1" since="$2"
    while [ -f "$DIR/$MARKER" ]; do
        if ! alive "$owner" || [ "$(starttime "$owner")" != "$since" ]; then
            log "owner process $owner ended: stopping"
            exec "$SELF" stop
        fi
        sleep 1
    done
}

main() {
    local cmd="${1:-}"
    [ $# -eq 0 ] || shift
    case "$cmd" in
        start) do_start "$@" ;;
        stop) do_stop ;;
        status) do_status ;;
        run) do_run "$@" ;;
        __ns-init) ns_init "$@" ;;
        __watch) do_watch "$@" ;;
        -h | --help | help) sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' ;;
        *) die "usage: $0 start [--owner-pid PID] | stop | status | run [--] CMD [ARG...]" ;;
    esac
}

# One line, read whole before it runs: a long-lived instance (the namespace's init) never reads
# this file again, so editing or replacing the script cannot change a running daemon.
main "$@"; exit "$?"
