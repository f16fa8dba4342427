#!/usr/bin/env bash
# Outbound HTTP benchmark: a function doing one GET to a local keep-alive
# server (nginx, 127.0.0.1:18182/static) per request, driven by wrk, against
#   - OpenResty doing the same over a pooled cosocket (spec/bench/http_out.conf), and
#   - wrk straight at the local server: the ceiling.
# One worker each (mizan MIZAN_WORKERS=1, nginx worker_processes 1).
#   spec/bench/http_out.sh [seconds] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
CONNS=${2:-64}
ROUNDS=${3:-3}
scripts/deps.sh bench
cmake --preset release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/nginx/logs"
ln -sfn /usr/lib/nginx/modules "$WORK/nginx/modules"
nginx -p "$WORK/nginx/" -c "$(realpath spec/bench/http_out.conf)" -g "daemon off;" &
MIZAN_SECRET=bench MIZAN_WORKERS=1 MIZAN_ACCESS_LOG=off MIZAN_LISTEN=127.0.0.1:18181 \
  MIZAN_DATABASE="sqlite:$WORK/db.sqlite" MIZAN_MIGRATE=auto \
  MIZAN_BENCH_UPSTREAM=http://127.0.0.1:18182/static build/mizan serve spec/bench/http_out_app 2>"$WORK/mizan.log" &
MIZAN_URL=http://127.0.0.1:18181/api/mizan/call/out/
PEER_URL=http://127.0.0.1:18183/out
CEIL_URL=http://127.0.0.1:18182/static
for _ in $(seq 100); do curl -sf -o /dev/null "$MIZAN_URL" && curl -sf -o /dev/null "$PEER_URL" && break; sleep 0.1; done
curl -sf "$MIZAN_URL" || { echo "error: mizan does not answer:" >&2; cat "$WORK/mizan.log" >&2; exit 1; }; echo
curl -sf "$PEER_URL" || { echo "error: the OpenResty peer does not answer:" >&2; cat "$WORK/nginx/logs/error.log" >&2; exit 1; }; echo

rps() { # URL -> req/s (fails on any non-2xx answer)
  wrk -t1 -c"$CONNS" -d"${DUR}s" "$1" >"$WORK/wrk.txt"
  if grep -q "Non-2xx\|Socket errors" "$WORK/wrk.txt"; then echo "error: failures from $1" >&2; cat "$WORK/wrk.txt" >&2; exit 1; fi
  awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.txt"
}
wrk -t1 -c"$CONNS" -d2s "$MIZAN_URL" >/dev/null # warm the pools
wrk -t1 -c"$CONNS" -d2s "$PEER_URL" >/dev/null
best_m=0 best_p=0 best_c=0
for r in $(seq "$ROUNDS"); do
  m=$(rps "$MIZAN_URL"); p=$(rps "$PEER_URL"); c=$(rps "$CEIL_URL")
  printf 'round %d: mizan %8.0f | openresty cosocket %8.0f | local server alone %8.0f req/s\n' "$r" "$m" "$p" "$c"
  (( $(echo "$m > $best_m" | bc -l) )) && best_m=$m
  (( $(echo "$p > $best_p" | bc -l) )) && best_p=$p
  (( $(echo "$c > $best_c" | bc -l) )) && best_c=$c
done
printf '\noutbound GET per request, best of %d rounds of %ss, wrk -t1 -c%d:\n' "$ROUNDS" "$DUR" "$CONNS"
printf '  mizan (mizan.http.get)        %8.0f req/s\n' "$best_m"
printf '  openresty (pooled cosocket)   %8.0f req/s\n' "$best_p"
printf '  the local server alone        %8.0f req/s (the ceiling)\n' "$best_c"
printf '  mizan / openresty             %.2fx\n' "$(echo "$best_m / $best_p" | bc -l)"
printf '  mizan / ceiling               %.2fx\n' "$(echo "$best_m / $best_c" | bc -l)"
