// examples/todo/web in a real browser (Debian's chromium via playwright-core)
// against a live mizan serving the built UI. Saves screenshots to SHOTS_DIR.
// usage: node spec/js/browser/todo.mjs BASE_URL SHOTS_DIR   (exit 0 on success)
import { chromium } from "playwright-core";
import { launch, shot, step } from "./lib.mjs";

const [base, shots] = process.argv.slice(2);
const browser = await launch(chromium);
let ok = false, pages = [];
try {
  const context = await browser.newContext();
  const a = await context.newPage();
  pages.push(a);
  await a.goto(base);

  await step("sign up", async () => {
    await a.getByLabel("username").fill("alice");
    await a.getByLabel("password").fill("correct horse battery");
    await a.getByRole("button", { name: "Sign up" }).click();
    await a.getByTestId("whoami").getByText("Signed in as alice").waitFor();
  });
  await step("log out and log in again", async () => {
    await a.getByRole("button", { name: "Log out" }).click();
    await a.getByLabel("username").fill("alice");
    await a.getByLabel("password").fill("correct horse battery");
    await a.getByRole("button", { name: "Log in" }).click();
    await a.getByTestId("whoami").waitFor();
  });
  await step("make a list", async () => {
    await a.getByLabel("new list").fill("Groceries");
    await a.getByRole("button", { name: "Add list" }).click();
    await a.getByTestId("summary").getByText("0 open, 0 done").waitFor();
  });

  // A second tab of the same user, loaded after the list exists: its first
  // page carries the global context (hydration), its lists come over HTTP.
  const b = await context.newPage();
  pages.push(b);
  await step("second tab", async () => {
    await b.goto(base);
    await b.getByTestId("whoami").getByText("Signed in as alice").waitFor();
    await b.getByTestId("summary").getByText("0 open, 0 done").waitFor();
    await shot(b, shots, "todo-1-second-tab");
  });
  await step("a todo added in tab A appears in tab B without a reload", async () => {
    await a.getByLabel("new todo").fill("Buy milk");
    await a.getByRole("button", { name: "Add", exact: true }).click();
    await a.getByTestId("todos").getByText("Buy milk").waitFor();
    await b.getByTestId("todos").getByText("Buy milk").waitFor({ timeout: 5000 });
    await b.getByTestId("summary").getByText("1 open, 0 done").waitFor();
    await shot(a, shots, "todo-2-tab-a");
    await shot(b, shots, "todo-3-tab-b-pushed");
  });

  await step("a bad email is refused by Zod in the browser, before any request", async () => {
    const sent = [];
    a.on("request", (r) => { if (r.url().includes("/call/contact.")) sent.push(r.url()); });
    await a.getByLabel("name").fill("Alice");
    await a.getByLabel("email").fill("not-an-email");
    await a.getByLabel("message").fill("Hello there, a question.");
    await a.getByRole("button", { name: "Send" }).click();
    await a.getByTestId("error-email").getByText("Enter a valid email address.").waitFor();
    if (sent.length) throw new Error("the form was sent: " + sent.join(", "));
    await shot(a, shots, "todo-4-zod-error");
  });
  await step("then an error only the server knows", async () => {
    const sent = [];
    a.on("request", (r) => { if (r.url().includes("/call/contact.submit")) sent.push(r.url()); });
    await a.getByLabel("email").fill("alice@example.com");
    await a.getByLabel("message").fill("Get free money now!");
    await a.getByRole("button", { name: "Send" }).click();
    await a.getByTestId("error-message").getByText("This looks like spam.").waitFor();
    if (sent.length !== 1) throw new Error("expected one request to contact.submit, saw " + sent.length);
    await a.getByLabel("message").fill("A real question about lists.");
    await a.getByRole("button", { name: "Send" }).click();
    await a.getByTestId("sent").waitFor();
    await shot(a, shots, "todo-5-server-error-then-sent");
  });
  ok = true;
  console.log("browser todo: sign up, log in, push to a second tab, Zod, server errors: ok");
} finally {
  if (!ok) for (const [i, p] of pages.entries()) await shot(p, shots, `todo-failed-tab-${i}`).catch(() => {});
  await browser.close();
}
