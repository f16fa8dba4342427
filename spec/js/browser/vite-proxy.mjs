// The example's Vite dev server proxies the API and its WebSocket to mizan:
// a call and an invalidation subscription, both through Vite.
// usage: MIZAN_API_PORT=port node spec/js/browser/vite-proxy.mjs EXAMPLE_WEB_DIR   (exit 0 on success)
import { createServer } from "vite";
import WS from "ws";

const root = process.argv[2];
const server = await createServer({ root, configFile: `${root}/vite.config.ts`, logLevel: "error",
                                    server: { host: "127.0.0.1", port: 0, strictPort: false } });
await server.listen();
const { port } = server.httpServer.address();
try {
  const res = await fetch(`http://127.0.0.1:${port}/api/mizan/ctx/global/`);
  if (res.status !== 200) throw new Error(`a call through Vite answered ${res.status}`);
  const frame = await new Promise((resolve, reject) => {
    const ws = new WS(`ws://127.0.0.1:${port}/api/mizan/ws/`);
    const give = setTimeout(() => reject(new Error("no answer over the WebSocket through Vite")), 5000);
    ws.on("open", () => ws.send(JSON.stringify({ type: "subscribe_invalidations" })));
    ws.on("message", (m) => { clearTimeout(give); ws.close(); resolve(JSON.parse(String(m))); });
    ws.on("error", (e) => { clearTimeout(give); reject(e); });
  });
  if (frame.type !== "subscribed") throw new Error("unexpected frame: " + JSON.stringify(frame));
  console.log(`vite proxy ${root}: HTTP and WebSocket: ok`);
} finally {
  await server.close();
}
