#!/usr/bin/env bash
# Broadcast benchmark: N WebSocket subscribers on one group, one message;
# the time until the last subscriber has it and the server's memory per
# connection, for mizan and for Node's ws doing the same job, in one run.
#   spec/bench/broadcast.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10000}
ulimit -n "$(ulimit -Hn)"  # 10k sockets on each side
scripts/deps.sh npm
cmake --preset release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

MIZAN_SECRET=bench MIZAN_WORKERS=1 MIZAN_ACCESS_LOG=off MIZAN_LISTEN=127.0.0.1:18091 \
  MIZAN_DATABASE="sqlite:$work/db" MIZAN_MIGRATE=auto build/mizan serve spec/bench/app 2>"$work/mizan.log" &
node spec/bench/ws-peer.mjs 18092 &
sleep 1.5
mpid=$(pgrep -f "mizan serve spec/bench/app" | tail -1)  # the worker
npid=$(pgrep -f "ws-peer.mjs 18092")
m=$(node spec/bench/broadcast-client.mjs mizan 18091 "$N" "$mpid")
o=$(node spec/bench/broadcast-client.mjs node 18092 "$N" "$npid")
echo "mizan: $m"
echo "node:  $o"
node -e '
const m = JSON.parse(process.argv[1]), o = JSON.parse(process.argv[2]);
console.log(`broadcast to ${m.n} subscribers: mizan ${m.ms.toFixed(1)} ms, ${m.bytesPerConnection} B/connection; ` +
            `node ws ${o.ms.toFixed(1)} ms, ${o.bytesPerConnection} B/connection; time ratio (node/mizan) ${(o.ms / m.ms).toFixed(2)}x`);
' "$m" "$o"
