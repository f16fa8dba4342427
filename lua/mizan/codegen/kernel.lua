-- The framework-free TypeScript kernel the adapters build on (a template).
-- kernel(base_path): the text, with the base path and the routes from
-- mizan.options (so the client's defaults are the server's).
local TEMPLATE = [==[
export interface MizanErrorBody {
  code: string;
  message: string;
  fields?: Record<string, string[]>;
  data?: unknown;
}

// ---------------------------------------------------------------- typed errors

/** The protocol's own codes (DESIGN §2) that carry neither fields nor data. */
export type ProtocolCode = "invalid_json" | "bad_request" | "unauthenticated" | "forbidden" | "csrf_failed"
  | "not_found" | "method_not_allowed" | "request_timeout" | "payload_too_large" | "uri_too_long"
  | "unsupported_media_type" | "rate_limited" | "headers_too_large" | "internal_error" | "unavailable";

/** The errors any call may answer, one member per code. */
export type ProtocolError =
  | { code: "validation_error"; message: string; fields: Record<string, string[]>; data?: undefined }
  | { code: "stale_client"; message: string; data: { schema: string }; fields?: undefined }
  | { [C in ProtocolCode]: { code: C; message: string; data?: undefined; fields?: undefined } }[ProtocolCode];

/** A function's error: the codes it declares (their data typed), and the
    protocol's but those, discriminated by `code`. */
export type FunctionError<D extends { code: string }> = D | Exclude<ProtocolError, { code: D["code"] }>;

/** Every failed call rejects with this: the HTTP status, DESIGN §2's error
    body (`error`, typed for the function `fn` by api.ts's errorOf). */
export class MizanError<E extends MizanErrorBody = MizanErrorBody> extends Error {
  readonly status: number;
  readonly code: string;
  readonly fields: Record<string, string[]>;
  readonly error: E;
  readonly fn: string | undefined;
  constructor(status: number, body: E, fn?: string) {
    super(body.message);
    this.name = "MizanError";
    this.status = status;
    this.code = body.code;
    this.fields = body.fields ?? {};
    this.error = body;
    this.fn = fn;
  }
}

// ---------------------------------------------------------------- version skew

/** The schema this client was built from: its hash, and each function's
    and context's (sent as X-Mizan-Client and X-Mizan-Fn). */
const VERSIONS: { schema: string; call: Record<string, string>; ctx: Record<string, string> } = {{VERSIONS}};

/** What onStaleClient hears: the server's schema hash, and the call's error. */
export interface StaleClient { schema: string; error: MizanError }

/** Reload the page once per server schema: a reload that brought no newer
    client (a cached page) must not loop. false when it did not reload. */
export function reloadOnce(schema: string): boolean {
  if (typeof location === "undefined" || typeof sessionStorage === "undefined") return false;
  const key = "mizan:stale-reload";
  if (sessionStorage.getItem(key) === schema) return false;
  sessionStorage.setItem(key, schema);
  location.reload();
  return true;
}

function versionHeaders(fn: string | undefined): Record<string, string> {
  if (!VERSIONS.schema) return {};
  return fn ? { "X-Mizan-Client": VERSIONS.schema, "X-Mizan-Fn": fn } : { "X-Mizan-Client": VERSIONS.schema };
}

export type InvalidateEntry = string | { target: string; params: Record<string, unknown> };
type Listener = (entry: InvalidateEntry) => void;

export interface MizanOptions {
  baseUrl?: string;
  fetch?: typeof fetch;
  /** The socket for channels and invalidation push; ws(s)://host{{BASE}}{{WS}} by default. */
  wsUrl?: string;
  /** A call answered 409 stale_client (this client is older than the
      server's function). Without a handler the page reloads once (reloadOnce). */
  onStaleClient?: (info: StaleClient) => void;
  /** Defaults for every query (each hook may override them). */
  query?: QueryOptions;
}

export type Status = "pending" | "error" | "success";

export interface QueryOptions {
  /** How long (ms) data stays fresh: no refetch on mount or focus meanwhile. 0 by default. */
  staleTime?: number;
  /** How long (ms) an entry nobody watches is kept. 5 minutes by default. */
  gcTime?: number;
  /** Retries after a network error or a 5xx (never a 4xx). 3 by default. */
  retry?: number;
  retryDelay?: (attempt: number) => number;
  refetchOnFocus?: boolean;
  refetchOnReconnect?: boolean;
  /** On a params change, keep showing the previous params' data (flagged) until the new arrives. */
  keepPrevious?: boolean;
  enabled?: boolean;
}

/** What a query's entry holds; a new object on every change. */
export interface EntryState<D = unknown> { data?: D; error?: MizanError; status: Status; isFetching: boolean }

interface Entry {
  key: string;
  /** The invalidation targets it answers to: its own name first (a function or context), then its context. */
  names: readonly string[];
  params: Record<string, unknown>;
  run: () => Promise<unknown>;
  opts: QueryOptions;
  state: EntryState;
  at: number;
  stale: boolean;
  watchers: Set<() => void>;
  gc?: ReturnType<typeof setTimeout>;
  loading?: Promise<void>;
}

/** What a view of a query shows: its entry's state, or (keepPrevious) the last data it showed,
    flagged, while the entry has none. `last` is the view's memory, updated here. */
export function view<D>(s: EntryState<D>, last: { data?: D }, keep?: boolean): EntryState<D> & { isPreviousData: boolean } {
  const prev = s.data === undefined && !!keep && last.data !== undefined;
  if (s.data !== undefined) last.data = s.data;
  return { ...s, data: prev ? last.data : s.data, isPreviousData: prev };
}

/** Edit cached data during an optimistic update: every entry named `target` whose params include `params`. */
export type Edit = <D>(target: string, params: Record<string, unknown> | undefined, fn: (data: D) => D) => void;

export interface ChannelHandlers<M> {
  onMessage: (data: M) => void;
  onError?: (error: MizanErrorBody) => void;
  onStatus?: (status: "connecting" | "open" | "closed") => void;
}

/** Parse X-Mizan-Invalidate: "user;user_id=5, notifications". */
export function parseInvalidateHeader(value: string): InvalidateEntry[] {
  const out: InvalidateEntry[] = [];
  for (const part of value.split(", ")) {
    if (!part) continue;
    const [name, ...pairs] = part.split(";");
    const target = decodeURIComponent(name);
    if (pairs.length === 0) { out.push(target); continue; }
    const params: Record<string, unknown> = {};
    for (const p of pairs) {
      const i = p.indexOf("=");
      const key = decodeURIComponent(p.slice(0, i));
      const raw = decodeURIComponent(p.slice(i + 1));
      let value: unknown = raw;
      try { value = JSON.parse(raw); } catch { value = raw; }
      params[key] = value;
    }
    out.push({ target, params });
  }
  return out;
}

/** An invalidation concerns a view with these params unless it names a different value for one of them. */
export function concerns(entry: InvalidateEntry, params: Record<string, unknown>): boolean {
  if (typeof entry === "string") return true;
  for (const [k, v] of Object.entries(entry.params)) {
    if (k in params && JSON.stringify(params[k]) !== JSON.stringify(v)) return false;
  }
  return true;
}

/** The cache key of a query: its name and params as canonical JSON (keys sorted). */
export function keyOf(name: string, params: Record<string, unknown> = {}): string {
  const c = (v: unknown): unknown => v && typeof v === "object" && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().filter((k) => (v as any)[k] !== undefined).map((k) => [k, c((v as any)[k])])) : v;
  return name + " " + JSON.stringify(c(params));
}

function asError(e: unknown): MizanError {
  return e instanceof MizanError ? e : new MizanError(0, { code: "network_error", message: String((e as Error)?.message ?? e) });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function targetOf(e: InvalidateEntry): string { return typeof e === "string" ? e : e.target; }

function query(args: Record<string, unknown> | undefined): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(args ?? {})) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) q.append(k, String(x));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

/** A named context the server put in the first page (its params as the page's query gave them). */
interface Hydrated { context: string; params: Record<string, unknown>; data: unknown }

declare global {
  interface Window { __MIZAN_SSR_DATA__?: Record<string, unknown>; __MIZAN_SSR_CONTEXTS__?: Hydrated[] }
}

export class Mizan {
  readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly wsUrl: string;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly inflight = new Map<string, Promise<unknown>>();
  private ssr: Record<string, unknown> | undefined;
  private ssrContexts: Hydrated[] = [];
  private socket: WebSocket | undefined;
  private socketOpen = false;
  private nextSub = 1;
  private readonly subs = new Map<number, { channel: string; params: unknown; handlers: ChannelHandlers<any> }>();
  private wantInvalidations = false;
  // Push is live once the server confirmed the subscription. A context read
  // that began before that may have missed a push: resync when it goes live.
  private pushLive = false;
  private readWhileDeaf = false;
  private retry = 0;
  private readonly staleHandlers = new Set<(info: StaleClient) => void>();
  private readonly entries = new Map<string, Entry>();
  readonly defaults: QueryOptions;
  private tabs: BroadcastChannel | undefined;

  constructor(opts: MizanOptions = {}) {
    if (opts.onStaleClient) this.staleHandlers.add(opts.onStaleClient);
    this.defaults = { staleTime: 0, gcTime: 300000, retry: 3, retryDelay: (n) => Math.min(30000, 1000 * 2 ** n),
                      refetchOnFocus: true, refetchOnReconnect: true, ...opts.query };
    this.baseUrl = (opts.baseUrl ?? "{{BASE}}").replace(/\/?$/, "/");
    this.fetchImpl = opts.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
    const origin = typeof location !== "undefined" ? location.origin : "http://localhost";
    const abs = new URL(this.baseUrl, origin);
    this.wsUrl = opts.wsUrl ?? abs.href.replace(/^http/, "ws") + "{{WS}}";
    if (typeof window === "undefined") return;
    if (window.__MIZAN_SSR_DATA__) this.ssr = window.__MIZAN_SSR_DATA__;
    this.ssrContexts = window.__MIZAN_SSR_CONTEXTS__ ?? [];
    window.addEventListener?.("focus", () => this.wake("refetchOnFocus"));
    window.addEventListener?.("online", () => this.wake("refetchOnReconnect"));
    if (typeof BroadcastChannel !== "undefined") {
      // the other tabs of this browser share its cookie: a sign in or out here is theirs too
      this.tabs = new BroadcastChannel("mizan " + abs.href);
      this.tabs.onmessage = () => this.identityChanged(false);
    }
  }

  /** The global context the server put in the first page, used once (no
      refetch on first render). */
  takeHydratedGlobal(): Record<string, unknown> | undefined {
    const v = this.ssr;
    this.ssr = undefined;
    return v;
  }

  /** Listen for stale_client answers (see MizanOptions.onStaleClient). Returns the unsubscribe. */
  onStaleClient(fn: (info: StaleClient) => void): () => void {
    this.staleHandlers.add(fn);
    return () => { this.staleHandlers.delete(fn); };
  }

  private stale(error: MizanError): void {
    const info = { schema: String((error.error.data as { schema?: string } | undefined)?.schema ?? ""), error };
    if (this.staleHandlers.size === 0) reloadOnce(info.schema);
    for (const fn of [...this.staleHandlers]) fn(info);
  }

  /** A named context's bundle from the first page, if it carried one for these params; used once. */
  takeHydrated(name: string, params: Record<string, unknown>): unknown {
    const text = (p: Record<string, unknown>) => JSON.stringify(Object.keys(p).filter((k) => p[k] !== undefined).sort().map((k) => [k, String(p[k])]));
    const i = this.ssrContexts.findIndex((h) => h.context === name && text(h.params) === text(params));
    return i < 0 ? undefined : this.ssrContexts.splice(i, 1)[0].data;
  }

  // `fn`: the function called (its error is typed by it), `version` its hash as this client knows it.
  private async request(path: string, init: RequestInit, version?: string, fn?: string): Promise<unknown> {
    const headers = { ...(init.headers as Record<string, string> | undefined), ...versionHeaders(version) };
    const res = await this.fetchImpl(this.baseUrl + path, { credentials: "same-origin", ...init, headers });
    const header = res.headers.get("X-Mizan-Invalidate");
    const text = await res.text();
    let body: any = null;
    try { body = text ? JSON.parse(text) : null; } catch { if (res.ok) throw new Error("the answer is not JSON"); }
    if (!res.ok) {
      const error = new MizanError(res.status, body?.error ?? { code: "internal_error", message: res.statusText }, fn);
      if (error.code === "stale_client") this.stale(error);
      throw error;
    }
    const entries: InvalidateEntry[] = body && Array.isArray(body.invalidate) ? body.invalidate : header ? parseInvalidateHeader(header) : [];
    // "global" changes when the session does (sign up, log in, log out): the
    // socket carries the session it opened with, so open it again.
    this.applyInvalidate(entries);
    if (entries.some((e) => targetOf(e) === "global")) this.identityChanged(true);
    return body;
  }

  /** Call a function: POST with JSON arguments (or GET for a query with opts.get). */
  async call<R>(name: string, args?: Record<string, unknown>, opts: { get?: boolean } = {}): Promise<R> {
    const path = "{{CALL}}" + name + "/";
    const v = VERSIONS.call[name];
    const body = opts.get
      ? await this.request(path + query(args), { method: "GET" }, v, name)
      : await this.request(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(args ?? {}) }, v, name);
    return (body as { result: R }).result;
  }

  /** Fetch a context's bundle; identical fetches in flight share one request. */
  context<B>(name: string, params?: Record<string, unknown>): Promise<B> {
    const path = "{{CTX}}" + encodeURIComponent(name) + "/" + query(params);
    const known = this.inflight.get(path);
    if (known) return known as Promise<B>;
    if (!this.pushLive) this.readWhileDeaf = true;
    const p = this.request(path, { method: "GET" }, VERSIONS.ctx[name]).finally(() => this.inflight.delete(path));
    this.inflight.set(path, p);
    return p as Promise<B>;
  }

  /** Listen for invalidations of a context or function name. Returns the unsubscribe. */
  onInvalidate(target: string, fn: Listener): () => void {
    let set = this.listeners.get(target);
    if (!set) { set = new Set(); this.listeners.set(target, set); }
    set.add(fn);
    return () => { set!.delete(fn); };
  }

  /** Mark what the entries name stale; entries someone watches refetch. */
  applyInvalidate(entries: InvalidateEntry[]): void {
    for (const e of entries) for (const fn of this.listeners.get(targetOf(e)) ?? []) fn(e);
    for (const q of this.entries.values()) {
      if (entries.some((e) => q.names.includes(targetOf(e)) && concerns(e, q.params))) {
        q.stale = true;
        if (q.watchers.size) void this.load(q);
      }
    }
  }

  // ---------------------------------------------------------------- the cache

  /** The entry for a query, made on first use. `hydrated` data counts as fresh until invalidated. */
  entry(key: string, names: readonly string[], params: Record<string, unknown>, run: () => Promise<unknown>,
        opts: QueryOptions = {}, hydrated?: unknown): Entry {
    let q = this.entries.get(key);
    if (!q) {
      q = { key, names, params, run, opts, at: 0, stale: true, watchers: new Set(), state: { status: "pending", isFetching: false } };
      if (hydrated !== undefined) Object.assign(q, { at: Infinity, stale: false, state: { data: hydrated, status: "success", isFetching: false } });
      this.entries.set(key, q);
      this.later(q); // a render that never mounts leaves no entry behind
    }
    q.run = run;
    q.opts = opts;
    return q;
  }

  private opt<K extends keyof QueryOptions>(q: Entry, k: K): QueryOptions[K] { return q.opts[k] ?? this.defaults[k]; }

  private set(q: Entry, patch: Partial<EntryState>): void {
    q.state = { ...q.state, ...patch };
    for (const fn of q.watchers) fn();
  }

  /** Watch an entry (fn on every change); the last watcher gone, it is dropped after gcTime. */
  watch(key: string, fn: () => void): () => void {
    const q = this.entries.get(key);
    if (!q) return () => {};
    clearTimeout(q.gc);
    q.watchers.add(fn);
    return () => {
      q.watchers.delete(fn);
      this.later(q);
    };
  }

  // Drop an entry nobody watches once gcTime has passed.
  private later(q: Entry): void {
    clearTimeout(q.gc);
    if (!q.watchers.size) q.gc = setTimeout(() => { if (!q.watchers.size && this.entries.get(q.key) === q) this.entries.delete(q.key); }, this.opt(q, "gcTime"));
  }

  /** Fetch an entry unless its data is fresh. */
  ensure(key: string): Promise<void> {
    const q = this.entries.get(key);
    if (!q || this.fresh(q)) return Promise.resolve();
    return this.load(q);
  }

  private fresh(q: Entry): boolean {
    return q.state.status === "success" && !q.stale && Date.now() - q.at < this.opt(q, "staleTime")!;
  }

  /** Fetch an entry now (one fetch at a time), retrying network errors and 5xx with backoff. */
  load(q: Entry): Promise<void> {
    if (q.loading) return q.loading;
    if (!this.pushLive) this.readWhileDeaf = true;
    this.set(q, { isFetching: true });
    return q.loading = (async () => {
      for (let n = 0; ; n++) {
        try {
          const data = await q.run();
          q.at = Date.now();
          q.stale = false;
          this.set(q, { data, error: undefined, status: "success", isFetching: false });
          return;
        } catch (e) {
          const err = asError(e);
          if ((err.status === 0 || err.status >= 500) && n < this.opt(q, "retry")!) { await sleep(this.opt(q, "retryDelay")!(n)); continue; }
          this.set(q, { error: err, status: "error", isFetching: false });
          return;
        }
      }
    })().finally(() => { q.loading = undefined; });
  }

  /** The data cached for a key. */
  getData<D>(key: string): D | undefined { return this.entries.get(key)?.state.data as D | undefined; }

  // Refetch the watched entries that allow it (focus, reconnect).
  private wake(why: "refetchOnFocus" | "refetchOnReconnect"): void {
    for (const q of this.entries.values()) if (q.watchers.size && this.opt(q, why) && !this.fresh(q)) void this.load(q);
  }

  /** The signed-in user changed (here, in another tab, or said by the server): the socket
      reopens with the new session, entries nobody watches go, the others refetch. */
  identityChanged(local: boolean): void {
    if (local) this.tabs?.postMessage("identity");
    this.renewSocket();
    for (const q of [...this.entries.values()]) {
      if (!q.watchers.size) { this.entries.delete(q.key); continue; }
      q.stale = true;
      void this.load(q);
    }
    this.applyInvalidate([...this.listeners.keys()]);
  }

  /** Run a mutation: `optimistic` edits cached data first, put back if the call fails. */
  async mutation<R>(name: string, args: unknown, optimistic?: (edit: Edit) => void): Promise<R> {
    const undo: Array<[Entry, EntryState]> = [];
    optimistic?.((target, params, fn) => {
      for (const q of this.entries.values()) {
        if (q.names[0] !== target || q.state.data === undefined || !concerns({ target, params: params ?? {} }, q.params)) continue;
        undo.push([q, q.state]);
        this.set(q, { data: fn(q.state.data as any) });
      }
    });
    try {
      return await this.call<R>(name, args as Record<string, unknown>);
    } catch (e) {
      for (const [q, s] of undo.reverse()) this.set(q, s);
      throw e;
    }
  }

  invalidateContext(name: string, params?: Record<string, unknown>): void {
    this.applyInvalidate([params ? { target: name, params } : name]);
  }

  invalidateFunctions(names: string[]): void { this.applyInvalidate(names); }

  // ---------------------------------------------------------------- the socket

  private send(frame: unknown): void {
    if (this.socket && this.socketOpen) this.socket.send(JSON.stringify(frame));
  }

  private renewSocket(): void {
    const old = this.socket;
    if (!old) return;
    old.onclose = null;
    old.close(1000);
    this.socket = undefined;
    this.socketOpen = false;
    this.pushLive = false;
    this.connect();
  }

  private connect(): void {
    if (this.socket || typeof WebSocket === "undefined") return;
    const ws = new WebSocket(this.wsUrl);
    this.socket = ws;
    for (const s of this.subs.values()) s.handlers.onStatus?.("connecting");
    ws.onopen = () => {
      this.socketOpen = true;
      this.retry = 0;
      for (const [id, s] of this.subs) {
        this.send({ type: "subscribe", id, channel: s.channel, params: s.params });
        s.handlers.onStatus?.("open");
      }
      if (this.wantInvalidations) this.send({ type: "subscribe_invalidations" });
    };
    ws.onmessage = (ev) => {
      const m = JSON.parse(String(ev.data));
      if (m.type === "message") this.subs.get(m.id)?.handlers.onMessage(m.data);
      else if (m.type === "error") this.subs.get(m.id)?.handlers.onError?.(m.error);
      else if (m.type === "invalidate") this.applyInvalidate(m.invalidate);
      else if (m.type === "identity") this.identityChanged(false);
      else if (m.type === "subscribed" && m.id === "invalidations") this.goLive();
    };
    ws.onclose = () => {
      this.socket = undefined;
      this.socketOpen = false;
      this.pushLive = false;
      for (const s of this.subs.values()) s.handlers.onStatus?.("closed");
      if (this.subs.size || this.wantInvalidations) {
        const delay = Math.min(10000, 250 * 2 ** this.retry++);
        setTimeout(() => this.connect(), delay); // reconnect with backoff, then resubscribe
      }
    };
  }

  // Pushes now arrive; what was read without them (first load, or while the
  // socket was down) is refetched once, so no view stays stale.
  private goLive(): void {
    this.pushLive = true;
    if (!this.readWhileDeaf) return;
    this.readWhileDeaf = false;
    this.applyInvalidate([...this.listeners.keys(), ...[...this.entries.values()].map((q) => q.names[0])]);
  }

  /** Subscribe to a channel on the shared socket. Returns send and unsubscribe. */
  subscribe<P, M, C>(channel: string, params: P, handlers: ChannelHandlers<M>): { send: (data: C) => void; close: () => void } {
    const id = this.nextSub++;
    this.subs.set(id, { channel, params, handlers });
    if (this.socketOpen) this.send({ type: "subscribe", id, channel, params });
    else this.connect();
    return {
      send: (data: C) => this.send({ type: "send", id, data }),
      close: () => { this.subs.delete(id); this.send({ type: "unsubscribe", id }); },
    };
  }

  /** Have the server push invalidations over the socket. */
  listenForInvalidations(): void {
    this.wantInvalidations = true;
    if (this.socketOpen) this.send({ type: "subscribe_invalidations" });
    else this.connect();
  }
}

export function createMizan(opts: MizanOptions = {}): Mizan { return new Mizan(opts); }

/** Run a request for an adapter's state: pending while it runs, and the
    error it fails with (cleared when it starts). Rethrows that error. */
export async function tracked<R>(run: () => Promise<R>, setPending: (on: boolean) => void,
                                 setError: (e: MizanError | undefined) => void): Promise<R> {
  setPending(true);
  setError(undefined);
  try {
    return await run();
  } catch (e) {
    setError(e as MizanError);
    throw e;
  } finally {
    setPending(false);
  }
}

export type MutationStatus = "idle" | "pending" | "error" | "success";
export interface MutationState<R> { status: MutationStatus; data?: R; error?: MizanError; isPending: boolean }
export interface MutationOptions<A, R> {
  /** Edit cached data before the call; every edit is undone if it fails. */
  optimistic?: (args: A, edit: Edit) => void;
  onSuccess?: (data: R, args: A) => void;
  onError?: (error: MizanError, args: A) => void;
  onSettled?: (data: R | undefined, error: MizanError | undefined, args: A) => void;
}

/** A mutation's state for an adapter: `mutate` never throws (the error is in the state), `mutateAsync` does. */
export class Mutator<A, R> {
  state: MutationState<R> = { status: "idle", isPending: false };
  constructor(private readonly m: Mizan, private readonly name: string, public opts: MutationOptions<A, R>,
              private readonly changed: (s: MutationState<R>) => void) {}
  private put(s: Omit<MutationState<R>, "isPending">): void { this.changed(this.state = { ...s, isPending: s.status === "pending" }); }
  mutateAsync = async (args: A, more: MutationOptions<A, R> = {}): Promise<R> => {
    const all = [this.opts, more];
    this.put({ status: "pending" });
    try {
      const data = await this.m.mutation<R>(this.name, args, (edit) => all.forEach((o) => o.optimistic?.(args, edit)));
      this.put({ status: "success", data });
      all.forEach((o) => { o.onSuccess?.(data, args); o.onSettled?.(data, undefined, args); });
      return data;
    } catch (e) {
      const error = asError(e);
      this.put({ status: "error", error });
      all.forEach((o) => { o.onError?.(error, args); o.onSettled?.(undefined, error, args); });
      throw error;
    }
  };
  mutate = (args: A, more?: MutationOptions<A, R>): void => { this.mutateAsync(args, more).catch(() => {}); };
  reset = (): void => this.put({ status: "idle" });
}
]==]

local options = require "mizan.options"

local json = require "mizan.json"

-- `versions`: mizan.schema.hashes of the app ({ schema, functions, contexts }).
return function(base_path, versions)
  local R = options.routes
  versions = versions or { schema = "", functions = {}, contexts = {} }
  local v = assert(json.canonical { schema = versions.schema, call = json.object(versions.functions),
                                    ctx = json.object(versions.contexts) })
  local fill = { BASE = base_path or options.default("base_path"), WS = R.ws, CALL = R.call, CTX = R.ctx, VERSIONS = v }
  return (TEMPLATE:gsub("{{(%u+)}}", function(k) return assert(fill[k], k) end))
end
