#!/usr/bin/env bash
# How StrataCompression maps its zlib level to a libdeflate level (the Libdeflate trait): both
# system libraries compress a corpus of typical web text at every level, one core, and the tool
# prints sizes, speeds, and for each zlib level the fastest libdeflate level whose output is on
# average no larger (CompressionConfiguration.libdeflateLevel(matchingZlibLevel:)).
#
#   scripts/bench-deflate-levels.sh [extra files...]
#
# The corpus is built from what any Debian machine with Python has: CompressionExample's /big
# page, JSON API responses (one large, one small), pydoc's HTML for two modules and its CSS,
# Python source (argparse) and prose (pydoc's topics, the GPL).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
bench_require libdeflate-dev zlib1g-dev gcc:cc
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
extra=()
for file in "$@"; do extra+=("$(realpath "$file")"); done

cc -O2 -o "$work/deflate-levels" Benchmarks/Tools/DeflateLevels/deflate-levels.c -lz -ldeflate
mkdir "$work/corpus"
cd "$work/corpus"
python3 - <<'PY'
import json, random
# CompressionExample's /big, byte for byte.
text = "<!doctype html><html><head><title>Strata compression</title></head><body><pre>\n"
row = 0
while len(text.encode()) < 100 * 1024:
    text += '{"id": %d, "name": "item-%d", "price": %d.%d, "tags": ["alpha", "beta"]}\n' % (
        row, row % 97, row % 1000, row % 100)
    row += 1
open("big.html", "w").write(text + "</pre></body></html>\n")
random.seed(1)
tags = ["red", "green", "blue", "admin", "beta", "gamma"]
rows = [{"id": i, "name": "user%d" % i, "email": "user%d@example.com" % i, "active": i % 3 == 0,
         "score": round(random.random() * 100, 2), "tags": random.sample(tags, 3)} for i in range(1500)]
open("api.json", "w").write(json.dumps(rows))
random.seed(2)
rows = [{"id": i, "name": "user%d" % i, "email": "user%d@example.com" % i, "active": i % 3 == 0,
         "score": round(random.random() * 100, 2)} for i in range(12)]
open("api-small.json", "w").write(json.dumps(rows, indent=1))
PY
python3 -m pydoc -w json.decoder >/dev/null
python3 -m pydoc -w argparse >/dev/null
lib="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
cp "$lib/pydoc_data/_pydoc.css" pydoc.css
cp "$lib/pydoc_data/topics.py" topics.py
cp "$lib/argparse.py" argparse.py
cp /usr/share/common-licenses/GPL-3 gpl3.txt
echo "python $(python3 -c 'import platform; print(platform.python_version())'), zlib $(dpkg-query -W -f '${Version}' zlib1g), libdeflate $(dpkg-query -W -f '${Version}' libdeflate0)"
"$work/deflate-levels" ./* "${extra[@]}"
