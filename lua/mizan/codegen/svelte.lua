-- The Svelte adapter: stores over the kernel (a template filled from the
-- registry). Stores work the same in Svelte 4 and 5 ($store in markup).
-- A context store fetches when its first subscriber arrives and stops
-- listening for invalidations when its last one leaves.
local M = {}

local PRELUDE = [==[
import { getContext, setContext } from "svelte";
import { derived, readable, writable, type Readable, type Writable } from "svelte/store";
import { Mizan, MizanError, concerns, createMizan, tracked, type InvalidateEntry, type MizanErrorBody } from "./kernel";
import * as T from "./api";
import * as F from "./forms";

export { MizanError, createMizan };

const MIZAN = Symbol("mizan");

/** In the root component: one client for the app, listening for invalidation push. */
export function setMizan(client?: Mizan): Mizan {
  const mizan = client ?? createMizan();
  if (typeof window !== "undefined") mizan.listenForInvalidations();
  setContext(MIZAN, mizan);
  return mizan;
}

/** The client setMizan put in place (during component initialisation). */
export function getMizan(): Mizan {
  const mizan = getContext<Mizan | undefined>(MIZAN);
  if (!mizan) throw new Error("call setMizan() in the root component");
  return mizan;
}

export interface LoadState<D> { data: D | undefined; error: MizanError | undefined; loading: boolean }
export interface Loaded<D> extends Readable<LoadState<D>> { refetch: () => void }

function bundleStore<B>(mizan: Mizan, name: string, fns: readonly string[], params: Record<string, unknown>, hydrated?: B): Loaded<B> {
  const state = writable<LoadState<B>>({ data: hydrated, error: undefined, loading: hydrated === undefined });
  let seq = 0; // only the latest fetch may land
  let fresh = hydrated !== undefined; // hydrated: no fetch for the first subscriber
  const refetch = () => {
    const n = ++seq;
    state.update((s) => ({ ...s, loading: true }));
    mizan.context<B>(name, params).then(
      (data) => { if (n === seq) state.set({ data, error: undefined, loading: false }); },
      (error: MizanError) => { if (n === seq) state.update((s) => ({ ...s, error, loading: false })); });
  };
  const store = readable<LoadState<B>>({ data: hydrated, error: undefined, loading: hydrated === undefined }, (set) => {
    const unsubscribe = state.subscribe(set);
    if (!fresh) refetch();
    fresh = false;
    const listen = (e: InvalidateEntry) => { if (concerns(e, params)) refetch(); };
    const offs = [mizan.onInvalidate(name, listen), ...fns.map((f) => mizan.onInvalidate(f, listen))];
    return () => { unsubscribe(); offs.forEach((off) => off()); };
  });
  return { subscribe: store.subscribe, refetch };
}

export interface Mutation<A, R> { mutate: (args: A) => Promise<R>; isPending: Readable<boolean>; error: Readable<MizanError | undefined> }

function mutation<A, R>(mizan: Mizan, name: string): Mutation<A, R> {
  const isPending = writable(false);
  const error = writable<MizanError | undefined>(undefined);
  const mutate = (args: A) =>
    tracked(() => mizan.call<R>(name, args as unknown as Record<string, unknown>), isPending.set, error.set); // applies invalidation
  return { mutate, isPending: { subscribe: isPending.subscribe }, error: { subscribe: error.subscribe } };
}

export interface ChannelState<S> { messages: S[]; status: "connecting" | "open" | "closed"; error: MizanErrorBody | undefined }
export interface Channel<S, C> extends Readable<ChannelState<S>> { send: (message: C) => void }

function channel<P, S, C>(mizan: Mizan, name: string, params: P): Channel<S, C> {
  let sub: { send: (data: C) => void; close: () => void } | null = null;
  const store = readable<ChannelState<S>>({ messages: [], status: "connecting", error: undefined }, (set, update) => {
    set({ messages: [], status: "connecting", error: undefined });
    sub = mizan.subscribe<P, S, C>(name, params, {
      onMessage: (m) => update((s) => ({ ...s, messages: [...s.messages, m] })),
      onError: (error) => update((s) => ({ ...s, error })),
      onStatus: (status) => update((s) => ({ ...s, status })),
    });
    return () => { sub?.close(); sub = null; };
  });
  return { subscribe: store.subscribe, send: (m: C) => sub?.send(m) };
}

export interface Form<V> {
  values: Writable<Partial<V>>;
  errors: Readable<Record<string, string[]>>;
  isPending: Readable<boolean>;
  validate: () => Promise<boolean>;
  submit: () => Promise<unknown>;
}

function form<V>(mizan: Mizan, form: F.FormDef): Form<V> {
  const values = writable<Partial<V>>(F.initialValues(form) as Partial<V>);
  const errors = writable<Record<string, string[]>>({});
  const isPending = writable(false);
  let current: Partial<V> = {};
  values.subscribe((v) => { current = v; });
  const validate = () => F.validateInto(mizan, form, current, errors.set);
  const submit = () => F.submitInto(mizan, form, current, isPending.set, errors.set);
  return { values, errors: { subscribe: errors.subscribe }, isPending: { subscribe: isPending.subscribe }, validate, submit };
}
]==]

function M.files(reg, cg)
  local L = { PRELUDE }
  local function w(s) L[#L + 1] = s end
  for _, cname in ipairs(reg.context_order) do
    local g = reg.contexts[cname]
    local P = cg.pascal(cname)
    w(("// The %q context, and a store per function in it."):format(cname))
    if cname == "global" then
      w("export function globalContext(mizan: Mizan = getMizan()): Loaded<T.GlobalBundle> {")
      w(("  return bundleStore<T.GlobalBundle>(mizan, \"global\", %s, {}, mizan.takeHydratedGlobal() as T.GlobalBundle | undefined);")
        :format(cg.list(g.functions)))
    else
      w(("export function %sContext(params: T.%sParams, mizan: Mizan = getMizan()): Loaded<T.%sBundle> {"):format(cg.camel(cname), P, P))
      w(("  return bundleStore<T.%sBundle>(mizan, %q, %s, params as Record<string, unknown>);"):format(P, cname, cg.list(g.functions)))
    end
    w("}\n")
    for _, f in ipairs(g.functions) do
      local F = cg.pascal(f)
      w(("export function select%s(context: Loaded<T.%sBundle>): Readable<T.%sResult | undefined> {"):format(F, P, F))
      w(("  return derived(context, (s) => s.data?.[%q]);"):format(f))
      w("}\n")
    end
  end
  -- stores take the client, from the component context unless given
  cg.write_actions(reg, w, {
    mutation = function(name)
      local F = cg.pascal(name)
      return ("export function %sMutation(mizan: Mizan = getMizan()): Mutation<T.%sArgs, T.%sResult> { return mutation(mizan, %q); }")
        :format(cg.camel(name), F, F, name)
    end,
    form = function(name)
      return ("export function %sForm(mizan: Mizan = getMizan()): Form<T.%sArgs> { return form(mizan, F.%sForm); }")
        :format(cg.camel(name), cg.pascal(name .. ".submit"), cg.camel(name))
    end,
    channel = function(name)
      local C = cg.pascal(name)
      return ("export function %sChannel(params: T.%sChannelParams, mizan: Mizan = getMizan()): Channel<T.%sServerMessage, T.%sClientMessage> {\n"
        .. "  return channel<T.%sChannelParams, T.%sServerMessage, T.%sClientMessage>(mizan, %q, params);\n}\n")
        :format(cg.camel(name), C, C, C, C, C, C, name)
    end,
  })
  return { ["svelte.ts"] = table.concat(L, "\n") .. "\n" }
end

return M
