// Shared by the browser specs: Debian's chromium, named steps, screenshots.
import { mkdirSync } from "node:fs";

export async function launch(chromium) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** Run one step; a failure says which step failed. Returns what fn returns. */
export async function step(name, fn) {
  try {
    return await fn();
  } catch (e) {
    throw new Error(`step "${name}": ${e.message}`);
  }
}

export async function shot(page, dir, name) {
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
}

/** axe-core (npm) on the page as it is: no serious or critical violation. */
export async function axe(page, what) {
  await page.addScriptTag({ path: new URL("../../../node_modules/axe-core/axe.min.js", import.meta.url).pathname });
  const found = await page.evaluate(async () => (await window.axe.run()).violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`));
  if (found.length) throw new Error(`axe on ${what}: ${found.join("; ")}`);
}
