# Shared by benches/compare.sh and benches/profile.sh (sourced, not run): starting and stopping
# a server pinned to SERVER_CPU, and a satellite on a fresh data directory with one account,
# licenses for DEVICES devices and a registration token. Needs SAT, TAG, DEVICES, SERVER_CPU set.

SERVER_PID=
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# start_server LOG CMD...: starts CMD pinned to SERVER_CPU, waits for its `ready` line.
start_server() {
    local log=$1
    shift
    taskset -c "$SERVER_CPU" "$@" >"$log" 2>"$log.err" &
    SERVER_PID=$!
    for _ in $(seq 300); do
        if grep -qx ready "$log"; then return 0; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "$(basename "$0"): the server did not become ready:" >&2
    cat "$log" "$log.err" >&2
    exit 1
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# start_satellite DIR: a satellite serving devices on a free port from DIR, with the account
# `bench`, 2 × DEVICES units of TAG and a token; sets SAT_URL, SAT_CA and SAT_TOKEN.
start_satellite() {
    local dir=$1
    cat >"$dir/satellite.toml" <<TOML
data_dir = "$dir/data"

[device]
listen = "127.0.0.1:0"

[admin]
listen = ""

[log]
level = "warn"
TOML
    start_server "$dir/out" "$SAT" --config "$dir/satellite.toml" serve
    SAT_URL=$(awk '$1 == "devices" { print $2 }' "$dir/out")
    SAT_CA=$(sed -n 's/^device CA *//p' "$dir/out")
    local cli=("$SAT" --config "$dir/satellite.toml")
    "${cli[@]}" account create bench --domain bench.example >/dev/null
    "${cli[@]}" license add --va bench/Default --tag "$TAG" --quantity $((DEVICES * 2)) >/dev/null
    SAT_TOKEN=$("${cli[@]}" --json token create --va bench/Default | jq -r .secret)
}
