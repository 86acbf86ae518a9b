// Races, tried many times over (one lucky run proves nothing): two reviewers resuming the same
// interrupt at once through the LangGraph protocol. Exactly one resume is accepted, the other is
// a 409, and the thread is resumed exactly once, whichever order the requests land in.
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
