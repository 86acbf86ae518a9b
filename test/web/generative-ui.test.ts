// Generative UI end to end: the official LoadExternalComponent (@langchain/langgraph-sdk/react-ui)
// on a page of another origin, in headless Chromium, loads the echo graph's component from our
// server (POST /ui/echo, then the bundle's script and stylesheet) and renders it into its shadow
// root with the page's own React: state works across the bundle (a click counts) and the
// bundle's stylesheet applies. The page (test/fixtures/use-stream/external-component.js) is
// bundled with esbuild and served from a second loopback port.
import { join } from "node:path";
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

const title = browserSuiteTitle("generative UI with LoadExternalComponent in Chromium");
const PAGE = join(import.meta.dirname, "../fixtures/use-stream/external-component.js");
const APP = join(import.meta.dirname, "../fixtures/platform-app/langgraph.json");

describe.skipIf(skipBrowser)(title, () => {
  let s: TestServer;
  let site: PageSite | undefined;
  let siteUrl: string;
  let browser: Browser;

  beforeAll(async () => {
    site = await servePage(PAGE);
    siteUrl = site.url;
    s = await startTestServer({ configPath: APP, env: { REFINERY_CORS_ORIGINS: siteUrl } });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await s?.close();
  });

  it("loads the component from the server and renders it with the page's React", async () => {
    const problems: string[] = [];
    const requests: string[] = [];
    const page = await browser.context.newPage();
    page.setDefaultTimeout(20_000);
    page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    page.on("request", (r) => {
      if (r.url().startsWith(s.url)) requests.push(`${r.method()} ${new URL(r.url()).pathname}`);
    });
    await page.goto(`${siteUrl}/?api=${encodeURIComponent(s.url)}`);
    const reply = page.getByTestId("reply");
    await expect.poll(() => reply.textContent()).toBe("echo:hi");
    expect(await page.locator("#fallback").count()).toBe(0);
    // One React: the component's useState works inside the page's tree.
    const button = page.getByRole("button");
    await button.click();
    await button.click();
    await expect.poll(() => button.textContent()).toBe("clicked 2");
    // The bundle's stylesheet reached the shadow root.
    const border = await page
      .locator(".greeting")
      .evaluate(
        (el) =>
          (
            globalThis as unknown as { getComputedStyle(e: unknown): { borderTopColor: string } }
          ).getComputedStyle(el).borderTopColor,
      );
    expect(border).toBe("rgb(0, 128, 0)");
    expect(requests).toEqual(
      expect.arrayContaining([
        "POST /ui/echo",
        "GET /ui/echo/entrypoint.js",
        "GET /ui/echo/entrypoint.css",
      ]),
    );
    expect(problems).toEqual([]);
    await page.close();
  });
});
