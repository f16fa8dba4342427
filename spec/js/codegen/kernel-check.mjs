// The generated kernel and api.ts, compiled to JS, against a live todo
// server: the invalidation header vectors, typed calls, errors, no stale
// read after a mutation, request dedupe, and invalidation push over the
// WebSocket to another client of the same user.
// usage: node kernel-check.mjs JS_DIR PORT VECTORS_JSON   (exit 0 on success)
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";
import WS from "ws";

const [dir, port, vectors] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const { createMizan, parseInvalidateHeader, MizanError } = require(dir + "/kernel.js");
const { api } = require(dir + "/api.js");
setTimeout(() => { console.error("kernel check: timed out"); process.exit(1); }, 15000).unref();

// 1. X-Mizan-Invalidate parsing, from the shared vectors. An entry with
//    empty params is the bare name.
const bare = (e) => (typeof e === "object" && Object.keys(e.params).length === 0 ? e.target : e);
for (const c of JSON.parse(readFileSync(vectors, "utf8")).cases) {
  assert.deepEqual(parseInvalidateHeader(c.header), c.invalidate.map(bare), c.header);
}

// Node's fetch keeps no cookies: a jar shared by both clients (one user).
let cookie = "";
const jarFetch = async (url, init = {}) => {
  const res = await fetch(url, { ...init, headers: { ...(init.headers ?? {}), cookie } });
  const set = res.headers.getSetCookie();
  if (set.length) cookie = set.map((c) => c.split(";")[0]).join("; ");
  return res;
};
globalThis.WebSocket = class extends WS { constructor(url) { super(url, { headers: { cookie } }); } };

const base = `http://127.0.0.1:${port}/api/mizan/`;
const m = createMizan({ baseUrl: base, fetch: jarFetch });
const a = api(m);

// 2. Typed calls and errors in the server's shape.
assert.equal((await a.echo({ text: "hi" })).message, "hi");
await assert.rejects(a.echo({ text: 5 }), (e) => e instanceof MizanError && e.status === 400 && Array.isArray(e.fields.text));
await assert.rejects(a.myLists(), (e) => e instanceof MizanError && e.status === 401);
await a.authSignup({ username: "kernel" + process.pid, password: "correct horse battery" });
const g = await m.context("global");
assert.equal(g.current_user.username, "kernel" + process.pid);

// 3. A second client of the same user listens for invalidation push.
const other = createMizan({ baseUrl: base, fetch: jarFetch });
const pushed = new Promise((resolve) => other.onInvalidate("lists", resolve));
other.listenForInvalidations();
await new Promise((r) => setTimeout(r, 300)); // let its socket subscribe

// 4. A mutation applies its invalidation, and the refetch is not stale.
assert.deepEqual((await m.context("lists")).my_lists, []);
const seen = [];
m.onInvalidate("lists", (e) => seen.push(e));
const list = await a.createList({ name: "groceries" });
assert.deepEqual(seen, ["lists"]);
assert.deepEqual((await m.context("lists")).my_lists.map((l) => l.name), ["groceries"]);

// 5. Identical context fetches in flight share one request.
const p1 = m.context("todos", { list_id: list.id });
const p2 = m.context("todos", { list_id: list.id });
assert.equal(p1, p2);
assert.deepEqual((await p1).todo_list, []);
const todoSeen = [];
m.onInvalidate("todos", (e) => todoSeen.push(e));
await a.addTodo({ list_id: list.id, title: "milk" });
assert.deepEqual(todoSeen, [{ target: "todos", params: { list_id: list.id } }]);
assert.deepEqual((await m.context("todos", { list_id: list.id })).todo_list.map((t) => t.title), ["milk"]);
await assert.rejects(a.addTodo({ list_id: 999999, title: "x" }), (e) => e.status === 404 && e.code === "not_found");

assert.equal(await pushed, "lists");
console.log("kernel check: vectors, calls, errors, invalidation, dedupe, push: ok");
process.exit(0);
