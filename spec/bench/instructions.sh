#!/usr/bin/env bash
# Instructions per request, mizan against its peer, counted by callgrind.
#   spec/bench/instructions.sh [requests]
#
# Requests/s on a shared machine move by ±30% from run to run; the number of
# user-space instructions a server executes per request barely moves (±2%),
# so this is the figure to compare two builds or two designs by. It leaves
# out the kernel (about half of an echo's cost, and the same for both
# servers) and the time spent waiting; it is no substitute for echo.sh and
# cache.sh, which measure requests/s.
#
# Each server runs one worker under valgrind; the counters are zeroed, wrk
# sends exactly N keep-alive requests on one connection, and the dump holds
# those requests alone. Never a pass/fail test.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-3000}
scripts/deps.sh bench
. spec/bench/lib.sh
bench_ports_free

cmake --preset release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
SHARED=spec/shared
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# wrk exits after N answers: one connection, so none is in flight then
cat >"$WORK/count.lua" <<EOF
local n, body = 0, os.getenv("BODY")
if body ~= "" then
  wrk.method, wrk.body = "POST", body
  wrk.headers["Content-Type"] = "application/json"
end
function response(status)
  if status ~= 200 then error("status " .. status) end
  n = n + 1
  if n == $N then os.exit(0) end -- wrk.thread:stop() would wait out -d
end
EOF

CG=(valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$WORK/cg.%p")
mkdir -p "$WORK/nginx/logs"
ln -sfn /usr/lib/nginx/modules "$WORK/nginx/modules"
"${CG[@]}" nginx -p "$WORK/nginx/" -c "$(realpath "$SHARED/bench/openresty.conf")" \
  -g "daemon off; master_process off;" 2>"$WORK/nginx.log" &
MIZAN_SECRET=bench MIZAN_WORKERS=1 MIZAN_ACCESS_LOG=off MIZAN_LISTEN=127.0.0.1:18081 \
  MIZAN_DATABASE="sqlite:$WORK/db" MIZAN_MIGRATE=auto "${CG[@]}" --trace-children=yes build/mizan serve spec/bench/app 2>"$WORK/mizan.log" &
for _ in $(seq 60); do
  curl -sf http://127.0.0.1:18080/static >/dev/null 2>&1 &&
    curl -sf http://127.0.0.1:18081/api/mizan/ctx/hello/ >/dev/null 2>&1 && break
  sleep 1
done
ngx=$(pgrep -f "callgrind.*nginx -p $WORK" | head -1)
master=$(pgrep -f "callgrind.*build/mizan serve" | head -1)
worker=$(pgrep -P "$master" | head -1)

# count PID URL BODY -> instructions per request
count() {
  local pid=$1 url=$2 body=$3 f
  BODY=$body wrk -t1 -c1 -d60s -s "$WORK/count.lua" "$url" >/dev/null # warm up: the JIT compiles
  callgrind_control -z "$pid" >/dev/null
  BODY=$body wrk -t1 -c1 -d600s -s "$WORK/count.lua" "$url" >/dev/null
  rm -f "$WORK"/cg.*.[0-9]*
  callgrind_control -d "$pid" >/dev/null
  sleep 1
  f=$(ls -t "$WORK"/cg."$pid".* | head -1)
  awk -v n="$N" '/^summary:/ {printf "%d", $2 / n}' "$f"
}

ECHO='{"text":"hello world"}'
row() {
  local name=$1 m p
  m=$(count "$worker" "$2" "$3")
  p=$(count "$ngx" "$4" "$5")
  printf '%-44s mizan %7d  peer %7d  ratio %.2f\n' "$name" "$m" "$p" "$(echo "$m / $p" | bc -l)"
}
echo "user-space instructions per request (callgrind, $N requests on one connection; lower is better):"
row "echo (peer: OpenResty /echo)" http://127.0.0.1:18081/api/mizan/call/echo/ "$ECHO" \
  http://127.0.0.1:18080/echo "$ECHO"
row "cached context GET (peer: nginx static)" http://127.0.0.1:18081/api/mizan/ctx/hello/ "" \
  http://127.0.0.1:18080/static ""
row "uncached context GET (peer: OpenResty /echo)" http://127.0.0.1:18081/api/mizan/ctx/hello_live/ "" \
  http://127.0.0.1:18080/echo "$ECHO"
