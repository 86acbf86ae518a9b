// Headless Debian Chromium for the browser tests (web console, useStream page), driven by
// playwright-core. Where /usr/bin/chromium is absent the suites skip, except in CI: .ci/run
// installs it there, so a missing browser fails the launch loudly instead of skipping.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
