-- The React adapter (a template filled from the registry).
local M = {}

local PRELUDE = [==[
import * as React from "react";
import { Mizan, MizanError, Mutator, createMizan, keyOf, view, type EntryState, type MizanErrorBody, type MutationOptions, type MutationState, type QueryOptions } from "./kernel";
import * as T from "./api";
import * as F from "./forms";

export { MizanError, createMizan };
export type { QueryOptions, MutationOptions };

export interface MizanValue {
  mizan: Mizan;
  baseUrl: string;
  call: <R>(name: string, args?: Record<string, unknown>) => Promise<R>;
  invalidateContext: (name: string, params?: Record<string, unknown>) => void;
  invalidateFunctions: (names: string[]) => void;
  registerContextProvider: (name: string, refetch: () => void) => () => void;
}

const MizanContext = React.createContext<MizanValue | null>(null);

/** Put this around the app: it owns the client, and listens for invalidation push. */
export function MizanProvider(props: { client?: Mizan; baseUrl?: string; children?: React.ReactNode }) {
  const mizan = React.useMemo(() => props.client ?? createMizan({ baseUrl: props.baseUrl }), [props.client, props.baseUrl]);
  const value = React.useMemo<MizanValue>(() => ({
    mizan,
    baseUrl: mizan.baseUrl,
    call: <R,>(name: string, args?: Record<string, unknown>) => mizan.call<R>(name, args),
    invalidateContext: (name: string, params?: Record<string, unknown>) => mizan.invalidateContext(name, params),
    invalidateFunctions: (names: string[]) => mizan.invalidateFunctions(names),
    registerContextProvider: (name: string, refetch: () => void) => mizan.onInvalidate(name, () => refetch()),
  }), [mizan]);
  React.useEffect(() => { mizan.listenForInvalidations(); }, [mizan]);
  return React.createElement(MizanContext.Provider, { value }, props.children);
}

export function useMizan(): MizanValue {
  const v = React.useContext(MizanContext);
  if (!v) throw new Error("wrap the app in <MizanProvider>");
  return v;
}

/** A query's state: `status` (has it data?) and `isFetching` (is a request running?) apart. */
export interface Loaded<D> extends EntryState<D> {
  /** Data of the previous params, shown while these load (only with keepPrevious). */
  isPreviousData: boolean;
  /** No data yet: status is "pending". */
  loading: boolean;
  refetch: () => Promise<void>;
}

function useEntry<D>(names: readonly string[], params: Record<string, unknown>, run: (m: Mizan) => Promise<unknown>,
                     opts: QueryOptions = {}, hydrated?: D): Loaded<D> {
  const { mizan } = useMizan();
  const key = keyOf(names[0], params);
  const get = () => mizan.entry(key, names, params, () => run(mizan), opts, hydrated).state as EntryState<D>;
  const state = React.useSyncExternalStore(React.useCallback((fn: () => void) => { get(); return mizan.watch(key, fn); }, [mizan, key]), get, get);
  const on = opts.enabled !== false;
  React.useEffect(() => { if (on) void mizan.ensure(key); }, [mizan, key, on]);
  const last = React.useRef<{ data?: D }>({}).current;
  const refetch = React.useCallback(() => mizan.load(mizan.entry(key, names, params, () => run(mizan), opts)), [mizan, key]);
  return { ...view(state, last, opts.keepPrevious), loading: state.status === "pending", refetch };
}

function useBundle<B>(name: string, fns: readonly string[], params: Record<string, unknown>, hydrated?: B, opts?: QueryOptions): Loaded<B> {
  const { mizan } = useMizan();
  const [ssr] = React.useState(() => hydrated ?? mizan.takeHydrated(name, params) as B | undefined);
  return useEntry<B>([name, ...fns], params, (m) => m.context(name, params), opts, ssr);
}

/** A query on its own (in a context or not): cached by function and args. */
function useQuery<A, R>(name: string, ctx: string | null, args: A, opts?: QueryOptions): Loaded<R> {
  const p = (args ?? {}) as Record<string, unknown>;
  return useEntry<R>(ctx ? [name, ctx] : [name], p, (m) => m.call(name, p), opts);
}

export interface Mutation<A, R> extends MutationState<R> {
  /** Never throws: the error is in the state. */
  mutate: (args: A, opts?: MutationOptions<A, R>) => void;
  mutateAsync: (args: A, opts?: MutationOptions<A, R>) => Promise<R>;
  reset: () => void;
}

function useMutation<A, R>(name: string, opts: MutationOptions<A, R> = {}): Mutation<A, R> {
  const { mizan } = useMizan();
  const [, render] = React.useState(0);
  const ref = React.useRef<Mutator<A, R> | null>(null);
  if (!ref.current) ref.current = new Mutator<A, R>(mizan, name, opts, () => render((n) => n + 1)); // applies invalidation
  const m = ref.current;
  m.opts = opts;
  return { ...m.state, mutate: m.mutate, mutateAsync: m.mutateAsync, reset: m.reset };
}

export interface Channel<S, C> { messages: S[]; send: (message: C) => void; status: "connecting" | "open" | "closed"; error: MizanErrorBody | undefined }

function useChannel<P, S, C>(channel: string, params: P): Channel<S, C> {
  const { mizan } = useMizan();
  const key = JSON.stringify(params);
  const [messages, setMessages] = React.useState<S[]>([]);
  const [status, setStatus] = React.useState<"connecting" | "open" | "closed">("connecting");
  const [error, setError] = React.useState<MizanErrorBody | undefined>(undefined);
  const sub = React.useRef<{ send: (data: C) => void; close: () => void } | null>(null);
  React.useEffect(() => {
    setMessages([]);
    sub.current = mizan.subscribe<P, S, C>(channel, params, {
      onMessage: (m) => setMessages((list) => [...list, m]),
      onError: (e) => setError(e),
      onStatus: setStatus,
    });
    return () => { sub.current?.close(); sub.current = null; };
  }, [mizan, channel, key]);
  const send = React.useCallback((m: C) => sub.current?.send(m), []);
  return { messages, send, status, error };
}

export interface Form<V> {
  values: Partial<V>;
  setValue: <K extends keyof V>(field: K, value: V[K]) => void;
  errors: Record<string, string[]>;
  isPending: boolean;
  validate: () => Promise<boolean>;
  submit: () => Promise<unknown>;
}

function useForm<V>(form: F.FormDef): Form<V> {
  const { mizan } = useMizan();
  const [values, setValues] = React.useState<Partial<V>>(() => F.initialValues(form) as Partial<V>);
  const [errors, setErrors] = React.useState<Record<string, string[]>>({});
  const [isPending, setPending] = React.useState(false);
  const setValue = React.useCallback(<K extends keyof V>(field: K, value: V[K]) => {
    setValues((v) => ({ ...v, [field]: value }));
  }, []);
  const validate = React.useCallback(() => F.validateInto(mizan, form, values, setErrors), [mizan, form, values]);
  const submit = React.useCallback(() => F.submitInto(mizan, form, values, setPending, setErrors), [mizan, form, values]);
  return { values, setValue, errors, isPending, validate, submit };
}
]==]

function M.files(reg, cg)
  local L = { PRELUDE }
  local function w(s) L[#L + 1] = s end
  local list = cg.list
  local global = reg.contexts.global
  if global then
    w("// The global context: fetched once (or hydrated from the first page).")
    w("const GlobalContext = React.createContext<Loaded<T.GlobalBundle> | null>(null);\n")
    w("export function GlobalContextLoader(props: { children?: React.ReactNode }) {")
    w("  const { mizan } = useMizan();")
    w("  const [hydrated] = React.useState(() => mizan.takeHydratedGlobal() as T.GlobalBundle | undefined);")
    w(("  const loaded = useBundle<T.GlobalBundle>(\"global\", %s, {}, hydrated);"):format(list(global.functions)))
    w("  return React.createElement(GlobalContext.Provider, { value: loaded }, props.children);")
    w("}\n")
    for _, f in ipairs(global.functions) do
      local P = cg.pascal(f)
      w(("export function use%s(): T.%sResult | undefined {"):format(P, P))
      w("  const g = React.useContext(GlobalContext);")
      w("  if (!g) throw new Error(\"wrap the app in <GlobalContextLoader>\");")
      w(("  return g.data?.[%q];"):format(f))
      w("}\n")
    end
  end
  for _, cname in ipairs(reg.context_order) do
    if cname ~= "global" then
      local g = reg.contexts[cname]
      local P = cg.pascal(cname)
      w(("// The %q context."):format(cname))
      w(("const %sContext = React.createContext<Loaded<T.%sBundle> | null>(null);\n"):format(P, P))
      -- a context without params takes only children (Record<string, never> would forbid them)
      local props = (#g.order > 0 and ("T.%sParams & "):format(P) or "") .. "{ children?: React.ReactNode; options?: QueryOptions }"
      w(("export function %sProvider(props: %s) {"):format(P, props))
      w("  const { children, options, ...params } = props;")
      w(("  const loaded = useBundle<T.%sBundle>(%q, %s, params as Record<string, unknown>, undefined, options);"):format(P, cname, list(g.functions)))
      w(("  return React.createElement(%sContext.Provider, { value: loaded }, children);"):format(P))
      w("}\n")
      w(("export function use%sContext(): Loaded<T.%sBundle> {"):format(P, P))
      w(("  const v = React.useContext(%sContext);"):format(P))
      w(("  if (!v) throw new Error(\"wrap this in <%sProvider>\");"):format(P))
      w("  return v;")
      w("}\n")
      for _, f in ipairs(g.functions) do
        local F = cg.pascal(f)
        w(("export function use%s(): T.%sResult | undefined {"):format(F, F))
        w(("  return use%sContext().data?.[%q];"):format(P, f))
        w("}\n")
      end
    end
  end
  w("// Queries: a cached hook each; a function of a context also has the context's hook above, so its own is use<Fn>Query.")
  for _, name in ipairs(reg.order) do
    local spec = reg.functions[name]
    local form = name:match("^(.*)%.%a+$")
    if spec.kind == "query" and not (form and reg.forms and reg.forms[form]) then -- a form's functions go through its hook
      local F = cg.pascal(name)
      local args = cg.needs_args(spec.input) and "" or " = {}"
      w(("export function use%s(args: T.%sArgs%s, options?: QueryOptions): Loaded<T.%sResult> { return useQuery(%q, %s, args, options); }")
        :format(F .. (spec.context and "Query" or ""), F, args, F, name, spec.context and ("%q"):format(spec.context) or "null"))
    end
  end
  w("")
  local hooks = cg.use_hooks("%s")
  hooks.mutation = function(name)
    local F = cg.pascal(name)
    return ("export function use%sMutation(options?: MutationOptions<T.%sArgs, T.%sResult>): Mutation<T.%sArgs, T.%sResult> { return useMutation(%q, options); }")
      :format(F, F, F, F, F, name)
  end
  cg.write_actions(reg, w, hooks)
  return { ["react.ts"] = table.concat(L, "\n") .. "\n" }
end

return M
