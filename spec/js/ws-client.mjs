// A real WebSocket client (npm ws) against a mizan server: subscribe to the
// chat channel, send a message, and receive its broadcast.
// usage: node spec/js/ws-client.mjs PORT   (exit 0 on success)
import WebSocket from "ws";

const port = process.argv[2];
const ws = new WebSocket(`ws://127.0.0.1:${port}/api/mizan/ws/`);
const fail = (why) => { console.error("ws client:", why); process.exit(1); };
setTimeout(() => fail("timed out"), 5000);
ws.on("error", (e) => fail(e.message));
ws.on("open", () => ws.send(JSON.stringify({ type: "subscribe", id: 1, channel: "chat", params: { room: "js" } })));
ws.on("message", (data) => {
  const msg = JSON.parse(data.toString());
  if (msg.type === "subscribed") {
    ws.send(JSON.stringify({ type: "send", id: 1, data: { text: "from node" } }));
  } else if (msg.type === "message" && msg.data.text === "from node") {
    console.log("ws client: subscribed, sent, received");
    ws.close(1000);
  } else {
    fail("unexpected " + data);
  }
});
ws.on("close", (code) => process.exit(code === 1000 || code === 1005 ? 0 : 1));
