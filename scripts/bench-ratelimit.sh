#!/usr/bin/env bash
# StrataRateLimit over the wire, side by side in one run, release builds, `wrk`, alternating
# runs, GET /hello from one client address (so every request decides the same hot key):
#   bare     StrataServer alone (Benchmarks/Tools/RateLimitServer --mode bare)
#   memory   the same behind a quota that never refuses, memory store, fields on every response
#   redis    the same with the Redis store on a local redis-server
#   memory-nofields  the memory quota with the fields left off allowed responses
#   bare-fields      StrataServer adding the same two fields, constant, deciding nothing: the
#                    floor that sending the fields alone sets
# Prints requests/s and each server's own CPU per request (user + system, from /proc) per run,
# the medians, the ratios memory/bare and redis/bare, and the Redis round trips per request
# (EVALSHA calls counted by the server / requests wrk made). The order of the servers rotates
# from one run to the next, so no server always runs first or after the Redis one.
#
#   RUNS=5 DURATION=8s CONNECTIONS=64 scripts/bench-ratelimit.sh
#
# Every server, redis-server and wrk share this machine's cores: read the figures as ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS="${RUNS:-5}"
DURATION="${DURATION:-8s}"
CONNECTIONS="${CONNECTIONS:-64}"

(cd Benchmarks && swift build -c release --product RateLimitServer >/dev/null)

bench_start_redis

bin=Benchmarks/.build/release/RateLimitServer
declare -A ports=([bare]=18111 [memory]=18112 [redis]=18113 [memory-nofields]=18114 [bare-fields]=18115)
names=(bare memory redis memory-nofields bare-fields)
declare -A server_pid
for name in "${names[@]}"; do
    "$bin" --mode "$name" --redis-url "redis://127.0.0.1:$REDIS_PORT" --port "${ports[$name]}" >"$work/$name.log" 2>&1 &
    pids+=($!)
    server_pid[$name]=$!
    for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:${ports[$name]}/hello" >/dev/null && break; sleep 0.1; done
done
curl -fs -D - -o /dev/null "http://127.0.0.1:${ports[redis]}/hello" | grep -qi '^RateLimit:' ||
    { echo "redis: no RateLimit field"; exit 1; }

evalsha_calls() { redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_evalsha:/ {print $3}'; }

echo "== $RUNS alternating runs of wrk -t1 -c$CONNECTIONS -d$DURATION, GET /hello"
for name in "${names[@]}"; do : >"$work/$name.runs"; : >"$work/$name.cpu"; done
: >"$work/trips"
# CPU ticks (user + system) a process has used.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
for run in $(seq 1 "$RUNS"); do
    line="   run $run:"
    shift=$(((run - 1) % ${#names[@]}))
    for name in "${names[@]:shift}" "${names[@]:0:shift}"; do
        before=$(evalsha_calls)
        cpu_before=$(ticks "${server_pid[$name]}")
        out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:${ports[$name]}/hello")
        cpu_after=$(ticks "${server_pid[$name]}")
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        requests=$(awk '/requests in/ {print $1}' <<<"$out")
        echo "$rps" >>"$work/$name.runs"
        us=$(awk -v a="$cpu_after" -v b="$cpu_before" -v hz="$hz" -v r="$requests" 'BEGIN {printf "%.1f", (a - b) / hz * 1e6 / r}')
        echo "$us" >>"$work/$name.cpu"
        line+=$(printf ' %s %.0f (%s us) |' "$name" "$rps" "$us")
        if [ "$name" = redis ]; then
            after=$(evalsha_calls)
            awk -v a="${after:-0}" -v b="${before:-0}" -v r="$requests" 'BEGIN {printf "%.3f\n", (a-b)/r}' >>"$work/trips"
        fi
    done
    echo "$line"
done
declare -A medians
for name in "${names[@]}"; do medians[$name]=$(median <"$work/$name.runs"); done
ratio() { paste -d' ' "$work/$1.runs" "$work/$2.runs" | awk '{print $1/$2}' | median; }
printf '   medians (req/s): bare %.0f, memory %.0f, redis %.0f, memory-nofields %.0f, bare-fields %.0f\n' \
    "${medians[bare]}" "${medians[memory]}" "${medians[redis]}" "${medians[memory-nofields]}" "${medians[bare-fields]}"
printf '   memory / bare %.3f (paired %.3f); redis / bare %.3f (paired %.3f); Redis round trips per request %s\n' \
    "$(awk -v a="${medians[memory]}" -v b="${medians[bare]}" 'BEGIN {print a/b}')" "$(ratio memory bare)" \
    "$(awk -v a="${medians[redis]}" -v b="${medians[bare]}" 'BEGIN {print a/b}')" "$(ratio redis bare)" \
    "$(median <"$work/trips")"
printf '   memory-nofields / bare %.3f (paired %.3f); bare-fields / bare %.3f (paired %.3f); memory / bare-fields %.3f (paired %.3f)\n' \
    "$(awk -v a="${medians[memory-nofields]}" -v b="${medians[bare]}" 'BEGIN {print a/b}')" "$(ratio memory-nofields bare)" \
    "$(awk -v a="${medians[bare-fields]}" -v b="${medians[bare]}" 'BEGIN {print a/b}')" "$(ratio bare-fields bare)" \
    "$(awk -v a="${medians[memory]}" -v b="${medians[bare-fields]}" 'BEGIN {print a/b}')" "$(ratio memory bare-fields)"
printf '   server CPU per request (median, us): bare %s, memory %s, redis %s, memory-nofields %s, bare-fields %s\n' \
    "$(median <"$work/bare.cpu")" "$(median <"$work/memory.cpu")" "$(median <"$work/redis.cpu")" \
    "$(median <"$work/memory-nofields.cpu")" "$(median <"$work/bare-fields.cpu")"
