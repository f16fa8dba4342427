// The todo UI: every read comes from a context (cached by the client), every
// write is a mutation whose invalidation refreshes what it touched, here and
// in other tabs. Every error shows next to the field it is about: the
// server's field errors by name, the rest under the form's main field.
import { useEffect, useRef, useState, type FormEvent, type InputHTMLAttributes } from "react";
import {
  ListsProvider, MizanError, TodosProvider, useAddTodoMutation, useAuthLoginMutation, useAuthLogoutMutation,
  useAuthSignupMutation, useContactForm, useCreateListMutation, useCurrentUser, useListsContext, useSetDoneMutation,
  useTodosContext,
} from "./mizan/react";

export function App() {
  const user = useCurrentUser();
  // signed in, then not: a logout here or in another tab (the server pushed it)
  const had = useRef(false);
  const [signedOut, setSignedOut] = useState(false);
  useEffect(() => {
    if (user) { had.current = true; setSignedOut(false); } else if (had.current) { had.current = false; setSignedOut(true); }
  }, [user]);
  return (
    <main>
      <h1>Mizan todo</h1>
      {user ? (
        <>
          <p className="who" data-testid="whoami">Signed in as {user.username} <Logout /></p>
          <ListsProvider><Lists /></ListsProvider>
        </>
      ) : <SignIn signedOut={signedOut} />}
      <Contact />
    </main>
  );
}

/** The messages for one field: its own, or (for the form's main field) what names no field. */
export function messagesFor(error: MizanError | undefined, field: string, main = false): string[] {
  if (!error) return [];
  const own = error.fields[field];
  if (own?.length) return own;
  if (!main) return [];
  if (error.fields.__all__?.length) return error.fields.__all__;
  return Object.keys(error.fields).length ? [] : [error.message];
}

type FieldProps = { id: string; label: string; messages: string[] } & InputHTMLAttributes<HTMLInputElement>;

function Field({ id, label, messages, ...input }: FieldProps) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} aria-invalid={messages.length > 0} aria-describedby={messages.length ? id + "-error" : undefined} {...input} />
      {messages.length > 0 && <p className="error" id={id + "-error"} data-testid={"error-" + id}>{messages.join(" ")}</p>}
    </div>
  );
}

function SignIn({ signedOut }: { signedOut: boolean }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const signup = useAuthSignupMutation();
  const login = useAuthLoginMutation();
  const [last, setLast] = useState<"login" | "signup">("login");
  const error = (last === "signup" ? signup : login).error;
  const go = (which: "login" | "signup") => (e: FormEvent) => {
    e.preventDefault();
    setLast(which);
    const [m, other] = which === "login" ? [login, signup] : [signup, login];
    other.reset();
    m.mutate({ username, password });
  };
  const busy = signup.isPending || login.isPending;
  return (
    <form className="card" onSubmit={go("login")} noValidate>
      <h2>Sign in</h2>
      {signedOut && <p role="status" className="notice" data-testid="signed-out">You are signed out.</p>}
      <Field id="username" label="Username" autoComplete="username" value={username}
             onChange={(e) => setUsername(e.target.value)} messages={messagesFor(error, "username")} />
      <Field id="password" label="Password" type="password" autoComplete="current-password" value={password}
             onChange={(e) => setPassword(e.target.value)} messages={messagesFor(error, "password", true)} />
      <div className="actions">
        <button type="submit" disabled={busy}>Log in</button>
        <button type="button" className="secondary" disabled={busy} onClick={go("signup")}>Sign up</button>
      </div>
    </form>
  );
}

function Logout() {
  const logout = useAuthLogoutMutation();
  return (
    <>
      <button className="secondary" onClick={() => logout.mutate({})} disabled={logout.isPending}>Log out</button>
      {logout.error && <span className="error" data-testid="error-logout">{logout.error.message}</span>}
    </>
  );
}

function Lists() {
  const ctx = useListsContext();
  const lists = ctx.data?.my_lists ?? [];
  const [current, setCurrent] = useState<number | undefined>(undefined);
  const [name, setName] = useState("");
  const create = useCreateListMutation({ onSuccess: (l) => { setName(""); setCurrent(l.id); } });
  const selected = lists.find((l) => l.id === current) ?? lists[0];
  return (
    <section className="card">
      <h2>Lists {ctx.isFetching && <small className="muted" role="status">refreshing…</small>}</h2>
      {ctx.loading && <p role="status" data-testid="lists-loading">Loading lists…</p>}
      {ctx.error && <p className="error" data-testid="error-lists">{ctx.error.message}</p>}
      <ul className="tabs">
        {lists.map((l) => (
          <li key={l.id}><button onClick={() => setCurrent(l.id)} aria-pressed={l.id === selected?.id}>{l.name}</button></li>
        ))}
      </ul>
      <form className="row" onSubmit={(e) => { e.preventDefault(); create.mutate({ name }); }} noValidate>
        <Field id="new-list" label="New list" value={name} onChange={(e) => setName(e.target.value)}
               messages={messagesFor(create.error, "name", true)} />
        <button type="submit" disabled={create.isPending}>Add list</button>
      </form>
      {selected && <TodosProvider list_id={selected.id}><Todos listId={selected.id} name={selected.name} /></TodosProvider>}
    </section>
  );
}

function Todos({ listId, name }: { listId: number; name: string }) {
  const ctx = useTodosContext(); // this list's bundle only: while it loads there is no data, never another list's
  const todos = ctx.data?.todo_list;
  const summary = ctx.data?.todo_summary;
  const [title, setTitle] = useState("");
  const add = useAddTodoMutation({ onSuccess: () => setTitle("") });
  const setDone = useSetDoneMutation();
  return (
    <section aria-labelledby="list-title">
      <h3 id="list-title" data-testid="list-title">{name}{" "}
        <small data-testid="summary">{summary ? `${summary.open} open, ${summary.done} done` : ""}</small>
        {ctx.isFetching && !ctx.loading && <small className="muted" role="status"> refreshing…</small>}
      </h3>
      {ctx.loading && <p role="status" data-testid="todos-loading">Loading {name}…</p>}
      {ctx.error && <p className="error" data-testid="error-todos">{ctx.error.message}</p>}
      {todos && (
        <ul className="todos" data-testid="todos">
          {todos.map((t) => (
            <li key={t.id}>
              <label><input type="checkbox" checked={t.done} onChange={(e) => setDone.mutate({ id: t.id, done: e.target.checked })} /> {t.title}</label>
            </li>
          ))}
          {todos.length === 0 && <li className="muted">Nothing here yet.</li>}
        </ul>
      )}
      {setDone.error && <p className="error" data-testid="error-done">{setDone.error.message}</p>}
      <form className="row" onSubmit={(e) => { e.preventDefault(); add.mutate({ list_id: listId, title }); }} noValidate>
        <Field id="new-todo" label="New todo" value={title} onChange={(e) => setTitle(e.target.value)}
               messages={messagesFor(add.error, "title", true)} />
        <button type="submit" disabled={add.isPending}>Add</button>
      </form>
    </section>
  );
}

function Contact() {
  const form = useContactForm();
  const [sent, setSent] = useState(false);
  const [failed, setFailed] = useState<string | undefined>(undefined);
  const field = (name: "name" | "email" | "message", label: string) => {
    const messages = form.errors[name] ?? [];
    const props = {
      id: "contact-" + name, value: String(form.values[name] ?? ""), "aria-invalid": messages.length > 0,
      "aria-describedby": messages.length ? `contact-${name}-error` : undefined,
    };
    return (
      <div className="field">
        <label htmlFor={props.id}>{label}</label>
        {name === "message"
          ? <textarea {...props} onChange={(e) => form.setValue(name, e.target.value)} />
          : <input {...props} onChange={(e) => form.setValue(name, e.target.value)} />}
        {messages.length > 0 && <p className="error" id={`contact-${name}-error`} data-testid={`error-${name}`}>{messages.join(" ")}</p>}
      </div>
    );
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setFailed(undefined);
    form.submit().then(() => setSent(true), (err) => {
      if (!(err instanceof MizanError)) throw err;
      if (!Object.keys(err.fields).length) setFailed(err.message); // no field to put it next to
    });
  };
  return (
    <form className="card" onSubmit={submit} noValidate>
      <h2>Contact us</h2>
      {field("name", "Name")}
      {field("email", "Email")}
      <div className="field">
        <label htmlFor="contact-topic">Topic</label>
        <select id="contact-topic" value={String(form.values.topic ?? "help")} onChange={(e) => form.setValue("topic", e.target.value as "help" | "sales")}>
          <option value="help">Help</option><option value="sales">Sales</option>
        </select>
      </div>
      {field("message", "Message")}
      <button type="submit" disabled={form.isPending}>Send</button>
      {failed && <p className="error" data-testid="error-contact">{failed}</p>}
      {sent && <p role="status" data-testid="sent">Thanks, we will write back.</p>}
    </form>
  );
}
