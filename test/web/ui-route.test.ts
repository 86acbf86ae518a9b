// Serving the web console: /ui/ and its files with a strict CSP, /ui redirected to /ui/, a
// browser at / sent to the console, API clients at / still answered with JSON.
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEB_DIR } from "../../server/routes/ui.ts";
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

describe("GET /ui", () => {
  it("serves the console page with a same-origin-only CSP", async () => {
    const res = await fetch(`${s.url}/ui/`);
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
      const res = await fetch(`${s.url}/ui/${file}`);
      expect(res.status, file).toBe(200);
      const ext = file.split(".").pop() ?? "";
      expect(res.headers.get("content-type"), file).toMatch(types[ext] ?? /./);
      const text = await res.text();
      if (ext === "js")
        for (const [, spec] of text.matchAll(/^import .* from "([^"]+)";$/gm))
          expect(spec, `${file} imports ${spec}`).toMatch(/^\.\.?\//);
    }
  });

  it("redirects /ui to /ui/ (relatively, so a path prefix survives) and keeps the query", async () => {
    const res = await fetch(`${s.url}/ui?x=1`, { redirect: "manual" });
    expect(res.status).toBe(301);
    expect(res.headers.get("location")).toBe("ui/?x=1");
  });

  it("sends a browser at / to the console; an API client still gets a JSON 404", async () => {
    const browser = await fetch(`${s.url}/`, {
      redirect: "manual",
      headers: { Accept: "text/html,application/xhtml+xml,*/*;q=0.8" },
    });
    expect(browser.status).toBe(302);
    expect(browser.headers.get("location")).toBe("ui/");
    const client = await fetch(`${s.url}/`, { headers: { Accept: "application/json" } });
    expect(client.status).toBe(404);
    expect(await client.json()).toMatchObject({ error: "not_found" });
  });

  it("answers an unknown console file with the API's 404", async () => {
    const res = await fetch(`${s.url}/ui/nope.js`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "not_found" });
  });
});
