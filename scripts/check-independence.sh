#!/usr/bin/env bash
# Builds each light target alone, from an empty build folder, and fails if a heavy dependency
# was compiled for it: a user adding only that product must not pay for NIOPosix, swift-crypto,
# AsyncHTTPClient, Hummingbird, Vapor, swift-distributed-tracing or StrataRedis, nor any other
# Strata module than the shared one. The build has no traits on, so no opt-in C library
# (CStrataBrotli, CStrataZstd, CStrataLibdeflate) may be compiled either: StrataCompression's
# default build links the system zlib only.
#
#   scripts/check-independence.sh [Target[:Allowed,Heavy] ...]    (default: Strata)
#
# `StrataReverseProxy:NIOPosix,Tracing` allows the heavy modules that target's own job needs.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(Strata)
status=0
for entry in "${targets[@]}"; do
    target="${entry%%:*}"
    allowed=""
    [ "$entry" != "$target" ] && allowed="${entry#*:}"
    scratch=".build-independence-$target"
    rm -rf "$scratch"
    swift build --scratch-path "$scratch" --target "$target" >"$scratch.log" 2>&1 || {
        cat "$scratch.log"
        exit 1
    }
    compiled="$(find "$scratch" -name '*.swiftmodule' -path '*/Modules/*' -printf '%f\n' | sed 's/\.swiftmodule$//' | sort -u)"
    # Clang modules of the trait-only C libraries, by their module cache files.
    compiled="$compiled
$(find "$scratch" -name 'CStrata*.pcm' -printf '%f\n' | sed 's/-[^-]*\.pcm$//' | sort -u)"
    heavy="$(grep -E '^(NIOPosix|Crypto|_CryptoExtras|AsyncHTTPClient|Hummingbird|HummingbirdCore|Vapor|StrataRedis|Tracing|Strata[A-Za-z]+|CStrata[A-Za-z]+)$' <<<"$compiled" |
        grep -vxF -e "$target" $(tr ',' '\n' <<<"$allowed" | sed '/^$/d; s/^/-e /') || true)"
    if [ -n "$heavy" ]; then
        echo "independence: $target compiled heavy modules: $(tr '\n' ' ' <<<"$heavy")"
        status=1
    else
        echo "independence: $target compiles only: $(tr '\n' ' ' <<<"$compiled")"
    fi
    rm -rf "$scratch" "$scratch.log"
done
exit $status
