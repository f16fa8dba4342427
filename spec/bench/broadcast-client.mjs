// Broadcast benchmark client: open N WebSocket subscribers, trigger one
// broadcast over HTTP, time until the last subscriber has it.
// usage: node broadcast-client.mjs mizan|node PORT N SERVER_PID
import WebSocket from "ws";
import { readFileSync } from "node:fs";

const [kind, port, nStr, pid] = process.argv.slice(2);
const n = Number(nStr);
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;
const url = kind === "mizan" ? `ws://127.0.0.1:${port}/api/mizan/ws/` : `ws://127.0.0.1:${port}/`;
const trigger = kind === "mizan" ? `http://127.0.0.1:${port}/api/mizan/call/fanout/` : `http://127.0.0.1:${port}/fanout`;

const before = rss();
let ready = 0, got = 0, t0 = 0;
const sockets = [];
await new Promise((resolve, reject) => {
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(url);
    sockets.push(ws);
    ws.on("error", reject);
    ws.on("open", () => ws.send(JSON.stringify({ type: "subscribe", id: 1, channel: "bench", params: {} })));
    ws.on("message", (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === "subscribed") { if (++ready === n) resolve(); }
      else if (m.type === "message" && ++got === n) {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const perConn = (after - before) / n;
        console.log(JSON.stringify({ kind, n, ms, bytesPerConnection: Math.round(perConn) }));
        process.exit(0);
      }
    });
  }
});
const after = rss();
t0 = process.hrtime.bigint();
await fetch(trigger, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ n: 1 }) });
setTimeout(() => { console.error(`only ${got}/${n} received`); process.exit(1); }, 30000);
