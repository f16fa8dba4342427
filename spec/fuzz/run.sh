#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for a while.
#   spec/fuzz/run.sh [seconds per target]     (60 by default; scripts/test runs 5)
# Prints one TAP line per target ("ok N - fuzz_x: R runs" or "not ok ...");
# a crash leaves its input in build-fuzz/findings/<target>/ and exits 1.
# Seeds: the JSONTestSuite files for the codec (spec/shared's copy), a few
# request heads for HTTP, and frame streams for WebSocket made below.
set -uo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-60}
TARGETS=(fuzz_json fuzz_http_head fuzz_ws)
cmake -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DMIZAN_FUZZ=ON -DMIZAN_STATIC=OFF >/dev/null &&
  cmake --build build-fuzz -j"$(nproc)" --target "${TARGETS[@]}" >/dev/null || {
  echo "not ok 1 - building the fuzz targets (clang, libclang-rt-14-dev: scripts/deps.sh test)"
  exit 1
}
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
mkdir -p "$corpus/json" "$corpus/http_head" "$corpus/ws"
cp spec/shared/conformance/JSONTestSuite/test_parsing/*.json "$corpus/json/"
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >"$corpus/http_head/get"
printf 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}' >"$corpus/http_head/post"
printf 'GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n' >"$corpus/http_head/fold"

# WebSocket seeds: byte 0 cuts the stream into reads, byte 1 sets the message
# limit (x16 bytes), then client frames, masked with a zero key so that the
# payload reads as itself.
ws() { printf "$1" >"$corpus/ws/$2"; }
M='\x00\x00\x00\x00'
ws "\x07\x40\x81\x85$M"'hello' text
ws "\x03\x40\x01\x83$M"'hel\x89\x82'"$M"'hi\x80\x82'"$M"'lo' fragments_ping
ws "\x05\x40\x01\x82$M"'\xce\xba\x80\x83'"$M"'\xe1\xbd\xb9' utf8_split
ws "\x01\x40\x88\x85$M"'\x03\xe8bye' close
ws "\x02\x40\x88\x82$M"'\x03\xed' close_bad_code
ws "\x09\x40\x8a\x80$M\x89\x80$M" pong_ping
ws "\x0b\x10\x81\xfe\x01\x00$M$(printf 'x%.0s' $(seq 256))" len16
ws "\x0d\xff\x01\x90$M"'xxxxxxxxxxxxxxxx\x80\xff\xff\xff\xff\xff\xff\xff\xff\xf2'"$M"'AAAA' wrap
ws "\x11\x40\x81\x05"'hello' unmasked

n=0
failed=0
for t in "${TARGETS[@]}"; do
  n=$((n + 1))
  dir=${t#fuzz_}
  mkdir -p "build-fuzz/findings/$t"
  log="build-fuzz/$t.log"
  if build-fuzz/"$t" -max_total_time="$SECS" -max_len=4096 -print_final_stats=1 \
       -artifact_prefix="build-fuzz/findings/$t/" "$corpus/$dir" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    echo "ok $n - $t: ${runs:-?} runs in ${SECS} s"
  else
    failed=1
    echo "not ok $n - $t: a finding (see $log and build-fuzz/findings/$t/)"
    grep -m5 -E 'ERROR|SUMMARY|deadly' "$log" | sed 's/^/# /'
  fi
done
echo "1..$n"
exit $failed
