#!/usr/bin/env bash
# Measures flare-deploy against `cp -a` of the same data on this machine, in one run:
#   (a) one kit:            flare-deploy prepare        vs  cp -a <kit>
#   (b) a large kit:        300 MB custom/ of 5,000 files, prepare vs cp -a
#   (c) 1,000 clients:      prepare --all <prod_00>     vs  cp -a of every kit
# plus peak memory (max RSS, /usr/bin/time) of each. Prints a Markdown table.
# Usage: bench/run.sh [WORKDIR]   (default: a temporary directory, removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT_SMALL=${REPEAT_SMALL:-30}
REPEAT_LARGE=${REPEAT_LARGE:-5}
CLIENTS=${CLIENTS:-1000}

if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time for peak-memory figures" >&2
    apt-get install -y -q time >/dev/null 2>&1 || { echo "need /usr/bin/time (Debian package 'time')" >&2; exit 1; }
fi
cargo build --quiet --release -p flare-deploy --bin flare-deploy -p flare-deploy-tests --bin gen-federation
BIN="$PWD/target/release/flare-deploy"
GEN="$PWD/target/release/gen-federation"

if [ $# -ge 1 ]; then WORK="$1"; mkdir -p "$WORK"; else WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT; fi
CONFIG="$WORK/docker.yaml"
printf 'runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n' > "$CONFIG"

now_us() { date +%s%6N; }

# timed_us SETUP_CMD RUN_CMD: runs SETUP, flushes dirty pages (so that no run pays for
# the previous run's writeback), then times RUN.
timed_us() {
    local start end
    eval "$1"
    sync
    start=$(now_us); eval "$2" >/dev/null 2>&1; end=$(now_us)
    echo $((end - start))
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# peak_kb SETUP_CMD RUN_CMD: max RSS of one run.
peak_kb() {
    eval "$1"
    /usr/bin/time -f '%M' -o "$WORK/time.out" bash -c "$2" >/dev/null 2>&1
    tail -1 "$WORK/time.out"
}

echo "generating kits in $WORK" >&2
"$GEN" "$WORK/one" --clients 1 >/dev/null
"$GEN" "$WORK/large" --clients 1 --custom-files 5000 --custom-bytes 300000000 >/dev/null
"$GEN" "$WORK/fed" --clients "$CLIENTS" >/dev/null
ONE="$WORK/one/prod_00/site-1"
LARGE="$WORK/large/prod_00/site-1"
FED="$WORK/fed/prod_00"
sync

rows=()
run_case() { # label repeat prepare_setup prepare_cmd cp_setup cp_cmd
    local label=$1 repeat=$2 ours=() theirs=()
    eval "$3"; eval "$4" >/dev/null 2>&1 || true   # warm the page cache
    # Interleaved, so that both sides see the same machine state.
    for _ in $(seq "$repeat"); do
        ours+=("$(timed_us "$3" "$4")")
        theirs+=("$(timed_us "$5" "$6")")
    done
    local o t ours_kb theirs_kb
    o=$(printf '%s\n' "${ours[@]}" | median)
    t=$(printf '%s\n' "${theirs[@]}" | median)
    ours_kb=$(peak_kb "$3" "$4")
    theirs_kb=$(peak_kb "$5" "$6")
    rows+=("$(awk -v l="$label" -v o="$o" -v t="$t" -v om="$ours_kb" -v tm="$theirs_kb" \
        'BEGIN { printf "| %s | %.1f ms | %.1f ms | %.2fx | %.1f MB | %.1f MB |", l, o/1000, t/1000, o/t, om/1024, tm/1024 }')")
}

run_case "(a) one kit" "$REPEAT_SMALL" \
    "rm -rf '$WORK/out-a'" "'$BIN' prepare '$ONE' --config '$CONFIG' --output '$WORK/out-a'" \
    "rm -rf '$WORK/cp-a'" "cp -a '$ONE' '$WORK/cp-a'"
run_case "(b) 300 MB kit, 5,000 files" "$REPEAT_LARGE" \
    "rm -rf '$WORK/out-b'" "'$BIN' prepare '$LARGE' --config '$CONFIG' --output '$WORK/out-b'" \
    "rm -rf '$WORK/cp-b'" "cp -a '$LARGE' '$WORK/cp-b'"
run_case "(c) $CLIENTS clients, --all" "$REPEAT_LARGE" \
    "rm -rf '$WORK/out-c'" "'$BIN' prepare --all '$FED' --config '$CONFIG' --output-root '$WORK/out-c'" \
    "rm -rf '$WORK/cp-c'; mkdir '$WORK/cp-c'" "cp -a '$FED'/* '$WORK/cp-c/'"

echo "| case | flare-deploy (median) | cp -a (median) | ratio | flare-deploy peak RSS | cp -a peak RSS |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); $(date -u +%Y-%m-%d)"
