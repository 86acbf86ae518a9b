// A run's final state as the server records it (the thread's values, /wait's answer) is the state
// LangGraph holds, whether it came from the run's last streamed values (which carry the whole
// state, also for a graph with a narrower output schema) or was read back from the checkpoint (a
// run that streamed no values). Real server, run threads, SDK client, SQLite file.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;

beforeAll(async () => {
  s = await startTestServer({
    configPath: join(import.meta.dirname, "../fixtures/final-state.langgraph.json"),
  });
});
afterAll(async () => s?.close());

async function finalStates(graph: string, streamMode?: "updates") {
  const thread = await s.client.threads.create();
  // runs.wait sends no stream mode (the server streams `values`); a background run can ask for one.
  let answer: unknown;
  if (streamMode) {
    const run = await s.client.runs.create(thread.thread_id, graph, {
      input: { topic: "t" },
      streamMode: [streamMode],
    });
    answer = await s.client.runs.join(thread.thread_id, run.run_id);
    expect((run as unknown as { kwargs: unknown }).kwargs).toMatchObject({
      stream_mode: [streamMode],
    });
  } else {
    answer = await s.client.runs.wait(thread.thread_id, graph, { input: { topic: "t" } });
  }
  const recorded = await s.client.threads.get(thread.thread_id);
  const state = await s.client.threads.getState(thread.thread_id);
  return { answer, recorded, state };
}

describe("a run's final state", () => {
  it("is the whole state for a graph that streams its whole state", async () => {
    const { answer, recorded, state } = await finalStates("full");
    const whole = { topic: "t", log: ["one:t", "two"], scratch: "kept" };
    expect(state.values).toEqual(whole);
    expect(recorded.values).toEqual(whole);
    expect(recorded.status).toBe("idle");
    expect(recorded.interrupts).toEqual({});
    expect(answer).toEqual(whole);
  });

  it("is still the whole state when the graph streams only its output schema", async () => {
    const { answer, recorded, state } = await finalStates("narrow");
    const whole = { topic: "t", log: ["one:t", "two"], scratch: "internal" };
    expect(state.values).toEqual(whole);
    expect(recorded.values).toEqual(whole);
    expect(answer).toEqual(whole);
  });

  it("is the same when the run streamed no values", async () => {
    const { answer, recorded, state } = await finalStates("full", "updates");
    const whole = { topic: "t", log: ["one:t", "two"], scratch: "kept" };
    expect(state.values).toEqual(whole);
    expect(recorded.values).toEqual(whole);
    expect(answer).toEqual(whole);
  });

  it("is read back from the checkpoint when the graph was compiled to stop before a node", async () => {
    const { answer, recorded, state } = await finalStates("paused");
    const sofar = { topic: "t", log: ["one:t"], scratch: "kept" };
    expect(state.values).toEqual(sofar);
    expect(state.next).toEqual(["two"]);
    expect(recorded.status).toBe("interrupted");
    expect(recorded.values).toEqual(sofar);
    // /wait answers the interrupt, as the LangGraph server does (issue 22).
    expect(answer).toEqual({ __interrupt__: [] });
  });
});
