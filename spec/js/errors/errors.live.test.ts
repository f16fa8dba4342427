// Typed errors and version skew with the generated client of
// spec/apps/errors against a live `mizan dev` server on a copy of that app
// (started by spec/e2e/errors_spec.lua: MIZAN_ERRORS_PORT, its app.lua at
// MIZAN_ERRORS_APP), which this suite rewrites to reload it. Never a mock.
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { createMizan, MizanError, type StaleClient } from "./kernel";
import { api, errorOf } from "./api";

const base = `http://127.0.0.1:${process.env.MIZAN_ERRORS_PORT}/api/mizan/`;
const appFile = process.env.MIZAN_ERRORS_APP!;
const original = readFileSync(appFile, "utf8");
afterAll(() => writeFileSync(appFile, original));

// What the kernel sent, seen on the way out (the server is real).
const sent: Array<Record<string, string>> = [];
const recording: typeof fetch = (url, init = {}) => {
  sent.push({ ...(init.headers as Record<string, string>) });
  return fetch(url, init);
};

async function caught(p: Promise<unknown>): Promise<unknown> {
  try { await p; } catch (e) { return e; }
  throw new Error("expected the call to fail");
}

const serverSchema = async () => (await fetch(base + "call/stable/")).headers.get("x-mizan-schema");

async function until(f: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("timed out");
}

describe("typed errors", () => {
  const m = createMizan({ baseUrl: base, fetch: recording });
  const fns = api(m);

  it("reject with the declared code, its status and its typed data, for the function called", async () => {
    const e = await caught(fns.getTodo({ id: 3, case: "not_found" }, { get: true }));
    const err = errorOf("get_todo", e);
    expect(err).toBeInstanceOf(MizanError);
    expect(err!.status).toBe(404);
    expect(err!.error).toEqual({ code: "not_found", message: "not_found", data: { id: 3 } });
    expect(errorOf("stable", e)).toBeUndefined(); // not that function's error
    const c = errorOf("get_todo", await caught(fns.getTodo({ id: 3, case: "conflict" })))!;
    expect([c.status, c.error.code, c.error.data]).toEqual([409, "conflict", { with_id: 7 }]);
    const a = errorOf("get_todo", await caught(fns.getTodo({ id: 3, case: "archived" })))!;
    expect([a.status, a.error.data]).toEqual([422, { since: "2026-01-01" }]);
  });

  it("answer 500 for a code the function does not declare, and keep the protocol's fields", async () => {
    const u = errorOf("get_todo", await caught(fns.getTodo({ id: 3, case: "undeclared" })))!;
    expect([u.status, u.error.code]).toEqual([500, "internal_error"]);
    expect(u.error.message).toContain("function 'get_todo' raised error 'teapot'");
    const v = errorOf("get_todo", await caught(fns.getTodo({ id: 3, case: "protocol" })))!;
    expect(v.error.code).toBe("validation_error");
    expect(v.fields).toEqual({ id: ["must be even"] });
  });

  it("every call says which schema the client was built from, and which version of the function", async () => {
    sent.length = 0;
    await fns.stable({}, { get: true });
    await m.context("global");
    const schema = await serverSchema();
    expect(schema).toMatch(/^[0-9a-f]{16}$/);
    expect(sent[0]["X-Mizan-Client"]).toBe(schema);
    expect(sent[0]["X-Mizan-Fn"]).toMatch(/^[0-9a-f]{8}$/);
    expect(sent[1]["X-Mizan-Fn"]).toMatch(/^[0-9a-f]{8}$/);
    expect(sent[1]["X-Mizan-Fn"]).not.toBe(sent[0]["X-Mizan-Fn"]);
  });
});

describe("version skew across a reload", () => {
  const heard: StaleClient[] = [];
  const m = createMizan({ baseUrl: base, onStaleClient: (info) => heard.push(info) });
  const fns = api(m);

  it("an added function changes the schema hash but answers the old client as before", async () => {
    const before = await serverSchema();
    writeFileSync(appFile, original + '\nmizan.register(client { query = true } (function() return 1 end), "added")\n');
    await until(async () => (await serverSchema()) !== before);
    expect(await fns.stable()).toBe("v0");
    expect(await fns.changing({ a: 1 })).toBe("v0");
    expect(await fns.cachedChanging({ a: 1 }, { get: true })).toBe("v0");
    expect(await m.context("global")).toHaveProperty("current_user");
    expect(heard).toEqual([]);
  });

  it("a changed function answers the old client 409 stale_client, typed, with the new hash; onStaleClient hears it", async () => {
    writeFileSync(appFile, original.replaceAll("input = { a = T.integer }", "input = { a = T.string }"));
    let e: unknown;
    await until(async () => { e = await fns.changing({ a: 1 }).then(() => undefined, (x) => x); return e !== undefined; });
    const err = errorOf("changing", e)!;
    expect(err.status).toBe(409);
    expect(err.error.code).toBe("stale_client");
    const now = await serverSchema();
    if (err.error.code === "stale_client") expect(err.error.data.schema).toBe(now);
    expect(heard.map((h) => h.schema)).toEqual([now]);
    // cached (C's fast path answers it for current clients): stale for this one too
    for (let i = 0; i < 3; i++) await fetch(base + "call/cached_changing/?a=x");
    expect(errorOf("cached_changing", await caught(fns.cachedChanging({ a: 1 }, { get: true })))!.error.code).toBe("stale_client");
    // the functions that did not change go on
    expect(await fns.stable()).toBe("v0");
  });

  it("without a handler, the page reloads once per server schema, never in a loop", async () => {
    const store = new Map<string, string>();
    let reloads = 0;
    const g = globalThis as unknown as Record<string, unknown>;
    g.sessionStorage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => { store.set(k, v); } };
    g.location = { origin: "http://127.0.0.1", reload: () => { reloads++; } };
    try {
      const plain = api(createMizan({ baseUrl: base }));
      await caught(plain.changing({ a: 1 }));
      expect(reloads).toBe(1);
      // the reload brought the same old client (a cached page): no second reload
      await caught(api(createMizan({ baseUrl: base })).changing({ a: 1 }));
      expect(reloads).toBe(1);
      expect([...store.values()]).toEqual([await serverSchema()]);
    } finally {
      delete g.sessionStorage;
      delete g.location;
    }
  });
});
