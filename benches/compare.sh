#!/usr/bin/env bash
# Side-by-side benchmark: the satellite against a bare hyper + rustls server answering 204
# (examples/baseline.rs), both driven by `satellite loadgen` with the same concurrency.
#
# From a fresh clone:   benches/compare.sh
# Knobs (environment):  ROUNDS=3 DEVICES=2000 REPORTS=200000 CONCURRENCY=32 WARMUP=2
#                       SERVER_CPU=0 GEN_CPU=1 OUT=<dir for the JSON results>
#                       HTTP=2 (as devices: HTTP/2) or HTTP=1.1 (reports over HTTP/1.1 only)
#                       LOADGEN=<another satellite binary whose `loadgen` drives both servers,
#                       e.g. an older release, to compare generators on the same servers>
#                       DURABLE=1 (also the durable baseline each round) or DURABLE=0
#                       FLOOR=0 or FLOOR=1 (also the sync floor each round: the bare server
#                       appending each body to a file, one fdatasync per group)
#
# Each round runs the baseline, then (FLOOR=1) the sync floor, then the durable baseline (the
# bare server committing each body through the satellite's store before answering: what the
# store alone costs), then the satellite, each on a fresh temporary data directory,
# the server pinned to SERVER_CPU and the generator to GEN_CPU (different cores, so neither
# takes the other's). Everything is local (127.0.0.1) and every request loop is a fixed count.
# A ratio is honest only when the generator saturates the bare server (SPEC §10): the summary
# says GENERATOR-BOUND, loudly, when a baseline round kept its core less than 85% busy.
# Needs: cargo, jq, taskset (util-linux).
# See docs/benchmarks.md for what the figures mean and what limits them.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DEVICES=${DEVICES:-2000}
REPORTS=${REPORTS:-200000}
CONCURRENCY=${CONCURRENCY:-32}
WARMUP=${WARMUP:-2}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
HTTP=${HTTP:-2}
DURABLE=${DURABLE:-1}
FLOOR=${FLOOR:-0}
TAG=bench.tag
# The least busy a baseline core may be for the run to count as saturated (SPEC §10).
SATURATED=0.85

for tool in cargo jq taskset; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is needed" >&2; exit 2; }
done
cd "$(dirname "$0")/.."
cargo build --release --locked --bin satellite --example baseline
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
SAT=$TARGET/release/satellite
BASE=$TARGET/release/examples/baseline
LOADGEN=${LOADGEN:-$SAT}
case $HTTP in
    2) PROTOCOL=() ;;
    1.1) PROTOCOL=(--http1) ;;
    *) echo "compare.sh: HTTP must be 2 or 1.1, not $HTTP" >&2; exit 2 ;;
esac
OUT=${OUT:-$(mktemp -d -t satellite-bench.XXXXXX)}
mkdir -p "$OUT"

WORK=$(mktemp -d -t satellite-bench-run.XXXXXX)
# shellcheck source=support/servers.sh
source benches/support/servers.sh
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# loadgen RESULT ARGS...: runs the generator pinned to GEN_CPU; a run with errors is kept (its
# JSON says which) but reported.
loadgen() {
    local result=$1
    shift
    if ! taskset -c "$GEN_CPU" "$LOADGEN" loadgen --devices "$DEVICES" --reports "$REPORTS" \
        --concurrency "$CONCURRENCY" --warmup "$WARMUP" --tag "$TAG" \
        --server-pid "$SERVER_PID" --quiet --json ${PROTOCOL[@]+"${PROTOCOL[@]}"} "$@" >"$result" 2>"$result.err"; then
        echo "  (errors: $(cat "$result.err"))" >&2
    fi
}

run_baseline() {
    local round=$1 dir=$WORK/baseline-$1
    mkdir -p "$dir"
    start_server "$dir/out" "$BASE" --listen 127.0.0.1:0 --dir "$dir/pki"
    local url
    url=$(awk '$1 == "baseline" { print $2 }' "$dir/out")
    loadgen "$OUT/baseline-$round.json" --url "$url" --ca "$dir/pki/ca.pem" \
        --baseline-identity "$dir/pki"
    stop_server
    rm -rf "$dir"
}

# run_variant MODE ROUND ARGS...: the baseline server with ARGS (the durable baseline, the sync
# floor); its results are marked MODE so that the summary tells them from the bare server's.
run_variant() {
    local mode=$1 round=$2 dir=$WORK/$1-$2
    shift 2
    mkdir -p "$dir"
    start_server "$dir/out" "$BASE" --listen 127.0.0.1:0 --dir "$dir/pki" "$@"
    local url
    url=$(awk '$1 == "baseline" { print $2 }' "$dir/out")
    loadgen "$dir/result.json" --url "$url" --ca "$dir/pki/ca.pem" --baseline-identity "$dir/pki"
    jq --arg mode "$mode" '.mode = $mode' "$dir/result.json" >"$OUT/$mode-$round.json"
    stop_server
    rm -rf "$dir"
}

run_satellite() {
    local round=$1 dir=$WORK/satellite-$1
    mkdir -p "$dir"
    start_satellite "$dir"
    loadgen "$OUT/satellite-$round.json" --url "$SAT_URL" --ca "$SAT_CA" --token "$SAT_TOKEN"
    stop_server
    rm -rf "$dir"
}

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "generator: $LOADGEN loadgen, usage reports over HTTP/$HTTP, pinned to CPU $GEN_CPU; servers pinned to CPU $SERVER_CPU"
echo "devices $DEVICES, reports $REPORTS, concurrency $CONCURRENCY, warm-up ${WARMUP}s, $ROUNDS rounds; results in $OUT"
for round in $(seq "$ROUNDS"); do
    echo "round $round: baseline (load average $(loadavg))"
    run_baseline "$round"
    if [ "$FLOOR" = 1 ]; then
        echo "round $round: sync floor (load average $(loadavg))"
        run_variant floor "$round" --fdatasync "$WORK/floor-$round/sync.log"
    fi
    if [ "$DURABLE" = 1 ]; then
        echo "round $round: durable baseline (load average $(loadavg))"
        run_variant durable "$round" --store "$WORK/durable-$round/store"
    fi
    echo "round $round: satellite (load average $(loadavg))"
    run_satellite "$round"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# Summary: median [min .. max] over the rounds, and the ratios against the SPEC §10 targets.
jq -rs '
  def median: sort | if length == 0 then null
    elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def fmt($d): if . == null then "-" else (. * pow(10; $d) | round) / pow(10; $d) | tostring end;
  def spread($d): if length == 0 then "-" else
    "\(median | fmt($d)) [\(min | fmt($d)) .. \(max | fmt($d))]" end;
  def busy: .server_busy_cores // (if .server_cpu_secs == null or .elapsed_secs == 0 then null
    else .server_cpu_secs / .elapsed_secs end);
  def inv: if . == null or . == 0 then null else 1 / . end;
  def of($mode; f): [.[] | select(.mode == $mode) | f | select(. != null)];
  def row($name; f; $d): "\($name)\t\(of("baseline"; f) | spread($d))\t\(of("floor"; f) | spread($d))\t\(of("durable"; f) | spread($d))\t\(of("satellite"; f) | spread($d))";
  def ratio($name; f; $target):
    (of("baseline"; f) | median) as $b | (of("satellite"; f) | median) as $s |
    if $b == null or $s == null or $b == 0 then "\($name)\t-" else
      ($s / $b) as $r |
      "\($name)\t\($r | fmt(3))\t(target >= \($target): \(if $r >= $target then "met" else "MISSED" end))"
    end;
  def info2($name; $over; $under; f):
    (of($over; f) | median) as $b | (of($under; f) | median) as $s |
    if $b == null or $s == null or $b == 0 then "\($name)\t-" else
      "\($name)\t\($s / $b | fmt(3))\t(no target: SPEC §10 sets rates; cost per operation explains them)"
    end;
  def info($name; f): info2($name; "baseline"; "satellite"; f);
  . as $all |
  ["figure\tbaseline median [min .. max]\tsync floor\tdurable baseline\tsatellite median [min .. max]",
   row("usage reports/s"; .usage.per_sec; 0),
   row("registrations/s"; .registrations.per_sec; 0),
   row("usage p50 ms"; .usage.latency_ms.p50; 2),
   row("usage p99 ms"; .usage.latency_ms.p99; 2),
   row("usage p99.9 ms"; .usage.latency_ms.p999; 2),
   row("registration p99 ms"; .registrations.latency_ms.p99; 2),
   row("server CPU us/report"; .usage.server_cpu_us_per_op; 1),
   row("server CPU us/registration"; .registrations.server_cpu_us_per_op; 1),
   row("server cores busy (reports)"; .usage | busy; 2),
   row("generator cores busy (reports)"; .usage.generator_busy_cores; 2),
   row("server RSS MiB (end)"; .server.rss_kib / 1024; 1),
   row("failed requests"; (.registrations.requests - .registrations.ok) + (.usage.requests - .usage.ok); 0),
   "",
   "ratio satellite/baseline (medians)",
   ratio("usage reports"; .usage.per_sec; 0.5),
   ratio("registrations"; .registrations.per_sec; 0.5),
   info("server CPU per report (baseline/satellite)"; .usage.server_cpu_us_per_op | inv),
   info("server CPU per registration (baseline/satellite)"; .registrations.server_cpu_us_per_op | inv),
   info2("usage reports, sync floor/baseline"; "baseline"; "floor"; .usage.per_sec),
   info2("usage reports, durable baseline/baseline"; "baseline"; "durable"; .usage.per_sec),
   info2("usage reports, satellite/durable baseline"; "durable"; "satellite"; .usage.per_sec),
   info2("server CPU per report (durable baseline/satellite)"; "durable"; "satellite"; .usage.server_cpu_us_per_op | inv)
  ] | .[]
' "$OUT"/baseline-*.json "$OUT"/satellite-*.json $(ls "$OUT"/durable-*.json "$OUT"/floor-*.json 2>/dev/null) | column -t -s $'\t'

# Saturation: every baseline round's server core must have been busy, or the usage ratio is
# the generator's limit, not the servers'.
echo
jq -rs --argjson floor "$SATURATED" '
  def busy: .server_busy_cores // (if .server_cpu_secs == null or .elapsed_secs == 0 then null
    else .server_cpu_secs / .elapsed_secs end);
  [.[] | select(.mode == "baseline") | .usage | busy] as $busy |
  [.[] | select(.mode == "baseline") | .usage.generator_busy_cores] as $gen |
  def pct: if . == null then "unknown" else "\(. * 1000 | round / 10)%" end;
  if ($busy | length) == 0 then "saturation: no baseline usage figures"
  elif any($busy[]; . == null or . < $floor) then
    "*** GENERATOR-BOUND: the baseline core was busy \($busy | map(pct) | join(", ")) by round " +
    "(generator \($gen | map(pct) | join(", "))), below \($floor * 100 | round)% in at least " +
    "one round: the bare server was not saturated, so the usage ratio above measures the " +
    "generator, not the servers (SPEC §10). ***" +
    (if any($gen[]; . != null and . < 0.9) then
      " Neither core was full in some round: other work on the machine took the time; " +
      "measure again when it is quiet." else "" end)
  else
    "baseline saturated: its core was busy \($busy | map(pct) | join(", ")) by round " +
    "(at least \($floor * 100 | round)%; generator \($gen | map(pct) | join(", ")))"
  end
' "$OUT"/baseline-*.json
