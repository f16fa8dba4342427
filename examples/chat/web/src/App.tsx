// The chat UI: history from the "room" context, then live messages over the
// "chat" channel on the client's one WebSocket.
import { useState, type FormEvent } from "react";
import { RoomProvider, useAuthSignupMutation, useChatChannel, useCurrentUser, useHistory } from "./mizan/react";

export function App() {
  const user = useCurrentUser();
  return (
    <main>
      <h1>Mizan chat</h1>
      {user ? <p data-testid="whoami">Signed in as {user.username}</p> : <SignUp />}
      <RoomProvider room="lobby"><Room room="lobby" canSend={!!user} /></RoomProvider>
    </main>
  );
}

function SignUp() {
  const [username, setUsername] = useState("");
  const signup = useAuthSignupMutation();
  const go = (e: FormEvent) => { e.preventDefault(); signup.mutate({ username, password: username + " password" }); };
  return (
    <form onSubmit={go}>
      <label htmlFor="username">Username</label>
      <input id="username" value={username} onChange={(e) => setUsername(e.target.value)}
             aria-invalid={!!signup.error} aria-describedby={signup.error ? "username-error" : undefined} />
      <button type="submit" disabled={signup.isPending}>Join</button>
      {signup.error && <p className="error" id="username-error" data-testid="error-username">
        {(signup.error.fields.username ?? [signup.error.message]).join(" ")}</p>}
    </form>
  );
}

function Room({ room, canSend }: { room: string; canSend: boolean }) {
  const history = useHistory() ?? [];
  const live = useChatChannel({ room });
  const seen = new Set(history.map((m) => m.id));
  const messages = [...history, ...live.messages.filter((m) => !seen.has(m.id))];
  const [text, setText] = useState("");
  const send = (e: FormEvent) => { e.preventDefault(); live.send({ text }); setText(""); };
  return (
    <section>
      <h2>#{room} <small data-testid="status">{live.status}</small></h2>
      <ul data-testid="messages">
        {messages.map((m) => <li key={m.id}><b>{m.author}</b>: {m.text}</li>)}
      </ul>
      {canSend && (
        <form onSubmit={send}>
          <input aria-label="message" value={text} onChange={(e) => setText(e.target.value)} />
          <button type="submit">Send</button>
        </form>
      )}
      {live.error && <p role="alert">{live.error.message}</p>}
    </section>
  );
}
