#!/usr/bin/env bash
# Adapter overhead, each pair side by side in one run, release builds, `wrk`, alternating runs:
#   1. Hummingbird 2 + its own CORSMiddleware   vs  Hummingbird 2 + StrataCORS via StrataHummingbird
#   2. Vapor 4 + its own CORSMiddleware         vs  Vapor 4 + StrataCORS via StrataVapor
#      (both: GET / with an allowed Origin)
#   3. Vapor 4 + its built-in compression       vs  Vapor 4 + StrataCompression via StrataVapor
#      (GET /big, ~100 KiB text, Accept-Encoding: gzip, level 6 on both sides)
#   vapor-floor (not in the default set): Vapor 4 + a no-op AsyncMiddleware of its own vs Vapor 4 +
#      a no-op Strata middleware via StrataVapor: the adapter's cost next to the task any async
#      Vapor middleware pays (Vapor's CORSMiddleware is future-based and pays none).
#   vapor-conversions (not in the default set): Vapor's CORSMiddleware vs a future-based
#      middleware that only converts heads to swift-http-types and back (no task, no checks):
#      the best any adapter of Strata's types could do.
# Prints requests/s per run, the medians, the ratio adapter/native and the median of the
# paired ratios. Peers: Benchmarks/Peers/HummingbirdCORSPeer and Benchmarks/Peers/VaporPeer.
#
#   RUNS=5 DURATION=8s CONNECTIONS=64 PAIRS="hb-cors vapor-cors vapor-gzip" scripts/bench-adapters.sh
#
# Both servers and wrk share this machine's cores: read the figures as ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS="${RUNS:-5}"
DURATION="${DURATION:-8s}"
CONNECTIONS="${CONNECTIONS:-64}"
PAIRS="${PAIRS:-hb-cors vapor-cors vapor-gzip}"

bench_require wrk:wrk
(cd Benchmarks && swift build -c release --product HummingbirdCORSPeer >/dev/null 2>&1 &&
    swift build -c release --product VaporPeer >/dev/null 2>&1)

work="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# compare NAME PATH HEADER CHECK NATIVE_COMMAND STRATA_COMMAND (commands take the port last)
compare() {
    local name="$1" path="$2" header="$3" check="$4" native="$5" strata="$6"
    local native_port=18095 strata_port=18096
    $native --port "$native_port" >"$work/native.log" 2>&1 &
    local native_pid=$!
    $strata --port "$strata_port" >"$work/strata.log" 2>&1 &
    local strata_pid=$!
    pids+=("$native_pid" "$strata_pid")
    for port in "$native_port" "$strata_port"; do
        for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
        # Both must answer the same way before they are compared.
        curl -fs -D - -o "$work/body.$port" -H "$header" "http://127.0.0.1:$port$path" |
            grep -qi "$check" || { echo "$name, port $port: no '$check'"; exit 1; }
    done
    echo "== $name: $RUNS alternating runs of wrk -t1 -c$CONNECTIONS -d$DURATION on $path ($header)"
    echo "   bytes on the wire: native $(wc -c <"$work/body.$native_port"), strata $(wc -c <"$work/body.$strata_port")"
    : >"$work/native"
    : >"$work/strata"
    for run in $(seq 1 "$RUNS"); do
        n=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "$header" "http://127.0.0.1:$native_port$path" | awk '/Requests\/sec/ {print $2}')
        s=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "$header" "http://127.0.0.1:$strata_port$path" | awk '/Requests\/sec/ {print $2}')
        echo "$n" >>"$work/native"
        echo "$s" >>"$work/strata"
        printf '   run %d: native %8.0f req/s | Strata via adapter %8.0f req/s\n' "$run" "$n" "$s"
    done
    local n_med s_med pairs
    n_med=$(median <"$work/native")
    s_med=$(median <"$work/strata")
    pairs=$(paste -d' ' "$work/strata" "$work/native" | awk '{print $1/$2}' | median)
    printf '   median: native %.0f | adapter %.0f; ratio adapter/native %.3f; median of paired ratios %.3f\n' \
        "$n_med" "$s_med" "$(awk -v s="$s_med" -v n="$n_med" 'BEGIN {print s/n}')" "$pairs"
    kill "$native_pid" "$strata_pid" 2>/dev/null || true
    wait "$native_pid" "$strata_pid" 2>/dev/null || true
}

hb=Benchmarks/.build/release/HummingbirdCORSPeer
vapor=Benchmarks/.build/release/VaporPeer
for pair in $PAIRS; do
    case "$pair" in
    hb-cors)
        compare "Hummingbird CORS" / "Origin: https://app.example" "^access-control-allow-origin: https://app.example" \
            "$hb --mode native" "$hb --mode strata" ;;
    vapor-cors)
        compare "Vapor CORS" / "Origin: https://app.example" "^access-control-allow-origin: https://app.example" \
            "$vapor --mode cors-native" "$vapor --mode cors-strata" ;;
    vapor-gzip)
        compare "Vapor compression" /big "Accept-Encoding: gzip" "^content-encoding: gzip" \
            "$vapor --mode gzip-native" "$vapor --mode gzip-strata" ;;
    vapor-floor)
        compare "Vapor no-op async middleware" / "Origin: https://app.example" "^content-length: 13" \
            "$vapor --mode async-native" "$vapor --mode noop-strata" ;;
    vapor-conversions)
        compare "Vapor CORS vs head conversions alone" / "Origin: https://app.example" \
            "^access-control-allow-origin: https://app.example" \
            "$vapor --mode cors-native" "$vapor --mode convert-only" ;;
    *) echo "unknown pair $pair"; exit 1 ;;
    esac
done
