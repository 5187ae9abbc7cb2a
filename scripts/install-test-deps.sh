#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: system packages through apt
# (only those missing), and a Python venv (.venv) with the real HTTP clients the tests drive.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=()
command -v curl >/dev/null 2>&1 || packages+=(curl)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
# Headless Chromium drives the CORS example as a real browser would.
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
# StrataCompression links the system zlib.
dpkg -s zlib1g-dev >/dev/null 2>&1 || packages+=(zlib1g-dev)
# The tests build the Brotli, Zstd and Libdeflate traits too.
dpkg -s libbrotli-dev >/dev/null 2>&1 || packages+=(libbrotli-dev)
dpkg -s libzstd-dev >/dev/null 2>&1 || packages+=(libzstd-dev)
dpkg -s libdeflate-dev >/dev/null 2>&1 || packages+=(libdeflate-dev)
# StrataRedis and the Redis stores are tested against a real server and cluster.
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || packages+=(redis-tools)
if [ ${#packages[@]} -gt 0 ]; then
    echo "installing: ${packages[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import httpx, websockets' >/dev/null 2>&1; then
    echo "making .venv with httpx and websockets"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check 'httpx==0.28.1' 'websockets==15.0.1'
fi
