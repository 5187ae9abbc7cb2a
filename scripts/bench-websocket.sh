#!/usr/bin/env bash
# WebSocket echo throughput: WebSocketExample's /echo (StrataWebSocket) against a
# hummingbird-websocket 2.8.1 echo server (Benchmarks/Peers/HummingbirdWebSocketPeer), both
# release builds, in alternating runs. The load generator (Benchmarks/Tools/WebSocketLoad) keeps
# CONNECTIONS connections in a closed loop of binary messages of each size, on one thread.
# Prints messages/s and round-trip p50/p99 per run, the medians and ratios, and the CPU each
# process used (to show the server, not the generator, is what saturates).
#
#   RUNS=5 SECONDS_PER_RUN=10 CONNECTIONS=50 INFLIGHT=1 SIZES="64 65536" scripts/bench-websocket.sh
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

swift build -c release --product WebSocketExample >/dev/null 2>&1
(cd Benchmarks && swift build -c release --product HummingbirdWebSocketPeer >/dev/null 2>&1)
(cd Benchmarks && swift build -c release --product WebSocketLoad >/dev/null 2>&1)

work="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

.build/release/WebSocketExample --port "$OURS_PORT" >"$work/ours.log" 2>&1 &
ours_pid=$!
pids+=("$ours_pid")
Benchmarks/.build/release/HummingbirdWebSocketPeer --port "$THEIRS_PORT" >"$work/theirs.log" 2>&1 &
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

# One run: prints "messages_per_second p50_us p99_us server_cpu_percent load_cpu_percent".
run() {
    local port="$1" pid="$2" size="$3"
    local before after
    before=$(ticks "$pid")
    Benchmarks/.build/release/WebSocketLoad --port "$port" --connections "$CONNECTIONS" --size "$size" \
        --seconds "$SECONDS_PER_RUN" --warmup 1 --inflight "$INFLIGHT" >"$work/run.out" &
    local load=$!
    local load_ticks=0
    while kill -0 "$load" 2>/dev/null; do
        load_ticks=$(ticks "$load" 2>/dev/null || echo "$load_ticks")
        sleep 0.2
    done
    wait "$load"
    after=$(ticks "$pid")
    local elapsed=$((SECONDS_PER_RUN + 1))
    read -r rate p50 p99 <"$work/run.out"
    awk -v r="$rate" -v a="$p50" -v b="$p99" -v s="$((after - before))" -v l="$load_ticks" -v hz="$hz" -v e="$elapsed" \
        'BEGIN {printf "%s %s %s %.0f %.0f\n", r, a, b, 100 * s / hz / e, 100 * l / hz / e}'
}

for size in $SIZES; do
    : >"$work/ours"
    : >"$work/theirs"
    echo "== $size-byte binary messages, $CONNECTIONS connections x $INFLIGHT in flight, $RUNS alternating runs of ${SECONDS_PER_RUN}s"
    for i in $(seq 1 "$RUNS"); do
        o=$(run "$OURS_PORT" "$ours_pid" "$size")
        t=$(run "$THEIRS_PORT" "$theirs_pid" "$size")
        echo "$o" >>"$work/ours"
        echo "$t" >>"$work/theirs"
        read -r orate _ op99 ocpu oload <<<"$o"
        read -r trate _ tp99 tcpu tload <<<"$t"
        printf '  run %d: strata %8.0f msg/s p99 %6d us (server %3d%% cpu, load %3d%%) | hummingbird %8.0f msg/s p99 %6d us (server %3d%% cpu, load %3d%%)\n' \
            "$i" "$orate" "$op99" "$ocpu" "$oload" "$trate" "$tp99" "$tcpu" "$tload"
    done
    o_med=$(cut -d' ' -f1 "$work/ours" | median)
    t_med=$(cut -d' ' -f1 "$work/theirs" | median)
    o_p99=$(cut -d' ' -f3 "$work/ours" | median)
    t_p99=$(cut -d' ' -f3 "$work/theirs" | median)
    pairs=$(paste -d' ' <(cut -d' ' -f1 "$work/ours") <(cut -d' ' -f1 "$work/theirs") | awk '{print $1/$2}' | median)
    printf '  median: strata %.0f msg/s (p99 %s us) | hummingbird %.0f msg/s (p99 %s us); ratio of medians %.3f; median of paired ratios %.3f; p99 ratio %.2f\n' \
        "$o_med" "$o_p99" "$t_med" "$t_p99" "$(awk -v o="$o_med" -v t="$t_med" 'BEGIN {print o/t}')" "$pairs" \
        "$(awk -v o="$o_p99" -v t="$t_p99" 'BEGIN {print o/t}')"
done
