// The kernel's query cache and mutations against a live server
// (spec/apps/client_cache, port in MIZAN_CACHE_PORT; it counts the reads
// that reach it), and the identity push against the todo server
// (MIZAN_PORT): what the React adapter's hooks are built on.
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import WS from "ws";
import { createMizan, keyOf, view, MizanError, type Mizan, type QueryOptions } from "./kernel";
import { cookieJar, until } from "./live";

const base = `http://127.0.0.1:${process.env.MIZAN_CACHE_PORT}/api/mizan/`;
const todo = `http://127.0.0.1:${process.env.MIZAN_PORT}/api/mizan/`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let unique = 0;
const fresh = (s: string) => `${s}-${process.pid}-${++unique}`;

/** A real fetch that counts the requests it made. */
function counted() {
  const c = { n: 0, fetch: ((...a: Parameters<typeof fetch>) => { c.n++; return fetch(...a); }) as typeof fetch };
  return c;
}

// A query as an adapter hook makes it: its entry, watched (as a mounted component), fetched unless fresh.
function watched(m: Mizan, fn: string, params: Record<string, unknown>, opts?: QueryOptions, names: string[] = [fn],
                 run = () => m.call(fn, params)) {
  const key = keyOf(fn, params);
  const q = m.entry(key, names, params, run, opts);
  const seen: unknown[] = [];
  const off = m.watch(key, () => seen.push(q.state));
  return { key, q, seen, off, ensure: () => m.ensure(key), state: () => m.entry(key, names, params, run, opts).state };
}

type Counter = { reads: number; value: number };

describe("the query cache", () => {
  it("answers from the cache within staleTime, refetches after it, and drops an unwatched entry after gcTime", async () => {
    const c = counted();
    const m = createMizan({ baseUrl: base, fetch: c.fetch, query: { staleTime: 300, gcTime: 50 } });
    const k = fresh("stale");
    const a = watched(m, "counter", { key: k });
    expect(a.state()).toMatchObject({ status: "pending", isFetching: false });
    const p = a.ensure();
    expect(a.state()).toMatchObject({ status: "pending", isFetching: true });
    await p;
    expect(a.state()).toMatchObject({ status: "success", isFetching: false, data: { reads: 1 } });
    await a.ensure(); // a second component, or a remount, within staleTime: a hit
    expect(c.n).toBe(1);
    // the same params in another key order are the same entry
    expect(keyOf("counter", { b: 1, a: 2 })).toBe(keyOf("counter", { a: 2, b: 1 }));
    await sleep(350);
    await a.ensure(); // stale now: fetched again
    expect(c.n).toBe(2);
    expect((a.state().data as Counter).reads).toBe(2);
    a.off();
    await until(() => m.getData(keyOf("counter", { key: k })) === undefined); // gcTime after the last watcher left
  });

  it("retries network errors and 5xx with backoff, never a 4xx", async () => {
    const c = counted();
    const opts: QueryOptions = { retry: 3, retryDelay: () => 5 };
    const m = createMizan({ baseUrl: base, fetch: c.fetch, query: opts });
    const ok = watched(m, "flaky", { key: fresh("5xx"), fails: 2 });
    await ok.ensure();
    expect(ok.state()).toMatchObject({ status: "success", data: { calls: 3 } }); // two 500s, then an answer
    expect(c.n).toBe(3);

    c.n = 0;
    const gives = watched(m, "flaky", { key: fresh("5xx"), fails: 9 });
    await gives.ensure();
    expect(gives.state().status).toBe("error");
    expect([gives.state().error!.status, gives.state().error!.code]).toEqual([500, "internal_error"]);
    expect(c.n).toBe(4); // the call and 3 retries

    c.n = 0;
    const missing = watched(m, "flaky", { key: fresh("4xx"), fails: 9, missing: true });
    await missing.ensure();
    expect([missing.state().error!.status, missing.state().error!.code]).toEqual([404, "not_found"]);
    const invalid = watched(m, "flaky", { key: fresh("4xx"), fails: "x" });
    await invalid.ensure();
    expect(invalid.state().error!.status).toBe(400);
    expect(c.n).toBe(2); // once each

    // nothing listens on this port: a network error, retried
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
    });
    const down = counted();
    const off = createMizan({ baseUrl: `http://127.0.0.1:${port}/api/mizan/`, fetch: down.fetch, query: opts });
    const net = watched(off, "counter", { key: "x" });
    await net.ensure();
    expect(net.state().error).toBeInstanceOf(MizanError);
    expect([net.state().error!.status, net.state().error!.code]).toEqual([0, "network_error"]);
    expect(down.n).toBe(4);
  });

  it("refetches watched entries on window focus and on reconnect, unless told not to", async () => {
    const w = globalThis as unknown as { window?: EventTarget };
    w.window = new EventTarget();
    try {
      const c = counted();
      const m = createMizan({ baseUrl: base, fetch: c.fetch });
      const on = watched(m, "counter", { key: fresh("focus") });
      const no = watched(m, "counter", { key: fresh("focus") }, { refetchOnFocus: false, refetchOnReconnect: false });
      const gone = watched(m, "counter", { key: fresh("focus") });
      await Promise.all([on.ensure(), no.ensure(), gone.ensure()]);
      gone.off(); // unmounted: nobody shows it
      w.window.dispatchEvent(new Event("focus"));
      await until(() => (on.state().data as Counter).reads === 2 && !on.state().isFetching);
      w.window.dispatchEvent(new Event("online"));
      await until(() => (on.state().data as Counter).reads === 3 && !on.state().isFetching);
      expect((no.state().data as Counter).reads).toBe(1);
      expect((gone.state().data as Counter).reads).toBe(1);
      expect(c.n).toBe(5);
    } finally {
      delete w.window;
    }
  });

  it("marks invalidated entries stale: watched ones refetch, the others on their next use", async () => {
    const c = counted();
    const m = createMizan({ baseUrl: base, fetch: c.fetch, query: { staleTime: 60000 } });
    const k = fresh("inv");
    const shown = watched(m, "counter", { key: k });
    const hidden = watched(m, "counter", { key: k + "-other" });
    await Promise.all([shown.ensure(), hidden.ensure()]);
    hidden.off();
    await m.call("set_value", { key: k, value: 7 }); // answers invalidate: ["counter"]
    await until(() => (shown.state().data as Counter).value === 7 && !shown.state().isFetching);
    expect(c.n).toBe(4); // two reads, the mutation, one refetch: the unwatched entry waits
    await m.ensure(hidden.key); // used again: it is stale despite staleTime
    expect(c.n).toBe(5);
  });

  it("keeps the previous params' data only when asked, and flags it", () => {
    const last = {};
    expect(view({ data: { a: 1 }, status: "success", isFetching: false }, last, true).isPreviousData).toBe(false);
    const next = view<{ a: number }>({ status: "pending", isFetching: true }, last, true);
    expect([next.data, next.isPreviousData, next.status]).toEqual([{ a: 1 }, true, "pending"]);
    const plain = view<{ a: number }>({ status: "pending", isFetching: true }, { data: { a: 1 } }, false);
    expect([plain.data, plain.isPreviousData]).toEqual([undefined, false]);
  });
});

describe("mutations", () => {
  it("mutate never throws, mutateAsync does; callbacks in order; reset", async () => {
    const { Mutator } = await import("./kernel");
    const m = createMizan({ baseUrl: base });
    const states: string[] = [];
    const calls: string[] = [];
    const mu = new Mutator<{ key: string; value: number; refuse?: boolean }, { value: number }>(m, "set_value", {
      onSuccess: (d) => calls.push("success " + d.value),
      onError: (e) => calls.push("error " + e.code),
      onSettled: (d, e) => calls.push("settled " + (d ? d.value : e!.code)),
    }, (s) => states.push(s.status));
    const k = fresh("mut");
    expect(mu.mutate({ key: k, value: 1, refuse: true })).toBeUndefined(); // no promise to forget
    await until(() => mu.state.status === "error");
    expect([mu.state.error!.status, mu.state.error!.code, mu.state.isPending]).toEqual([404, "not_found", false]);
    await expect(mu.mutateAsync({ key: k, value: 2, refuse: true })).rejects.toMatchObject({ status: 404 });
    expect(await mu.mutateAsync({ key: k, value: 3 }, { onSuccess: () => calls.push("call's own") })).toEqual({ value: 3 });
    expect(mu.state).toMatchObject({ status: "success", data: { value: 3 }, isPending: false });
    mu.reset();
    expect(mu.state).toEqual({ status: "idle", isPending: false });
    expect(states).toEqual(["pending", "error", "pending", "error", "pending", "success", "idle"]);
    expect(calls).toEqual(["error not_found", "settled not_found", "error not_found", "settled not_found",
      "success 3", "settled 3", "call's own"]);
  });

  it("an optimistic update edits the cached data at once and is rolled back when the call fails", async () => {
    const m = createMizan({ baseUrl: base, query: { staleTime: 60000 } });
    const k = fresh("opt");
    const q = watched(m, "counter", { key: k });
    await q.ensure();
    const { Mutator } = await import("./kernel");
    const shown: number[] = [];
    m.watch(q.key, () => shown.push((q.state().data as Counter).value));
    const mu = new Mutator<{ key: string; value: number; refuse?: boolean }, unknown>(m, "set_value", {
      optimistic: (args, edit) => edit<Counter>("counter", { key: args.key }, (d) => ({ ...d, value: args.value })),
    }, () => {});
    const p = mu.mutateAsync({ key: k, value: 42, refuse: true });
    expect((q.state().data as Counter).value).toBe(42); // before the server answered
    await expect(p).rejects.toBeInstanceOf(MizanError);
    expect((q.state().data as Counter).value).toBe(0); // put back
    await mu.mutateAsync({ key: k, value: 5 });
    await until(() => (q.state().data as Counter).value === 5 && !q.state().isFetching); // kept, then confirmed by the refetch
    expect(shown.slice(0, 2)).toEqual([42, 0]);
  });
});

describe("identity changes", () => {
  it("a logout in tab A reaches tab B by push: B refetches global and its per-user entries", async () => {
    const jar = cookieJar(); // one browser: both tabs send its cookie
    (globalThis as unknown as { WebSocket: unknown }).WebSocket = class extends WS {
      constructor(url: string) { super(url, { headers: { cookie: jar.cookie } }); }
    };
    const a = createMizan({ baseUrl: todo, fetch: jar.fetch });
    const b = createMizan({ baseUrl: todo, fetch: jar.fetch, query: { staleTime: 60000 } });
    await a.call("auth.signup", { username: "tabs" + process.pid, password: "two tabs one cookie" });
    const global = watched(b, "global", {}, undefined, ["global", "current_user"], () => b.context("global"));
    const lists = watched(b, "my_lists", {}, undefined, ["my_lists", "lists"]);
    await Promise.all([global.ensure(), lists.ensure()]);
    expect((global.state().data as { current_user: unknown }).current_user).not.toBeNull();
    expect(lists.state().status).toBe("success");
    b.listenForInvalidations();
    await sleep(300); // let B's socket subscribe
    await a.call("auth.logout", {});
    await until(() => lists.state().status === "error"); // B made no call of its own
    expect(lists.state().error!.status).toBe(401);
    await until(() => (global.state().data as { current_user: unknown }).current_user === null);
  }, 15000);
});
