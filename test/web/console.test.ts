// The web console end to end in headless Chromium against the real server: the approval queue,
// reject with feedback while the next iteration streams in live, approve, the finished thread.
// Screenshots go to REFINERY_SCREENSHOTS or <tmpdir>/refinery-console-screenshots (logged).
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  browserSuiteTitle,
  launchChromium,
  skipBrowser,
  type Browser,
} from "../support/chromium.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const title = browserSuiteTitle("web console in Chromium");

const TASK = "What is 17 * 23 + 4?";
const FEEDBACK = "Explain why multiplication comes first.";

// Runs in the page (as a string: this TypeScript project has no DOM types). Records what the
// page shows the moment the second draft appears, and marks the window to detect a reload.
const WATCH_SECOND_DRAFT = `(() => {
  window.marker = true;
  const observer = new MutationObserver(() => {
    if (window.seen || !document.querySelector('article[data-iteration="2"]')) return;
    window.seen = {
      status: document.querySelector(".thread-head [data-status]")?.textContent,
      live: !document.querySelector(".live-pill")?.hasAttribute("hidden"),
      activity: Boolean(document.querySelector(".timeline .activity")),
      panel: Boolean(document.querySelector(".approval-panel")),
    };
    observer.disconnect();
  });
  observer.observe(document.getElementById("main"), { childList: true, subtree: true });
})()`;

interface ThreadBody {
  thread_id: string;
  status: string;
  values: { stopReason: string | null; answer: string | null; approvals: { action: string }[] };
}

describe.skipIf(skipBrowser)(title, () => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  let shots: string;
  const problems: string[] = [];
  const streams: string[] = [];

  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${s.url}${path}`, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    expect(res.status, `${method} ${path}`).toBe(200);
    return (await res.json()) as T;
  };

  const shot = async (name: string) => {
    const path = join(shots, `${name}.png`);
    // The sticky top bar would land mid-page in a full-page shot of a scrolled page.
    await page.evaluate("window.scrollTo(0, 0)");
    await page.screenshot({ path, fullPage: true });
    return path;
  };

  beforeAll(async () => {
    s = await startTestServer();
    // One fixed directory, overwritten by every run: easy to find, never piles up.
    shots = process.env.REFINERY_SCREENSHOTS ?? join(tmpdir(), "refinery-console-screenshots");
    mkdirSync(shots, { recursive: true });
    browser = await launchChromium({ width: 1400, height: 1000 });
    const { context } = browser;
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15_000);
    page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
    page.on("console", (m) => {
      // The browser logs every non-2xx fetch; the console shows those errors itself.
      if (m.type() === "error" && !m.text().startsWith("Failed to load resource"))
        problems.push(`console: ${m.text()}`);
    });
    page.on("request", (r) => {
      if (/\/runs\/[^/]+\/stream$/.test(new URL(r.url()).pathname)) streams.push(r.url());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await s?.close();
    if (shots) console.log(`web console screenshots: ${shots}`);
  });

  // Seed 3: the revision after the rejection differs from the draft, so a critique follows it
  // live before the next approval. Seed 1: the revision repeats the draft, so the run stops as
  // unchanged right after it; the page must still draw that draft as live (it once drew it after
  // leaving live mode, on a page still saying "busy" without the live marker).
  it.each([
    { seed: 3, how: "the run goes on after the revision" },
    { seed: 1, how: "the run ends right after the revision" },
  ])(
    "reviews a pending approval: reject with feedback, watch the next iteration live, approve ($how)",
    async ({ seed }) => {
      const thread = await api<ThreadBody>("POST", "/threads", {});
      await api("POST", `/threads/${thread.thread_id}/runs`, {
        assistant_id: "refine",
        input: { task: TASK },
        config: {
          configurable: {
            approval: { mode: "final" },
            // Latency makes each model call visible as a separate live step. With both seeds the
            // first draft is right, so the approval comes at iteration 1.
            models: { default: { provider: "simulated", simulated: { seed, latencyMs: 300 } } },
            verifiers: [{ kind: "answer_match", expected: 395 }],
          },
        },
        stream_mode: ["values", "updates", "custom"],
      });
      await expect
        .poll(async () => (await api<{ thread_id: string }[]>("GET", "/approvals")).length, {
          timeout: 15_000,
        })
        .toBe(1);

      // The threads page, reached through /ui (redirected to /ui/).
      await page.goto(`${s.url}/ui`);
      expect(new URL(page.url()).pathname).toBe("/ui/");
      await expect
        .poll(() => page.getByRole("heading", { level: 1 }).textContent())
        .toBe("Threads");
      const row = page.locator(`tr[data-thread="${thread.thread_id}"]`);
      await row.waitFor();
      expect(await row.locator("[data-status]").textContent()).toBe("interrupted");
      expect(await row.textContent()).toContain("simulated model");
      await shot("1-threads");

      // The queue, then the thread.
      await page.getByRole("link", { name: /^Approvals/ }).click();
      const card = page.locator(`.approval-card[data-thread="${thread.thread_id}"]`);
      await card.waitFor();
      expect(await card.textContent()).toContain(TASK);
      await shot("2-approvals");
      await card.getByRole("link", { name: /^Review/ }).click();
      const panel = page.getByRole("region", { name: "Awaiting your approval" });
      await panel.waitFor();
      expect(await page.locator("article.iteration").count()).toBe(1);
      expect(await page.locator("svg.graph g.node").count()).toBe(7);
      expect(await page.locator("svg.graph g.node.current text").first().textContent()).toBe(
        "approve",
      );
      await shot("3-thread-awaiting-approval");

      // The server's refusal is shown in place: whitespace is not feedback.
      await panel.getByRole("button", { name: "Reject with feedback…" }).click();
      const feedback = panel.getByLabel("Feedback for the next revision");
      await feedback.fill("   ");
      await panel.getByRole("button", { name: "Send feedback and revise" }).click();
      const alert = panel.getByRole("alert");
      await alert.waitFor();
      expect(await alert.textContent()).toMatch(/422 .*reject needs feedback/);
      await panel.screenshot({ path: join(shots, "3b-inline-error.png") });

      // The second draft must arrive while the run is still going (streamed), without a reload.
      await page.evaluate(WATCH_SECOND_DRAFT);
      await feedback.fill(FEEDBACK);
      await panel.getByRole("button", { name: "Send feedback and revise" }).click();
      await page.locator('article[data-iteration="2"]').waitFor();
      await shot("4-thread-live");
      const seen = await page.evaluate("window.seen");
      expect(seen).toEqual({ status: "busy", live: true, activity: true, panel: false });
      expect(streams.length).toBeGreaterThan(0);

      // The loop asks again on a later draft; the rejection is in the timeline.
      await page
        .getByRole("region", { name: "Awaiting your approval" })
        .waitFor({ timeout: 20_000 });
      expect(await page.locator(".thread-head [data-status]").textContent()).toBe("interrupted");
      expect(
        await page.locator('article[data-iteration="1"] .decisions-list').textContent(),
      ).toContain(FEEDBACK);
      expect(await page.locator("article.iteration").count()).toBeGreaterThan(1);
      expect(await page.locator(".feedback-list").textContent()).toContain(FEEDBACK);

      await page
        .getByRole("region", { name: "Awaiting your approval" })
        .getByRole("button", { name: "Approve" })
        .click();
      const answer = page.getByRole("region", { name: "Final answer" });
      await answer.waitFor({ timeout: 20_000 });
      expect(await page.locator(".thread-head [data-status]").textContent()).toBe("idle");
      expect(await page.locator(".thread-head [data-stop]").textContent()).toBe("stop: approved");
      expect(await answer.textContent()).toContain("395");
      expect(await page.getByRole("region", { name: "Awaiting your approval" }).count()).toBe(0);
      expect(await page.evaluate("window.marker")).toBe(true);
      await shot("5-thread-approved");

      const done = await api<ThreadBody>("GET", `/threads/${thread.thread_id}`);
      expect(done.status).toBe("idle");
      expect(done.values.stopReason).toBe("approved");
      expect(done.values.approvals.map((a) => a.action)).toEqual(["reject", "approve"]);

      // Back on the threads page the status filter finds it among the idle threads.
      const nav = page.getByRole("navigation", { name: "Main" });
      await nav.getByRole("link", { name: "Threads" }).click();
      await page.getByRole("link", { name: /^Idle/ }).click();
      await page.locator(`tr[data-thread="${thread.thread_id}"]`).waitFor();
      await nav.getByRole("link", { name: "Graphs" }).click();
      await page.locator("svg.graph").first().waitFor();
      await shot("6-graphs");

      expect(problems).toEqual([]);
    },
    60_000,
  );

  // Proactive: the critic doubted the first draft without naming anything, so it was asked once
  // to point at the wrong part; the page shows both critic calls and counts both in the tokens.
  // Seed 14 with this answer key: the follow-up names the error, the revision fixes it.
  it("shows a proactive follow-up critique (localize) with its own tokens", async () => {
    const task =
      "Tom reads 24 pages a day. How many days does he need to finish a book of 312 pages?";
    const thread = await api<ThreadBody>("POST", "/threads", {});
    await api("POST", `/threads/${thread.thread_id}/runs/wait`, {
      assistant_id: "refine",
      input: { task },
      config: {
        configurable: {
          strategy: "proactive",
          models: {
            default: {
              provider: "simulated",
              simulated: { seed: 14, answerKey: { [task]: "13" } },
            },
          },
          verifiers: [{ kind: "regex", mustMatch: ["^Answer: *-?[0-9]+ *$"], flags: "m" }],
        },
      },
    });
    const done = await api<{
      values: {
        stopReason: string;
        critiques: { iteration: number; usage: { totalTokens: number } }[];
        drafts: { iteration: number; usage: { totalTokens: number } }[];
        decisions: { node: string; action: string }[];
      };
    }>("GET", `/threads/${thread.thread_id}/state`);
    expect(done.values.decisions.map((d) => `${d.node}:${d.action}`)).toContain(
      "critique:localize",
    );
    const first = done.values.critiques.filter((c) => c.iteration === 1);
    expect(first).toHaveLength(2);

    await page.goto(`${s.url}/ui/#/threads/${encodeURIComponent(thread.thread_id)}`);
    const card = page.locator('article[data-iteration="1"]');
    await card.waitFor();
    const headings = await card.locator("section.critique h4").allTextContents();
    expect(headings).toEqual(["Critique", "Follow-up: asked to point at the wrong part"]);
    const draftTokens = done.values.drafts[0]?.usage.totalTokens ?? 0;
    const critiqueTokens = first.reduce((n, c) => n + c.usage.totalTokens, 0);
    expect(await card.locator(".iteration-title p").textContent()).toContain(
      `${(draftTokens + critiqueTokens).toLocaleString("en-US")} tokens`,
    );
    await card.locator("details.decisions summary").click();
    expect(await card.locator("details.decisions").textContent()).toContain("critique: localize");
    await shot("7-proactive-follow-up");
    expect(problems).toEqual([]);
  });
});
