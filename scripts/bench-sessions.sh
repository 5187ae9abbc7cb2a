#!/usr/bin/env bash
# Sessions side by side in one run, release builds, `wrk`, alternating runs, GET /count with one
# session cookie (the route reads the session's counter and writes it back plus one):
#   strata        StrataServer + StrataSessions, memory store (Benchmarks/Tools/SessionsServer)
#   hummingbird   Hummingbird 2 + hummingbird-auth's SessionMiddleware, MemoryPersistDriver
#   vapor         Vapor 4 + SessionsMiddleware, memory driver (VaporPeer --mode sessions)
#   strata-redis  StrataServer + StrataSessionsRedis on a local redis-server
# and GET /plain on the Strata memory server (the middleware in front, the session untouched).
# Prints requests/s per run, the medians and the ratios Strata/peer (and Redis/memory).
#
#   RUNS=5 DURATION=8s CONNECTIONS=64 scripts/bench-sessions.sh
#
# Every server, redis-server and wrk share this machine's cores: read the figures as ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS="${RUNS:-5}"
DURATION="${DURATION:-8s}"
CONNECTIONS="${CONNECTIONS:-64}"

(cd Benchmarks && swift build -c release --product SessionsServer >/dev/null &&
    swift build -c release --product HummingbirdSessionsPeer >/dev/null &&
    swift build -c release --product VaporPeer >/dev/null)

bench_start_redis

bin=Benchmarks/.build/release
declare -A ports=([strata]=18101 [hummingbird]=18102 [vapor]=18103 [strata-redis]=18104)
declare -A commands=(
    [strata]="$bin/SessionsServer"
    [hummingbird]="$bin/HummingbirdSessionsPeer"
    [vapor]="$bin/VaporPeer --mode sessions"
    [strata-redis]="$bin/SessionsServer --store redis --redis-url redis://127.0.0.1:$REDIS_PORT"
)
names=(strata hummingbird vapor strata-redis)
declare -A cookies
for name in "${names[@]}"; do
    port=${ports[$name]}
    ${commands[$name]} --port "$port" >"$work/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$port/plain" >/dev/null && break; sleep 0.1; done
    # The session cookie of a first request; the counter must then go up with it.
    cookie=$(curl -fs -D - -o /dev/null "http://127.0.0.1:$port/count" | tr -d '\r' |
        awk 'tolower($1) == "set-cookie:" {split($2, a, ";"); print a[1]; exit}')
    [ -n "$cookie" ] || { echo "$name: no session cookie"; exit 1; }
    second=$(curl -fs -H "Cookie: $cookie" "http://127.0.0.1:$port/count")
    [ "$second" = "2" ] || { echo "$name: the cookie did not carry the session (got '$second')"; exit 1; }
    cookies[$name]="$cookie"
done

echo "== $RUNS alternating runs of wrk -t1 -c$CONNECTIONS -d$DURATION, GET /count with one session"
for name in "${names[@]}" plain; do : >"$work/$name.runs"; done
for run in $(seq 1 "$RUNS"); do
    line="   run $run:"
    for name in "${names[@]}"; do
        rps=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "Cookie: ${cookies[$name]}" \
            "http://127.0.0.1:${ports[$name]}/count" | awk '/Requests\/sec/ {print $2}')
        echo "$rps" >>"$work/$name.runs"
        line+=$(printf ' %s %.0f |' "$name" "$rps")
    done
    rps=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:${ports[strata]}/plain" | awk '/Requests\/sec/ {print $2}')
    echo "$rps" >>"$work/plain.runs"
    line+=$(printf ' strata /plain %.0f' "$rps")
    echo "$line"
done
declare -A medians
for name in "${names[@]}" plain; do medians[$name]=$(median <"$work/$name.runs"); done
printf '   medians (req/s): strata %.0f, hummingbird %.0f, vapor %.0f, strata-redis %.0f, strata /plain %.0f\n' \
    "${medians[strata]}" "${medians[hummingbird]}" "${medians[vapor]}" "${medians[strata-redis]}" "${medians[plain]}"
ratio() { paste -d' ' "$work/$1.runs" "$work/$2.runs" | awk '{print $1/$2}' | median; }
printf '   Strata / Hummingbird %.3f (paired %.3f); Strata / Vapor %.3f (paired %.3f); Redis store / memory store %.3f\n' \
    "$(awk -v a="${medians[strata]}" -v b="${medians[hummingbird]}" 'BEGIN {print a/b}')" "$(ratio strata hummingbird)" \
    "$(awk -v a="${medians[strata]}" -v b="${medians[vapor]}" 'BEGIN {print a/b}')" "$(ratio strata vapor)" \
    "$(awk -v a="${medians[strata-redis]}" -v b="${medians[strata]}" 'BEGIN {print a/b}')"
for name in "${names[@]}"; do
    printf '   %s: counter after the runs %s\n' "$name" "$(curl -fs -H "Cookie: ${cookies[$name]}" "http://127.0.0.1:${ports[$name]}/count")"
done
