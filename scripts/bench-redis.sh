#!/usr/bin/env bash
# StrataRedis against Debian's redis-benchmark (C, hiredis-class) on the same redis-server,
# GET and SET of 64-byte values, side by side in one run:
#   (a) 50 concurrent callers, each waiting for its reply, with automatic pipelining off
#       (one command at a time on each of 50 connections)   vs  redis-benchmark -c 50
#   (a') the same 50 callers, automatically pipelined       vs  redis-benchmark -c 50
#   (b) 800 concurrent callers, automatically pipelined      vs  redis-benchmark -c 50 -P 16
#   (b') the same 800 callers running on the NIO event loops, as the handlers of a Strata (or
#        any NIO) server run: each command goes to a connection on its caller's loop
# Beside (b) and (b'), the least pipelining client there can be, with the same callers
# (`RedisLoad --command floor-get`): the ceiling of any Swift client whose callers are tasks;
# for GET also with a cancellation handler around each call (`floor-get-cancellable`), which
# a client that releases a cancelled caller at once must pay.
# Each row is the median of RUNS alternating runs of SECONDS seconds; the CPU seconds of the
# client and of redis-server are printed per run to show where the time goes.
#   RUNS=3 SECONDS_PER_RUN=8 scripts/bench-redis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
source scripts/redis-servers.sh
RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing: apt-get install redis-tools" >&2; exit 1; }

(cd Benchmarks && swift build -c release --product RedisLoad >/dev/null)
load="Benchmarks/.build/release/RedisLoad"
start_redis_standalone
server_pid=$(cat "$REDIS_DIR/$REDIS_PORT.pid")
url="redis://127.0.0.1:$REDIS_PORT"

server_cpu() { awk '{printf "%.2f\n", ($14 + $15) / 100}' "/proc/$server_pid/stat"; }

# redis-benchmark for about SECONDS_PER_RUN seconds: prints "rps p99_ms client_cpu_s server_cpu_s".
run_peer() { # test pipeline
    local test=$1 pipeline=$2 requests
    # Size the request count from a short probe so the run lasts about SECONDS_PER_RUN.
    requests=$(redis-benchmark -p "$REDIS_PORT" -c 50 -P "$pipeline" -d 64 -t "$test" -n 100000 --csv -q \
        | awk -F'"' 'NR==2 {printf "%d", $4 * '"$SECONDS_PER_RUN"'}')
    local before after line
    before=$(server_cpu)
    local start_cpu
    start_cpu=$(awk '{print $14+$15+$16+$17}' /proc/$$/stat)
    line=$( { TIMEFORMAT='%U %S'; time redis-benchmark -p "$REDIS_PORT" -c 50 -P "$pipeline" -d 64 -t "$test" \
        -n "$requests" --csv -q | awk -F'"' 'NR==2 {print $4, $14}'; } 2>&1 | tr '\n' ' ')
    after=$(server_cpu)
    # line: "rps p99 user sys"
    awk -v b="$before" -v a="$after" '{printf "%s %s %.2f %.2f\n", $1, $2, $3 + $4, a - b}' <<<"$line"
}

run_ours() { # command callers executor [RedisLoad options...]
    local before after out
    before=$(server_cpu)
    out=$("$load" --url "$url" --command "$1" --callers "$2" --seconds "$SECONDS_PER_RUN" --size 64 --executor "$3" "${@:4}")
    after=$(server_cpu)
    awk -v b="$before" -v a="$after" '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%s %s %s %.2f\n", v["rps"], v["p99_ms"], v["cpu_s"], a - b }' <<<"$out"
}

echo "machine: $(nproc) cores, noisy VM; redis-server $(redis-server --version | awk '{print $3}'), one run = ${SECONDS_PER_RUN}s"
printf '%-28s %10s %10s %8s %10s %10s %8s %8s\n' row ours_rps peer_rps ratio ours_p99 peer_p99 ours_cpu srv_cpu
results=()
for test in get set; do
    for mode in unpipelined plain pipelined loops; do
        executor=global extra=()
        if [ $mode = plain ] || [ $mode = unpipelined ]; then callers=50 pipeline=1; else callers=800 pipeline=16; fi
        if [ $mode = unpipelined ]; then extra=(--pipeline-depth 1 --connections 50); fi
        if [ $mode = loops ]; then executor=loops; fi
        ours=() peer=() minimal=() cancellable=()
        for run in $(seq "$RUNS"); do
            o=$(run_ours "$test" "$callers" "$executor" "${extra[@]}")
            p=$(run_peer "$test" "$pipeline")
            echo "  run $run $test $mode: ours rps/p99/client_cpu/server_cpu: $o | redis-benchmark: $p"
            ours+=("$o")
            peer+=("$p")
            # The 800-caller rows also run the least pipelining client there can be with the
            # same callers (RedisLoad --command floor-get/floor-set, see its header).
            if [ $mode = pipelined ] || [ $mode = loops ]; then
                m=$(run_ours "floor-$test" "$callers" "$executor")
                echo "  run $run $test $mode: minimal client rps/p99/client_cpu/server_cpu: $m"
                minimal+=("$m")
                # And for GET, with a cancellation handler around each call, as ours must have.
                if [ $test = get ]; then
                    m=$(run_ours "floor-get-cancellable" "$callers" "$executor")
                    echo "  run $run $test $mode: minimal client + cancellation handler: $m"
                    cancellable+=("$m")
                fi
            fi
        done
        ours_rps=$(printf '%s\n' "${ours[@]}" | awk '{print $1}' | median)
        peer_rps=$(printf '%s\n' "${peer[@]}" | awk '{print $1}' | median)
        ours_p99=$(printf '%s\n' "${ours[@]}" | awk '{print $2}' | median)
        peer_p99=$(printf '%s\n' "${peer[@]}" | awk '{print $2}' | median)
        ours_cpu=$(printf '%s\n' "${ours[@]}" | awk '{print $3}' | median)
        srv_cpu=$(printf '%s\n' "${ours[@]}" | awk '{print $4}' | median)
        ratio=$(awk -v a="$ours_rps" -v b="$peer_rps" 'BEGIN {printf "%.3f", a / b}')
        row="$test c=$callers${executor/global/}${extra:+ unpiped} vs -c50 -P$pipeline"
        printf '%-28s %10.0f %10.0f %8s %10s %10s %8s %8s\n' "$row" "$ours_rps" "$peer_rps" "$ratio" \
            "$ours_p99" "$peer_p99" "$ours_cpu" "$srv_cpu"
        if [ ${#minimal[@]} -gt 0 ]; then
            min_rps=$(printf '%s\n' "${minimal[@]}" | awk '{print $1}' | median)
            awk -v m="$min_rps" -v o="$ours_rps" -v p="$peer_rps" 'BEGIN {
                printf "  minimal client, same callers: %.0f/s = %.3f of redis-benchmark; ours = %.3f of it\n", m, m / p, o / m }'
        fi
        if [ ${#cancellable[@]} -gt 0 ]; then
            can_rps=$(printf '%s\n' "${cancellable[@]}" | awk '{print $1}' | median)
            awk -v m="$can_rps" -v o="$ours_rps" -v p="$peer_rps" 'BEGIN {
                printf "  minimal client + cancellation handler: %.0f/s = %.3f of redis-benchmark; ours = %.3f of it\n", m, m / p, o / m }'
        fi
        results+=("$test $mode $ours_rps")
    done
done
# The issue's "(b) at least 5 x (a)": 800 pipelined callers over 50 unpipelined ones, from the
# global executor and from the loops; and over 50 automatically pipelined callers.
for test in get set; do
    rate() { printf '%s\n' "${results[@]}" | awk -v t="$test" -v m="$1" '$1 == t && $2 == m {print $3}'; }
    awk -v t="$test" -v u="$(rate unpipelined)" -v p="$(rate plain)" -v g="$(rate pipelined)" -v l="$(rate loops)" \
        'BEGIN {printf "%s: pipelined / unpipelined = %.2fx (global), %.2fx (loops); pipelined / plain = %.2fx\n", t, g / u, l / u, g / p}'
done

# The floor of any client that gives each command a task awaiting an event loop's answer: no
# server, no I/O, no parsing (RedisLoad --command floor), and the same with a cancellation
# handler around each wait, as the client has. Its CPU per command, beside ours.
for kind in floor floor-cancellable; do
    for executor in global loops; do
        floor=$("$load" --command "$kind" --callers 800 --seconds "$SECONDS_PER_RUN" --executor "$executor")
        awk -v k="$kind" -v e="$executor" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
           printf "%s (800 tasks awaiting an event loop, no server, callers %s): %.0f/s, %.2f us of CPU per call\n",
               k, e, v["rps"], v["cpu_s"] / (v["rps"] * v["elapsed_s"]) * 1e6 }' <<<"$floor"
    done
done
