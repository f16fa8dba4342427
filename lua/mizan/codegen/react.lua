-- The React adapter (a template filled from the registry).
local M = {}

local PRELUDE = [==[
import * as React from "react";
import { Mizan, MizanError, concerns, createMizan, tracked, type InvalidateEntry, type MizanErrorBody } from "./kernel";
import * as T from "./api";
import * as F from "./forms";

export { MizanError, createMizan };

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

export interface Loaded<D> { data: D | undefined; error: MizanError | undefined; loading: boolean; refetch: () => void }

function useBundle<B>(name: string, fns: readonly string[], params: Record<string, unknown>, hydrated?: B): Loaded<B> {
  const { mizan } = useMizan();
  const key = JSON.stringify(params);
  const [state, setState] = React.useState<{ data?: B; error?: MizanError; loading: boolean }>(
    () => (hydrated !== undefined ? { data: hydrated, loading: false } : { loading: true }));
  const [tick, setTick] = React.useState(0);
  const refetch = React.useCallback(() => setTick((t) => t + 1), []);
  React.useEffect(() => {
    if (tick === 0 && hydrated !== undefined) return; // hydrated: no refetch on first render
    let live = true;
    mizan.context<B>(name, params).then(
      (data) => { if (live) setState({ data, loading: false }); },
      (error: MizanError) => { if (live) setState({ error, loading: false }); });
    return () => { live = false; };
  }, [mizan, name, key, tick]);
  React.useEffect(() => {
    const listen = (e: InvalidateEntry) => { if (concerns(e, params)) refetch(); };
    const offs = [mizan.onInvalidate(name, listen), ...fns.map((f) => mizan.onInvalidate(f, listen))];
    return () => offs.forEach((off) => off());
  }, [mizan, name, key, refetch]);
  return { data: state.data, error: state.error, loading: state.loading, refetch };
}

export interface Mutation<A, R> { mutate: (args: A) => Promise<R>; isPending: boolean; error: MizanError | undefined }

function useMutation<A, R>(name: string): Mutation<A, R> {
  const { mizan } = useMizan();
  const [isPending, setPending] = React.useState(false);
  const [error, setError] = React.useState<MizanError | undefined>(undefined);
  const mutate = React.useCallback((args: A) =>
    tracked(() => mizan.call<R>(name, args as unknown as Record<string, unknown>), setPending, setError), // applies invalidation
  [mizan, name]);
  return { mutate, isPending, error };
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
      local props = #g.order > 0 and ("T.%sParams & { children?: React.ReactNode }"):format(P) or "{ children?: React.ReactNode }"
      w(("export function %sProvider(props: %s) {"):format(P, props))
      w("  const { children, ...params } = props;")
      w(("  const loaded = useBundle<T.%sBundle>(%q, %s, params as Record<string, unknown>);"):format(P, cname, list(g.functions)))
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
  cg.write_actions(reg, w, cg.use_hooks("%s"))
  return { ["react.ts"] = table.concat(L, "\n") .. "\n" }
end

return M
