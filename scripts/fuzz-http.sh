#!/usr/bin/env bash
# Mutation-fuzzes the Hello example over real sockets (scripts/fuzz-http.py): every mutated
# request is followed by the client's FIN and must be answered or closed, and the server must
# stay responsive. CASES (5000), SEED (1) and CONCURRENCY (8) choose the run.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product HelloExample >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG_LEVEL=critical .build/release/HelloExample --port "$port" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
python3 scripts/fuzz-http.py --port "$port" --cases "${CASES:-5000}" --seed "${SEED:-1}" \
    --concurrency "${CONCURRENCY:-8}"
