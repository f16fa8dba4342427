#!/usr/bin/env bash
# echo benchmark: mizan (one process) against OpenResty (one worker), same
# machine, same run, same wrk settings. Prints requests/s, p99 and the ratio.
#   spec/bench/echo.sh [seconds] [connections]
# Never a pass/fail test: the machine is shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
CONNS=${2:-64}
ROUNDS=${ROUNDS:-3}
. spec/bench/lib.sh
bench_setup
bench_compare "echo (peer: OpenResty /echo)" \
  http://127.0.0.1:18081/api/mizan/call/echo/ spec/bench/post_echo.lua \
  http://127.0.0.1:18080/echo spec/bench/post_echo.lua
