#!/usr/bin/env bash
# Scale measurement (SPEC §10, docs/benchmarks.md "Scale"): a store with DEVICES product
# instances against one with SMALL devices, same VAs and tags.
#
#   benches/scale.sh                                  # 1,000,000 devices vs 1,000
#   DEVICES=200000 benches/scale.sh                   # a smaller run
#   BIG=/path/to/data benches/scale.sh                # reuse a filled data dir: measured on a
#                                                     # copy, so it stays as filled (the run
#                                                     # binds its store to an upstream)
#
# For each store: fill it (`satellite loadgen fill`); start it once after a kill -9 (a start
# that reads the whole store) and STARTS times after a clean stop (from the device snapshot),
# each timed from the start to the `ready` line with VmRSS and CPU seconds then (and VmRSS again
# SETTLE seconds later, once the allocator has returned the load's transient buffers); start
# `satellite serve` again, register REG devices
# through a token in the filled account and send REPORTS usage reports at CONCURRENCY
# (`satellite loadgen`), then time `satellite compliance --va VA --json` RUNS times (median),
# each under COMPLIANCE_TIMEOUT seconds. Needs jq.
# Then the store is bound to a small upstream satellite (dedicating `scale/Default`, the whole
# account) and `satellite sync export` is timed: the outbox difference over every device, and
# one request of `sync.max_changes_per_message` (default 10,000) changes, signed and stored.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES=${DEVICES:-1000000}
SMALL=${SMALL:-1000}
VAS=${VAS:-1000}
TAGS=${TAGS:-100}
SEED=${SEED:-1}
OVERSUB=${OVERSUB:-10}   # every Nth VA over-subscribed; 0 for none
REG=${REG:-50}
REPORTS=${REPORTS:-2000}
CONCURRENCY=${CONCURRENCY:-8}
RUNS=${RUNS:-5}
STARTS=${STARTS:-3}   # starts after a clean stop (from the snapshot), besides one full read
SETTLE=${SETTLE:-3}   # seconds after ready at which RSS is read a second time
COMPLIANCE_TIMEOUT=${COMPLIANCE_TIMEOUT:-120}
# A leaf VA whose pools are over-subscribed (every tenth VA is), and a VA with a subtree.
LEAF_VA=${LEAF_VA:-scale/Default/va-0001/va-0011/va-0120}
TREE_VA=${TREE_VA:-scale/Default/va-0001}

cargo build --release --locked --bin satellite
SAT=$PWD/target/release/satellite
WORK=$(mktemp -d -t satellite-scale.XXXXXX)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
ms() { echo "($2 - $1) * 1000" | bc -l | xargs printf '%.0f'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# start_once NAME STOP CLI...: starts `serve`, prints "ready_ms rss_MiB cpu_s source" once it is
# ready (source: snapshot or store, from its log), then stops it with signal STOP (TERM: a
# clean stop that writes the snapshot; KILL: none).
start_once() {
    local name=$1 stop=$2; shift 2
    local t0 t1 pid source
    t0=$(now)
    "$@" serve >"$WORK/$name.start.out" 2>"$WORK/$name.start.err" &
    pid=$!
    until grep -qx ready "$WORK/$name.start.out" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.start.err" >&2; exit 1; }
        sleep 0.01
    done
    t1=$(now)
    source=store
    grep -q "devices read from the snapshot" "$WORK/$name.start.err" && source=snapshot
    local rss cpu
    rss=$(awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$pid/status")
    cpu=$(awk '{ print ($14 + $15) / 100 }' "/proc/$pid/stat")
    # The allocator hands the load's transient buffers back to the system after a delay
    # (mimalloc purges freed memory after about a second), so RSS is read again later.
    sleep "$SETTLE"
    echo "$(ms "$t0" "$t1") $rss $cpu $source" \
        "$(awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$pid/status")"
    kill -"$stop" "$pid"
    wait "$pid" 2>/dev/null || true
}

# starts NAME CLI...: one start that reads the whole store (the one before it is killed, so
# no snapshot is left), then STARTS starts after clean stops (from the snapshot); prints each
# and the medians.
starts() {
    local name=$1; shift
    local i out
    start_once "$name" KILL "$@" >/dev/null
    out=$(start_once "$name" TERM "$@")
    echo "start ($name) reading the whole store: ready_ms rss_MiB cpu_s source rss_settled_MiB = $out" >&2
    echo "$out" >"$WORK/$name.full"
    : >"$WORK/$name.starts"
    for i in $(seq "$STARTS"); do
        out=$(start_once "$name" TERM "$@")
        echo "start ($name) $i after a clean stop: ready_ms rss_MiB cpu_s source rss_settled_MiB = $out" >&2
        echo "$out" >>"$WORK/$name.starts"
    done
}

# measure NAME DATA_DIR N: fills DATA_DIR (unless it holds a store), serves it, measures.
measure() {
    local name=$1 data=$2 n=$3 conf=$WORK/$1.toml
    cat >"$conf" <<TOML
data_dir = "$data"

[device]
listen = "127.0.0.1:0"

[admin]
listen = ""

[sync]
interval = "off"

[log]
level = "info"
TOML
    local cli=("$SAT" --config "$conf")
    if [ ! -d "$data/store" ]; then
        "${cli[@]}" loadgen fill --devices "$n" --vas "$VAS" --tags "$TAGS" --seed "$SEED" \
            --oversubscribe-every "$OVERSUB" \
            --quiet | tee "$WORK/$name.fill"
    fi
    starts "$name" "${cli[@]}"
    local t0 t1
    t0=$(now)
    "${cli[@]}" serve >"$WORK/$name.out" 2>"$WORK/$name.err" &
    SERVER_PID=$!
    until grep -qx ready "$WORK/$name.out" 2>/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
        sleep 0.01
    done
    t1=$(now)
    local ready_ms rss hwm
    ready_ms=$(ms "$t0" "$t1")
    rss=$(awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$SERVER_PID/status")
    hwm=$(awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$SERVER_PID/status")
    # Where start-up goes (the daemon logs "opening the store" and "ready" at info).
    grep -aE "opening the store|satellite is ready" "$WORK/$name.err" | sed 's/\x1b\[[0-9;]*m//g' \
        | cut -c1-120 >&2 || true

    local url ca token
    url=$(awk '$1 == "devices" { print $2 }' "$WORK/$name.out")
    ca=$(sed -n 's/^device CA *//p' "$WORK/$name.out")
    "${cli[@]}" license add --va scale/Default --tag loadgen --quantity $((REG * 2)) >/dev/null
    token=$("${cli[@]}" --json token create --va scale/Default | jq -r .secret)
    "$SAT" loadgen --url "$url" --ca "$ca" --token "$token" --devices "$REG" \
        --reports "$REPORTS" --concurrency "$CONCURRENCY" --warmup 1 --tag loadgen \
        --server-pid "$SERVER_PID" --quiet --json >"$WORK/$name.json"
    local p50 p99 rate
    p50=$(jq .usage.latency_ms.p50 "$WORK/$name.json")
    p99=$(jq .usage.latency_ms.p99 "$WORK/$name.json")
    rate=$(jq '.usage.per_sec | floor' "$WORK/$name.json")

    comp() { # comp VA: median wall ms of RUNS calls, or ">TIMEOUT"
        local va=$1 i a b out=()
        for i in $(seq "$RUNS"); do
            a=$(now)
            if ! timeout "$COMPLIANCE_TIMEOUT" "${cli[@]}" --json compliance --va "$va" >/dev/null; then
                echo ">${COMPLIANCE_TIMEOUT}000"
                return
            fi
            b=$(now)
            out+=("$(ms "$a" "$b")")
        done
        printf '%s\n' "${out[@]}" | median
    }
    local leaf tree
    leaf=$(comp "$LEAF_VA")
    tree=$(RUNS=1 comp "$TREE_VA")

    # Sync export: bind to a small upstream holding the same account, then export.
    local up=$WORK/$name-up.toml export_ms export_bytes pending
    cat >"$up" <<TOML
data_dir = "$WORK/$name-up"
[device]
listen = "127.0.0.1:0"
[admin]
listen = ""
socket = "$WORK/$name-up.sock"
[sync]
name = "upstream"
interval = "off"
TOML
    "$SAT" --config "$up" serve >"$WORK/$name-up.out" 2>"$WORK/$name-up.err" &
    local UP_PID=$!
    until grep -qx ready "$WORK/$name-up.out" 2>/dev/null; do sleep 0.01; done
    local upurl uptoken a b
    upurl=$(awk '$1 == "devices" { print $2 }' "$WORK/$name-up.out")
    "$SAT" --config "$up" account create scale --domain scale.example >/dev/null
    uptoken=$("$SAT" --config "$up" --json sync child add big --va scale/Default | jq -r .registration_token)
    "${cli[@]}" sync register --upstream "$upurl" --registration-token "$uptoken" >/dev/null
    a=$(now)
    pending=$("${cli[@]}" --json sync status | jq .pending_changes)
    b=$(now)
    local status_ms
    status_ms=$(ms "$a" "$b")
    a=$(now)
    "${cli[@]}" sync export --out "$WORK/$name-export.json" >/dev/null
    b=$(now)
    export_ms=$(ms "$a" "$b")
    export_bytes=$(stat -c %s "$WORK/$name-export.json")
    kill -TERM "$UP_PID"; wait "$UP_PID" || true
    echo "sync ($name): pending changes $pending (sync status ${status_ms} ms); first export ${export_ms} ms, ${export_bytes} bytes" >&2
    echo "$name $n $ready_ms $rss $hwm $p50 $p99 $rate $leaf $tree $export_ms $pending" >>"$WORK/rows"
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
}

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${BIG:-}" ]; then
    [ -d "$BIG/store" ] || { echo "scale.sh: BIG=$BIG holds no store" >&2; exit 2; }
    echo "copying $BIG (the run changes the store it measures)" >&2
    cp -a "$BIG" "$WORK/big"
fi
measure big "$WORK/big" "$DEVICES"
measure small "$WORK/small" "$SMALL"

echo
{
    echo "store devices ready_ms rss_MiB peak_MiB report_p50_ms report_p99_ms reports/s compliance_leaf_ms compliance_subtree_ms(1_run) sync_export_ms sync_pending"
    cat "$WORK/rows"
} | column -t
read -r _ _ ready rss _ p50 p99 _ leaf _ export pending < <(head -1 "$WORK/rows")
ready=$(awk '{ print $1 }' "$WORK/big.starts" | median)
rss=$(awk '{ print $2 }' "$WORK/big.starts" | median)
settled=$(awk '{ print $5 }' "$WORK/big.starts" | median)
read -r full_ready full_rss _ _ full_settled <"$WORK/big.full"
read -r _ _ _ _ _ sp50 sp99 _ _ _ _ _ < <(tail -1 "$WORK/rows")
verdict() { if [ "$1" = 1 ]; then echo met; else echo MISSED; fi; }
echo
echo "targets (big store):"
echo "  ready <= 3 s (median of $STARTS starts after a clean stop): ${ready} ms  $(verdict "$(echo "$ready <= 3000" | bc)")"
echo "  RSS <= 800 MiB (same starts), at ready: ${rss} MiB  $(verdict "$(echo "$rss <= 800" | bc)")"
echo "                      ${SETTLE} s after ready: ${settled} MiB  $(verdict "$(echo "$settled <= 800" | bc)")"
echo "  (a start that reads the whole store, after a kill -9: ${full_ready} ms, ${full_rss} MiB, ${full_settled} MiB settled)"
echo "  report latency flat:       p50 ${p50} vs ${sp50} ms, p99 ${p99} vs ${sp99} ms  $(verdict "$(echo "$p99 < 2 * $sp99 + 1" | bc)") (p99 within 2x + 1 ms)"
leaf_ok=0
case $leaf in '>'*) ;; *) leaf_ok=$(echo "$leaf < 50" | bc) ;; esac
echo "  compliance for a VA < 50ms: ${leaf} ms ($LEAF_VA)  $(verdict "$leaf_ok")"
echo "  sync export (first request of a full upload): ${export} ms for ${pending} pending changes"
