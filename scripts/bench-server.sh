#!/usr/bin/env bash
# wrk on loopback against HelloExample (StrataServer) and a Hummingbird 2 server with the same
# two routes (Benchmarks/Peers/HummingbirdPeer), in alternating runs, both release builds.
# Prints requests/s and p99 latency per run, then the medians and the ratio ours/theirs.
#
#   RUNS=5 DURATION=10s CONNECTIONS=64 scripts/bench-server.sh
#   PIN=1 scripts/bench-server.sh      (servers on CPU 1, wrk on CPU 0, via taskset)
#
# Both servers and wrk share this machine's cores: the figures are relative, read them as ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS="${RUNS:-5}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-1}"
OURS_PORT=18080
THEIRS_PORT=18081
bench_pins

bench_require wrk:wrk

swift build -c release --product HelloExample >/dev/null 2>&1
(cd Benchmarks && swift build -c release --product HummingbirdPeer >/dev/null 2>&1)

work="$(mktemp -d)"
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
pids=()
trap cleanup EXIT

"${server_pin[@]}" .build/release/HelloExample --port "$OURS_PORT" >"$work/ours.log" 2>&1 &
pids+=($!)
"${server_pin[@]}" Benchmarks/.build/release/HummingbirdPeer --port "$THEIRS_PORT" >"$work/theirs.log" 2>&1 &
pids+=($!)
for port in "$OURS_PORT" "$THEIRS_PORT"; do
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
done

write_post_script "$work"

# Prints "requests_per_second p99_milliseconds" for one wrk run.
run_wrk() {
    local url="$1" script="$2" output
    if [ -n "$script" ]; then
        output="$("${load_pin[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$url")"
    else
        output="$("${load_pin[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url")"
    fi
    wrk_figures <<<"$output"
}


bench() {
    local name="$1" path="$2" script="$3"
    local key
    key="$(tr -c 'a-zA-Z0-9' '_' <<<"$name")"
    : >"$work/$key.ours"
    : >"$work/$key.theirs"
    echo "== $name: $RUNS alternating runs of wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    for run in $(seq 1 "$RUNS"); do
        read -r o_rps o_p99 <<<"$(run_wrk "http://127.0.0.1:$OURS_PORT$path" "$script")"
        read -r t_rps t_p99 <<<"$(run_wrk "http://127.0.0.1:$THEIRS_PORT$path" "$script")"
        echo "$o_rps $o_p99" >>"$work/$key.ours"
        echo "$t_rps $t_p99" >>"$work/$key.theirs"
        printf '  run %d: strata %10.0f req/s p99 %7.2f ms | hummingbird %10.0f req/s p99 %7.2f ms\n' \
            "$run" "$o_rps" "$o_p99" "$t_rps" "$t_p99"
    done
    local o_med t_med o_p99m t_p99m
    o_med="$(cut -d' ' -f1 "$work/$key.ours" | median)"
    t_med="$(cut -d' ' -f1 "$work/$key.theirs" | median)"
    o_p99m="$(cut -d' ' -f2 "$work/$key.ours" | median)"
    t_p99m="$(cut -d' ' -f2 "$work/$key.theirs" | median)"
    printf '  median: strata %.0f req/s p99 %.2f ms | hummingbird %.0f req/s p99 %.2f ms\n' "$o_med" "$o_p99m" "$t_med" "$t_p99m"
    awk -v o="$o_med" -v t="$t_med" -v op="$o_p99m" -v tp="$t_p99m" \
        'BEGIN {printf "  ratio of medians strata/hummingbird: throughput %.3f, p99 latency %.3f\n", o/t, op/tp}'
    # Each run is paired with the peer's run right after it, so the ratio of a pair cancels
    # most of the drift of a noisy machine; the median of the pairs is the steadier figure.
    local pair_median
    pair_median="$(paste -d' ' "$work/$key.ours" "$work/$key.theirs" | awk '{print $1/$3}' | median)"
    printf '  median of paired ratios (throughput): %.3f\n' "$pair_median"
}

echo "machine: $(nproc) cores, $(uname -r); servers and wrk share them"
bench "GET /" "/" ""
bench "POST /echo 64 KiB" "/echo" "$work/post.lua"
