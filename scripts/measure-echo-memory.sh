#!/usr/bin/env bash
# Streams SIZE bytes (default 1 GiB) through POST /echo of a release HelloExample with curl and
# reports the server's peak resident memory (VmHWM) before and after.
#
#   SIZE=$((1024*1024*1024)) scripts/measure-echo-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${SIZE:-1073741824}"
PORT=18090
swift build -c release --product HelloExample >/dev/null
.build/release/HelloExample --port "$PORT" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
before="$(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
start=$(date +%s.%N)
echoed="$(head -c "$SIZE" /dev/zero | curl -sS -X POST -H 'Expect:' \
    -T - -o /dev/null -w '%{size_download}' "http://127.0.0.1:$PORT/echo")"
end=$(date +%s.%N)
sleep 0.5
after="$(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
rss="$(awk '/VmRSS/ {print $2}' /proc/$pid/status)"
echo "streamed $SIZE bytes through /echo in $(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.1f", e-s}') s; echoed bytes: ${echoed:-?}"
echo "server peak RSS (VmHWM): before ${before} KiB, after ${after} KiB; RSS now ${rss} KiB"
