#!/usr/bin/env bash
# wrk on loopback against CompressionExample's GET /big (StrataCompression, gzip level 6) and
# nginx serving the same bytes with `gzip on; gzip_comp_level 6`, alternating runs, both asked
# for gzip. Prints requests/s per run, the medians, the ratio ours/nginx, and both compressed sizes.
#
#   RUNS=5 DURATION=10s CONNECTIONS=32 scripts/bench-compression.sh
#
# The servers and wrk share this machine's cores: read the figures as ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS="${RUNS:-5}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
OURS_PORT=18180
NGINX_PORT=18181

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

swift build -c release --product CompressionExample >/dev/null 2>&1
work="$(mktemp -d)"
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

.build/release/CompressionExample --port "$OURS_PORT" >"$work/ours.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$OURS_PORT/big" -o "$work/big.html" && break; sleep 0.1; done

# nginx serves the very bytes /big serves, from a file.
mkdir -p "$work/www" "$work/tmp"
cp "$work/big.html" "$work/www/big"
cat >"$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
    uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
    types { text/html html; }
    default_type text/html;
    gzip on;
    gzip_comp_level 6;
    gzip_min_length 1024;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $work/www;
        location = /big { }
    }
}
CONF
chmod -R a+rX "$work"  # nginx workers run unprivileged
nginx -c "$work/nginx.conf"
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$NGINX_PORT/big" -o /dev/null && break; sleep 0.1; done

original=$(wc -c <"$work/big.html")
ours_size=$(curl -s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$OURS_PORT/big" | wc -c)
nginx_size=$(curl -s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$NGINX_PORT/big" | wc -c)
curl -s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$OURS_PORT/big" | gunzip | cmp - "$work/big.html"
curl -s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$NGINX_PORT/big" | gunzip | cmp - "$work/big.html"
echo "body: $original bytes; gzip level 6: strata $ours_size bytes ($(awk -v a="$ours_size" -v b="$original" 'BEGIN {printf "%.3f", a/b}')), nginx $nginx_size bytes ($(awk -v a="$nginx_size" -v b="$original" 'BEGIN {printf "%.3f", a/b}'))"

rps() { wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H 'Accept-Encoding: gzip' "$1" | awk '/Requests\/sec/ {print $2}'; }

: >"$work/ours"
: >"$work/nginx"
echo "== GET /big with Accept-Encoding: gzip, $RUNS alternating runs of wrk -t1 -c$CONNECTIONS -d$DURATION"
for run in $(seq 1 "$RUNS"); do
    o=$(rps "http://127.0.0.1:$OURS_PORT/big")
    n=$(rps "http://127.0.0.1:$NGINX_PORT/big")
    echo "$o" >>"$work/ours"
    echo "$n" >>"$work/nginx"
    printf '  run %d: strata %8.0f req/s | nginx %8.0f req/s\n' "$run" "$o" "$n"
done
o_med=$(median <"$work/ours")
n_med=$(median <"$work/nginx")
pairs=$(paste -d' ' "$work/ours" "$work/nginx" | awk '{print $1/$2}' | median)
printf '  median: strata %.0f req/s | nginx %.0f req/s; ratio of medians %.3f; median of paired ratios %.3f\n' \
    "$o_med" "$n_med" "$(awk -v o="$o_med" -v n="$n_med" 'BEGIN {print o/n}')" "$pairs"
