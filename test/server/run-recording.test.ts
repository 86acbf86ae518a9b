// A run whose outcome cannot be recorded (say, the database stayed locked past its busy timeout)
// must not leave clients waiting forever: it goes back to the queue and resumes from its last
// checkpoint, fails after 3 attempts, and when even that cannot be written, waiting clients are
// told. The failure is injected into the server's run store (graphs run in the server thread here).
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";
import { eventually } from "../support/wait.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ env: { REFINERY_RUN_THREADS: "0" } });
});
afterAll(async () => s?.close());

const TASK = { task: "What is 17 * 23 + 4?" };
const config = {
  configurable: {
    verifiers: [{ kind: "answer_match", expected: 395 }],
    models: { default: { provider: "simulated", simulated: { seed: 5 } } },
  },
};

type Write = (...args: unknown[]) => Promise<void>;
// The executor's storage is private; these tests wrap its run store to inject write failures.
const runStore = () =>
  (
    s.running.executor as unknown as {
      deps: { storage: { runs: { finish: Write; setStatus: Write; requeue: Write } } };
    }
  ).deps.storage.runs;
const restore: (() => void)[] = [];
afterEach(() => restore.splice(0).forEach((undo) => undo()));

/** Makes a run-store write fail `times` times (Infinity: always), as a locked database would. */
function failWrites(
  method: "finish" | "setStatus" | "requeue",
  times: number,
): { attempts: number } {
  const runs = runStore();
  const real = runs[method].bind(runs);
  const seen = { attempts: 0 };
  let left = times;
  runs[method] = (...args) => {
    seen.attempts += 1;
    if (left-- > 0) return Promise.reject(new Error("database is locked"));
    return real(...args);
  };
  restore.push(() => (runs[method] = real));
  return seen;
}

/** Recording a run's outcome fails (its final write). */
const failRecording = (times: number) => failWrites("finish", times);

interface Values {
  answer: string | null;
  stopReason: string | null;
  usage: { totalTokens: number; calls: number };
}

async function newThread(): Promise<string> {
  return (await s.client.threads.create()).thread_id;
}

/** The status of the thread's latest run, and the thread's own. */
async function statuses(threadId: string): Promise<{ run?: string; thread: string }> {
  const [run] = await s.client.runs.list(threadId);
  return { run: run?.status, thread: (await s.client.threads.get(threadId)).status };
}

/** A refine run on a new thread, waited for. */
async function refineOnNewThread(): Promise<{ threadId: string; values: Values }> {
  const threadId = await newThread();
  const values = await s.client.runs.wait(threadId, "refine", { input: TASK, config });
  return { threadId, values: values as unknown as Values };
}

describe("a run whose outcome cannot be recorded", () => {
  it("goes back to the queue and finishes once, without executing a step again", async () => {
    const control = await refineOnNewThread();
    const expected = control.values;
    const controlSteps = (await s.client.threads.getHistory(control.threadId, { limit: 100 }))
      .length;

    const seen = failRecording(1);
    const { threadId, values } = await refineOnNewThread();

    expect(seen.attempts).toBe(2);
    expect(values.answer).toBe(expected.answer);
    expect(values.stopReason).toBe(expected.stopReason);
    // The second attempt resumed from the final checkpoint: no model call and no step again.
    expect(values.usage).toEqual(expected.usage);
    expect((await s.client.threads.getHistory(threadId, { limit: 100 })).length).toBe(controlSteps);
    expect(await statuses(threadId)).toEqual({ run: "success", thread: "idle" });
  });

  it("fails after 3 attempts with the reason, and its thread is not left busy", async () => {
    const seen = failRecording(Infinity);
    const threadId = await newThread();
    await expect(s.client.runs.wait(threadId, "refine", { input: TASK, config })).rejects.toThrow(
      /RunThreadLost: the run could not finish: recording the run failed: database is locked/,
    );
    expect(seen.attempts).toBe(3);
    expect(await statuses(threadId)).toEqual({ run: "error", thread: "error" });
  });

  it("ends as interrupted, and does not run again, when it was being cancelled", async () => {
    const seen = failRecording(Infinity);
    const threadId = await newThread();
    const run = await s.client.runs.create(threadId, "slow", {
      input: { topic: "cancelled", delayMs: 200 },
    });
    await eventually(
      async () =>
        (await s.client.runs.get(threadId, run.run_id)).status === "running" ? true : undefined,
      "the run to start",
    );
    await s.client.runs.cancel(threadId, run.run_id, true, "interrupt");

    expect(seen.attempts).toBe(1);
    expect((await s.client.runs.get(threadId, run.run_id)).status).toBe("interrupted");
    expect((await s.client.threads.get(threadId)).status).toBe("idle");
    // Not re-queued: still the one attempt a while later.
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.attempts).toBe(1);
  });

  it("answers waiting clients with an error when not even the re-queue can be written", async () => {
    failRecording(Infinity);
    failWrites("requeue", Infinity);

    const threadId = await newThread();
    const run = await s.client.runs.create(threadId, "refine", { input: TASK, config });
    await expect(s.client.runs.join(threadId, run.run_id)).resolves.toMatchObject({
      __error__: {
        error: "RunBookkeepingFailed",
        message: expect.stringMatching(
          /could not be recorded \(database is locked\); it is taken up again from its last checkpoint when its lease lapses/,
        ) as unknown,
      },
    });
    // Still recorded as running: when its lease lapses it is re-queued (as after a crash).
    expect((await s.client.runs.get(threadId, run.run_id)).status).toBe("running");
  });
});
