#!/usr/bin/env bash
# WebSocket echo throughput: WebSocketExample's /echo (StrataWebSocket) against a
# hummingbird-websocket 2.8.1 echo server (Benchmarks/Peers/HummingbirdWebSocketPeer), both
# release builds, in alternating runs. The load generator (Benchmarks/Tools/WebSocketLoad) keeps
# CONNECTIONS connections in a closed loop of binary messages of each size, on one thread.
# Prints messages/s and round-trip p50/p99/p99.9 per run, the medians and ratios, and the CPU
# each process used (to show the server, not the generator, is what saturates).
#
#   RUNS=5 SECONDS_PER_RUN=10 CONNECTIONS=50 INFLIGHT=1 SIZES="64 65536" scripts/bench-websocket.sh
#   PIN=1 scripts/bench-websocket.sh     (servers on CPU 1, the generator on CPU 0, via taskset)
#   PER_CONNECTION=dir scripts/bench-websocket.sh   (each run's per-connection latencies, in dir)
#
# Everything shares this machine's cores: read the figures as ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS="${RUNS:-5}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
CONNECTIONS="${CONNECTIONS:-50}"
SIZES="${SIZES:-64 65536}"
# Messages each connection keeps in flight: 1 is a strict round trip at a time.
INFLIGHT="${INFLIGHT:-1}"
OURS_PORT=18090
THEIRS_PORT=18091
PIN="${PIN:-0}"
PER_CONNECTION="${PER_CONNECTION:-}"
bench_pins
[ -n "$PER_CONNECTION" ] && mkdir -p "$PER_CONNECTION"

swift build -c release --product WebSocketExample >/dev/null 2>&1
(cd Benchmarks && swift build -c release --product HummingbirdWebSocketPeer >/dev/null 2>&1)
(cd Benchmarks && swift build -c release --product WebSocketLoad >/dev/null 2>&1)

work="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"${server_pin[@]}" .build/release/WebSocketExample --port "$OURS_PORT" >"$work/ours.log" 2>&1 &
ours_pid=$!
pids+=("$ours_pid")
"${server_pin[@]}" Benchmarks/.build/release/HummingbirdWebSocketPeer --port "$THEIRS_PORT" >"$work/theirs.log" 2>&1 &
theirs_pid=$!
pids+=("$theirs_pid")
for port in "$OURS_PORT" "$THEIRS_PORT"; do
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/echo" && break
        sleep 0.1
    done
done

# CPU ticks (user + system) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# One run: prints "messages_per_second p50_us p99_us p999_us server_cpu_percent load_cpu_percent".
run() {
    local port="$1" pid="$2" size="$3" label="$4"
    local before after
    local per=()
    [ -n "$PER_CONNECTION" ] && per=(--per-connection "$PER_CONNECTION/$label")
    before=$(ticks "$pid")
    "${load_pin[@]}" Benchmarks/.build/release/WebSocketLoad --port "$port" --connections "$CONNECTIONS" --size "$size" \
        --seconds "$SECONDS_PER_RUN" --warmup 1 --inflight "$INFLIGHT" "${per[@]}" >"$work/run.out" &
    local load=$!
    local load_ticks=0
    while kill -0 "$load" 2>/dev/null; do
        load_ticks=$(ticks "$load" 2>/dev/null || echo "$load_ticks")
        sleep 0.2
    done
    wait "$load"
    after=$(ticks "$pid")
    local elapsed=$((SECONDS_PER_RUN + 1))
    read -r rate p50 p99 p999 <"$work/run.out"
    awk -v r="$rate" -v a="$p50" -v b="$p99" -v c="$p999" -v s="$((after - before))" -v l="$load_ticks" -v hz="$hz" -v e="$elapsed" \
        'BEGIN {printf "%s %s %s %s %.0f %.0f\n", r, a, b, c, 100 * s / hz / e, 100 * l / hz / e}'
}

echo "pinning: ${PIN} (1: servers on CPU 1, generator on CPU 0)"
for size in $SIZES; do
    : >"$work/ours"
    : >"$work/theirs"
    echo "== $size-byte binary messages, $CONNECTIONS connections x $INFLIGHT in flight, $RUNS alternating runs of ${SECONDS_PER_RUN}s"
    for i in $(seq 1 "$RUNS"); do
        o=$(run "$OURS_PORT" "$ours_pid" "$size" "strata-$size-$INFLIGHT-$i")
        t=$(run "$THEIRS_PORT" "$theirs_pid" "$size" "hummingbird-$size-$INFLIGHT-$i")
        echo "$o" >>"$work/ours"
        echo "$t" >>"$work/theirs"
        read -r orate op50 op99 op999 ocpu oload <<<"$o"
        read -r trate tp50 tp99 tp999 tcpu tload <<<"$t"
        printf '  run %d: strata %7.0f msg/s p50/p99/p99.9 %5d/%5d/%6d us (cpu %3d%%, load %3d%%) | hummingbird %7.0f msg/s %5d/%5d/%6d us (cpu %3d%%, load %3d%%)\n' \
            "$i" "$orate" "$op50" "$op99" "$op999" "$ocpu" "$oload" "$trate" "$tp50" "$tp99" "$tp999" "$tcpu" "$tload"
    done
    med() { cut -d' ' -f"$2" "$1" | median; }
    ratio() { awk -v o="$1" -v t="$2" 'BEGIN {printf "%.2f", (t > 0 ? o / t : 0)}'; }
    pairs=$(paste -d' ' <(cut -d' ' -f1 "$work/ours") <(cut -d' ' -f1 "$work/theirs") | awk '{print $1/$2}' | median)
    printf '  median: strata %.0f msg/s, p50 %s p99 %s p99.9 %s us | hummingbird %.0f msg/s, p50 %s p99 %s p99.9 %s us\n' \
        "$(med "$work/ours" 1)" "$(med "$work/ours" 2)" "$(med "$work/ours" 3)" "$(med "$work/ours" 4)" \
        "$(med "$work/theirs" 1)" "$(med "$work/theirs" 2)" "$(med "$work/theirs" 3)" "$(med "$work/theirs" 4)"
    printf '  strata / hummingbird: msg/s %s (median of paired ratios %.3f); p50 %s, p99 %s, p99.9 %s\n' \
        "$(ratio "$(med "$work/ours" 1)" "$(med "$work/theirs" 1)")" "$pairs" \
        "$(ratio "$(med "$work/ours" 2)" "$(med "$work/theirs" 2)")" \
        "$(ratio "$(med "$work/ours" 3)" "$(med "$work/theirs" 3)")" \
        "$(ratio "$(med "$work/ours" 4)" "$(med "$work/theirs" 4)")"
done
