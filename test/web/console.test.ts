// The web console end to end in headless Chromium against the real server: the approval queue,
// reject with feedback while the next iteration streams in live, approve, the finished thread;
// an approved answer that fails a hard check an earlier draft passed; cancelling a busy thread;
// search, filters and pages past 100 threads; the chart, run options and graph drawing; and no
// horizontal overflow on a 390 px wide screen.
// Screenshots go to REFINERY_SCREENSHOTS or <tmpdir>/refinery-console-screenshots (logged).
import { mkdirSync, readFileSync } from "node:fs";
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
import { roleOf, startOpenAIStub, type OpenAIStub } from "../support/openai-stub.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// Tasks the OpenAI-compatible stub answers (the other tests name the simulated model).
// A long unbroken word (a pasted URL) must wrap, not widen the page on a phone.
const LONG_URL = `https://example.com/${"averyverylongpathsegment".repeat(8)}`;
const REGRESSES = `${LONG_URL} says: what is 3 + 3?`;
const SLOW = "Take your time: what is 5 + 5?";

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
  let stub: OpenAIStub;
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
    stub = await startOpenAIStub();
    let revisions = 0;
    stub.setHandler((body) => {
      const text = JSON.stringify(body.messages ?? []);
      const role = roleOf(body);
      if (text.includes(SLOW)) return { delayMs: 60_000, content: "Answer: 10" };
      if (role === "critique") return { content: '{"verdict":"pass","score":0.9,"issues":[]}' };
      // A right first draft, then revisions that are wrong.
      if (role === "generate") return { content: "3 + 3 = 6\nAnswer: 6" };
      return { content: `Revision ${++revisions}: 3 + 3 = 7\nAnswer: 7` };
    });
    s = await startTestServer({
      env: { OPENAI_API_KEY: "test-key", OPENAI_BASE_URL: stub.url, REFINERY_MODEL: "stub-model" },
    });
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
    await stub?.close();
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

      // The threads page, reached through the console's old address (a bookmark of /ui/ is
      // redirected to /console/).
      await page.goto(`${s.url}/ui/`);
      expect(new URL(page.url()).pathname).toBe("/console/");
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

    await page.goto(`${s.url}/console/#/threads/${encodeURIComponent(thread.thread_id)}`);
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

  it("says an approved answer fails a hard check an earlier draft passed; chart, options, graph labels; cancel; filters and pages; 390 px", async () => {
    // Item 10's story: draft 1 is right, a reviewer rejects it, the revisions are wrong.
    const assistant = await api<{ assistant_id: string }>("POST", "/assistants", {
      graph_id: "refine",
      name: "Regress reviewer",
    });
    const thread = await api<ThreadBody>("POST", "/threads", {});
    const tid = thread.thread_id;
    await api("POST", `/threads/${tid}/runs/wait`, {
      assistant_id: assistant.assistant_id,
      input: { task: REGRESSES },
      config: {
        configurable: {
          approval: { mode: "final" },
          maxIterations: 3,
          verifiers: [{ kind: "answer_match", id: "answer", expected: 6 }],
          retry: { retries: 0 },
        },
      },
    });
    await api("POST", `/threads/${tid}/runs/wait`, {
      assistant_id: assistant.assistant_id,
      command: { resume: { action: "reject", feedback: `show your working, as ${LONG_URL} does` } },
    });

    // No horizontal overflow on a phone, on the list (the queue shows the long task) and the
    // thread page (approval panel, timeline, graph).
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = () => page.evaluate("document.scrollingElement.scrollWidth");
    await page.goto(`${s.url}/console/#/`);
    await page.locator(`tr[data-thread="${tid}"]`).waitFor();
    await page.locator(".mini-list li").first().waitFor();
    expect(await overflow()).toBeLessThanOrEqual(390);
    await shot("8-threads-390");
    await page.goto(`${s.url}/console/#/threads/${tid}`);
    await page.getByRole("region", { name: "Awaiting your approval" }).waitFor();
    await page.locator("svg.graph").waitFor();
    expect(await overflow()).toBeLessThanOrEqual(390);
    await shot("9-thread-390");
    await page.setViewportSize({ width: 1400, height: 1000 });

    // The queue already says it.
    await page.goto(`${s.url}/console/#/approvals`);
    const card = page.locator(`.approval-card[data-thread="${tid}"]`);
    expect(await card.locator(".check-warning").textContent()).toMatch(
      /fails hard check answer; draft 1 passed every hard check/,
    );
    await page.goto(`${s.url}/console/#/threads/${tid}`);
    const panel = page.getByRole("region", { name: "Awaiting your approval" });
    await panel.waitFor();
    expect(await panel.locator(".check-warning").textContent()).toMatch(
      /fails hard check answer; draft 1 passed every hard check/,
    );
    await panel.getByRole("button", { name: "Approve" }).click();
    const answer = page.getByRole("region", { name: "Final answer" });
    await answer.waitFor({ timeout: 20_000 });
    const checks = answer.locator(".answer-checks");
    expect(await checks.getAttribute("data-checks")).toBe("fail");
    expect(await checks.textContent()).toMatch(
      /Fails hard check answer \(0 of 1 pass\)\. Draft 1 passed every hard check\./,
    );
    const stop = page.locator(".thread-head [data-stop]");
    expect(await stop.textContent()).toBe("stop: approved");
    expect(await stop.getAttribute("class")).not.toContain("tone-good");

    // The chart: one point and one bar per draft; only draft 1 passes.
    const chart = page.locator(".progress-chart");
    expect(await chart.locator("rect.bar").count()).toBe(3);
    expect(await chart.locator("circle.dot.pass").count()).toBe(1);
    expect(await chart.locator('circle.dot.pass[data-iteration="1"]').count()).toBe(1);
    expect(await chart.locator("circle.dot.fail").count()).toBe(2);
    // The options the run went with, defaults marked.
    const option = (key: string) => page.locator(`[data-option="${key}"]`).textContent();
    expect(await option("maxIterations")).toBe("Max iterations3");
    expect(await option("strategy")).toBe("Strategyself-refine (default)");
    expect(await option("approval")).toBe("Approvalfinal");
    expect(await option("verifiers")).toContain("answer (answer_match): expected 6");
    // The graph says what each edge means.
    const labels = await page.locator("svg.graph text.edge-label").allTextContents();
    expect(labels).toEqual(
      expect.arrayContaining(["reject", "edit", "self-refine", "doubt", "approve · abort"]),
    );
    await shot("10-approved-failing-answer");
    const row = async () => {
      await page.goto(`${s.url}/console/#/`);
      const r = page.locator(`tr[data-thread="${tid}"]`);
      await r.waitFor();
      return r;
    };
    expect(await (await row()).locator("[data-stop]").getAttribute("class")).not.toContain(
      "tone-good",
    );

    // Cancel a busy thread (its model call hangs at the stub).
    const slow = await api<ThreadBody>("POST", "/threads", {});
    const run = await api<{ run_id: string }>("POST", `/threads/${slow.thread_id}/runs`, {
      assistant_id: "refine",
      input: { task: SLOW },
    });
    await page.goto(`${s.url}/console/#/threads/${slow.thread_id}`);
    await page.getByRole("button", { name: "Cancel run" }).click();
    await expect
      .poll(() => page.locator(".thread-head [data-status]").textContent(), { timeout: 15_000 })
      .not.toBe("busy");
    expect(await page.getByRole("button", { name: "Cancel run" }).count()).toBe(0);
    const cancelled = await api<{ status: string }>(
      "GET",
      `/threads/${slow.thread_id}/runs/${run.run_id}`,
    );
    expect(cancelled.status).toBe("interrupted");

    // A declarative graph: conditions as labels, no internal __finish__ node.
    const yaml = readFileSync(
      join(import.meta.dirname, "../../graphs/examples/json-extraction.yaml"),
      "utf8",
    );
    const registered = await fetch(`${s.url}/graphs`, {
      method: "POST",
      headers: { "Content-Type": "application/yaml" },
      body: yaml,
    });
    expect(registered.status).toBe(201);
    await page.goto(`${s.url}/console/#/graphs`);
    const declarative = page.getByRole("region", { name: "json-extraction" });
    await declarative.locator("svg.graph").waitFor();
    expect(await declarative.locator("g.node text").allTextContents()).not.toContain("__finish__");
    expect(await declarative.locator("text.edge-label").allTextContents()).toEqual(
      expect.arrayContaining(["verdicts.allHardPass", "else"]),
    );

    // Past 100 threads: pages of 50, newest first; the oldest is on page 3.
    const made: string[] = [];
    for (let i = 0; i < 105; i += 15)
      made.push(
        ...(
          await Promise.all(
            Array.from({ length: 15 }, () => api<ThreadBody>("POST", "/threads", {})),
          )
        ).map((t) => t.thread_id),
      );
    const total = await api<number>("POST", "/threads/count", {});
    expect(total).toBeGreaterThan(100);
    const oldest = (
      await api<ThreadBody[]>("POST", "/threads/search", {
        limit: 1,
        sort_by: "updated_at",
        sort_order: "asc",
      })
    )[0]!.thread_id;
    await page.goto(`${s.url}/console/#/`);
    const pager = page.getByRole("navigation", { name: "Pages" });
    await expect.poll(() => pager.locator("[data-range]").textContent()).toBe(`1–50 of ${total}`);
    await pager.getByRole("link", { name: "Older →" }).click();
    await expect.poll(() => pager.locator("[data-range]").textContent()).toBe(`51–100 of ${total}`);
    await pager.getByRole("link", { name: "Older →" }).click();
    await page.locator(`tr[data-thread="${oldest}"]`).waitFor();
    expect(await pager.getByRole("link", { name: "Older →" }).count()).toBe(0);

    // Filters: assistant, graph, search by id, updated since; each through the form.
    await page.goto(`${s.url}/console/#/`);
    const form = page.getByRole("search", { name: "Find threads" });
    await form.getByLabel("Assistant").selectOption({ label: "Regress reviewer (refine)" });
    await form.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => page.locator("tr[data-thread]").count()).toBe(1);
    expect(await page.locator("tr[data-thread]").getAttribute("data-thread")).toBe(tid);
    expect(new URL(page.url()).hash).toBe(`#/?assistant=${assistant.assistant_id}`);

    await page.goto(`${s.url}/console/#/?graph=refine`);
    await page.locator(`tr[data-thread="${tid}"]`).waitFor();
    expect(await page.locator(`tr[data-thread="${made[0]}"]`).count()).toBe(0);
    await page.getByRole("link", { name: /^Interrupted/ }).click();
    await expect.poll(() => page.locator("tr[data-thread]").count()).toBe(0);
    expect(new URL(page.url()).hash).toBe("#/?status=interrupted&graph=refine");

    await page.goto(`${s.url}/console/#/`);
    // A hash change re-renders the view (and its form): wait for the unfiltered list (the view
    // before showed no rows) so the search is typed into the form that stays.
    await page.locator("tr[data-thread]").first().waitFor();
    await page.getByRole("search").getByLabel("Search").fill(slow.thread_id);
    await page.getByRole("search").getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => page.locator("tr[data-thread]").count()).toBe(1);
    expect(await page.locator("tr[data-thread]").getAttribute("data-thread")).toBe(slow.thread_id);

    const local = (d: Date) =>
      `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
    await page.goto(`${s.url}/console/#/?since=${local(new Date(Date.now() + 86_400_000))}`);
    await page.getByText("No thread matches these filters.").waitFor();
    await page.goto(`${s.url}/console/#/?since=${local(new Date())}&graph=refine`);
    await page.locator(`tr[data-thread="${tid}"]`).waitFor();
    expect(problems).toEqual([]);
  }, 90_000);
});
