// State size limits over the real server, the SDK and SQLite: a declarative graph whose transform
// doubles `vars.s` in a self-loop (85 bytes of input grew to 67 MB of thread values before the
// limits) fails with StateTooLarge under REFINERY_MAX_CHECKPOINT_BYTES and leaves the database
// small; a run that keeps adding checkpoints fails under REFINERY_MAX_THREAD_BYTES; a state
// update over the limit is refused with a 422 naming it; a thread whose runs' history is
// compacted is held to what it stores, not to what its run thread wrote before.
import { statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

const CHECKPOINT_LIMIT = 64 * 1024;
const THREAD_LIMIT = 512 * 1024;

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    env: {
      REFINERY_MAX_CHECKPOINT_BYTES: String(CHECKPOINT_LIMIT),
      REFINERY_MAX_THREAD_BYTES: String(THREAD_LIMIT),
    },
  });
  for (const spec of [DOUBLING, REPEATING]) await registerGraph(s, spec);
});

/** Registers a declarative graph on the server (POST /graphs). */
async function registerGraph(server: TestServer, spec: object): Promise<void> {
  const res = await fetch(`${server.url}/graphs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(spec),
  });
  expect(res.status).toBe(201);
}
afterAll(async () => {
  await s?.close();
});

/** Each step doubles vars.s: 85 bytes, 170, 340, … until the run ends. */
const DOUBLING = {
  id: "doubling",
  start: "double",
  nodes: {
    double: { kind: "transform", set: { "vars.s": "(vars.s ?? task) + (vars.s ?? task)" } },
  },
  edges: [
    { from: "double", when: [{ if: "len(vars.s) > 1000000000", to: "END" }], else: "double" },
  ],
};

/** Each step writes the task (20 KB) again: every checkpoint is small, the thread grows. */
const REPEATING = {
  id: "repeating",
  start: "repeat",
  nodes: {
    repeat: { kind: "transform", set: { "vars.s": "task", "vars.n": "(vars.n ?? 0) + 1" } },
  },
  edges: [{ from: "repeat", when: [{ if: "vars.n >= 1000", to: "END" }], else: "repeat" }],
};

/** The database's size on disk, WAL included. */
function fileBytes(): number {
  const size = (p: string) => statSync(p, { throwIfNoEntry: false })?.size ?? 0;
  return size(s.dbPath) + size(`${s.dbPath}-wal`);
}

async function runRecord(threadId: string, runId: string) {
  const res = await fetch(`${s.url}/threads/${threadId}/runs/${runId}`);
  return (await res.json()) as { status: string; error: { error: string; message: string } };
}

describe("state size limits", () => {
  it("fails a run whose state doubles at every step, and keeps the database small", async () => {
    const thread = await s.client.threads.create();
    const run = await s.client.runs.create(thread.thread_id, "doubling", {
      input: { task: "x".repeat(85) },
    });
    const out = await s.client.runs.join(thread.thread_id, run.run_id);
    expect(out).toMatchObject({ __error__: { error: "StateTooLarge" } });
    const record = await runRecord(thread.thread_id, run.run_id);
    expect(record.status).toBe("error");
    expect(record.error.message).toContain(`REFINERY_MAX_CHECKPOINT_BYTES=${CHECKPOINT_LIMIT}`);
    // The thread keeps the last state under the limit.
    const state = await s.client.threads.get(thread.thread_id);
    expect(state.status).toBe("error");
    const kept = (state.values as { vars: { s: string } }).vars.s.length;
    expect(kept).toBeGreaterThan(CHECKPOINT_LIMIT / 8);
    expect(kept).toBeLessThan(CHECKPOINT_LIMIT);
    expect(fileBytes()).toBeLessThan(8 * 1024 * 1024);
  });

  it("fails a run once its thread's checkpoints reach the thread limit, and the next run there too", async () => {
    const thread = await s.client.threads.create();
    const input = { task: "y".repeat(20_000) };
    const first = await s.client.runs.create(thread.thread_id, "repeating", { input });
    expect(await s.client.runs.join(thread.thread_id, first.run_id)).toMatchObject({
      __error__: { error: "StateTooLarge" },
    });
    const record = await runRecord(thread.thread_id, first.run_id);
    expect(record.error.message).toContain(`REFINERY_MAX_THREAD_BYTES=${THREAD_LIMIT}`);
    const steps = ((await s.client.threads.get(thread.thread_id)).values as { vars: { n: number } })
      .vars.n;
    expect(steps).toBeGreaterThan(5);
    // The thread is full: a new run on it fails at once; a new thread is fine.
    const again = await s.client.runs.create(thread.thread_id, "repeating", { input });
    expect(await s.client.runs.join(thread.thread_id, again.run_id)).toMatchObject({
      __error__: { error: "StateTooLarge" },
    });
    const history = await s.client.threads.getHistory(thread.thread_id, { limit: 1000 });
    expect(history.length).toBeLessThan(60);
    expect(fileBytes()).toBeLessThan(8 * 1024 * 1024);
  });

  it("refuses a state update over the checkpoint limit with a 422 naming it", async () => {
    const thread = await s.client.threads.create();
    const run = await s.client.runs.create(thread.thread_id, "repeating", {
      input: { task: "z" },
      config: { recursion_limit: 3 },
    });
    await s.client.runs.join(thread.thread_id, run.run_id);
    const res = await fetch(`${s.url}/threads/${thread.thread_id}/state`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ values: { vars: { big: "b".repeat(100_000) } } }),
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { message: string };
    expect(body.message).toContain(`REFINERY_MAX_CHECKPOINT_BYTES=${CHECKPOINT_LIMIT}`);
    // A small update still works.
    const ok = await fetch(`${s.url}/threads/${thread.thread_id}/state`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ values: { vars: { small: "fine" } } }),
    });
    expect(ok.status).toBe(200);
  });
});

/**
 * Five steps per run, each writing the task (40 KB, compressible) again: ~0.5 MB written per run,
 * a few KB stored once the server compacts the run's history into the archive.
 */
const FIVE_STEPS = {
  id: "five-steps",
  start: "reset",
  nodes: {
    reset: { kind: "transform", set: { "vars.n": "0" } },
    repeat: { kind: "transform", set: { "vars.s": "task", "vars.n": "vars.n + 1" } },
  },
  edges: [
    { from: "reset", to: "repeat" },
    { from: "repeat", when: [{ if: "vars.n >= 5", to: "END" }], else: "repeat" },
  ],
};

describe("thread limit with run threads", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      // Runs execute in a run thread; the server thread compacts their history (executor.ts).
      env: { REFINERY_RUN_THREADS: "1", REFINERY_MAX_THREAD_BYTES: String(2 * 1024 * 1024) },
    });
    await registerGraph(t, FIVE_STEPS);
  });
  afterAll(async () => {
    await t?.close();
  });

  it("counts what a thread stores after the server thread compacted it, not what its run thread wrote", async () => {
    const thread = await t.client.threads.create();
    const input = { task: "z".repeat(40_000) };
    // ~0.5 MB written per run: without the recount the run thread's total passes 2 MB by run 5.
    for (let i = 0; i < 10; i++) {
      const run = await t.client.runs.create(thread.thread_id, "five-steps", { input });
      const out = await t.client.runs.join(thread.thread_id, run.run_id);
      expect(out, `run ${i + 1}`).toMatchObject({ vars: { n: 5 } });
    }
    const history = await t.client.threads.getHistory(thread.thread_id, { limit: 1000 });
    expect(history.length).toBe(10 * 9);
  }, 60_000);
});
