// The web console on a server with API keys, in headless Chromium: it asks for a key, refuses a
// wrong one, shows only the signed-in tenant's threads, follows a live run over SSE with the key
// on every request (never in a URL), and signs out.
import type { Page, Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUTH_CONFIG, keyHeaders, keyOf, keysEnv, sdkClient } from "../support/auth.ts";
import {
  browserSuiteTitle,
  launchChromium,
  skipBrowser,
  type Browser,
} from "../support/chromium.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const title = browserSuiteTitle("web console with API keys in Chromium");

describe.skipIf(skipBrowser)(title, () => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  const requests: Request[] = [];
  const problems: string[] = [];

  beforeAll(async () => {
    s = await startTestServer({
      configPath: AUTH_CONFIG,
      env: { REFINERY_API_KEYS: keysEnv(["acme", "beta"]) },
    });
    browser = await launchChromium({ width: 1200, height: 900 });
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.setDefaultTimeout(15_000);
    page.on("request", (r) => requests.push(r));
    page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  });

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  const apiRequests = () =>
    requests.filter((r) => !new URL(r.url()).pathname.startsWith("/console/"));

  it("asks for a key, refuses a wrong one, and shows nothing before", async () => {
    await page.goto(`${s.url}/console/`);
    await page.waitForSelector("form.sign-in #credential");
    expect(await page.locator("[data-thread]").count()).toBe(0);
    await page.fill("#credential", "not-a-key-of-this-server-at-all");
    await page.click("form.sign-in button[type=submit]");
    await page.waitForSelector("form.sign-in [role=alert]:not([hidden])");
    expect(await page.textContent("form.sign-in [role=alert]")).toMatch(/not accepted/);
  });

  it("signed in, shows the tenant's own threads only and follows a live run over SSE", async () => {
    const acme = sdkClient(s.url, keyHeaders("acme"));
    const beta = sdkClient(s.url, keyHeaders("beta"));
    const theirs = await beta.threads.create();
    await beta.runs.wait(theirs.thread_id, "refine", { input: { task: "Beta's private task" } });
    const mine = await acme.threads.create();
    await page.fill("#credential", keyOf("acme", "member"));
    await page.click("form.sign-in button[type=submit]");
    await page.waitForSelector(`[data-thread="${mine.thread_id}"]`);
    expect(await page.locator(`[data-thread="${theirs.thread_id}"]`).count()).toBe(0);
    expect(await page.textContent("main")).not.toContain("Beta's private task");

    // A run whose model calls take a while: the thread page follows it live.
    const run = await acme.runs.create(mine.thread_id, "refine", {
      input: { task: "What is 6 * 7?" },
      config: {
        configurable: {
          maxIterations: 2,
          models: { default: { provider: "simulated", simulated: { latencyMs: 400 } } },
        },
      },
    });
    await page.goto(`${s.url}/console/#/threads/${mine.thread_id}`);
    await page.waitForSelector('.thread-head [data-status="busy"]');
    await page.waitForSelector('.thread-head [data-status="idle"]', { timeout: 30_000 });
    const streams = apiRequests().filter((r) => r.url().endsWith(`/runs/${run.run_id}/stream`));
    expect(streams.length).toBeGreaterThan(0);
    for (const r of streams) {
      expect(r.headers().authorization).toBe(`Bearer ${keyOf("acme", "member")}`);
      expect((await r.response())?.status()).toBe(200);
    }
    expect(await page.textContent("main")).toMatch(/42/);
  });

  it("sends the key on every API request and never in a URL", () => {
    const signedIn = apiRequests().filter((r) => r.headers().authorization);
    expect(signedIn.length).toBeGreaterThan(3);
    for (const r of apiRequests()) {
      expect(r.url()).not.toContain(keyOf("acme", "member"));
      expect(r.url()).not.toContain("not-a-key-of-this-server");
    }
  });

  it("signs out: the key is forgotten and the sign-in form is back", async () => {
    await page.click("#sign-out");
    await page.waitForSelector("form.sign-in #credential");
    const stored = await page.evaluate(
      "[sessionStorage.getItem('refinery.credential'), localStorage.getItem('refinery.credential')]",
    );
    expect(stored).toEqual([null, null]);
    await page.reload();
    await page.waitForSelector("form.sign-in #credential");
    expect(problems).toEqual([]);
  });
});
