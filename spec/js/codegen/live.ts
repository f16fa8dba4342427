// Shared by the live Vitest suites (copied next to them into a generated client).

/** Node's fetch keeps no cookies: a jar per signed-in client. */
export interface Jar { cookie: string; fetch: typeof fetch }

export function cookieJar(): Jar {
  const jar: Jar = {
    cookie: "",
    fetch: async (url, init = {}) => {
      const res = await fetch(url, { ...init, headers: { ...(init.headers as Record<string, string> ?? {}), cookie: jar.cookie } });
      const set = res.headers.getSetCookie();
      if (set.length) jar.cookie = set.map((c) => c.split(";")[0]).join("; ");
      return res;
    },
  };
  return jar;
}

/** Resolve once f() holds (polled), or fail after 5 s. */
export const until = (f: () => boolean) => new Promise<void>((resolve, reject) => {
  const give = setTimeout(() => { clearInterval(t); reject(new Error("timed out")); }, 5000);
  const t = setInterval(() => { if (f()) { clearInterval(t); clearTimeout(give); resolve(); } }, 10);
});
