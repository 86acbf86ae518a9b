// Smoke test of the server through the official SDK: the refine graph and a langgraph.json graph.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => s?.close());

describe("server smoke", () => {
  it("runs the refine graph with runs.wait on the offline model", async () => {
    const thread = await s.client.threads.create();
    const out = (await s.client.runs.wait(thread.thread_id, "refine", {
      input: { task: "What is 17 * 23 + 4?" },
      config: {
        configurable: {
          verifiers: [{ kind: "answer_match", expected: 395 }],
          models: { default: { provider: "simulated", simulated: { seed: 7 } } },
        },
      },
    })) as { answer: string; stopReason: string; simulated: boolean };
    expect(out.simulated).toBe(true);
    expect(["accepted", "max_iterations", "unchanged"]).toContain(out.stopReason);
    const state = await s.client.threads.getState(thread.thread_id);
    expect(state.next).toEqual([]);
    expect((await s.client.threads.get(thread.thread_id)).status).toBe("idle");
  });

  it("interrupts and resumes a langgraph.json graph", async () => {
    const thread = await s.client.threads.create();
    await s.client.runs.wait(thread.thread_id, "approval", { input: { topic: "t" } });
    expect((await s.client.threads.get(thread.thread_id)).status).toBe("interrupted");
    const state = await s.client.threads.getState(thread.thread_id);
    expect(state.tasks[0]?.interrupts[0]?.value).toMatchObject({ question: "approve?" });
    const out = (await s.client.runs.wait(thread.thread_id, "approval", {
      command: { resume: "yes" },
    })) as { log: string[] };
    expect(out.log).toEqual(["draft:t", "review:yes", "publish:yes"]);
  });
});
