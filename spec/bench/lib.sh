# Shared by the HTTP benchmarks: start mizan and the OpenResty peer
# (shared/bench/openresty.conf), run wrk, read its numbers.
# Source it from a script that has cd'ed to the repository root.

# Both servers listen with SO_REUSEPORT: a server left over on one of these
# ports would silently take part of the load, so refuse to start then.
bench_ports_free() {
  local port
  for port in 18080 18081; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "error: something already listens on 127.0.0.1:$port (a server left over from another run?)" >&2
      exit 1
    fi
  done
}

bench_setup() {
  scripts/deps.sh bench
  bench_ports_free
  cmake --preset release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
  SHARED=spec/shared # the committed copy of shared/ (spec/unit/shared_spec.lua keeps it equal)
  WORK=$(mktemp -d)
  trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
  mkdir -p "$WORK/nginx/logs"
  ln -sfn /usr/lib/nginx/modules "$WORK/nginx/modules"
  nginx -p "$WORK/nginx/" -c "$(realpath "$SHARED/bench/openresty.conf")" -g "daemon off;" &
  # one worker, as the peer has; no access log, as the peer has none; a
  # database of its own, its migrations applied at start
  MIZAN_SECRET=bench MIZAN_WORKERS=1 MIZAN_ACCESS_LOG=off MIZAN_LISTEN=127.0.0.1:18081 \
    MIZAN_DATABASE="sqlite:$WORK/db" MIZAN_MIGRATE=auto build/mizan serve spec/bench/app 2>"$WORK/mizan.log" &
  sleep 1
  curl -sf -XPOST -H 'Content-Type: application/json' -d '{"text":"x"}' http://127.0.0.1:18080/echo >/dev/null
  curl -sf -XPOST -H 'Content-Type: application/json' -d '{"text":"x"}' \
    http://127.0.0.1:18081/api/mizan/call/echo/ >/dev/null
}

# bench_run URL [wrk script] -> prints "rps p99_ms"
bench_run() {
  local script=()
  [ -n "${2:-}" ] && script=(-s "$2")
  wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "${script[@]}" "$1" >"$WORK/wrk.txt"
  if grep -q "Non-2xx" "$WORK/wrk.txt"; then
    echo "error: non-2xx answers from $1" >&2
    exit 1
  fi
  awk '/^Requests\/sec/ {rps=$2}
       $1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)}
                    else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
       END {print rps, p99}' "$WORK/wrk.txt"
}

# bench_compare NAME MIZAN_URL MIZAN_SCRIPT PEER_URL PEER_SCRIPT: ROUNDS alternating rounds, best of each
bench_compare() {
  local name=$1 mu=$2 ms=$3 pu=$4 ps=$5
  local best_m=0 best_o=0 p99_m=0 p99_o=0 m mp o op
  for r in $(seq "$ROUNDS"); do
    read -r m mp < <(bench_run "$mu" "$ms")
    read -r o op < <(bench_run "$pu" "$ps")
    printf '%s round %d: mizan %9.0f req/s p99 %6.2f ms | peer %9.0f req/s p99 %6.2f ms | ratio %.2f\n' \
      "$name" "$r" "$m" "$mp" "$o" "$op" "$(echo "$m / $o" | bc -l)"
    if (( $(echo "$m > $best_m" | bc -l) )); then best_m=$m; p99_m=$mp; fi
    if (( $(echo "$o > $best_o" | bc -l) )); then best_o=$o; p99_o=$op; fi
  done
  printf '%s, best of %d rounds of %ss with %d connections (wrk -t1):\n' "$name" "$ROUNDS" "$DUR" "$CONNS"
  printf '  mizan  %9.0f req/s  p99 %6.2f ms\n' "$best_m" "$p99_m"
  printf '  peer   %9.0f req/s  p99 %6.2f ms\n' "$best_o" "$p99_o"
  printf '  ratio  %.2fx\n\n' "$(echo "$best_m / $best_o" | bc -l)"
}
