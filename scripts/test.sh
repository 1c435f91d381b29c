#!/usr/bin/env bash
# The README's test command: every test of the workspace, then one total line and the
# list of test parts that did not run on this machine and why (a missing tool outside
# CI, a kernel feature). Arguments go to `cargo test`. Under CI=true a missing tool
# fails its test instead, so CI's list is empty.
set -uo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
skips="$target/test-skips"
rm -rf "$skips"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# cargo prints one result line per test binary; add them up.
awk '/^test result:/ { p += $4; f += $6 } END { printf "total: %d passed, %d failed\n", p, f }' "$log"
if [ -d "$skips" ] && [ -n "$(ls -A "$skips")" ]; then
    count=$(cat "$skips"/* | wc -l)
    echo "skipped: $count test part(s) did not run here (they passed without them):"
    sort -u "$skips"/* | sed 's/^/  /'
    echo "(.ci/install-tools.sh installs the tools; under CI=true a missing tool fails instead)"
else
    echo "skipped: none"
fi
exit "$status"
