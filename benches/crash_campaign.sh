#!/bin/sh
# The long kill -9 campaign (SPEC §9, docs/reliability.md): the test
# `crash::kill_9_under_load_loses_no_acknowledged_write` with many more cycles, in a release
# build. Each cycle puts the real daemon under concurrent registrations and usage reports,
# SIGKILLs it at a random moment, restarts it on the same data directory and checks that every
# acknowledged write is there. Prints the figures (kills, acknowledged writes, losses) at the end.
#
# Usage: benches/crash_campaign.sh [CYCLES] [SEED]
#   CYCLES  number of kills (default 200)
#   SEED    replay a campaign (default: from the clock; the seed is printed)
set -eu

cd "$(dirname "$0")/.."
cycles="${1:-200}"
if [ -n "${2:-}" ]; then
    SATELLITE_CRASH_SEED="$2"
    export SATELLITE_CRASH_SEED
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

start=$(date +%s)
status=0
SATELLITE_CRASH_CYCLES="$cycles" cargo test --locked --release --test tests \
    crash::kill_9_under_load_loses_no_acknowledged_write -- --exact --nocapture \
    >"$log" 2>&1 || status=$?
end=$(date +%s)

grep -E '^(crash campaign|cycle )' "$log" || true
if [ "$status" -ne 0 ]; then
    echo "--- the campaign failed (exit $status); full output:"
    cat "$log"
    exit "$status"
fi
echo "wall time including the build: $((end - start)) s"
