// Races, tried many times over (one lucky run proves nothing): two reviewers resuming the same
// interrupt at once through the LangGraph protocol (exactly one resume is accepted, the other is
// a 409, and the thread is resumed exactly once), and a rollback cancel fired 0-10 ms after a run
// with fast steps started (the thread is exactly as before the run, or the cancel says it came
// too late), whichever order things land in.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ concurrency: 32 });
});
afterAll(async () => s?.close());

const TRIALS = 60;

interface Steps {
  log: string[];
}

describe("two command.resume runs at once", () => {
  it(`exactly one wins, the other gets 409, and the thread is resumed once (${TRIALS} trials)`, async () => {
    const wrong: string[] = [];
    const trial = async (i: number) => {
      const t = await s.client.threads.create();
      await s.client.runs.wait(t.thread_id, "approval", { input: { topic: `t${i}` } });
      const results = await Promise.allSettled(
        ["yes", "no"].map((answer) =>
          s.client.runs.wait(t.thread_id, "approval", { command: { resume: answer } }),
        ),
      );
      const ok = results.filter((r) => r.status === "fulfilled");
      const refused = results.filter(
        (r): r is PromiseRejectedResult =>
          r.status === "rejected" && (r.reason as { status?: number }).status === 409,
      );
      const state = (await s.client.threads.getState(t.thread_id)).values as unknown as Steps;
      const reviews = state.log.filter((l) => l.startsWith("review:"));
      const runs = await s.client.runs.list(t.thread_id);
      if (
        ok.length !== 1 ||
        refused.length !== 1 ||
        reviews.length !== 1 ||
        state.log.filter((l) => l.startsWith("publish:")).length !== 1 ||
        runs.length !== 2
      ) {
        wrong.push(
          `trial ${i}: ${results.map((r) => r.status).join("/")}, log ${JSON.stringify(state.log)}, ${runs.length} runs`,
        );
      }
    };
    for (let start = 0; start < TRIALS; start += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, k) => trial(start + k)));
    }
    expect(wrong).toEqual([]);
  });
});

describe("cancel with rollback right after a fast run starts", () => {
  it(`restores the thread exactly, or answers that the run already ended (${TRIALS} trials)`, async () => {
    const wrong: string[] = [];
    let restored = 0;
    const snapshot = async (threadId: string) => {
      const thread = await s.client.threads.get(threadId);
      const state = await s.client.threads.getState(threadId);
      const history = await s.client.threads.getHistory(threadId, { limit: 100 });
      return {
        status: thread.status,
        values: thread.values,
        interrupts: thread.interrupts,
        stateValues: state.values,
        next: state.next,
        checkpoints: history.map((h) => h.checkpoint.checkpoint_id),
        runs: (await s.client.runs.list(threadId)).map((r) => [r.run_id, r.status]),
      };
    };
    const trial = async (i: number) => {
      const t = await s.client.threads.create();
      // A thread with a past: one finished run, then the run to roll back.
      await s.client.runs.wait(t.thread_id, "slow", { input: { topic: `first-${i}` } });
      const before = await snapshot(t.thread_id);
      // Steps of 0, 2 or 4 ms: the cancel lands before, between or after them.
      const run = await s.client.runs.create(t.thread_id, "slow", {
        input: { topic: `second-${i}`, delayMs: (i % 3) * 2 },
      });
      await new Promise((r) => setTimeout(r, i % 11));
      const res = await fetch(
        `${s.url}/threads/${t.thread_id}/runs/${run.run_id}/cancel?action=rollback&wait=true`,
        { method: "POST" },
      );
      await res.text();
      if (res.status === 204) {
        const after = await snapshot(t.thread_id);
        if (JSON.stringify(after) !== JSON.stringify(before))
          wrong.push(`trial ${i}: 204 but ${JSON.stringify(after)} != ${JSON.stringify(before)}`);
        else restored++;
      } else if (res.status === 409) {
        // Too late: the run had ended; it stays, finished, and says so.
        const ended = await s.client.runs.get(t.thread_id, run.run_id);
        if (ended.status !== "success") wrong.push(`trial ${i}: 409 but run ${ended.status}`);
      } else {
        wrong.push(`trial ${i}: cancel answered ${res.status}`);
      }
    };
    for (let start = 0; start < TRIALS; start += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, k) => trial(start + k)));
    }
    expect(wrong).toEqual([]);
    // The race is real only if many cancels landed before the run ended.
    expect(restored).toBeGreaterThan(TRIALS / 6);
  });
});
