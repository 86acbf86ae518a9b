// Multitask strategies and cancel over the real server: a second run on a busy thread is
// rejected, queued, or cancels the first (interrupt keeps its finished steps, rollback erases
// it). COUNT_FILE records every executed step, proving none is executed twice.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Checkpoint, ThreadState } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";
import { eventually, statusOf, valuesOf } from "../support/wait.ts";

const DELAY = 400;

let s: TestServer;
let countFile: string;
const previousCountFile = process.env.COUNT_FILE;
beforeAll(async () => {
  s = await startTestServer();
  // The fixture graphs run in this process and read process.env.COUNT_FILE when a step runs.
  countFile = join(s.dir, "count.txt");
  writeFileSync(countFile, "");
  process.env.COUNT_FILE = countFile;
});
afterAll(async () => {
  if (previousCountFile === undefined) delete process.env.COUNT_FILE;
  else process.env.COUNT_FILE = previousCountFile;
  await s?.close();
});

interface StepValues {
  topic: string;
  log: string[];
  delayMs: number;
}

/** The steps executed for a topic, in order ("one", "two", ...). */
function stepsOf(topic: string): string[] {
  return readFileSync(countFile, "utf8")
    .split("\n")
    .filter((line) => line.endsWith(` ${topic}`))
    .map((line) => line.split(" ")[0]!);
}

/** Every executed step as "node topic", in order, for the given topics. */
function executed(...topics: string[]): string[] {
  return readFileSync(countFile, "utf8")
    .split("\n")
    .filter((line) => topics.some((t) => line.endsWith(` ${t}`)));
}

const newThread = async () => (await s.client.threads.create()).thread_id;

/** Starts a slow run and resolves once its first step is checkpointed. */
async function startSlowRun(threadId: string, topic: string) {
  const run = await s.client.runs.create(threadId, "slow", {
    input: { topic, delayMs: DELAY },
  });
  await eventually(async () => {
    const state = await s.client.threads.getState<StepValues>(threadId);
    return state.values.topic === topic && state.values.log.at(-1) === "one" ? true : undefined;
  }, `the first step of ${topic}`);
  return run;
}

/** A run that finished on the thread, so the thread has state and history before the test. */
async function withHistory(threadId: string, topic: string) {
  await s.client.runs.wait(threadId, "slow", { input: { topic, delayMs: 0 } });
  return snapshot(threadId);
}

async function snapshot(threadId: string) {
  const state = await s.client.threads.getState<StepValues>(threadId);
  const history = await s.client.threads.getHistory<StepValues>(threadId, { limit: 100 });
  return { state, history };
}

const checkpointIds = (history: ThreadState<StepValues>[]) =>
  history.map((h) => (h.checkpoint as Checkpoint).checkpoint_id);

describe('multitask "reject" (the default)', () => {
  it("answers 422 while a run is running, and inserts nothing", async () => {
    const threadId = await newThread();
    const first = await startSlowRun(threadId, "rej-a");
    expect(
      await statusOf(
        s.client.runs.create(threadId, "slow", { input: { topic: "rej-b", delayMs: 0 } }),
      ),
    ).toBe(422);
    expect(
      await statusOf(
        s.client.runs.wait(threadId, "slow", {
          input: { topic: "rej-b", delayMs: 0 },
          multitaskStrategy: "reject",
        }),
      ),
    ).toBe(422);
    const res = await fetch(`${s.url}/threads/${threadId}/runs/stream`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ assistant_id: "slow", input: { topic: "rej-b" } }),
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { message: string }).message).toMatch(/already running/);

    expect((await s.client.runs.list(threadId)).map((r) => r.run_id)).toEqual([first.run_id]);
    await s.client.runs.join(threadId, first.run_id);
    expect(stepsOf("rej-a")).toEqual(["one", "two", "three"]);
    expect(stepsOf("rej-b")).toEqual([]);
    // once the thread is idle again, a new run is accepted
    const next = await valuesOf<StepValues>(
      s.client.runs.wait(threadId, "slow", {
        input: { topic: "rej-c", delayMs: 0 },
      }),
    );
    expect(next.topic).toBe("rej-c");
  });

  it("answers 422 while a run is pending", async () => {
    const threadId = await newThread();
    const pending = await s.client.runs.create(threadId, "slow", {
      input: { topic: "rej-p", delayMs: 0 },
      afterSeconds: 60,
    });
    expect((await s.client.runs.get(threadId, pending.run_id)).status).toBe("pending");
    expect(
      await statusOf(
        s.client.runs.create(threadId, "slow", { input: { topic: "rej-q", delayMs: 0 } }),
      ),
    ).toBe(422);
    expect(await s.client.runs.list(threadId)).toHaveLength(1);
    await s.client.runs.cancel(threadId, pending.run_id, true);
  });
});

describe("concurrent run creation", () => {
  it("on an idle thread, exactly one of several simultaneous runs is accepted", async () => {
    const threadId = await newThread();
    const attempts = await Promise.allSettled(
      ["race-1", "race-2", "race-3", "race-4", "race-5"].map((topic) =>
        s.client.runs.create(threadId, "slow", { input: { topic, delayMs: 100 } }),
      ),
    );
    const accepted = attempts.filter((a) => a.status === "fulfilled");
    expect(accepted).toHaveLength(1);
    for (const a of attempts) {
      if (a.status === "rejected") expect((a.reason as { status?: number }).status).toBe(422);
    }
    const run = (accepted[0] as PromiseFulfilledResult<{ run_id: string }>).value;
    await s.client.runs.join(threadId, run.run_id);
    expect(await s.client.runs.list(threadId)).toHaveLength(1);
    const ran = ["race-1", "race-2", "race-3", "race-4", "race-5"].filter(
      (t) => stepsOf(t).length > 0,
    );
    expect(ran).toHaveLength(1);
    expect(stepsOf(ran[0]!)).toEqual(["one", "two", "three"]);
  });
});

describe('multitask "enqueue"', () => {
  it("runs both runs, the second after the first", async () => {
    const threadId = await newThread();
    const first = await s.client.runs.create(threadId, "slow", {
      input: { topic: "enq-a", delayMs: 100 },
    });
    const second = await s.client.runs.create(threadId, "slow", {
      input: { topic: "enq-b", delayMs: 0 },
      multitaskStrategy: "enqueue",
    });
    expect(second.multitask_strategy).toBe("enqueue");
    expect((await s.client.runs.get(threadId, second.run_id)).status).toBe("pending");
    expect((await s.client.threads.get(threadId)).status).toBe("busy");

    const out = await valuesOf<StepValues>(s.client.runs.join(threadId, second.run_id));
    expect((await s.client.runs.get(threadId, first.run_id)).status).toBe("success");
    expect((await s.client.runs.get(threadId, second.run_id)).status).toBe("success");
    expect(executed("enq-a", "enq-b")).toEqual([
      "one enq-a",
      "two enq-a",
      "three enq-a",
      "one enq-b",
      "two enq-b",
      "three enq-b",
    ]);
    expect(out.topic).toBe("enq-b");
    expect(out.log).toEqual(["one", "two", "three", "one", "two", "three"]);
    expect((await s.client.threads.get(threadId)).status).toBe("idle");
    // newest first
    expect((await s.client.runs.list(threadId)).map((r) => r.run_id)).toEqual([
      second.run_id,
      first.run_id,
    ]);
  });

  it("queues several runs and runs them in creation order", async () => {
    const threadId = await newThread();
    const topics = ["q1", "q2", "q3", "q4"];
    const runs = [];
    for (const topic of topics) {
      runs.push(
        await s.client.runs.create(threadId, "slow", {
          input: { topic, delayMs: 10 },
          multitaskStrategy: "enqueue",
        }),
      );
    }
    await s.client.runs.join(threadId, runs.at(-1)!.run_id);
    expect(executed(...topics).map((l) => l.split(" ")[1])).toEqual(
      topics.flatMap((t) => [t, t, t]),
    );
    for (const run of runs)
      expect((await s.client.runs.get(threadId, run.run_id)).status).toBe("success");
  });
});

describe('multitask "interrupt"', () => {
  it("ends the first run as interrupted, keeps its finished steps, then runs the second", async () => {
    const threadId = await newThread();
    const first = await startSlowRun(threadId, "int-a");
    const out = await valuesOf<StepValues>(
      s.client.runs.wait(threadId, "slow", {
        input: { topic: "int-b", delayMs: 0 },
        multitaskStrategy: "interrupt",
      }),
    );

    expect((await s.client.runs.get(threadId, first.run_id)).status).toBe("interrupted");
    // the first run's finished step is in the state; its unfinished steps never completed
    expect(out.log).toEqual(["one", "one", "two", "three"]);
    expect(out.topic).toBe("int-b");
    expect(stepsOf("int-a")).toEqual(["one"]);
    expect(stepsOf("int-b")).toEqual(["one", "two", "three"]);

    // the checkpoints of the interrupted run are kept in the history
    const history = await s.client.threads.getHistory<StepValues>(threadId, { limit: 100 });
    const ofFirst = history.filter((h) => h.values.topic === "int-a");
    expect(ofFirst.some((h) => h.values.log.join() === "one")).toBe(true);
    expect((await s.client.threads.get(threadId)).status).toBe("idle");
    expect(await s.client.runs.list(threadId)).toHaveLength(2);
  });
});

describe("cancelling strategies with a queue", () => {
  it('"interrupt" cancels the running run and the queued ones', async () => {
    const threadId = await newThread();
    const running = await startSlowRun(threadId, "iq-a");
    const queued = await s.client.runs.create(threadId, "slow", {
      input: { topic: "iq-b", delayMs: 0 },
      multitaskStrategy: "enqueue",
    });
    const out = await valuesOf<StepValues>(
      s.client.runs.wait(threadId, "slow", {
        input: { topic: "iq-c", delayMs: 0 },
        multitaskStrategy: "interrupt",
      }),
    );
    expect(out.topic).toBe("iq-c");
    expect((await s.client.runs.get(threadId, running.run_id)).status).toBe("interrupted");
    expect((await s.client.runs.get(threadId, queued.run_id)).status).toBe("interrupted");
    expect(executed("iq-a", "iq-b", "iq-c")).toEqual([
      "one iq-a",
      "one iq-c",
      "two iq-c",
      "three iq-c",
    ]);
  });

  it('"rollback" deletes the running run and the queued ones', async () => {
    const threadId = await newThread();
    const before = await withHistory(threadId, "rq-0");
    const running = await startSlowRun(threadId, "rq-a");
    const queued = await s.client.runs.create(threadId, "slow", {
      input: { topic: "rq-b", delayMs: 0 },
      multitaskStrategy: "enqueue",
    });
    const out = await valuesOf<StepValues>(
      s.client.runs.wait(threadId, "slow", {
        input: { topic: "rq-c", delayMs: 0 },
        multitaskStrategy: "rollback",
      }),
    );
    expect(out.log).toEqual(["one", "two", "three", "one", "two", "three"]);
    expect(await statusOf(s.client.runs.get(threadId, running.run_id))).toBe(404);
    expect(await statusOf(s.client.runs.get(threadId, queued.run_id))).toBe(404);
    expect(await s.client.runs.list(threadId)).toHaveLength(2); // rq-0 and rq-c
    const after = await snapshot(threadId);
    expect(after.history.slice(after.history.length - before.history.length)).toEqual(
      before.history,
    );
    expect(after.history.filter((h) => h.values.topic === "rq-a")).toEqual([]);
    expect(stepsOf("rq-b")).toEqual([]);
  });
});

describe('multitask "rollback"', () => {
  it("deletes the first run and its checkpoints, then runs the second", async () => {
    const threadId = await newThread();
    const before = await withHistory(threadId, "rb-0");
    const first = await startSlowRun(threadId, "rb-a");
    // the first run did write checkpoints
    expect((await s.client.threads.getHistory(threadId, { limit: 100 })).length).toBeGreaterThan(
      before.history.length,
    );

    const second = await s.client.runs.create(threadId, "slow", {
      input: { topic: "rb-b", delayMs: 0 },
      multitaskStrategy: "rollback",
    });
    const out = await valuesOf<StepValues>(s.client.runs.join(threadId, second.run_id));

    expect(await statusOf(s.client.runs.get(threadId, first.run_id))).toBe(404);
    expect((await s.client.runs.list(threadId)).map((r) => r.run_id)).not.toContain(first.run_id);
    expect(out.log).toEqual(["one", "two", "three", "one", "two", "three"]);
    expect(stepsOf("rb-a")).toEqual(["one"]);

    // the history is the one before the cancelled run plus the second run's checkpoints
    const after = await snapshot(threadId);
    expect(after.history.filter((h) => h.values.topic === "rb-a")).toEqual([]);
    const tail = after.history.slice(after.history.length - before.history.length);
    expect(tail).toEqual(before.history);
    const firstOfSecond = after.history[after.history.length - before.history.length - 1];
    expect(firstOfSecond?.parent_checkpoint?.checkpoint_id).toBe(
      (before.state.checkpoint as Checkpoint).checkpoint_id,
    );
    expect((await s.client.threads.get(threadId)).status).toBe("idle");
  });
});

describe("rollback of a run that started from an interrupted checkpoint", () => {
  // The kept checkpoint's pending writes (here the approval graph's `__interrupt__`) are saved
  // when the run starts and restored on rollback, so the thread is waiting again as before.
  it("keeps the interrupts the restored checkpoint had before the run", async () => {
    const threadId = await newThread();
    await s.client.runs.wait(threadId, "approval", { input: { topic: "ask" } });
    const before = await s.client.threads.getState(threadId);
    expect(before.tasks[0]?.interrupts).toHaveLength(1);
    const run = await startSlowRun(threadId, "rb-int");
    await s.client.runs.cancel(threadId, run.run_id, true, "rollback");
    const after = await s.client.threads.getState(threadId);
    expect(after.checkpoint).toEqual(before.checkpoint);
    expect(after.tasks[0]?.interrupts).toEqual(before.tasks[0]?.interrupts);
    expect(after.next).toEqual(before.next);
  });
});

describe("runs.cancel", () => {
  it("wait + interrupt: answers when the run has stopped; finished steps are not run again", async () => {
    const threadId = await newThread();
    const run = await startSlowRun(threadId, "c-int");
    await expect(
      s.client.runs.cancel(threadId, run.run_id, true, "interrupt"),
    ).resolves.toBeUndefined();
    // no polling needed: the cancel answered after the run ended
    expect((await s.client.runs.get(threadId, run.run_id)).status).toBe("interrupted");
    const thread = await s.client.threads.get(threadId);
    expect(thread.status).not.toBe("busy");
    const state = await s.client.threads.getState<StepValues>(threadId);
    expect(state.values.log).toEqual(["one"]);
    expect(state.next).toEqual(["two"]);

    // continuing runs only the remaining steps
    const out = await valuesOf<StepValues>(s.client.runs.wait(threadId, "slow", { input: null }));
    expect(out.log).toEqual(["one", "two", "three"]);
    expect(stepsOf("c-int")).toEqual(["one", "two", "three"]);
    expect(await statusOf(s.client.runs.cancel(threadId, run.run_id, true))).toBe(409);
  });

  it("wait + rollback: the run is gone and the thread is exactly as before it", async () => {
    const threadId = await newThread();
    const before = await withHistory(threadId, "c-rb-0");
    const run = await startSlowRun(threadId, "c-rb");
    await s.client.runs.cancel(threadId, run.run_id, true, "rollback");

    expect(await statusOf(s.client.runs.get(threadId, run.run_id))).toBe(404);
    const after = await snapshot(threadId);
    expect(after.state).toEqual(before.state);
    expect(after.history).toEqual(before.history);
    expect(checkpointIds(after.history)).toEqual(checkpointIds(before.history));
    const thread = await s.client.threads.get(threadId);
    expect(thread.status).toBe("idle");
    expect((thread.values as unknown as StepValues).topic).toBe("c-rb-0");
    expect(stepsOf("c-rb")).toEqual(["one"]);
  });

  it("rollback of the first run of a thread leaves it without state", async () => {
    const threadId = await newThread();
    const run = await startSlowRun(threadId, "c-rb-new");
    await s.client.runs.cancel(threadId, run.run_id, true, "rollback");
    expect(await s.client.threads.getHistory(threadId)).toEqual([]);
    const state = await s.client.threads.getState(threadId);
    expect(state.values).toEqual({});
    expect(state.checkpoint).toBeFalsy();
    expect((await s.client.threads.get(threadId)).status).toBe("idle");
  });

  it("without wait answers 202 at once; the run ends interrupted", async () => {
    const threadId = await newThread();
    const run = await startSlowRun(threadId, "c-nowait");
    const res = await fetch(`${s.url}/threads/${threadId}/runs/${run.run_id}/cancel`, {
      method: "POST",
    });
    expect(res.status).toBe(202);
    const status = await eventually(async () => {
      const r = await s.client.runs.get(threadId, run.run_id);
      return r.status === "running" ? undefined : r.status;
    }, "the run to stop");
    expect(status).toBe("interrupted");
  });

  it("cancels a pending run before it starts: it never runs", async () => {
    const threadId = await newThread();
    const run = await s.client.runs.create(threadId, "slow", {
      input: { topic: "c-pend", delayMs: 0 },
      afterSeconds: 60,
    });
    await s.client.runs.cancel(threadId, run.run_id, true);
    expect((await s.client.runs.get(threadId, run.run_id)).status).toBe("interrupted");
    expect((await s.client.threads.get(threadId)).status).toBe("idle");
    // Cancelling it again changes nothing: accepted, or a 409 when waiting (issue 22).
    await s.client.runs.cancel(threadId, run.run_id);
    expect(await statusOf(s.client.runs.cancel(threadId, run.run_id, true))).toBe(409);
    expect((await s.client.runs.get(threadId, run.run_id)).status).toBe("interrupted");

    // with rollback, a pending run is deleted
    const other = await s.client.runs.create(threadId, "slow", {
      input: { topic: "c-pend2", delayMs: 0 },
      afterSeconds: 60,
    });
    await s.client.runs.cancel(threadId, other.run_id, true, "rollback");
    expect(await statusOf(s.client.runs.get(threadId, other.run_id))).toBe(404);
    // the thread takes new runs again
    const out = await valuesOf<StepValues>(
      s.client.runs.wait(threadId, "slow", {
        input: { topic: "c-pend3", delayMs: 0 },
      }),
    );
    expect(out.log).toEqual(["one", "two", "three"]);
    expect(stepsOf("c-pend")).toEqual([]);
    expect(stepsOf("c-pend2")).toEqual([]);
  });

  it("cancels a queued run behind a running one; the running one finishes", async () => {
    const threadId = await newThread();
    const first = await s.client.runs.create(threadId, "slow", {
      input: { topic: "c-q1", delayMs: 100 },
    });
    const queued = await s.client.runs.create(threadId, "slow", {
      input: { topic: "c-q2", delayMs: 0 },
      multitaskStrategy: "enqueue",
    });
    await s.client.runs.cancel(threadId, queued.run_id, true);
    expect((await s.client.runs.get(threadId, queued.run_id)).status).toBe("interrupted");
    const out = await valuesOf<StepValues>(s.client.runs.join(threadId, first.run_id));
    expect(out.topic).toBe("c-q1");
    expect((await s.client.runs.get(threadId, first.run_id)).status).toBe("success");
    expect(stepsOf("c-q2")).toEqual([]);
    expect((await s.client.threads.get(threadId)).status).toBe("idle");
  });

  it("cancel of a finished run changes nothing: accepted (as the LangGraph server does), a 409 with wait", async () => {
    const threadId = await newThread();
    let runId: string | undefined;
    await s.client.runs.wait(threadId, "slow", {
      input: { topic: "c-done", delayMs: 0 },
      onRunCreated: (m) => (runId = m.run_id),
    });
    await s.client.runs.cancel(threadId, runId!);
    await s.client.runs.cancel(threadId, runId!, false, "rollback");
    expect(await statusOf(s.client.runs.cancel(threadId, runId!, true, "rollback"))).toBe(409);
    expect((await s.client.runs.get(threadId, runId!)).status).toBe("success");
  });
});
