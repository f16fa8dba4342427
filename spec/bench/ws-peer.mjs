// The Node peer for the broadcast benchmark: npm ws doing the same job as
// mizan's channel (subscribe, then one broadcast to everyone on POST /fanout).
import { WebSocketServer } from "ws";
import http from "node:http";

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  if (req.method === "POST" && req.url === "/fanout") {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const n = JSON.parse(body).n;
      const frame = JSON.stringify({ type: "message", id: 1, data: { n } });
      let count = 0;
      for (const ws of subscribers) { ws.send(frame); count++; }
      res.setHeader("Content-Type", "application/json");
      res.end(JSON.stringify({ result: count }));
    });
  } else { res.statusCode = 404; res.end(); }
});
const subscribers = new Set();
const wss = new WebSocketServer({ server });
wss.on("connection", (ws) => {
  ws.on("message", (data) => {
    const m = JSON.parse(data.toString());
    if (m.type === "subscribe") { subscribers.add(ws); ws.send(JSON.stringify({ type: "subscribed", id: m.id })); }
  });
  ws.on("close", () => subscribers.delete(ws));
});
server.listen(port, "127.0.0.1");
