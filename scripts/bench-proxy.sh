#!/usr/bin/env bash
# wrk on loopback through three reverse proxies in front of one upstream, in alternating runs:
# StrataReverseProxy (ReverseProxyExample, release), nginx proxy_pass (HTTP/1.1, keepalive
# upstream) and HAProxy (keep-alive both sides, http-reuse always). The upstream is a separate
# nginx with one worker serving 13 bytes, 100 KiB and a POST sink.
#
# The 13-byte run also measures, in the same alternation, what bounds any proxy here:
# - StrataServer alone (HelloExample answering 13 bytes from memory: the server half of our
#   proxy, with no upstream) and the upstream alone (nginx, no proxy in front);
# - NIO's floor (Benchmarks' ProxyFloor): bytes copied between a client connection and its own
#   upstream connection by channel handlers, no HTTP, no Swift concurrency;
# - the ceiling of a proxy on StrataServer (Benchmarks' ProxyCeiling): a responder that forwards
#   with the least client work, one future per request, no header parsing or rewriting;
# - an HTTP server on NIO without Swift concurrency (ProxyFloor --hello: NIOHTTP1 and a handler
#   answering 13 bytes), next to StrataServer alone.
#
# For each run: requests/s, p99 latency, the upstream connections the proxy opened during the
# run (from the upstream's stub_status), and the CPU seconds each process used (proxy,
# upstream, wrk), to show who saturates.
#
#   RUNS=5 DURATION=10s CONNECTIONS=64 scripts/bench-proxy.sh
#
# DURATION is given in seconds (`10s`): the CPU per request is computed from it.
#
# Everything shares this machine's cores: read the figures as ratios from one run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS="${RUNS:-5}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
UPSTREAM_PORT=18190
STRATA_PORT=18191
NGINX_PORT=18192
HAPROXY_PORT=18193
STATUS_PORT=18194
SERVER_PORT=18195
FLOOR_PORT=18196
CEILING_PORT=18197
HELLO_PORT=18198

bench_require wrk:wrk nginx:nginx haproxy:haproxy

swift build -c release --product ReverseProxyExample >/dev/null 2>&1
swift build -c release --product HelloExample >/dev/null 2>&1
(cd Benchmarks && swift build -c release --product ProxyFloor >/dev/null 2>&1 &&
    swift build -c release --product ProxyCeiling >/dev/null 2>&1)

work="$(mktemp -d)"
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    [ -f "$work/upstream.pid" ] && kill "$(cat "$work/upstream.pid")" 2>/dev/null || true
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www" "$work/tmp"
# nginx's workers run unprivileged: they must read the files and write their temp files.
chmod 755 "$work" "$work/www"
chmod 777 "$work/tmp"
printf 'Hello, World!' >"$work/www/13"
head -c 102400 /dev/zero | tr '\0' 'a' >"$work/www/100k"
write_post_script "$work" b

common_nginx="error_log $work/nginx-error.log crit; events { worker_connections 4096; }"
cat >"$work/upstream.conf" <<CONF
worker_processes 1;
pid $work/upstream.pid;
$common_nginx
http {
    access_log off;
    client_body_temp_path $work/tmp/up-body;
    proxy_temp_path $work/tmp/up-proxy;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$UPSTREAM_PORT backlog=4096;
        root $work/www;
        default_type application/octet-stream;
        location = /post { client_body_buffer_size 128k; return 200 "ok"; }
    }
    server {
        listen 127.0.0.1:$STATUS_PORT;
        location / { stub_status; }
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
    upstream backend { server 127.0.0.1:$UPSTREAM_PORT; keepalive 256; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        client_max_body_size 1m;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
cat >"$work/haproxy.cfg" <<CONF
global
    nbthread $(nproc)
    maxconn 4000
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend front
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend back
backend back
    server upstream 127.0.0.1:$UPSTREAM_PORT
CONF

nginx -c "$work/upstream.conf"
nginx -c "$work/nginx.conf"
haproxy -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
haproxy_pid=$!
.build/release/ReverseProxyExample --listen "127.0.0.1:$STRATA_PORT" --upstream "http://127.0.0.1:$UPSTREAM_PORT" \
    --max-body 1048576 >"$work/strata.log" 2>&1 &
pids+=($!)
strata_pid=$!
.build/release/HelloExample --port "$SERVER_PORT" >"$work/server.log" 2>&1 &
pids+=($!)
server_pid=$!
Benchmarks/.build/release/ProxyFloor --listen "127.0.0.1:$FLOOR_PORT" --upstream "127.0.0.1:$UPSTREAM_PORT" \
    >"$work/floor.log" 2>&1 &
pids+=($!)
floor_pid=$!
Benchmarks/.build/release/ProxyCeiling --port "$CEILING_PORT" --upstream-port "$UPSTREAM_PORT" \
    >"$work/ceiling.log" 2>&1 &
pids+=($!)
ceiling_pid=$!
Benchmarks/.build/release/ProxyFloor --hello --listen "127.0.0.1:$HELLO_PORT" >"$work/hello.log" 2>&1 &
pids+=($!)
hello_pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$SERVER_PORT/" >/dev/null && break; sleep 0.1; done
for port in "$UPSTREAM_PORT" "$STRATA_PORT" "$NGINX_PORT" "$HAPROXY_PORT" "$FLOOR_PORT" "$CEILING_PORT" "$HELLO_PORT"; do
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/13" >/dev/null && break; sleep 0.1; done
done
# Every proxy must answer each path right before anything is measured.
for port in "$STRATA_PORT" "$NGINX_PORT" "$HAPROXY_PORT"; do
    for check in "/13 13" "/100k 102400"; do
        read -r path size <<<"$check"
        got="$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$port$path")"
        [ "$got" = "200 $size" ] || { echo "port $port $path answered '$got', not '200 $size'" >&2; exit 1; }
    done
    got="$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$work/body" "http://127.0.0.1:$port/post")"
    [ "$got" = "200" ] || { echo "port $port POST /post answered $got" >&2; exit 1; }
done
# ...and so must the floors: 13 bytes each.
for url in "$FLOOR_PORT/13" "$CEILING_PORT/13" "$HELLO_PORT/" "$SERVER_PORT/"; do
    got="$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$url")"
    [ "$got" = "200 13" ] || { echo "127.0.0.1:$url answered '$got', not '200 13'" >&2; exit 1; }
done
sleep 0.5
nginx_master="$(cat "$work/nginx.pid")"
upstream_master="$(cat "$work/upstream.pid")"

# The pids whose CPU counts as each proxy's (nginx: its workers).
proxy_pids() {
    case "$1" in
    strata) echo "$strata_pid" ;;
    nginx) pgrep -P "$nginx_master" | tr '\n' ' ' ;;
    haproxy) echo "$haproxy_pid" ;;
    server) echo "$server_pid" ;;
    nioforward) echo "$floor_pid" ;;
    ceiling) echo "$ceiling_pid" ;;
    niohello) echo "$hello_pid" ;;
    upstream) pgrep -P "$upstream_master" | tr '\n' ' ' ;;
    esac
}
# Clock ticks of user + system time of the given pids.
ticks() {
    local total=0 pid
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
accepts() { curl -fs "http://127.0.0.1:$STATUS_PORT/" | awk 'NR == 3 {print $1}'; }
hz="$(getconf CLK_TCK)"

# Prints "rps p99_ms upstream_connections proxy_cpu_s upstream_cpu_s wrk_cpu_s".
run_wrk() {
    local name="$1" port="$2" path="$3" script="$4" output
    local ppids upids before_p before_u before_a wrk_time
    ppids="$(proxy_pids "$name")"
    upids="$(pgrep -P "$upstream_master" | tr '\n' ' ')"
    # shellcheck disable=SC2086
    before_p="$(ticks $ppids)"
    # shellcheck disable=SC2086
    before_u="$(ticks $upids)"
    before_a="$(accepts)"
    local args=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency)
    [ -n "$script" ] && args+=(-s "$script")
    output="$( { /usr/bin/time -f 'wrkcpu %U %S' wrk "${args[@]}" "http://127.0.0.1:$port$path"; } 2>&1)"
    if grep -q 'Non-2xx' <<<"$output"; then
        echo "$name answered errors during the run:" >&2
        echo "$output" >&2
        exit 1
    fi
    local rps p99 opened pcpu ucpu
    read -r rps p99 <<<"$(wrk_figures <<<"$output")"
    wrk_time="$(awk '/^wrkcpu/ {print $2 + $3}' <<<"$output")"
    opened=$(($(accepts) - before_a - 1))
    # shellcheck disable=SC2086
    pcpu="$(awk -v a="$(ticks $ppids)" -v b="$before_p" -v hz="$hz" 'BEGIN {print (a - b) / hz}')"
    # shellcheck disable=SC2086
    ucpu="$(awk -v a="$(ticks $upids)" -v b="$before_u" -v hz="$hz" 'BEGIN {print (a - b) / hz}')"
    echo "$rps $p99 $opened $pcpu $ucpu ${wrk_time:-0}"
}

bench() {
    local title="$1" path="$2" script="$3" floors="${4:-}"
    local key
    key="$(tr -c 'a-zA-Z0-9' '_' <<<"$title")"
    echo "== $title: $RUNS alternating runs of wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    local entries=("strata $STRATA_PORT $path" "nginx $NGINX_PORT $path" "haproxy $HAPROXY_PORT $path")
    [ -n "$floors" ] && entries+=("server $SERVER_PORT /" "upstream $UPSTREAM_PORT $path"
        "nioforward $FLOOR_PORT $path" "ceiling $CEILING_PORT $path" "niohello $HELLO_PORT /")
    for entry in "${entries[@]}"; do : >"$work/$key.${entry%% *}"; done
    # Warm-up: pools filled, caches hot (the floors' too, when they run).
    local warm=("$STRATA_PORT" "$NGINX_PORT" "$HAPROXY_PORT")
    [ -n "$floors" ] && warm+=("$FLOOR_PORT" "$CEILING_PORT")
    for port in "${warm[@]}"; do
        wrk -t"$THREADS" -c"$CONNECTIONS" -d2s ${script:+-s "$script"} "http://127.0.0.1:$port$path" >/dev/null
    done
    for run in $(seq 1 "$RUNS"); do
        for entry in "${entries[@]}"; do
            read -r name port target <<<"$entry"
            result="$(run_wrk "$name" "$port" "$target" "$script")"
            echo "$result" >>"$work/$key.$name"
            read -r rps p99 opened pcpu ucpu wcpu <<<"$result"
            printf '  run %d %-8s %9.0f req/s  p99 %7.2f ms  upstream conns opened %4d  cpu s: proxy %5.1f upstream %5.1f wrk %5.1f\n' \
                "$run" "$name" "$rps" "$p99" "$opened" "$pcpu" "$ucpu" "$wcpu"
        done
    done
    local s_rps s_p99
    s_rps="$(cut -d' ' -f1 "$work/$key.strata" | median)"
    s_p99="$(cut -d' ' -f2 "$work/$key.strata" | median)"
    for peer in nginx haproxy; do
        local p_rps p_p99 paired
        p_rps="$(cut -d' ' -f1 "$work/$key.$peer" | median)"
        p_p99="$(cut -d' ' -f2 "$work/$key.$peer" | median)"
        paired="$(paste -d' ' "$work/$key.strata" "$work/$key.$peer" | awk '{print $1/$7}' | median)"
        printf '  median strata %.0f req/s p99 %.2f ms | %s %.0f req/s p99 %.2f ms | ratio %.3f (paired %.3f), p99 ratio %.3f\n' \
            "$s_rps" "$s_p99" "$peer" "$p_rps" "$p_p99" "$(awk -v a="$s_rps" -v b="$p_rps" 'BEGIN {print a/b}')" \
            "$paired" "$(awk -v a="$s_p99" -v b="$p_p99" 'BEGIN {print a/b}')"
    done
    if [ -n "$floors" ]; then
        local server upstream nginx
        server="$(cut -d' ' -f1 "$work/$key.server" | median)"
        upstream="$(cut -d' ' -f1 "$work/$key.upstream" | median)"
        nginx="$(cut -d' ' -f1 "$work/$key.nginx" | median)"
        printf '  floors: StrataServer alone %.0f req/s (%.3f x nginx proxy), upstream alone %.0f req/s\n' \
            "$server" "$(awk -v a="$server" -v b="$nginx" 'BEGIN {print a/b}')" "$upstream"
        local name rps paired cpu
        for name in nioforward ceiling; do
            rps="$(cut -d' ' -f1 "$work/$key.$name" | median)"
            paired="$(paste -d' ' "$work/$key.$name" "$work/$key.nginx" | awk '{print $1/$7}' | median)"
            # CPU seconds per request of the process, in microseconds (runs of equal length).
            cpu="$(awk -v d="${DURATION%s}" '{print $4 * 1e6 / ($1 * d)}' "$work/$key.$name" | median)"
            printf '  %-10s %.0f req/s: %.3f x nginx proxy (paired %.3f), %.1f us of CPU per request\n' \
                "$name" "$rps" "$(awk -v a="$rps" -v b="$nginx" 'BEGIN {print a/b}')" "$paired" "$cpu"
        done
        for name in strata nginx haproxy server niohello; do
            cpu="$(awk -v d="${DURATION%s}" '{print $4 * 1e6 / ($1 * d)}' "$work/$key.$name" | median)"
            printf '  %-10s %.1f us of CPU per request\n' "$name" "$cpu"
        done
    fi
}

echo "machine: $(nproc) cores, $(uname -r); proxies, upstream and wrk share them"
bench "GET 13 bytes" "/13" "" floors
bench "GET 100 KiB" "/100k" ""
bench "POST 64 KiB" "/post" "$work/post.lua"
