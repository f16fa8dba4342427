#!/usr/bin/env bash
# Cache benchmark, side by side in one run:
#   1. a cached context GET (answered by C) against nginx's static `return 200`;
#   2. the same GET with the cache off against OpenResty echo.
# Then the cache's hit and miss counts seen by the server.
#   spec/bench/cache.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
CONNS=${2:-64}
ROUNDS=${ROUNDS:-3}
. spec/bench/lib.sh
bench_setup
bench_compare "cached context GET (peer: nginx static)" \
  http://127.0.0.1:18081/api/mizan/ctx/hello/ "" \
  http://127.0.0.1:18080/static ""
bench_compare "uncached context GET (peer: OpenResty /echo)" \
  http://127.0.0.1:18081/api/mizan/ctx/hello_live/ "" \
  http://127.0.0.1:18080/echo spec/bench/post_echo.lua
curl -s http://127.0.0.1:18081/api/mizan/call/bench_stats/ | awk '{print "server stats: " $0}'
