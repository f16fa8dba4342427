-- The Vue 3 adapter: composables over the kernel (a template filled from
-- the registry). A context composable fetches its bundle and provides it to
-- descendants, whose use<Fn>() read one function's result from it.
local M = {}

local PRELUDE = [==[
import { computed, inject, onScopeDispose, provide, ref, shallowRef, toValue, watch,
  type App, type ComputedRef, type InjectionKey, type MaybeRefOrGetter, type Ref } from "vue";
import { Mizan, MizanError, concerns, createMizan, tracked, type InvalidateEntry, type MizanErrorBody } from "./kernel";
import * as T from "./api";
import * as F from "./forms";

export { MizanError, createMizan };

const MIZAN: InjectionKey<Mizan> = Symbol("mizan");

/** app.use(mizanPlugin()): one client for the app, listening for invalidation push. */
export function mizanPlugin(client?: Mizan) {
  return {
    install(app: App) {
      const mizan = client ?? createMizan();
      if (typeof window !== "undefined") mizan.listenForInvalidations();
      app.provide(MIZAN, mizan);
    },
  };
}

export function useMizan(): Mizan {
  const mizan = inject(MIZAN, null);
  if (!mizan) throw new Error("install mizanPlugin() on the app");
  return mizan;
}

export interface Loaded<D> { data: Ref<D | undefined>; error: Ref<MizanError | undefined>; loading: Ref<boolean>; refetch: () => void }

function useBundle<B>(name: string, fns: readonly string[], params: MaybeRefOrGetter<Record<string, unknown>>, hydrated?: B): Loaded<B> {
  const mizan = useMizan();
  const data = shallowRef<B | undefined>(hydrated);
  const error = shallowRef<MizanError | undefined>(undefined);
  const loading = ref(hydrated === undefined);
  let seq = 0; // only the latest fetch may land
  const refetch = () => {
    const n = ++seq;
    loading.value = true;
    mizan.context<B>(name, toValue(params)).then(
      (d) => { if (n === seq) { data.value = d; error.value = undefined; loading.value = false; } },
      (e: MizanError) => { if (n === seq) { error.value = e; loading.value = false; } });
  };
  watch(() => JSON.stringify(toValue(params)), refetch, { immediate: hydrated === undefined });
  const listen = (e: InvalidateEntry) => { if (concerns(e, toValue(params))) refetch(); };
  const offs = [mizan.onInvalidate(name, listen), ...fns.map((f) => mizan.onInvalidate(f, listen))];
  onScopeDispose(() => offs.forEach((off) => off()));
  return { data, error, loading, refetch };
}

function injected<B>(key: InjectionKey<Loaded<B>>, what: string): Loaded<B> {
  const v = inject(key, null);
  if (!v) throw new Error("call " + what + " in an ancestor component");
  return v;
}

export interface Mutation<A, R> { mutate: (args: A) => Promise<R>; isPending: Ref<boolean>; error: Ref<MizanError | undefined> }

function useMutation<A, R>(name: string): Mutation<A, R> {
  const mizan = useMizan();
  const isPending = ref(false);
  const error = shallowRef<MizanError | undefined>(undefined);
  const mutate = (args: A) => tracked(() => mizan.call<R>(name, args as unknown as Record<string, unknown>), // applies invalidation
    (on) => { isPending.value = on; }, (e) => { error.value = e; });
  return { mutate, isPending, error };
}

export interface Channel<S, C> { messages: Ref<S[]>; send: (message: C) => void; status: Ref<"connecting" | "open" | "closed">; error: Ref<MizanErrorBody | undefined> }

function useChannel<P, S, C>(channel: string, params: MaybeRefOrGetter<P>): Channel<S, C> {
  const mizan = useMizan();
  const messages = shallowRef<S[]>([]);
  const status = ref<"connecting" | "open" | "closed">("connecting");
  const error = shallowRef<MizanErrorBody | undefined>(undefined);
  let sub: { send: (data: C) => void; close: () => void } | null = null;
  watch(() => JSON.stringify(toValue(params)), () => {
    sub?.close();
    messages.value = [];
    sub = mizan.subscribe<P, S, C>(channel, toValue(params), {
      onMessage: (m) => { messages.value = [...messages.value, m]; },
      onError: (e) => { error.value = e; },
      onStatus: (s) => { status.value = s; },
    });
  }, { immediate: true });
  onScopeDispose(() => { sub?.close(); sub = null; });
  return { messages, send: (m: C) => sub?.send(m), status, error };
}

export interface Form<V> {
  values: Ref<Partial<V>>;
  errors: Ref<Record<string, string[]>>;
  isPending: Ref<boolean>;
  validate: () => Promise<boolean>;
  submit: () => Promise<unknown>;
}

function useForm<V>(form: F.FormDef): Form<V> {
  const mizan = useMizan();
  const values = ref(F.initialValues(form)) as Ref<Partial<V>>;
  const errors = ref<Record<string, string[]>>({});
  const isPending = ref(false);
  const setErrors = (e: Record<string, string[]>) => { errors.value = e; };
  const validate = () => F.validateInto(mizan, form, values.value, setErrors);
  const submit = () => F.submitInto(mizan, form, values.value, (on) => { isPending.value = on; }, setErrors);
  return { values, errors, isPending, validate, submit };
}
]==]

function M.files(reg, cg)
  local L = { PRELUDE }
  local function w(s) L[#L + 1] = s end
  for _, cname in ipairs(reg.context_order) do
    local g = reg.contexts[cname]
    local P = cg.pascal(cname)
    local global = cname == "global"
    w(("// The %q context: fetch it in a component, read it in its descendants."):format(cname))
    w(("const %sKey: InjectionKey<Loaded<T.%sBundle>> = Symbol(%q);\n"):format(P, P, cname))
    if global then
      w("export function useGlobalContext(): Loaded<T.GlobalBundle> {")
      w("  const hydrated = useMizan().takeHydratedGlobal() as T.GlobalBundle | undefined;")
      w(("  const loaded = useBundle<T.GlobalBundle>(\"global\", %s, {}, hydrated);"):format(cg.list(g.functions)))
    else
      w(("export function use%sContext(params: MaybeRefOrGetter<T.%sParams>): Loaded<T.%sBundle> {"):format(P, P, P))
      w(("  const loaded = useBundle<T.%sBundle>(%q, %s, params as MaybeRefOrGetter<Record<string, unknown>>);")
        :format(P, cname, cg.list(g.functions)))
    end
    w(("  provide(%sKey, loaded);"):format(P))
    w("  return loaded;")
    w("}\n")
    for _, f in ipairs(g.functions) do
      local F = cg.pascal(f)
      w(("export function use%s(): ComputedRef<T.%sResult | undefined> {"):format(F, F))
      w(("  const loaded = injected(%sKey, %q);"):format(P, global and "useGlobalContext()" or "use" .. P .. "Context()"))
      w(("  return computed(() => loaded.data.value?.[%q]);"):format(f))
      w("}\n")
    end
  end
  cg.write_actions(reg, w, cg.use_hooks("MaybeRefOrGetter<%s>"))
  return { ["vue.ts"] = table.concat(L, "\n") .. "\n" }
end

return M
