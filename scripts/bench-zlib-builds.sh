#!/usr/bin/env bash
# The zlib under each side of the Vapor compression comparison, alone: StrataCompression uses the
# system zlib (Debian's 1.2.13); Vapor's built-in compression (NIOHTTPCompression) uses the copy
# of Chromium's zlib that swift-nio-extras compiles in. Both are built with clang -O2 here and
# deflate the same ~100 KiB page (Benchmarks/Peers/VaporPeer's /big) at level 6, alternating,
# best of 5 rounds of 300 each; then the medians per build.
#
#   ROUNDS=5 scripts/bench-zlib-builds.sh     (needs Benchmarks/.build, e.g. from bench-adapters.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
ROUNDS="${ROUNDS:-5}"
vendored="$(ls -d Benchmarks/.build/checkouts/swift-nio-extras/Sources/CNIOExtrasZlib 2>/dev/null || true)"
[ -n "$vendored" ] || { echo "run (cd Benchmarks && swift package resolve) first"; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$work/page.txt" <<'PY'
import sys
text = "<!doctype html><html><head><title>Strata on Vapor</title></head><body><pre>\n"
row = 0
while len(text.encode()) < 100 * 1024:
    text += '{"id": %d, "name": "item-%d", "tags": ["alpha", "beta"]}\n' % (row, row % 97)
    row += 1
open(sys.argv[1], "w").write(text + "</pre></body></html>\n")
PY
src=Benchmarks/Tools/ZlibBuilds/deflate-bench.c
clang -O2 -o "$work/system" "$src" -lz
clang -O2 -DVENDORED -DHAVE_HIDDEN -I"$vendored/include" -I"$vendored" -o "$work/vendored" "$src" "$vendored"/*.c
: >"$work/s"
: >"$work/v"
for _ in $(seq 1 "$ROUNDS"); do
    for build in system vendored; do
        line="$("$work/$build" "$work/page.txt")"
        echo "  $line"
        awk '{print $(NF-3)}' <<<"$line" >>"$work/${build:0:1}"
    done
done
s=$(median <"$work/s")
v=$(median <"$work/v")
printf 'median: system zlib %.1f us, vendored zlib %.1f us per compression; vendored/system time %.3f\n' "$s" "$v" \
    "$(awk -v s="$s" -v v="$v" 'BEGIN {print v/s}')"
