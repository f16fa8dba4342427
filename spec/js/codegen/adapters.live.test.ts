// The Vue and Svelte adapters against a live todo server (MIZAN_PORT), in
// Node without a DOM: Vue composables run inside the app's injection
// context and an effect scope; Svelte stores are plain subscriptions.
import { describe, expect, it } from "vitest";
import { createApp, effectScope, nextTick } from "vue";
import { get } from "svelte/store";
import { createMizan } from "./kernel";
import * as V from "./vue";
import * as S from "./svelte";
import { cookieJar, until } from "./live";

const base = `http://127.0.0.1:${process.env.MIZAN_PORT}/api/mizan/`;

const client = () => createMizan({ baseUrl: base, fetch: cookieJar().fetch });

describe("the Vue adapter", () => {
  it("loads a context, refetches it after a mutation, and checks a form on the client", async () => {
    const mizan = client();
    const app = createApp({ render: () => null });
    app.use(V.mizanPlugin(mizan));
    const scope = effectScope();
    const signup = app.runWithContext(() => scope.run(() => V.useAuthSignupMutation()))!;
    await signup.mutate({ username: "vue" + process.pid, password: "composables all the way" });
    expect(signup.isPending.value).toBe(false);
    const made = app.runWithContext(() => scope.run(() => ({
      lists: V.useListsContext({}),
      create: V.useCreateListMutation(),
      contact: V.useContactForm(),
    })))!;
    await until(() => made.lists.data.value !== undefined && !made.lists.loading.value);
    expect(made.lists.data.value!.my_lists).toEqual([]);
    await made.create.mutate({ name: "from vue" });
    await until(() => (made.lists.data.value?.my_lists.length ?? 0) === 1);
    expect(made.lists.data.value!.my_lists[0].name).toBe("from vue");
    expect(made.contact.values.value).toEqual({ topic: "help" }); // the field's initial value
    made.contact.values.value = { ...made.contact.values.value, name: "V", email: "nope", message: "long enough text" };
    expect(await made.contact.validate()).toBe(false);
    expect(made.contact.errors.value).toEqual({ email: ["Enter a valid email address."] });
    scope.stop();
    await nextTick();
  });
});

describe("the Svelte adapter", () => {
  it("stores a context, refetches it after a mutation, and merges the server's form errors", async () => {
    const mizan = client();
    await S.authSignupMutation(mizan).mutate({ username: "svelte" + process.pid, password: "stores all the way" });
    const lists = S.listsContext({}, mizan);
    const names: string[][] = [];
    const stop = lists.subscribe((s) => { if (s.data) names.push(s.data.my_lists.map((l) => l.name)); });
    await until(() => names.length > 0);
    const create = S.createListMutation(mizan);
    await create.mutate({ name: "from svelte" });
    await until(() => names[names.length - 1].includes("from svelte"));
    expect(get(create.isPending)).toBe(false);
    stop();

    const form = S.contactForm(mizan);
    form.values.set({ name: "S", email: "s@example.com", topic: "help", message: "get free money here" });
    await expect(form.submit()).rejects.toMatchObject({ status: 400, code: "validation_error" });
    expect(get(form.errors)).toEqual({ message: ["This looks like spam."] }); // server-only, merged in
  });
});
