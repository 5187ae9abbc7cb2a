#!/usr/bin/env bash
# Runs an example server: scripts/example.sh [Name] [options]
# Name defaults to Hello (`HelloExample`); options go to the example (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-Hello}"
[ $# -gt 0 ] && shift
exec swift run -c release "${name}Example" "$@"
