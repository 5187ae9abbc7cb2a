#!/usr/bin/env bash
# wrk on loopback against CompressionExample's GET /big (StrataCompression, gzip level 6) built
# twice, without and with the Libdeflate trait, and nginx serving the same bytes with `gzip on;
# gzip_comp_level 6`, alternating runs, all asked for gzip. Prints requests/s per run, the medians,
# the ratios to nginx, and the three compressed sizes.
#
#   RUNS=5 DURATION=10s CONNECTIONS=32 scripts/bench-compression.sh
#   LIBDEFLATE_LEVEL=3 scripts/bench-compression.sh    (overrides the level mapped from zlib's 6)
#   PAGE=api.json scripts/bench-compression.sh         (serves that file as /big instead)
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
LIBDEFLATE_PORT=18182
LIBDEFLATE_LEVEL="${LIBDEFLATE_LEVEL:-}"
PAGE="${PAGE:-}"

bench_require wrk:wrk nginx:nginx libdeflate-dev
swift build -c release --product CompressionExample >/dev/null 2>&1
# The trait changes every target's build settings: a build folder of its own keeps both builds.
swift build -c release --scratch-path .build-libdeflate --traits Libdeflate --product CompressionExample >/dev/null 2>&1
work="$(mktemp -d)"
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

page_flag=()
[ -n "$PAGE" ] && page_flag=(--page "$(realpath "$PAGE")")
.build/release/CompressionExample --port "$OURS_PORT" "${page_flag[@]}" >"$work/ours.log" 2>&1 &
pids+=($!)
level_flag=()
[ -n "$LIBDEFLATE_LEVEL" ] && level_flag=(--libdeflate-level "$LIBDEFLATE_LEVEL")
.build-libdeflate/release/CompressionExample --port "$LIBDEFLATE_PORT" "${level_flag[@]}" "${page_flag[@]}" >"$work/libdeflate.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$OURS_PORT/big" -o "$work/big.html" && break; sleep 0.1; done
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$LIBDEFLATE_PORT/big" -o /dev/null && break; sleep 0.1; done

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
size() { curl -s -H 'Accept-Encoding: gzip' "$1" | wc -c; }
ours_size=$(size "http://127.0.0.1:$OURS_PORT/big")
libdeflate_size=$(size "http://127.0.0.1:$LIBDEFLATE_PORT/big")
nginx_size=$(size "http://127.0.0.1:$NGINX_PORT/big")
for port in "$OURS_PORT" "$LIBDEFLATE_PORT" "$NGINX_PORT"; do
    curl -s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/big" | gunzip | cmp - "$work/big.html"
done
share() { awk -v a="$1" -v b="$original" 'BEGIN {printf "%.4f", a/b}'; }
echo "body: $original bytes; gzip: strata zlib level 6 $ours_size bytes ($(share "$ours_size")), strata libdeflate level ${LIBDEFLATE_LEVEL:-mapped from 6} $libdeflate_size bytes ($(share "$libdeflate_size")), nginx level 6 $nginx_size bytes ($(share "$nginx_size"))"

rps() { wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H 'Accept-Encoding: gzip' "$1" | awk '/Requests\/sec/ {print $2}'; }

: >"$work/ours"
: >"$work/libdeflate"
: >"$work/nginx"
echo "== GET /big with Accept-Encoding: gzip, $RUNS alternating runs of wrk -t1 -c$CONNECTIONS -d$DURATION"
for run in $(seq 1 "$RUNS"); do
    o=$(rps "http://127.0.0.1:$OURS_PORT/big")
    l=$(rps "http://127.0.0.1:$LIBDEFLATE_PORT/big")
    n=$(rps "http://127.0.0.1:$NGINX_PORT/big")
    echo "$o" >>"$work/ours"
    echo "$l" >>"$work/libdeflate"
    echo "$n" >>"$work/nginx"
    printf '  run %d: strata zlib %8.0f req/s | strata libdeflate %8.0f req/s | nginx %8.0f req/s\n' "$run" "$o" "$l" "$n"
done
o_med=$(median <"$work/ours")
l_med=$(median <"$work/libdeflate")
n_med=$(median <"$work/nginx")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }
paired() { paste -d' ' "$1" "$2" | awk '{print $1/$2}' | median; }
printf '  median: strata zlib %.0f | strata libdeflate %.0f | nginx %.0f req/s\n' "$o_med" "$l_med" "$n_med"
printf '  strata zlib / nginx: ratio of medians %s, median of paired ratios %.3f\n' \
    "$(ratio "$o_med" "$n_med")" "$(paired "$work/ours" "$work/nginx")"
printf '  strata libdeflate / nginx: ratio of medians %s, median of paired ratios %.3f\n' \
    "$(ratio "$l_med" "$n_med")" "$(paired "$work/libdeflate" "$work/nginx")"
