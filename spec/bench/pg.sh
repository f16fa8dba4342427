#!/usr/bin/env bash
# Postgres benchmark: one primary-key SELECT through mizan (one worker,
# MIZAN_DB_POOL connections) driven by wrk, against pgbench -S (the same
# SELECT with no HTTP, straight from libpq) on the same database as the
# ceiling, and the same function on SQLite beside it.
#   spec/bench/pg.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
CONNS=${2:-64}
POOL=${MIZAN_DB_POOL:-16}
BIN=/usr/lib/postgresql/15/bin
scripts/deps.sh bench
cmake --preset release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
WORK=$(mktemp -d)
chmod 755 "$WORK"
PGPID=
cleanup() {
  set +e
  kill $(jobs -p) 2>/dev/null
  # the postmaster by its own pid file (fast shutdown), then wait until it is gone
  local pm
  pm=$(head -1 "$WORK/pg/data/postmaster.pid" 2>/dev/null)
  [ -n "$pm" ] && kill -INT "$pm" 2>/dev/null
  [ -n "$PGPID" ] && kill -INT "$PGPID" 2>/dev/null
  for _ in $(seq 100); do { [ -n "$pm" ] && kill -0 "$pm" 2>/dev/null; } || break; sleep 0.1; done
  rm -rf "$WORK"
}
trap cleanup EXIT
PGPORT=$(build/mizan lua <(echo 'print(require("mizan.testkit").free_port())'))
# postgres refuses to run as root: the cluster belongs to nobody
mkdir "$WORK/pg" && chown nobody:nogroup "$WORK/pg"
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; else "$@"; fi; }
as_pg "$BIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
as_pg "$BIN/postgres" -D "$WORK/pg/data" -p "$PGPORT" -k "$WORK/pg" -c listen_addresses=127.0.0.1 \
  -c fsync=off -c synchronous_commit=off -c max_connections=200 >"$WORK/pg.log" 2>&1 &
PGPID=$!
for _ in $(seq 100); do "$BIN/pg_isready" -q -h "$WORK/pg" -p "$PGPORT" && break; sleep 0.1; done
"$BIN/pgbench" -h "$WORK/pg" -p "$PGPORT" -U postgres -i -s 1 -q postgres >/dev/null 2>&1

rps_of_wrk() { awk '/^Requests\/sec/ {print $2}' "$1"; }
run_mizan() { # DATABASE -> req/s
  MIZAN_SECRET=bench MIZAN_WORKERS=1 MIZAN_ACCESS_LOG=off MIZAN_LISTEN=127.0.0.1:18090 MIZAN_DATABASE="$1" \
    MIZAN_DB_POOL="$POOL" MIZAN_MIGRATE=auto build/mizan serve spec/bench/pg_app 2>>"$WORK/mizan.log" &
  local pid=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:18090/api/mizan/call/pk/?aid=1" && break; sleep 0.1; done
  [ "${2:-}" = fill ] && curl -sf -XPOST -H 'Content-Type: application/json' -d '{}' \
    http://127.0.0.1:18090/api/mizan/call/fill/ >/dev/null
  wrk -t1 -c"$CONNS" -d2s -s spec/bench/pg_pk.lua http://127.0.0.1:18090 >/dev/null # warm the pool
  wrk -t1 -c"$CONNS" -d"${DUR}s" -s spec/bench/pg_pk.lua http://127.0.0.1:18090 >"$WORK/wrk.txt"
  if grep -q "Non-2xx" "$WORK/wrk.txt"; then echo "error: non-2xx answers" >&2; cat "$WORK/wrk.txt" >&2; exit 1; fi
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  rps_of_wrk "$WORK/wrk.txt"
}

PG_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
M_PG=$(run_mizan "$PG_URL")
M_SQLITE=$(run_mizan "sqlite:$WORK/bench.sqlite" fill)
# the ceiling: the same SELECT, prepared, from 64 libpq clients (pgbench -j2: one thread per core)
CEIL=$("$BIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -S -M prepared -n -c"$CONNS" -j2 -T"$DUR" postgres 2>/dev/null \
  | awk '/^tps/ {print $3; exit}')
printf 'primary-key SELECT, %ss, %d connections, mizan: 1 worker, MIZAN_DB_POOL=%d\n' "$DUR" "$CONNS" "$POOL"
printf '  pgbench -S -M prepared -c%d -j2   %9.0f tps  (the ceiling)\n' "$CONNS" "$CEIL"
printf '  mizan on Postgres (wrk -t1)     %9.0f req/s  %.2fx of the ceiling\n' "$M_PG" "$(echo "$M_PG / $CEIL" | bc -l)"
printf '  mizan on SQLite (wrk -t1)       %9.0f req/s  %.2fx of the ceiling\n' "$M_SQLITE" "$(echo "$M_SQLITE / $CEIL" | bc -l)"
