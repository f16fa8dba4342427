#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for a while.
#   spec/fuzz/run.sh [seconds per target]
# Seeds: the JSONTestSuite files for the codec; a few request heads for HTTP.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-60}
SHARED=${MIZAN_SHARED:-../shared}
cmake -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DMIZAN_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_json fuzz_http_head >/dev/null
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
mkdir -p "$corpus/json" "$corpus/http"
cp "$SHARED"/conformance/JSONTestSuite/test_parsing/*.json "$corpus/json/"
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >"$corpus/http/get"
printf 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}' >"$corpus/http/post"
printf 'GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n' >"$corpus/http/fold"
build-fuzz/fuzz_json -max_total_time="$SECS" -max_len=4096 "$corpus/json"
build-fuzz/fuzz_http_head -max_total_time="$SECS" -max_len=4096 "$corpus/http"
