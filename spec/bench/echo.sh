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
scripts/deps.sh bench
cmake --preset release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null

SHARED=${MIZAN_SHARED:-../shared}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

# OpenResty peer, configured by shared/bench/openresty.conf
mkdir -p "$work/nginx/logs"
ln -sfn /usr/lib/nginx/modules "$work/nginx/modules"
nginx -p "$work/nginx/" -c "$(realpath "$SHARED/bench/openresty.conf")" -g "daemon off;" &
MIZAN_LISTEN=127.0.0.1:18081 build/mizan serve spec/bench/app 2>"$work/mizan.log" &
sleep 1
curl -sf -XPOST -H 'Content-Type: application/json' -d '{"text":"x"}' http://127.0.0.1:18080/echo >/dev/null
curl -sf -XPOST -H 'Content-Type: application/json' -d '{"text":"x"}' http://127.0.0.1:18081/api/mizan/call/echo/ >/dev/null

# run URL -> "rps p99_ms"
run() {
  wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s spec/bench/post_echo.lua "$1" >"$work/wrk.txt"
  local rps p99
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$work/wrk.txt")
  if grep -q "Non-2xx" "$work/wrk.txt"; then echo "error: non-2xx answers from $1" >&2; exit 1; fi
  echo "$rps $p99"
}

best_m=0; best_o=0; p99_m=0; p99_o=0
for r in $(seq "$ROUNDS"); do
  # alternate the order so neither side always runs on a warmer machine
  read -r m mp < <(run http://127.0.0.1:18081/api/mizan/call/echo/)
  read -r o op < <(run http://127.0.0.1:18080/echo)
  printf 'round %d: mizan %9.0f req/s p99 %6.2f ms | openresty %9.0f req/s p99 %6.2f ms | ratio %.2f\n' \
    "$r" "$m" "$mp" "$o" "$op" "$(echo "$m / $o" | bc -l)"
  if (( $(echo "$m > $best_m" | bc -l) )); then best_m=$m; p99_m=$mp; fi
  if (( $(echo "$o > $best_o" | bc -l) )); then best_o=$o; p99_o=$op; fi
done
printf '\necho, best of %d rounds of %ss with %d connections (wrk -t1):\n' "$ROUNDS" "$DUR" "$CONNS"
printf '  mizan      %9.0f req/s  p99 %6.2f ms\n' "$best_m" "$p99_m"
printf '  openresty  %9.0f req/s  p99 %6.2f ms\n' "$best_o" "$p99_o"
printf '  ratio      %.2fx\n' "$(echo "$best_m / $best_o" | bc -l)"
