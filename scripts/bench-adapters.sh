#!/usr/bin/env bash
# Adapter overhead: Hummingbird 2 with its own CORSMiddleware against Hummingbird 2 with
# StrataCORS through StrataHummingbird (Benchmarks/Peers/HummingbirdCORSPeer in its two modes),
# release builds, `wrk` with an allowed `Origin` on `GET /`, alternating runs. Prints requests/s
# per run, the medians and the ratio adapter/native. (Vapor: not built yet, see Docs/Adapters.md.)
#
#   RUNS=5 DURATION=10s CONNECTIONS=64 scripts/bench-adapters.sh
#
# Both servers and wrk share this machine's cores: read the figures as ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS="${RUNS:-5}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
NATIVE_PORT=18095
STRATA_PORT=18096

command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd Benchmarks && swift build -c release --product HummingbirdCORSPeer >/dev/null 2>&1)

work="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
Benchmarks/.build/release/HummingbirdCORSPeer --port "$NATIVE_PORT" --mode native >"$work/native.log" 2>&1 &
pids+=($!)
Benchmarks/.build/release/HummingbirdCORSPeer --port "$STRATA_PORT" --mode strata >"$work/strata.log" 2>&1 &
pids+=($!)
for port in "$NATIVE_PORT" "$STRATA_PORT"; do
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
    # Both must answer the allowed origin the same way.
    curl -fs -D - -o /dev/null -H 'Origin: https://app.example' "http://127.0.0.1:$port/" |
        grep -qi '^access-control-allow-origin: https://app.example' || { echo "port $port: no CORS header"; exit 1; }
done

rps() { wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H 'Origin: https://app.example' "$1" | awk '/Requests\/sec/ {print $2}'; }
: >"$work/native"
: >"$work/strata"
echo "== Hummingbird GET / with Origin, $RUNS alternating runs of wrk -t1 -c$CONNECTIONS -d$DURATION"
for run in $(seq 1 "$RUNS"); do
    n=$(rps "http://127.0.0.1:$NATIVE_PORT/")
    s=$(rps "http://127.0.0.1:$STRATA_PORT/")
    echo "$n" >>"$work/native"
    echo "$s" >>"$work/strata"
    printf '  run %d: Hummingbird CORSMiddleware %8.0f req/s | StrataCORS via adapter %8.0f req/s\n' "$run" "$n" "$s"
done
n_med=$(median <"$work/native")
s_med=$(median <"$work/strata")
pairs=$(paste -d' ' "$work/strata" "$work/native" | awk '{print $1/$2}' | median)
printf '  median: native %.0f | adapter %.0f; ratio adapter/native %.3f; median of paired ratios %.3f\n' \
    "$n_med" "$s_med" "$(awk -v s="$s_med" -v n="$n_med" 'BEGIN {print s/n}')" "$pairs"
