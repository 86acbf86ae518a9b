// A run's final state as the server records it (the thread's values, /wait's answer) is the state
// LangGraph holds, whether it came from the run's last streamed values (which carry the whole
// state, also for a graph with a narrower output schema) or was read back from the checkpoint (a
// run that streamed no values). Real server, run threads, SDK client, SQLite file.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../server/log.ts";
import { startServer, type RunningServer } from "../../server/start.ts";

let dir: string;
let running: RunningServer;
let client: Client;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "refinery-final-state-"));
  const graphs = join(import.meta.dirname, "../fixtures/graphs/final-state.ts");
  const config = join(dir, "langgraph.json");
  writeFileSync(
    config,
    JSON.stringify({
      graphs: { full: `${graphs}:full`, narrow: `${graphs}:narrow`, paused: `${graphs}:paused` },
    }),
  );
  running = await startServer({
    env: { REFINERY_DB: join(dir, "refinery.db") },
    configPath: config,
    port: 0,
    host: "127.0.0.1",
    log: silentLogger,
  });
  client = new Client({ apiUrl: running.url, callerOptions: { maxRetries: 0 } });
});

afterAll(async () => {
  await running?.close(2_000);
  rmSync(dir, { recursive: true, force: true });
});

async function finalStates(graph: string, streamMode?: "updates") {
  const thread = await client.threads.create();
  // runs.wait sends no stream mode (the server streams `values`); a background run can ask for one.
  let answer: unknown;
  if (streamMode) {
    const run = await client.runs.create(thread.thread_id, graph, {
      input: { topic: "t" },
      streamMode: [streamMode],
    });
    answer = await client.runs.join(thread.thread_id, run.run_id);
    expect((run as unknown as { kwargs: unknown }).kwargs).toMatchObject({
      stream_mode: [streamMode],
    });
  } else {
    answer = await client.runs.wait(thread.thread_id, graph, { input: { topic: "t" } });
  }
  const recorded = await client.threads.get(thread.thread_id);
  const state = await client.threads.getState(thread.thread_id);
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
    expect(answer).toEqual(sofar);
  });
});
