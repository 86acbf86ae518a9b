// The official React hook `useStream` (@langchain/langgraph-sdk/react) in headless Chromium
// against the real server: a page built on it streams a refine run live, surfaces an interrupt and
// resumes it with command.resume, and after a reload in mid-run rejoins the run (reconnectOnMount)
// and ends with its final values. The page (test/fixtures/use-stream/app.js) is bundled with
// esbuild and served from a second loopback port, so every API call is a cross-origin fetch.
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  browserSuiteTitle,
  launchChromium,
  skipBrowser,
  type Browser,
  servePage,
  type PageSite,
} from "../support/chromium.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const title = browserSuiteTitle("useStream in Chromium");

const APP = join(import.meta.dirname, "../fixtures/use-stream/app.js");

describe.skipIf(skipBrowser)(title, () => {
  let s: TestServer;
  let site: PageSite | undefined;
  let siteUrl: string;
  let browser: Browser;
  const problems: string[] = [];

  beforeAll(async () => {
    site = await servePage(APP);
    siteUrl = site.url;
    // The page is another origin: the server lets it in by name (CORS is off by default).
    s = await startTestServer({ env: { REFINERY_CORS_ORIGINS: siteUrl } });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await s?.close();
  });

  /**
   * A fresh tab on the page for `graph` (new session storage: no thread yet). `submit` returns a
   * promise that settles when the run's stream ends, so the tests call it with `void`.
   */
  async function open(graph: string): Promise<Page> {
    const page = await browser.context.newPage();
    page.setDefaultTimeout(20_000);
    page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    await page.goto(`${siteUrl}/?api=${encodeURIComponent(s.url)}&graph=${graph}`);
    await page.waitForFunction("typeof window.submit === 'function'");
    return page;
  }

  const text = (page: Page, id: string) => page.locator(`#${id}`).textContent();
  const values = async <T>(page: Page) => JSON.parse((await text(page, "values")) ?? "null") as T;
  const idle = (page: Page) =>
    page.waitForFunction(
      "document.getElementById('loading').textContent === 'false' && " +
        "document.getElementById('thread').textContent !== ''",
    );

  it("streams a refine run into the page; its final values are the thread's state", async () => {
    const page = await open("refine");
    await page.evaluate(
      `void window.submit({ task: "What is 17 * 23 + 4?" }, { config: { configurable: {
        verifiers: [{ kind: "answer_match", expected: 395 }],
        models: { default: { provider: "simulated", simulated: { seed: 7, latencyMs: 50 } } },
      } } })`,
    );
    await page.waitForFunction("document.getElementById('loading').textContent === 'true'");
    await idle(page);
    expect(await text(page, "error")).toBe("");
    const shown = await values<{ answer: string; stopReason: string; drafts: unknown[] }>(page);
    const threadId = (await text(page, "thread"))!;
    const state = await s.client.threads.getState<typeof shown>(threadId);
    expect(shown).toEqual(state.values);
    expect(shown.answer).toMatch(/395/);
    // Streamed: the page rendered states before the final one (the input, then each step).
    const rendered = (await page.evaluate("window.rendered")) as { stopReason?: string }[];
    expect(rendered.length).toBeGreaterThan(3);
    expect(rendered[0]!.stopReason ?? null).toBeNull();
    expect(problems).toEqual([]);
    await page.close();
  });

  it("shows an interrupt and resumes it with command.resume", async () => {
    const page = await open("approval");
    await page.evaluate(`void window.submit({ topic: "t" })`);
    await page.waitForFunction("document.getElementById('interrupt').textContent !== ''");
    expect(JSON.parse((await text(page, "interrupt"))!)).toMatchObject({ question: "approve?" });
    const threadId = (await text(page, "thread"))!;
    expect((await s.client.threads.get(threadId)).status).toBe("interrupted");

    await page.evaluate(`void window.submit(undefined, { command: { resume: "yes" } })`);
    await page.waitForFunction("document.getElementById('interrupt').textContent === ''");
    await idle(page);
    expect(await values<{ log: string[] }>(page)).toMatchObject({
      log: ["draft:t", "review:yes", "publish:yes"],
    });
    expect((await s.client.threads.get(threadId)).status).toBe("idle");
    expect(problems).toEqual([]);
    await page.close();
  });

  it("rejoins a run after a reload in mid-run (reconnectOnMount) and ends with its values", async () => {
    const page = await open("slow");
    await page.evaluate(`void window.submit({ topic: "reload", delayMs: 600 })`);
    // Reload once the first node's update has been rendered: the run is in flight.
    await page.waitForFunction(
      "(JSON.parse(document.getElementById('values').textContent)?.log ?? []).length >= 1",
    );
    const threadId = (await text(page, "thread"))!;
    const [run] = await s.client.runs.list(threadId);
    expect(run?.status).toBe("running");
    const joins: string[] = [];
    page.on("request", (r) => {
      const url = new URL(r.url());
      if (r.method() === "GET" && url.pathname.endsWith("/stream")) joins.push(url.pathname);
    });
    await page.reload();
    // The same thread, rejoined: the page ends with all three steps without a new submit.
    await page.waitForFunction(
      "(JSON.parse(document.getElementById('values').textContent)?.log ?? []).length === 3",
    );
    await idle(page);
    expect(await text(page, "thread")).toBe(threadId);
    expect(await values<{ log: string[] }>(page)).toMatchObject({ log: ["one", "two", "three"] });
    // It rejoined the run's stream (GET .../runs/{run_id}/stream) instead of starting another.
    expect(joins).toEqual([`/threads/${threadId}/runs/${run!.run_id}/stream`]);
    // One run, not cancelled by the reload, not started twice.
    const runs = await s.client.runs.list(threadId);
    expect(runs.map((r) => r.status)).toEqual(["success"]);
    expect(problems).toEqual([]);
    await page.close();
  });
});
