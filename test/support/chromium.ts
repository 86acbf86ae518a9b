// Headless Debian Chromium for the browser tests (web console, useStream page), driven by
// playwright-core. Where /usr/bin/chromium is absent the suites skip, except in CI: .ci/run
// installs it there, so a missing browser fails the launch loudly instead of skipping.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { chromium, type BrowserContext } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";

export const skipBrowser = !existsSync(CHROMIUM) && !process.env.CI;

/** A suite's title, saying why it skips when it does. */
export function browserSuiteTitle(name: string): string {
  return skipBrowser
    ? `${name} (skipped: ${CHROMIUM} is absent; apt-get install -y chromium)`
    : name;
}

export interface Browser {
  context: BrowserContext;
  /** Closes the browser and removes its profile directory. */
  close(): Promise<void>;
}

/** Chromium with a fresh profile, quiet (no background networking, updates or sync). */
export async function launchChromium(viewport?: {
  width: number;
  height: number;
}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "refinery-chromium-"));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      ...(viewport ? { viewport } : {}),
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    return {
      context,
      close: async () => {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

/** A test page served on its own loopback port (another origin than the server's). */
export interface PageSite {
  url: string;
  close(): Promise<void>;
}

/**
 * Bundles a browser page's entry module with esbuild (React and the SDK included) and serves it as
 * `/` (a root div and the script) and `/app.js` on an ephemeral loopback port.
 */
export async function servePage(entry: string): Promise<PageSite> {
  const bundle = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
  });
  const js = bundle.outputFiles[0]!.text;
  const html =
    '<!doctype html><meta charset="utf-8"><div id="root"></div>' +
    '<script type="module" src="/app.js"></script>';
  const site = createServer((req, res) => {
    const isJs = req.url === "/app.js";
    res.writeHead(200, {
      "Content-Type": isJs ? "text/javascript" : "text/html",
      "Cache-Control": "no-store",
    });
    res.end(isJs ? js : html);
  });
  await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(site.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => site.close(() => resolve())),
  };
}
