// examples/todo/web in a real browser (Debian's chromium via playwright-core)
// against a live mizan serving the built UI. Saves screenshots to SHOTS_DIR.
// Every error the UI can produce shows next to its field; lists load
// without ever showing another list's data; a logout reaches the other
// tab; axe-core finds nothing serious.
// usage: node spec/js/browser/todo.mjs BASE_URL SHOTS_DIR   (exit 0 on success)
import { chromium } from "playwright-core";
import { axe, launch, shot, step } from "./lib.mjs";

const [base, shots] = process.argv.slice(2);
const browser = await launch(chromium);
let ok = false, pages = [];
const label = (p, text) => p.getByLabel(text, { exact: true });
const button = (p, name) => p.getByRole("button", { name, exact: true });
const long = (n) => "x".repeat(n);

async function fill(p, values) {
  for (const [k, v] of Object.entries(values)) await label(p, k).fill(v);
}

try {
  const context = await browser.newContext();
  const a = await context.newPage();
  pages.push(a);
  await a.goto(base);

  await step("empty sign-up fields: each says why, next to it", async () => {
    await button(a, "Sign up").click();
    await a.getByTestId("error-username").getByText("must be at least 3 characters", { exact: false }).waitFor();
    await a.getByTestId("error-password").getByText("must be at least 8 characters", { exact: false }).waitFor();
    await axe(a, "sign-in page with errors");
    await shot(a, shots, "todo-1-empty-fields");
  });
  await step("too long", async () => {
    await fill(a, { Username: long(151), Password: "correct horse battery" });
    await button(a, "Sign up").click();
    await a.getByTestId("error-username").getByText("150", { exact: false }).waitFor();
    if (await a.getByTestId("error-password").count()) throw new Error("the password had no error");
  });
  await step("sign up", async () => {
    await fill(a, { Username: "alice", Password: "correct horse battery" });
    await button(a, "Sign up").click();
    await a.getByTestId("whoami").getByText("Signed in as alice").waitFor();
  });
  await step("log out, then a wrong password", async () => {
    await button(a, "Log out").click();
    await a.getByTestId("signed-out").waitFor();
    await fill(a, { Username: "alice", Password: "not the password" });
    await button(a, "Log in").click();
    await a.getByTestId("error-password").getByText("Please enter a correct username and password.").waitFor();
    await shot(a, shots, "todo-2-wrong-password");
  });
  await step("a username that is taken", async () => {
    await button(a, "Sign up").click();
    await a.getByTestId("error-username").getByText("A user with that username already exists.").waitFor();
    if (await a.getByTestId("error-password").count()) throw new Error("the login's error is still shown");
    await shot(a, shots, "todo-3-duplicate-username");
  });
  await step("log in", async () => {
    await fill(a, { Username: "alice", Password: "correct horse battery" });
    await button(a, "Log in").click();
    await a.getByTestId("whoami").waitFor();
  });
  await step("a list: empty and too-long names are refused next to the field", async () => {
    await button(a, "Add list").click();
    await a.getByTestId("error-new-list").getByText("at least 1", { exact: false }).waitFor();
    await label(a, "New list").fill(long(101));
    await button(a, "Add list").click();
    await a.getByTestId("error-new-list").getByText("100", { exact: false }).waitFor();
    await label(a, "New list").fill("Groceries");
    await button(a, "Add list").click();
    await a.getByTestId("summary").getByText("0 open, 0 done").waitFor();
    if (await a.getByTestId("error-new-list").count()) throw new Error("the error outlived the success");
  });
  await step("an empty todo is refused next to its field", async () => {
    await button(a, "Add").click();
    await a.getByTestId("error-new-todo").getByText("at least 1", { exact: false }).waitFor();
    await shot(a, shots, "todo-4-empty-todo");
  });

  // A second tab of the same user, loaded after the list exists: its first
  // page carries the global context (hydration), its lists come over HTTP.
  const b = await context.newPage();
  pages.push(b);
  await step("second tab: its lists come in the page (SSR of a named context), not over HTTP", async () => {
    await b.route("**/ctx/lists/**", (r) => r.abort()); // were they fetched, they would be missing
    await b.goto(base);
    await b.getByTestId("whoami").getByText("Signed in as alice").waitFor();
    await button(b, "Groceries").waitFor();
    await b.unrouteAll({ behavior: "wait" });
    await b.getByTestId("summary").getByText("0 open, 0 done").waitFor();
  });
  await step("a todo added in tab A appears in tab B without a reload", async () => {
    await label(a, "New todo").fill("Buy milk");
    await button(a, "Add").click();
    await a.getByTestId("todos").getByText("Buy milk").waitFor();
    await b.getByTestId("todos").getByText("Buy milk").waitFor({ timeout: 5000 });
    await b.getByTestId("summary").getByText("1 open, 0 done").waitFor();
    await shot(b, shots, "todo-5-tab-b-pushed");
  });

  await step("switching lists shows a loading state, never another list's data under this list's name", async () => {
    // record every moment the page shows a list's title over the other list's todos
    await a.evaluate(() => {
      const w = window;
      w.__mixed = [];
      const check = () => {
        const title = document.querySelector("[data-testid=list-title]")?.firstChild?.textContent ?? "";
        const todos = document.querySelector("[data-testid=todos]")?.textContent ?? "";
        if ((title.startsWith("Errands") && todos.includes("Buy milk")) || (title.startsWith("Groceries") && todos.includes("Post letter")))
          w.__mixed.push(title + " / " + todos);
      };
      new MutationObserver(check).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    // the new list's bundle answers late, so its loading state is there to see
    await a.route("**/ctx/todos/**", async (r) => { await new Promise((x) => setTimeout(x, 1500)); await r.continue(); });
    await label(a, "New list").fill("Errands");
    await button(a, "Add list").click();
    await a.getByTestId("todos-loading").getByText("Loading Errands").waitFor();
    await shot(a, shots, "todo-6-loading");
    await a.getByTestId("todos").getByText("Nothing here yet.").waitFor();
    await label(a, "New todo").fill("Post letter");
    await button(a, "Add").click();
    await a.getByTestId("todos").getByText("Post letter").waitFor();
    await button(a, "Groceries").click(); // cached: its own data at once, refreshed behind it
    await a.getByTestId("todos").getByText("Buy milk").waitFor();
    await button(a, "Errands").click();
    await a.getByTestId("todos").getByText("Post letter").waitFor();
    await a.unrouteAll({ behavior: "wait" });
    const mixed = await a.evaluate(() => window.__mixed);
    if (mixed.length) throw new Error("another list's data was shown: " + mixed.join("; "));
    await axe(a, "signed-in page");
  });

  await step("a bad email is refused by Zod in the browser, before any request", async () => {
    const sent = [];
    a.on("request", (r) => { if (r.url().includes("/call/contact.")) sent.push(r.url()); });
    await fill(a, { Name: "Alice", Email: "not-an-email", Message: "Hello there, a question." });
    await button(a, "Send").click();
    await a.getByTestId("error-email").getByText("Enter a valid email address.").waitFor();
    if (sent.length) throw new Error("the form was sent: " + sent.join(", "));
  });
  await step("then an error only the server knows", async () => {
    const sent = [];
    a.on("request", (r) => { if (r.url().includes("/call/contact.submit")) sent.push(r.url()); });
    await fill(a, { Email: "alice@example.com", Message: "Get free money now!" });
    await button(a, "Send").click();
    await a.getByTestId("error-message").getByText("This looks like spam.").waitFor();
    if (sent.length !== 1) throw new Error("expected one request to contact.submit, saw " + sent.length);
    await label(a, "Message").fill("A real question about lists.");
    await button(a, "Send").click();
    await a.getByTestId("sent").waitFor();
    await shot(a, shots, "todo-7-server-error-then-sent");
  });

  let elapsed = 0;
  await step("a logout in tab A signs tab B out", async () => {
    const t0 = Date.now();
    await button(a, "Log out").click();
    await b.getByTestId("signed-out").waitFor({ timeout: 5000 }); // bounded; the time is reported, not asserted
    elapsed = Date.now() - t0;
    if (await b.getByTestId("whoami").count()) throw new Error("tab B still says who is signed in");
    if (await b.getByTestId("todos").count()) throw new Error("tab B still shows the todos");
    await shot(b, shots, "todo-8-tab-b-signed-out");
  });
  ok = true;
  console.log(`browser todo: field errors, loading, push, logout to another tab (${elapsed} ms), axe: ok`);
} finally {
  if (!ok) for (const [i, p] of pages.entries()) await shot(p, shots, `todo-failed-tab-${i}`).catch(() => {});
  await browser.close();
}
