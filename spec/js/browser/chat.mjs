// examples/chat/web in a real browser: two browser contexts (two users, two
// sessions) chat with each other over the channel, live, with no reload.
// usage: node spec/js/browser/chat.mjs BASE_URL SHOTS_DIR   (exit 0 on success)
import { chromium } from "playwright-core";
import { launch, shot, step } from "./lib.mjs";

const [base, shots] = process.argv.slice(2);
const browser = await launch(chromium);
const pages = [];
let ok = false;
try {
  const join = async (name) => {
    const page = await (await browser.newContext()).newPage();
    pages.push(page);
    await page.goto(base);
    await page.getByLabel("username").fill(name);
    await page.getByRole("button", { name: "Join" }).click();
    await page.getByTestId("whoami").getByText(`Signed in as ${name}`).waitFor();
    await page.getByTestId("status").getByText("open").waitFor();
    return page;
  };
  const say = async (page, text) => {
    await page.getByLabel("message").fill(text);
    await page.getByRole("button", { name: "Send" }).click();
  };
  const ana = await step("ana joins", () => join("ana"));
  const ben = await step("ben joins", () => join("ben"));
  await step("ana's message reaches ben", async () => {
    await say(ana, "hello from ana");
    await ben.getByTestId("messages").getByText("hello from ana").waitFor({ timeout: 5000 });
  });
  await step("ben's answer reaches ana", async () => {
    await say(ben, "hi ana, ben here");
    await ana.getByTestId("messages").getByText("hi ana, ben here").waitFor({ timeout: 5000 });
    await shot(ana, shots, "chat-1-ana");
    await shot(ben, shots, "chat-2-ben");
  });
  await step("a newcomer sees the history", async () => {
    const cid = await join("cid");
    await cid.getByTestId("messages").getByText("hello from ana").waitFor();
    await shot(cid, shots, "chat-3-history");
  });
  ok = true;
  console.log("browser chat: two contexts chat both ways, history for a newcomer: ok");
} finally {
  if (!ok) for (const [i, p] of pages.entries()) await shot(p, shots, `chat-failed-${i}`).catch(() => {});
  await browser.close();
}
