#!/usr/bin/env bash
# wrk on loopback against cache hits, in alternating runs, for 13 bytes and 100 KiB:
#   strata   CachingProxyExample (StrataCache in front of StrataReverseProxy, memory store)
#   plain    StrataServer serving the same bytes from a plain route (Benchmarks' BytesServer)
#   nginx    nginx proxy_cache (cache in /dev/shm, keepalive upstream, proxy_cache_lock)
#   varnish  Debian's Varnish (malloc storage)
# All of them cache one origin: nginx, one worker, serving the files with max-age=3600; every
# cache is warmed first, and every measured request is a hit (checked on the Cache-Status,
# X-Cache or Age field before the runs).
#
# Then misses: every request a new URL (a wrk script), through CachingProxyExample (the proxy,
# plus the lookup and the store write), ReverseProxyExample (the proxy alone), and Benchmarks'
# ProxyStoreFloor twice: `floor`, the same proxy with only a lookup and the store write around
# it, in the same memory store of the same size (what the issue's "the proxy plus the store
# write" costs), and `rules`, that floor plus the rules a miss must apply, StrataCache's own
# functions called in line without the cache around them (what any cache applying those rules
# costs at least, with this implementation of them).
#
#   RUNS=5 DURATION=10s CONNECTIONS=64 scripts/bench-cache.sh
#
#   PIN=1 ONLY=misses RUNS=12 DURATION=4s THREADS=1 CONNECTIONS=32 scripts/bench-cache.sh
#
# PIN=1 puts the servers (the caches, proxies and floors) on CPU 1, and the origin and wrk on
# CPU 0 (two cores needed); ONLY=misses skips the hits. The runs of each row take the servers in
# turn, starting one further each run.
#
# Everything shares this machine's cores: read the figures as ratios from one run. Each summary
# line also gives the ratio of the servers' own CPU per request (the peer's over ours, paired
# runs, median): what a request costs each, which moves less than req/s with how the cores
# happened to be shared. nginx and Varnish count all their worker processes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS="${RUNS:-5}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
PIN="${PIN:-0}"
ONLY="${ONLY:-}"
bench_pins
ORIGIN_PORT=18290
STRATA_PORT=18291
PLAIN_PORT=18292
NGINX_PORT=18293
VARNISH_PORT=18294
PROXY_PORT=18295
FLOOR_PORT=18296
RULES_PORT=18297

bench_require wrk:wrk nginx:nginx varnish:varnishd

swift build -c release --product CachingProxyExample >/dev/null 2>&1
swift build -c release --product ReverseProxyExample >/dev/null 2>&1
(cd Benchmarks && swift build -c release --product BytesServer >/dev/null 2>&1)
(cd Benchmarks && swift build -c release --product ProxyStoreFloor >/dev/null 2>&1)

work="$(mktemp -d /dev/shm/strata-cache-bench.XXXXXX)"
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    for pidfile in "$work/origin.pid" "$work/nginx.pid"; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www" "$work/tmp" "$work/cache"
chmod 755 "$work" "$work/www"
chmod 777 "$work/tmp" "$work/cache"
printf 'Hello, World!' >"$work/www/13"
head -c 102400 /dev/zero | tr '\0' 'a' >"$work/www/100k"

common_nginx="error_log $work/nginx-error.log crit; events { worker_connections 4096; }"
cat >"$work/origin.conf" <<CONF
worker_processes 1;
pid $work/origin.pid;
$common_nginx
http {
    access_log off;
    client_body_temp_path $work/tmp/origin-body;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$ORIGIN_PORT backlog=4096;
        root $work/www;
        default_type application/octet-stream;
        add_header Cache-Control "max-age=3600";
    }
}
CONF
cat >"$work/nginx.conf" <<CONF
worker_processes $(nproc);
pid $work/nginx.pid;
$common_nginx
http {
    access_log off;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    keepalive_requests 1000000;
    proxy_cache_path $work/cache levels=1:2 keys_zone=bench:16m max_size=256m inactive=1h use_temp_path=off;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 256; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_cache_lock on;
            add_header X-Cache \$upstream_cache_status;
        }
    }
}
CONF

"${load_pin[@]}" nginx -c "$work/origin.conf"
"${server_pin[@]}" nginx -c "$work/nginx.conf"
"${server_pin[@]}" varnishd -F -j none -n "$work/varnish" -a "127.0.0.1:$VARNISH_PORT" -b "127.0.0.1:$ORIGIN_PORT" -s malloc,256m \
    >"$work/varnish.log" 2>&1 &
pids+=($!)
varnish_pid=$!
"${server_pin[@]}" .build/release/CachingProxyExample --listen "127.0.0.1:$STRATA_PORT" --origin "http://127.0.0.1:$ORIGIN_PORT" \
    >"$work/strata.log" 2>&1 &
pids+=($!)
strata_pid=$!
"${server_pin[@]}" .build/release/ReverseProxyExample --listen "127.0.0.1:$PROXY_PORT" --upstream "http://127.0.0.1:$ORIGIN_PORT" \
    >"$work/proxy.log" 2>&1 &
pids+=($!)
proxy_pid=$!
"${server_pin[@]}" Benchmarks/.build/release/BytesServer --port "$PLAIN_PORT" >"$work/plain.log" 2>&1 &
pids+=($!)
plain_pid=$!
"${server_pin[@]}" Benchmarks/.build/release/ProxyStoreFloor --port "$FLOOR_PORT" --mode lookup --memory-bytes $((256 << 20)) \
    --upstream "http://127.0.0.1:$ORIGIN_PORT" >"$work/floor.log" 2>&1 &
pids+=($!)
floor_pid=$!
"${server_pin[@]}" Benchmarks/.build/release/ProxyStoreFloor --port "$RULES_PORT" --mode rules --memory-bytes $((256 << 20)) \
    --upstream "http://127.0.0.1:$ORIGIN_PORT" >"$work/rules.log" 2>&1 &
pids+=($!)
rules_pid=$!
for port in "$ORIGIN_PORT" "$STRATA_PORT" "$PLAIN_PORT" "$NGINX_PORT" "$VARNISH_PORT" "$PROXY_PORT" "$FLOOR_PORT" \
    "$RULES_PORT"; do
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/13" >/dev/null && break; sleep 0.1; done
done
# Every cache must answer each path right, and from its cache, before anything is measured.
for check in "/13 13" "/100k 102400"; do
    read -r path size <<<"$check"
    for port in "$STRATA_PORT" "$PLAIN_PORT" "$NGINX_PORT" "$VARNISH_PORT"; do
        curl -s -o /dev/null "http://127.0.0.1:$port$path"
        got="$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$port$path")"
        [ "$got" = "200 $size" ] || { echo "port $port $path answered '$got', not '200 $size'" >&2; exit 1; }
    done
    curl -s -D - -o /dev/null "http://127.0.0.1:$STRATA_PORT$path" | grep -qi '^cache-status: Strata; hit' ||
        { echo "strata did not answer $path from its cache" >&2; exit 1; }
    curl -s -D - -o /dev/null "http://127.0.0.1:$NGINX_PORT$path" | grep -qi '^x-cache: HIT' ||
        { echo "nginx did not answer $path from its cache" >&2; exit 1; }
    curl -s -D - -o /dev/null "http://127.0.0.1:$VARNISH_PORT$path" | grep -qi '^age: ' ||
        { echo "varnish did not answer $path from its cache" >&2; exit 1; }
done
cat >"$work/miss.lua" <<'LUA'
local counter = 0
local salt = 0
function init(args)
    math.randomseed(os.time() + math.floor(os.clock() * 1000000))
    salt = math.random(1, 1000000000)
end
function request()
    counter = counter + 1
    return wrk.format("GET", "/13?miss=" .. salt .. "-" .. counter)
end
LUA
sleep 0.5
nginx_master="$(cat "$work/nginx.pid")"

pids_of() {
    case "$1" in
    strata) echo "$strata_pid" ;;
    plain) echo "$plain_pid" ;;
    nginx) pgrep -P "$nginx_master" | tr '\n' ' ' ;;
    varnish) pgrep -P "$varnish_pid" | tr '\n' ' ' ;;
    proxy) echo "$proxy_pid" ;;
    floor) echo "$floor_pid" ;;
    rules) echo "$rules_pid" ;;
    esac
}
ticks() {
    local total=0 pid
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
hz="$(getconf CLK_TCK)"

# Prints "rps p99_ms cpu_s".
run_wrk() {
    local name="$1" port="$2" path="$3" script="$4" output ids before
    ids="$(pids_of "$name")"
    # shellcheck disable=SC2086
    before="$(ticks $ids)"
    local args=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency)
    [ -n "$script" ] && args+=(-s "$script")
    output="$("${load_pin[@]}" wrk "${args[@]}" "http://127.0.0.1:$port$path" 2>&1)"
    if grep -q 'Non-2xx' <<<"$output"; then
        echo "$name answered errors during the run:" >&2
        echo "$output" >&2
        exit 1
    fi
    local rps p99 cpu
    read -r rps p99 <<<"$(wrk_figures <<<"$output")"
    # shellcheck disable=SC2086
    cpu="$(awk -v a="$(ticks $ids)" -v b="$before" -v hz="$hz" 'BEGIN {print (a - b) / hz}')"
    echo "$rps $p99 $cpu"
}

# bench TITLE PATH SCRIPT REFERENCE NAME:PORT...: the first entry is compared with each other.
bench() {
    local title="$1" path="$2" script="$3"
    shift 3
    local entries=("$@") key
    key="$(tr -c 'a-zA-Z0-9' '_' <<<"$title")"
    echo "== $title: $RUNS alternating runs of wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    for entry in "${entries[@]}"; do
        : >"$work/$key.${entry%%:*}"
        "${load_pin[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s ${script:+-s "$script"} "http://127.0.0.1:${entry##*:}$path" >/dev/null
    done
    for run in $(seq 1 "$RUNS"); do
        local order=() i
        for i in "${!entries[@]}"; do order+=("${entries[$(((i + run - 1) % ${#entries[@]}))]}"); done
        for entry in "${order[@]}"; do
            local name="${entry%%:*}" port="${entry##*:}" result
            result="$(run_wrk "$name" "$port" "$path" "$script")"
            echo "$result" >>"$work/$key.$name"
            read -r rps p99 cpu <<<"$result"
            printf '  run %d %-8s %9.0f req/s  p99 %7.2f ms  cpu %5.1f s (%.1f us/request)\n' "$run" "$name" "$rps" "$p99" \
                "$cpu" "$(awk -v c="$cpu" -v r="$rps" -v d="${DURATION%s}" 'BEGIN {print c * 1e6 / (r * d)}')"
        done
    done
    local first="${entries[0]%%:*}" f_rps f_p99
    f_rps="$(cut -d' ' -f1 "$work/$key.$first" | median)"
    f_p99="$(cut -d' ' -f2 "$work/$key.$first" | median)"
    for entry in "${entries[@]:1}"; do
        local peer="${entry%%:*}" p_rps p_p99 paired
        p_rps="$(cut -d' ' -f1 "$work/$key.$peer" | median)"
        p_p99="$(cut -d' ' -f2 "$work/$key.$peer" | median)"
        paired="$(paste -d' ' "$work/$key.$first" "$work/$key.$peer" | awk '{print $1/$4}' | median)"
        # The server's own CPU per request, the peer's over ours: what a request costs each,
        # less sensitive than req/s to how the two cores were shared during a run.
        cost="$(paste -d' ' "$work/$key.$first" "$work/$key.$peer" |
            awk '$3 > 0 && $6 > 0 {print ($6 / $4) / ($3 / $1)}' | median)"
        printf '  median %s %.0f req/s p99 %.2f ms | %s %.0f req/s p99 %.2f ms | ratio %.3f (paired %.3f)' \
            "$first" "$f_rps" "$f_p99" "$peer" "$p_rps" "$p_p99" "$(awk -v a="$f_rps" -v b="$p_rps" 'BEGIN {print a/b}')" \
            "$paired"
        printf ' | CPU per request %s/%s %.3f (paired median)\n' "$peer" "$first" "${cost:-0}"
    done
}

# compare TITLE A B: B's rate over A's in the runs of row TITLE (ratio of medians, and paired).
compare() {
    local key a="$2" b="$3"
    key="$(tr -c 'a-zA-Z0-9' '_' <<<"$1")"
    printf '  %s over %s: ratio %.3f (paired %.3f) | CPU per request %s/%s %.3f (paired median)\n' "$b" "$a" \
        "$(awk -v x="$(cut -d' ' -f1 "$work/$key.$b" | median)" -v y="$(cut -d' ' -f1 "$work/$key.$a" | median)" \
            'BEGIN {print x / y}')" \
        "$(paste -d' ' "$work/$key.$a" "$work/$key.$b" | awk '{print $4 / $1}' | median)" "$a" "$b" \
        "$(paste -d' ' "$work/$key.$a" "$work/$key.$b" | awk '$3 > 0 && $6 > 0 {print ($3 / $1) / ($6 / $4)}' | median)"
}

if [ "$PIN" = 1 ]; then
    echo "machine: $(nproc) cores, $(uname -r); servers on CPU 1, origin and wrk on CPU 0"
else
    echo "machine: $(nproc) cores, $(uname -r); caches, origin and wrk share them"
fi
hits=("strata:$STRATA_PORT" "plain:$PLAIN_PORT" "nginx:$NGINX_PORT" "varnish:$VARNISH_PORT")
if [ "$ONLY" != misses ]; then
    bench "hits, 13 bytes" "/13" "" "${hits[@]}"
    bench "hits, 100 KiB" "/100k" "" "${hits[@]}"
fi
bench "misses, 13 bytes, a new URL each" "/13" "$work/miss.lua" "strata:$STRATA_PORT" "proxy:$PROXY_PORT" \
    "floor:$FLOOR_PORT" "rules:$RULES_PORT"
# What the rules alone cost: the rules floor against the lookup floor.
compare "misses, 13 bytes, a new URL each" floor rules
