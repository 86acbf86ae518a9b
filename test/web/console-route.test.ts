// Serving the web console: /console/ and its files with a strict CSP, /console redirected to
// /console/, a browser at / or at the console's old address /ui/ sent to the console, API
// clients at / and /ui/ still answered with JSON.
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEB_DIR } from "../../server/routes/console.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : [relative(WEB_DIR, join(dir, e.name))],
  );

describe("GET /console", () => {
  it("serves the console page with a same-origin-only CSP", async () => {
    const res = await fetch(`${s.url}/console/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const html = await res.text();
    expect(html).toContain('<script type="module" src="./app.js">');
    // No CDN: nothing the page references leaves the server.
    expect(html).not.toMatch(/(src|href)="https?:/);
  });

  it("serves every file of web/ with its type, and modules only import relative paths", async () => {
    const types: Record<string, RegExp> = {
      js: /^text\/javascript/,
      css: /^text\/css/,
      svg: /^image\/svg\+xml/,
      html: /^text\/html/,
    };
    for (const file of files(WEB_DIR)) {
      const res = await fetch(`${s.url}/console/${file}`);
      expect(res.status, file).toBe(200);
      const ext = file.split(".").pop() ?? "";
      expect(res.headers.get("content-type"), file).toMatch(types[ext] ?? /./);
      const text = await res.text();
      if (ext === "js")
        for (const [, spec] of text.matchAll(/^import .* from "([^"]+)";$/gm))
          expect(spec, `${file} imports ${spec}`).toMatch(/^\.\.?\//);
    }
  });

  it("redirects /console to /console/ (relatively, so a path prefix survives) and keeps the query", async () => {
    const res = await fetch(`${s.url}/console?x=1`, { redirect: "manual" });
    expect(res.status).toBe(301);
    expect(res.headers.get("location")).toBe("console/?x=1");
  });

  it("sends a browser at the old address /ui or /ui/ to /console/; API clients are not redirected", async () => {
    const html = { Accept: "text/html,application/xhtml+xml,*/*;q=0.8" };
    const slash = await fetch(`${s.url}/ui/?x=1`, { redirect: "manual", headers: html });
    expect(slash.status).toBe(301);
    expect(slash.headers.get("location")).toBe("../console/?x=1");
    const bare = await fetch(`${s.url}/ui`, { redirect: "manual", headers: html });
    expect(bare.status).toBe(301);
    expect(bare.headers.get("location")).toBe("console/");
    // Followed, the old bookmark ends on the console page.
    const followed = await fetch(`${s.url}/ui/`, { headers: html });
    expect(new URL(followed.url).pathname).toBe("/console/");
    expect(await followed.text()).toContain('<script type="module" src="./app.js">');
    const client = await fetch(`${s.url}/ui/`, {
      redirect: "manual",
      headers: { Accept: "application/json" },
    });
    expect(client.status).toBe(404);
    // The old address serves no console files any more (/ui/ is generative UI's).
    expect((await fetch(`${s.url}/ui/app.js`, { redirect: "manual" })).status).toBe(404);
  });

  it("sends a browser at / to the console; an API client still gets a JSON 404", async () => {
    const browser = await fetch(`${s.url}/`, {
      redirect: "manual",
      headers: { Accept: "text/html,application/xhtml+xml,*/*;q=0.8" },
    });
    expect(browser.status).toBe(302);
    expect(browser.headers.get("location")).toBe("console/");
    const client = await fetch(`${s.url}/`, { headers: { Accept: "application/json" } });
    expect(client.status).toBe(404);
    expect(await client.json()).toMatchObject({ error: "not_found" });
  });

  it("answers an unknown console file with the API's 404", async () => {
    const res = await fetch(`${s.url}/console/nope.js`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "not_found" });
  });
});
