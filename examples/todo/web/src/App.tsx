// The todo UI: every read comes from a context, every write is a mutation
// whose invalidation refreshes what it touched, here and in other tabs.
import { useState, type FormEvent } from "react";
import {
  ListsProvider, MizanError, TodosProvider, useAddTodoMutation, useAuthLoginMutation, useAuthLogoutMutation,
  useAuthSignupMutation, useContactForm, useCreateListMutation, useCurrentUser, useMyLists, useSetDoneMutation,
  useTodoList, useTodoSummary,
} from "./mizan/react";

export function App() {
  const user = useCurrentUser();
  return (
    <main>
      <h1>Mizan todo</h1>
      {user ? (
        <>
          <p data-testid="whoami">Signed in as {user.username} <Logout /></p>
          <ListsProvider><Lists /></ListsProvider>
        </>
      ) : <SignIn />}
      <Contact />
    </main>
  );
}

function SignIn() {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const signup = useAuthSignupMutation();
  const login = useAuthLoginMutation();
  const error = signup.error ?? login.error;
  const go = (m: typeof login) => (e: FormEvent) => { e.preventDefault(); m.mutate({ username, password }).catch(() => {}); };
  return (
    <form onSubmit={go(login)}>
      <input aria-label="username" value={username} onChange={(e) => setUsername(e.target.value)} />
      <input aria-label="password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} />
      <button type="submit">Log in</button>
      <button type="button" onClick={go(signup)}>Sign up</button>
      {error && <p role="alert">{error.message}</p>}
    </form>
  );
}

function Logout() {
  const logout = useAuthLogoutMutation();
  return <button onClick={() => logout.mutate({})}>Log out</button>;
}

function Lists() {
  const lists = useMyLists() ?? [];
  const [current, setCurrent] = useState<number | undefined>(undefined);
  const [name, setName] = useState("");
  const create = useCreateListMutation();
  const selected = current ?? lists[0]?.id;
  return (
    <section>
      <h2>Lists</h2>
      <ul>
        {lists.map((l) => (
          <li key={l.id}><button onClick={() => setCurrent(l.id)} aria-pressed={l.id === selected}>{l.name}</button></li>
        ))}
      </ul>
      <form onSubmit={(e) => { e.preventDefault(); create.mutate({ name }).then((l) => { setName(""); setCurrent(l.id); }); }}>
        <input aria-label="new list" value={name} onChange={(e) => setName(e.target.value)} />
        <button type="submit" disabled={create.isPending}>Add list</button>
      </form>
      {selected !== undefined && <TodosProvider list_id={selected}><Todos listId={selected} /></TodosProvider>}
    </section>
  );
}

function Todos({ listId }: { listId: number }) {
  const todos = useTodoList() ?? [];
  const summary = useTodoSummary();
  const add = useAddTodoMutation();
  const setDone = useSetDoneMutation();
  const [title, setTitle] = useState("");
  return (
    <section>
      <h3>{summary?.name} <small data-testid="summary">{summary ? `${summary.open} open, ${summary.done} done` : ""}</small></h3>
      <ul data-testid="todos">
        {todos.map((t) => (
          <li key={t.id}>
            <label><input type="checkbox" checked={t.done} onChange={(e) => setDone.mutate({ id: t.id, done: e.target.checked })} /> {t.title}</label>
          </li>
        ))}
      </ul>
      <form onSubmit={(e) => { e.preventDefault(); add.mutate({ list_id: listId, title }).then(() => setTitle("")); }}>
        <input aria-label="new todo" value={title} onChange={(e) => setTitle(e.target.value)} />
        <button type="submit" disabled={add.isPending}>Add</button>
      </form>
    </section>
  );
}

function Contact() {
  const form = useContactForm();
  const [sent, setSent] = useState(false);
  const field = (name: "name" | "email" | "message") => (
    <label>
      {name}
      {name === "message"
        ? <textarea aria-label={name} value={String(form.values[name] ?? "")} onChange={(e) => form.setValue(name, e.target.value)} />
        : <input aria-label={name} value={String(form.values[name] ?? "")} onChange={(e) => form.setValue(name, e.target.value)} />}
      {form.errors[name]?.map((m) => <span className="error" key={m} data-testid={`error-${name}`}>{m}</span>)}
    </label>
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    form.submit().then(() => setSent(true), (err) => { if (!(err instanceof MizanError)) throw err; });
  };
  return (
    <form onSubmit={submit}>
      <h2>Contact us</h2>
      {field("name")}
      {field("email")}
      <label>topic
        <select aria-label="topic" value={String(form.values.topic ?? "help")} onChange={(e) => form.setValue("topic", e.target.value as "help" | "sales")}>
          <option value="help">Help</option><option value="sales">Sales</option>
        </select>
      </label>
      {field("message")}
      <button type="submit" disabled={form.isPending}>Send</button>
      {sent && <p data-testid="sent">Thanks, we will write back.</p>}
    </form>
  );
}
