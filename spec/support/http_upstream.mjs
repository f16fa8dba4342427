// A local HTTP(S) server for the outbound HTTP specs (spec/integration/http_client_spec.lua).
//   node http_upstream.mjs PORT_FILE [CERT KEY]
// Listens on 127.0.0.1:0 (TLS when given a cert and key) and writes its port
// to PORT_FILE. It counts what the specs check from the server's side:
// connections accepted, requests in flight and the most at once.
import http from "node:http";
import https from "node:https";
import fs from "node:fs";

const [portFile, cert, key] = process.argv.slice(2);
const stats = { connections: 0, inflight: 0, max_inflight: 0, requests: 0 };
const slowHeld = []; // /slow?until=N answers held back

function handler(req, res) {
  const url = new URL(req.url, "http://x");
  const q = (k, d) => (url.searchParams.has(k) ? url.searchParams.get(k) : d);
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    // the bookkeeping calls do not count as requests in flight
    if (url.pathname !== "/stats" && url.pathname !== "/reset") {
      stats.requests++;
      stats.inflight++;
      stats.max_inflight = Math.max(stats.max_inflight, stats.inflight);
      res.on("close", () => stats.inflight--);
    }
    switch (url.pathname) {
      case "/stats":
        res.setHeader("content-type", "application/json");
        return res.end(JSON.stringify(stats));
      case "/reset":
        Object.assign(stats, { connections: 0, max_inflight: 0, requests: 0 });
        return res.end("ok");
      case "/echo":
        res.setHeader("content-type", "application/json");
        res.setHeader("x-multi", ["a", "b"]);
        res.setHeader("set-cookie", ["a=1; Path=/", "b=2, with comma"]);
        // drop=MS: close this connection MS after answering, as a server
        // whose keep-alive timeout passed does (the client's pooled one goes stale)
        if (q("drop")) res.on("finish", () => setTimeout(() => req.socket.destroy(), Number(q("drop"))));
        return res.end(JSON.stringify({ method: req.method, headers: req.headers, body, path: req.url,
                                        port: req.socket.remotePort }));
      case "/status":
        res.statusCode = Number(q("code", "404"));
        return res.end("status " + res.statusCode);
      case "/slow": {
        // until=N: hold the answers until N slow calls are in flight
        // together, then `after` ms more (at most ms in all), so a spec about
        // concurrency does not depend on how fast its clients start on a
        // loaded machine
        const until = Number(q("until", "0"));
        const ms = Number(q("ms", "1000"));
        if (!until) return setTimeout(() => res.end("slow done"), ms);
        const after = Number(q("after", "2000"));
        slowHeld.push(res);
        const release = () => { for (const r of slowHeld.splice(0)) r.end("slow done"); };
        if (slowHeld.length >= until) setTimeout(release, after);
        return setTimeout(release, ms);
      }
      case "/hang":
        return; // never answers
      case "/big": {
        const n = Number(q("n", "1000"));
        if (q("chunked")) {
          // no content-length: chunked, in pieces
          let left = n;
          const step = () => {
            const k = Math.min(left, 16384);
            left -= k;
            res.write("x".repeat(k));
            if (left > 0) setImmediate(step);
            else res.end();
          };
          return step();
        }
        res.setHeader("content-length", n);
        return res.end("x".repeat(n));
      }
      case "/drop":
        // a head that promises more than comes, then the connection goes
        res.socket.write("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial");
        return setTimeout(() => res.socket.destroy(), 50);
      case "/loop":
        res.statusCode = 302;
        res.setHeader("location", "/loop");
        return res.end("again");
      case "/redirect":
        res.statusCode = 302;
        res.setHeader("location", q("to", "/echo"));
        return res.end("moved");
      default:
        res.setHeader("content-type", "text/plain");
        return res.end("hello");
    }
  });
}

const server = cert ? https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, handler)
                    : http.createServer(handler);
server.keepAliveTimeout = 30000;
server.on("connection", () => stats.connections++);
server.listen(0, "127.0.0.1", () => {
  fs.writeFileSync(portFile + ".tmp", String(server.address().port));
  fs.renameSync(portFile + ".tmp", portFile);
});
process.on("SIGTERM", () => process.exit(0));
