#!/usr/bin/env bash
# Short fuzzing smoke run for CI: builds the fuzz targets and runs each one for
# FUZZ_SECONDS (default 20) from its seed corpus. Exits non-zero when a target crashes,
# leaks, times out or runs out of memory (the reproducer lands in fuzz/artifacts/<target>/).
#
#   bash fuzz/smoke.sh                 # 4 targets x 20 s
#   FUZZ_SECONDS=0 bash fuzz/smoke.sh  # only replay the seed corpus (-runs=0)
#
# Needs cargo-fuzz (installed here when missing) and, with the stable toolchain,
# RUSTC_BOOTSTRAP=1 for the -Z sanitizer flags (set below).
set -euo pipefail

cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-20}"
targets=(config_docker config_k8s kit_files certificate)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo fuzz build

# Replays go to a scratch corpus copy so a CI run leaves fuzz/corpus as checked out.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

status=0
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target"
    if [ "$seconds" = 0 ]; then
        limits=(-runs=0)
    else
        limits=(-max_total_time="$seconds")
    fi
    echo "== fuzz smoke: $target (${seconds}s)"
    if ! cargo fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
        "${limits[@]}" -rss_limit_mb=2048 -timeout=10 2>"$scratch/$target.log"; then
        echo "FAILED: $target" >&2
        tail -n 60 "$scratch/$target.log" >&2
        status=1
    else
        grep -E '^(#[0-9]+\s+DONE|Done )' "$scratch/$target.log" || true
    fi
done
exit "$status"
