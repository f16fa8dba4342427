// The generated kernel and api.ts against a live todo server (started by
// spec/e2e/codegen_spec.lua; port in MIZAN_PORT), never a mock: the
// invalidation header vectors, typed calls, errors, no stale read after a
// mutation, request dedupe, and invalidation push over the WebSocket to
// another client of the same user.
import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import WS from "ws";
import { createMizan, parseInvalidateHeader, MizanError, type InvalidateEntry } from "./kernel";
import { api } from "./api";
import { cookieJar, until } from "./live";

const port = process.env.MIZAN_PORT;
const vectors = process.env.MIZAN_VECTORS!;
const base = `http://127.0.0.1:${port}/api/mizan/`;

// One jar for both clients of a test (one user); sockets carry its cookie.
let jar = cookieJar();
// The sockets the kernel opened, so a test can cut one as a network would,
// and the close codes the server sent them.
const opened: WS[] = [];
const closeCodes: number[] = [];
(globalThis as unknown as { WebSocket: unknown }).WebSocket = class extends WS {
  constructor(url: string) {
    super(url, { headers: { cookie: jar.cookie } });
    opened.push(this);
    this.on("close", (code: number) => closeCodes.push(code));
  }
};

const isError = (status: number, code?: string) => (e: unknown) =>
  e instanceof MizanError && e.status === status && (code === undefined || e.code === code);

describe("the kernel against a live server", () => {
  it("parses X-Mizan-Invalidate as the shared vectors say", () => {
    // an entry with empty params is the bare name
    const bare = (e: InvalidateEntry) => (typeof e === "object" && Object.keys(e.params).length === 0 ? e.target : e);
    for (const c of JSON.parse(readFileSync(vectors, "utf8")).cases) {
      expect(parseInvalidateHeader(c.header), c.header).toEqual(c.invalidate.map(bare));
    }
  });

  it("calls, fails in the server's shape, invalidates, dedupes, and hears pushes", async () => {
    const m = createMizan({ baseUrl: base, fetch: jar.fetch });
    const a = api(m);
    const user = "kernel" + process.pid;

    // typed calls and errors in the server's shape
    expect((await a.echo({ text: "hi" })).message).toBe("hi");
    const bad = await a.echo({ text: 5 as unknown as string }).catch((e) => e);
    expect(bad).toBeInstanceOf(MizanError);
    expect([bad.status, bad.code, Array.isArray(bad.fields.text)]).toEqual([400, "validation_error", true]);
    expect(isError(401)(await a.myLists().catch((e) => e))).toBe(true);
    await a.authSignup({ username: user, password: "correct horse battery" });
    expect((await m.context<{ current_user: { username: string } }>("global")).current_user.username).toBe(user);

    // a second client of the same user listens for invalidation push
    const other = createMizan({ baseUrl: base, fetch: jar.fetch });
    const pushed = new Promise((resolve) => other.onInvalidate("lists", resolve));
    other.listenForInvalidations();
    await new Promise((r) => setTimeout(r, 300)); // let its socket subscribe

    // a mutation applies its invalidation, and the refetch is not stale
    type Lists = { my_lists: Array<{ id: number; name: string }> };
    expect((await m.context<Lists>("lists")).my_lists).toEqual([]);
    const seen: InvalidateEntry[] = [];
    m.onInvalidate("lists", (e) => seen.push(e));
    const list = await a.createList({ name: "groceries" });
    expect(seen).toEqual(["lists"]);
    expect((await m.context<Lists>("lists")).my_lists.map((l) => l.name)).toEqual(["groceries"]);

    // identical context fetches in flight share one request
    type Todos = { todo_list: Array<{ title: string }> };
    const p1 = m.context<Todos>("todos", { list_id: list.id });
    expect(m.context<Todos>("todos", { list_id: list.id })).toBe(p1);
    expect((await p1).todo_list).toEqual([]);
    const todoSeen: InvalidateEntry[] = [];
    m.onInvalidate("todos", (e) => todoSeen.push(e));
    await a.addTodo({ list_id: list.id, title: "milk" });
    expect(todoSeen).toEqual([{ target: "todos", params: { list_id: list.id } }]);
    expect((await m.context<Todos>("todos", { list_id: list.id })).todo_list.map((t) => t.title)).toEqual(["milk"]);
    expect(isError(404, "not_found")(await a.addTodo({ list_id: 999999, title: "x" }).catch((e) => e))).toBe(true);

    expect(await pushed).toBe("lists");
  }, 15000);

  it("reconnects after the socket drops, and resubscribes its channels", async () => {
    // examples/chat, started by the spec too (MIZAN_CHAT_PORT)
    jar = cookieJar();
    const chat = createMizan({ baseUrl: `http://127.0.0.1:${process.env.MIZAN_CHAT_PORT}/api/mizan/`, fetch: jar.fetch });
    await chat.call("auth.signup", { username: "rc" + process.pid, password: "reconnect please" });
    const statuses: string[] = [];
    const got: Array<{ text: string }> = [];
    chat.subscribe<{ room: string }, { text: string }, { text: string }>("chat", { room: "rc" }, {
      onMessage: (m) => got.push(m),
      onStatus: (s) => statuses.push(s),
    });
    await until(() => statuses.includes("open"));
    await new Promise((r) => setTimeout(r, 100)); // the subscribe frame is on its way
    opened[opened.length - 1].terminate(); // the network drops it
    await until(() => statuses.filter((s) => s === "open").length === 2);
    await new Promise((r) => setTimeout(r, 100));
    await chat.call("post", { room: "rc", text: "after the drop" });
    await until(() => got.some((m) => m.text === "after the drop"));
    expect(statuses).toEqual(["connecting", "open", "closed", "connecting", "open"]);
  }, 15000);

  it("reconnects when a reload closes its socket with 1012, and resubscribes on the new code", async () => {
    // spec/apps/reload_live under `mizan dev` (MIZAN_RELOAD_PORT), its app.lua at MIZAN_RELOAD_APP
    const app = process.env.MIZAN_RELOAD_APP!;
    const live = createMizan({ baseUrl: `http://127.0.0.1:${process.env.MIZAN_RELOAD_PORT}/api/mizan/` });
    const statuses: string[] = [];
    const got: Array<{ headline: string; version: string }> = [];
    live.subscribe<Record<string, never>, { headline: string; version: string }, never>("news", {}, {
      onMessage: (m) => got.push(m),
      onStatus: (s) => statuses.push(s),
    });
    await until(() => statuses.includes("open"));
    await new Promise((r) => setTimeout(r, 100)); // the subscribe frame is on its way
    const codes = closeCodes.length;
    writeFileSync(app, readFileSync(app, "utf8").replace(/VERSION = "[^"]*"/, 'VERSION = "kernel-reloaded"'));
    await until(() => statuses.filter((s) => s === "open").length === 2);
    expect(closeCodes.slice(codes)).toEqual([1012]); // service restart, said by the old code
    await new Promise((r) => setTimeout(r, 100));
    await live.call("publish", { headline: "after the reload" });
    await until(() => got.some((m) => m.headline === "after the reload"));
    expect(got.find((m) => m.headline === "after the reload")!.version).toBe("kernel-reloaded");
    expect(statuses).toEqual(["connecting", "open", "closed", "connecting", "open"]);
  }, 15000);
});
