#!/usr/bin/env bash
# Runs the RESP reply parser under libFuzzer for a bounded time (Fuzz/RESPFuzzer): every input
# is parsed whole and in pieces; a crash, a hang or a difference between the two is a finding.
#   SECONDS_TO_RUN=300 scripts/fuzz-resp.sh      (default 120 s)
# Findings land in .build-fuzz/findings; the corpus grows in .build-fuzz/corpus (seeded with
# valid replies of every type).
set -euo pipefail
cd "$(dirname "$0")/../Fuzz"
scratch=../.build-fuzz
swift build -c release --scratch-path "$scratch" --product RESPFuzzer \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
mkdir -p "$scratch/corpus" "$scratch/findings"
seed() { printf '%b' "$2" > "$scratch/corpus/seed-$1"; }
seed simple '+OK\r\n'
seed error '-ERR bad\r\n'
seed integer ':-42\r\n'
seed bulk '$5\r\nhello\r\n'
seed null '$-1\r\n_\r\n'
seed array '*2\r\n$1\r\na\r\n:1\r\n'
seed map '%1\r\n+k\r\n#t\r\n'
seed set '~2\r\n,3.5\r\n(123456789012345678901234567890\r\n'
seed push '>3\r\n+message\r\n+ch\r\n$2\r\nhi\r\n'
seed attribute '|1\r\n+ttl\r\n:5\r\n+value\r\n'
seed verbatim '=8\r\ntxt:abcd\r\n!3\r\nerr\r\n'
seed nested '*1\r\n*1\r\n*1\r\n*0\r\n'
"$scratch/release/RESPFuzzer" "$scratch/corpus" -max_total_time="${SECONDS_TO_RUN:-120}" \
    -max_len=4096 -timeout=5 -artifact_prefix="$scratch/findings/" -print_final_stats=1
