#!/usr/bin/env bash
# Profile where a usage report's server CPU time goes (issue #12, item 2): the satellite and the
# bare hyper + rustls server (examples/baseline.rs), each pinned to SERVER_CPU and driven by
# `satellite loadgen` over HTTP/1.1 from GEN_CPU, exactly as benches/compare.sh sets them up. While
# the generator is in its timed reporting phase, `perf stat` counts the server's task-clock,
# context switches and migrations for STAT_SECS, then `perf record` samples it
# for RECORD_SECS. Everything is local (127.0.0.1) and the request count is fixed.
#
# From a fresh clone:   benches/profile.sh            (needs perf, jq, taskset; root or
#                                                       kernel.perf_event_paranoid <= 1)
# Knobs (environment):  DEVICES=1000 CONCURRENCY=32 WARMUP=2 SERVER_CPU=0 GEN_CPU=1
#                       SAT_REPORTS=700000 BASE_REPORTS=4000000 (enough for the perf windows:
#                       ~21k/s satellite, ~140k/s baseline)
#                       SETTLE=5 (seconds from the generator's start to the first perf window:
#                       registrations + warm-up)  STAT_SECS=10 RECORD_SECS=10 FREQ=499
#                       CALLGRAPH=fp (or dwarf,16384)  RECORD_BASELINE=1 (0: perf stat only)
#                       RECORD_EVENT=<a perf event to record instead of sampling the clock,
#                       e.g. sched:sched_switch to see where each thread gives up its CPU>
#                       OUT=<dir for results>  BASELINE=1 (0: the satellite only)
#                       DURABLE=0 (1: the baseline is the durable baseline, committing each
#                       body through the satellite's store before its 204: `--store`)
#                       SAT_BIN=<a satellite binary to profile instead of this tree's release
#                       build, e.g. a copy of an earlier build for before/after rounds>
#                       MALLOC_SECS=0 (> 0: after perf stat, count the satellite's calls to
#                       libc's malloc, calloc and realloc for that long with uprobes, and the
#                       usage reports it handled (a uprobe on `Catalog::report_usage`),
#                       and print allocations per report. The uprobes slow the server, so this
#                       window is separate from the CPU figures.)  MALLOC_RECORD=0 (1: then
#                       record the call chains of malloc for MALLOC_SECS more, in
#                       satellite.malloc.txt, to see who allocates; DWARF call graphs, since
#                       libc has no frame pointers)
#
# Results in $OUT: {satellite,baseline}.json (loadgen), *.perfstat, *.perf.data and the reports
# *.symbols.txt (self time by thread, dso, symbol) and *.threads.txt (by thread).
# See docs/benchmarks.md, "Where the time per report goes", for how they were read.
set -euo pipefail

DEVICES=${DEVICES:-1000}
CONCURRENCY=${CONCURRENCY:-32}
WARMUP=${WARMUP:-2}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
SAT_REPORTS=${SAT_REPORTS:-700000}
BASE_REPORTS=${BASE_REPORTS:-4000000}
SETTLE=${SETTLE:-5}
STAT_SECS=${STAT_SECS:-10}
RECORD_SECS=${RECORD_SECS:-10}
FREQ=${FREQ:-499}
CALLGRAPH=${CALLGRAPH:-fp}
RECORD_BASELINE=${RECORD_BASELINE:-1}
MALLOC_SECS=${MALLOC_SECS:-0}
BASELINE=${BASELINE:-1}
TAG=bench.tag

for tool in cargo jq taskset perf; do
    command -v "$tool" >/dev/null || { echo "profile.sh: $tool is needed" >&2; exit 2; }
done
cd "$(dirname "$0")/.."
if [ "$BASELINE" = 1 ] || [ -z "${SAT_BIN:-}" ]; then
    cargo build --release --locked --bin satellite --example baseline
fi
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
SAT=${SAT_BIN:-$TARGET/release/satellite}
BASE=$TARGET/release/examples/baseline
OUT=${OUT:-$(mktemp -d -t satellite-profile.XXXXXX)}
mkdir -p "$OUT"
WORK=$(mktemp -d -t satellite-profile-run.XXXXXX)
# shellcheck source=support/servers.sh
source benches/support/servers.sh
GEN_PID=
cleanup() {
    if [ -n "$GEN_PID" ]; then kill "$GEN_PID" 2>/dev/null || true; fi
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# start_loadgen NAME REPORTS ARGS...: the generator in the background, pinned, HTTP/1.1.
start_loadgen() {
    local name=$1 reports=$2
    shift 2
    taskset -c "$GEN_CPU" "$SAT" loadgen --devices "$DEVICES" --reports "$reports" \
        --concurrency "$CONCURRENCY" --warmup "$WARMUP" --tag "$TAG" --http1 \
        --server-pid "$SERVER_PID" --quiet --json "$@" >"$OUT/$name.json" 2>"$OUT/$name.err" &
    GEN_PID=$!
}

finish_loadgen() {
    if ! wait "$GEN_PID"; then echo "  (loadgen errors: $(cat "$OUT/$1.err"))" >&2; fi
    GEN_PID=
}

# thread_switches: each server thread's name and context switches so far (voluntary +
# involuntary), from /proc, so that the switches of the stat window can be told apart by thread.
thread_switches() {
    local task
    for task in /proc/"$SERVER_PID"/task/*; do
        awk -v comm="$(cat "$task/comm" 2>/dev/null)" -v tid="${task##*/}" '
            /^voluntary_ctxt_switches/ { v = $2 }
            /^nonvoluntary_ctxt_switches/ { n = $2 }
            END { print tid, comm, v + n }' "$task/status" 2>/dev/null || true
    done
}

# count_allocations: calls to libc's allocation functions and usage reports handled by the
# satellite during MALLOC_SECS, through uprobes that are removed again afterwards.
count_allocations() {
    local libc
    libc=$(ldd "$SAT" | awk '/libc\.so/ { print $3 }')
    [ -n "$libc" ] || { echo "profile.sh: the satellite links no libc" >&2; return; }
    perf probe -q -d 'satalloc:*' 2>/dev/null || true
    for f in malloc calloc realloc; do perf probe -q -x "$libc" --add "satalloc:$f=$f"; done
    # By its short name: the one function of that name in the binary (perf probe matches
    # demangled names; a mangled one or an address is not found or lands elsewhere).
    perf probe -q -x "$SAT" --add "satalloc:report=report_usage"
    perf stat -e 'satalloc:*' -p "$SERVER_PID" -o "$OUT/satellite.mallocstat" -- sleep "$MALLOC_SECS"
    if [ "${MALLOC_RECORD:-0}" = 1 ]; then
        perf record -e satalloc:malloc -e satalloc:realloc -e satalloc:calloc -g \
            --call-graph dwarf,16384 -p "$SERVER_PID" -o "$OUT/satellite.malloc.data" \
            -- sleep "$MALLOC_SECS" 2>/dev/null
        perf report -i "$OUT/satellite.malloc.data" --no-children --stdio -G \
            2>/dev/null >"$OUT/satellite.malloc.txt" || true
    fi
    perf probe -q -d 'satalloc:*'
}

# measure NAME RECORD: perf stat (and perf record when RECORD=1) on the server mid-run.
measure() {
    local name=$1 record=$2
    sleep "$SETTLE"
    kill -0 "$GEN_PID" 2>/dev/null || { echo "profile.sh: loadgen ended before perf" >&2; exit 1; }
    thread_switches >"$OUT/$name.switches.before"
    perf stat -e task-clock,context-switches,cpu-migrations,syscalls:sys_enter_fdatasync \
        -p "$SERVER_PID" -o "$OUT/$name.perfstat" -- sleep "$STAT_SECS"
    thread_switches >"$OUT/$name.switches.after"
    if [ "$name" = satellite ] && [ "$MALLOC_SECS" -gt 0 ]; then count_allocations; fi
    if [ "$record" = 1 ]; then
        local sample=(-F "$FREQ")
        if [ -n "${RECORD_EVENT:-}" ]; then sample=(-e "$RECORD_EVENT"); fi
        perf record "${sample[@]}" -g --call-graph "$CALLGRAPH" -p "$SERVER_PID" \
            -o "$OUT/$name.perf.data" -- sleep "$RECORD_SECS" 2>"$OUT/$name.record.err"
    fi
    kill -0 "$GEN_PID" 2>/dev/null || echo "profile.sh: WARNING: loadgen ended inside the perf windows; raise the report count" >&2
}

echo "machine: $(nproc) CPUs, kernel $(uname -r); load average before: $(loadavg)"
echo "HTTP/1.1, devices $DEVICES, concurrency $CONCURRENCY, server CPU $SERVER_CPU, generator CPU $GEN_CPU; results in $OUT"

# Baseline.
if [ "$BASELINE" = 1 ]; then
    dir=$WORK/baseline
    mkdir -p "$dir"
    store=()
    if [ "${DURABLE:-0}" = 1 ]; then store=(--store "$dir/store"); fi
    start_server "$dir/out" "$BASE" --listen 127.0.0.1:0 --dir "$dir/pki" ${store[@]+"${store[@]}"}
    url=$(awk '$1 == "baseline" { print $2 }' "$dir/out")
    echo "baseline${store[*]:+ (durable)} (load average $(loadavg))"
    start_loadgen baseline "$BASE_REPORTS" --url "$url" --ca "$dir/pki/ca.pem" --baseline-identity "$dir/pki"
    measure baseline "$RECORD_BASELINE"
    finish_loadgen baseline
    stop_server
fi

# Satellite.
dir=$WORK/satellite
mkdir -p "$dir"
start_satellite "$dir"
echo "satellite (load average $(loadavg))"
start_loadgen satellite "$SAT_REPORTS" --url "$SAT_URL" --ca "$SAT_CA" --token "$SAT_TOKEN"
measure satellite 1
finish_loadgen satellite
stop_server
echo "load average after: $(loadavg)"

for name in baseline satellite; do
    [ -f "$OUT/$name.perf.data" ] || continue
    perf report -i "$OUT/$name.perf.data" --no-children --sort comm,dso,symbol --stdio -g none \
        2>/dev/null | grep -v '^$' >"$OUT/$name.symbols.txt" || true
    perf report -i "$OUT/$name.perf.data" --no-children --sort comm --stdio -g none \
        2>/dev/null | grep -v '^$' >"$OUT/$name.threads.txt" || true
done

# Summary: CPU per report from loadgen; context switches per report from perf stat as switches
# per CPU-second × CPU per report (independent of how much perf record slowed the rest of the run).
for name in baseline satellite; do
    [ -f "$OUT/$name.json" ] || continue
    jq -r --arg n "$name" '"\($n): \(.usage.per_sec | round) reports/s, server CPU \(.usage.server_cpu_us_per_op * 10 | round / 10) us/report, server busy \(.usage.server_busy_cores // 0 | . * 100 | round)%, p99 \(.usage.latency_ms.p99) ms, failed \(.usage.requests - .usage.ok)"' "$OUT/$name.json"
    us=$(jq -r .usage.server_cpu_us_per_op "$OUT/$name.json")
    awk -v n="$name" -v us="$us" '
        /task-clock/ { tc = $1; gsub(",", "", tc) }
        /context-switches/ { cs = $1; gsub(",", "", cs) }
        /cpu-migrations/ { mg = $1; gsub(",", "", mg) }
        /sys_enter_fdatasync/ { fs = $1; gsub(",", "", fs) }
        /seconds time elapsed/ { el = $1 }
        END {
            reports = tc * 1000 / us
            printf "%s perf stat: %.0f ms task-clock in %.2f s; %.0f context switches (%.2f per report), %s migrations\n", n, tc, el, cs, cs / reports, mg
            if (fs > 0) printf "%s perf stat: %.0f fdatasync calls, %.1f reports per fdatasync (group)\n", n, fs, reports / fs
        }
    ' "$OUT/$name.perfstat"
    # Context switches in the stat window by thread kind (sled-io-N counted together), per report.
    awk -v n="$name" -v us="$us" -v tc="$(awk '/task-clock/ { gsub(",", "", $1); print $1 }' "$OUT/$name.perfstat")" '
        NR == FNR { before[$1] = $3; next }
        { kind = $2; sub(/-[0-9]+$/, "-N", kind); by[kind] += $3 - before[$1] }
        END {
            reports = tc * 1000 / us
            line = n " switches per report by thread:"
            for (k in by) line = line sprintf(" %s %.2f", k, by[k] / reports)
            print line
        }
    ' "$OUT/$name.switches.before" "$OUT/$name.switches.after"
done
if [ -f "$OUT/satellite.mallocstat" ]; then
    awk '
        /satalloc:report/ { r = $1; gsub(",", "", r) }
        /satalloc:(malloc|calloc|realloc)/ { n = $1; gsub(",", "", n); a += n; by = by " " $2 " " n }
        END { printf "satellite allocations: %.1f per report (%s reports;%s)\n", a / r, r, by }
    ' "$OUT/satellite.mallocstat"
fi
echo "self time by symbol: $OUT/*.symbols.txt; by thread: $OUT/*.threads.txt"
