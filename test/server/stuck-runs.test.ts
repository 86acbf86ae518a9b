// Runs that never finish a step, over the real server, the SDK and SQLite: a cancelled run whose
// run thread spins in a busy loop is failed within a bounded time and its thread replaced (the
// other runs of that thread are re-queued and finish); deleting such a thread returns; the
// watchdog replaces a thread blocked past REFINERY_STEP_TIMEOUT_MS and fails the run after 3
// attempts; an async step that never settles fails with StepTimeout (also in the server thread);
// and REFINERY_RUN_TIMEOUT_MS ends a run as "timeout". (A run in flight at every SIGKILL of the
// server: crash.test.ts.) Bounds are generous: the design target of a cancel is about 1 s, the
// tests accept 10.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCounts, waitFor } from "../support/child-server.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

let dir: string;
let countFile: string;
const previousCountFile = process.env.COUNT_FILE;
/** One run thread: every run shares it with the stuck one. Default limits. */
let single: TestServer;
/** Two run threads and a short step limit (2 s). */
let limited: TestServer;
/** Graphs in the server thread, with the short step limit. */
let inline: TestServer;
/** One run thread and a short run limit (2.5 s). */
let deadline: TestServer;

const BOUND_MS = 10_000;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "refinery-stuck-"));
  countFile = join(dir, "count.txt");
  writeFileSync(countFile, "");
  // Graph code in run threads reads the same process.env as the server thread (SHARE_ENV).
  process.env.COUNT_FILE = countFile;
  [single, limited, inline, deadline] = await Promise.all([
    startTestServer({ env: { REFINERY_RUN_THREADS: "1" } }),
    startTestServer({ env: { REFINERY_RUN_THREADS: "2", REFINERY_STEP_TIMEOUT_MS: "2000" } }),
    startTestServer({ env: { REFINERY_RUN_THREADS: "0", REFINERY_STEP_TIMEOUT_MS: "2000" } }),
    startTestServer({ env: { REFINERY_RUN_THREADS: "1", REFINERY_RUN_TIMEOUT_MS: "2500" } }),
  ]);
  // Four servers and their run threads start at once; on a busy machine that takes a while.
}, 120_000);

afterAll(async () => {
  await Promise.all([single?.close(), limited?.close(), inline?.close(), deadline?.close()]);
  if (previousCountFile === undefined) delete process.env.COUNT_FILE;
  else process.env.COUNT_FILE = previousCountFile;
  rmSync(dir, { recursive: true, force: true });
});

/** Lines "<node> <topic>" the fixture graphs wrote for `topic`. */
const stepsOf = (topic: string) =>
  readCounts(countFile)
    .filter((line) => line.endsWith(` ${topic}`))
    .map((line) => line.split(" ")[0]!);

/** Waits until `node` of `topic` started (it blocks right after it counts). */
const started = (node: string, topic: string) =>
  waitFor(`${node} ${topic}`, () => (stepsOf(topic).includes(node) ? true : undefined));

/** A run as the server stores it, with its error (the SDK's Run type leaves it out). */
async function runRecord(s: { url: string }, threadId: string, runId: string) {
  const res = await fetch(`${s.url}/threads/${threadId}/runs/${runId}`);
  return (await res.json()) as {
    status: string;
    error: { error: string; message: string } | null;
  };
}

async function servesRuns(s: TestServer): Promise<void> {
  const thread = await s.client.threads.create();
  const values = await s.client.runs.wait(thread.thread_id, "slow", {
    input: { topic: `alive-${Math.random()}`, delayMs: 0 },
  });
  expect(values).toMatchObject({ log: ["one", "two", "three"] });
}

describe("a cancelled run whose thread is stuck in a busy loop", () => {
  it("is failed within a bound, its thread replaced; the thread's other run is re-queued and finishes", async () => {
    const { client } = single;
    const other = await client.threads.create();
    const slowRun = await client.runs.create(other.thread_id, "slow", {
      input: { topic: "neighbour", delayMs: 300 },
    });
    await started("one", "neighbour");
    const stuck = await client.threads.create();
    const busyRun = await client.runs.create(stuck.thread_id, "busy", {
      input: { topic: "cancel-1" },
    });
    await started("spin", "cancel-1");

    const t0 = Date.now();
    await client.runs.cancel(stuck.thread_id, busyRun.run_id, true);
    expect(Date.now() - t0).toBeLessThan(BOUND_MS);

    const record = await runRecord(single, stuck.thread_id, busyRun.run_id);
    expect(record.status).toBe("error");
    expect(record.error?.error).toBe("RunNotResponding");
    expect(record.error?.message).toMatch(/did not stop within 1 s of its cancel/);
    const thread = await client.threads.get(stuck.thread_id);
    expect(thread.status).toBe("error");
    // Its finished step stays checkpointed.
    expect((thread.values as { log: string[] }).log).toEqual(["one"]);

    // The slow run was frozen with it on the same thread: it resumes on the new one.
    const slow = await client.runs.join(other.thread_id, slowRun.run_id);
    expect(slow).toMatchObject({ log: ["one", "two", "three"] });
    expect((await runRecord(single, other.thread_id, slowRun.run_id)).status).toBe("success");

    const metrics = await (await fetch(`${single.url}/metrics`)).text();
    expect(metrics).toMatch(/^refinery_run_threads 1$/m);
    expect(metrics).toMatch(/^refinery_run_thread_exits_total 1$/m);
    await servesRuns(single);
  });

  it("is rolled back by a rollback cancel, even though its thread had to be replaced", async () => {
    const { client } = single;
    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "slow", { input: { topic: "kept", delayMs: 0 } });
    const busyRun = await client.runs.create(thread.thread_id, "busy", {
      input: { topic: "rollback-1" },
    });
    await started("spin", "rollback-1");
    await client.runs.cancel(thread.thread_id, busyRun.run_id, true, "rollback");
    // The run is gone and the thread is back to the slow run's result.
    expect(
      (await fetch(`${single.url}/threads/${thread.thread_id}/runs/${busyRun.run_id}`)).status,
    ).toBe(404);
    const state = await client.threads.getState(thread.thread_id);
    expect((state.values as { topic: string; log: string[] }).topic).toBe("kept");
    expect((await client.threads.get(thread.thread_id)).status).toBe("idle");
    await servesRuns(single);
  });

  it("does not stop DELETE /threads/{id} from returning", async () => {
    const { client } = single;
    const stuck = await client.threads.create();
    await client.runs.create(stuck.thread_id, "busy", { input: { topic: "delete-1" } });
    await started("spin", "delete-1");
    const t0 = Date.now();
    await client.threads.delete(stuck.thread_id);
    expect(Date.now() - t0).toBeLessThan(BOUND_MS);
    expect((await fetch(`${single.url}/threads/${stuck.thread_id}`)).status).toBe(404);
    await servesRuns(single);
  });
});

describe("REFINERY_STEP_TIMEOUT_MS", () => {
  it("replaces a run thread blocked past it; the run is re-queued and fails for good after 3 attempts", async () => {
    const { client } = limited;
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, "busy", {
      input: { topic: "watchdog-1" },
    });
    await expect(client.runs.join(thread.thread_id, run.run_id)).resolves.toMatchObject({
      __error__: { error: "RunThreadLost" },
    });
    const record = await runRecord(limited, thread.thread_id, run.run_id);
    expect(record.status).toBe("error");
    expect(record.error?.message).toMatch(/blocked for more than REFINERY_STEP_TIMEOUT_MS=2000 ms/);
    // "one" was checkpointed once; every attempt resumed at "spin".
    expect(stepsOf("watchdog-1")).toEqual(["one", "spin", "spin", "spin"]);
    // Its last thread is replaced too.
    await waitFor("two run threads", async () =>
      /^refinery_run_threads 2$/m.test(await (await fetch(`${limited.url}/metrics`)).text())
        ? true
        : undefined,
    );
    await servesRuns(limited);
  }, 60_000);

  it("fails an async step that never settles with StepTimeout, naming the setting", async () => {
    for (const s of [limited, inline]) {
      const thread = await s.client.threads.create();
      const topic = `hang-${s === inline ? "inline" : "thread"}`;
      const run = await s.client.runs.create(thread.thread_id, "hang", { input: { topic } });
      const out = await s.client.runs.join(thread.thread_id, run.run_id);
      expect(out).toMatchObject({ __error__: { error: "StepTimeout" } });
      const record = await runRecord(s, thread.thread_id, run.run_id);
      expect(record.status).toBe("error");
      expect(record.error?.message).toMatch(/REFINERY_STEP_TIMEOUT_MS=2000/);
      expect(stepsOf(topic)).toEqual(["one", "wait"]);
      await servesRuns(s);
    }
  });
});

describe("REFINERY_RUN_TIMEOUT_MS", () => {
  it("cancels a run that outlives it; the run ends as timeout with its finished steps kept", async () => {
    const { client } = deadline;
    const thread = await client.threads.create();
    // Three steps of 1 s, over the 2.5 s run limit together.
    const run = await client.runs.create(thread.thread_id, "slow", {
      input: { topic: "deadline-1", delayMs: 1_000 },
    });
    const out = await client.runs.join(thread.thread_id, run.run_id);
    expect(out).toMatchObject({ __error__: { error: "RunTimeout" } });
    const record = await runRecord(deadline, thread.thread_id, run.run_id);
    expect(record.status).toBe("timeout");
    expect(record.error?.message).toMatch(/REFINERY_RUN_TIMEOUT_MS=2500/);
    const state = await client.threads.get(thread.thread_id);
    expect(state.status).toBe("error");
    const log = (state.values as { log: string[] }).log;
    expect(log[0]).toBe("one");
    expect(log).not.toContain("three");
    await servesRuns(deadline);
  });
});
