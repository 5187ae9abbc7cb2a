#!/usr/bin/env bash
# Checks formatting with the toolchain's swift-format against .swift-format; changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
dirs=(Sources Tests Examples Package.swift)
[ -d Benchmarks ] && dirs+=(Benchmarks/Package.swift Benchmarks/Benchmarks Benchmarks/Peers Benchmarks/Tools)
[ -d Fuzz ] && dirs+=(Fuzz/Package.swift Fuzz/RESPFuzzer)
existing=()
for d in "${dirs[@]}"; do [ -e "$d" ] && existing+=("$d"); done
swift format lint --strict --recursive "${existing[@]}"
echo "validate: formatting is clean"
