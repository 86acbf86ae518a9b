// Runs over the real server with the official SDK: wait, background create + join, get/list/
// delete, interrupts and resume, interrupt_before/after, stateless runs, if_not_exists, graph
// errors, and that /wait answers as soon as the run ends.
import { randomUUID } from "node:crypto";
import type { Client, Run } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";
import { eventually, statusOf, valuesOf } from "../support/wait.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => s?.close());

// The SDK types on_completion as "complete" | "continue", but the protocol (the reference
// server's schema, and ours) takes "delete" | "keep".
const KEEP = "keep" as unknown as NonNullable<
  NonNullable<Parameters<Client["runs"]["create"]>[2]>["onCompletion"]
>;

const REFINE_TASK = { task: "What is 17 * 23 + 4?" };
const refineConfig = (seed: number) => ({
  configurable: {
    verifiers: [{ kind: "answer_match", expected: 395 }],
    models: { default: { provider: "simulated", simulated: { seed } } },
  },
});

interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  calls: number;
}
interface RefineValues {
  task: string;
  answer: string | null;
  stopReason: string | null;
  usage: Usage & { byNode: Record<string, Usage> };
  drafts: { iteration: number; text: string; source: string }[];
  critiques: unknown[];
  verdicts: unknown[];
  simulated: boolean;
}
interface StepValues {
  topic: string;
  log: string[];
  delayMs: number;
  decision: string | null;
}

/** The part of refine values that the seed determines (not timestamps or latencies). */
const deterministic = (v: RefineValues) => ({
  answer: v.answer,
  stopReason: v.stopReason,
  usage: v.usage,
  drafts: v.drafts.map((d) => ({ iteration: d.iteration, text: d.text, source: d.source })),
});

const newThread = async () => (await s.client.threads.create()).thread_id;

describe("runs.wait and background runs", () => {
  it("runs.wait on the refine graph returns the final values", async () => {
    const threadId = await newThread();
    let created: { run_id: string; thread_id?: string } | undefined;
    const out = await valuesOf<RefineValues>(
      s.client.runs.wait(threadId, "refine", {
        input: REFINE_TASK,
        config: refineConfig(7),
        onRunCreated: (meta) => (created = meta),
      }),
    );

    expect(out.task).toBe(REFINE_TASK.task);
    expect(out.simulated).toBe(true);
    expect(typeof out.answer).toBe("string");
    expect(out.answer?.length).toBeGreaterThan(0);
    expect(["accepted", "max_iterations", "unchanged"]).toContain(out.stopReason);
    expect(out.drafts.length).toBeGreaterThanOrEqual(1);
    expect(out.usage.calls).toBeGreaterThanOrEqual(2);
    expect(out.usage.totalTokens).toBe(out.usage.promptTokens + out.usage.completionTokens);
    expect(out.usage.totalTokens).toBeGreaterThan(0);
    const byNode = Object.values(out.usage.byNode).reduce((a, u) => a + u.totalTokens, 0);
    expect(byNode).toBe(out.usage.totalTokens);

    // Content-Location names the run, and the run is recorded as a success
    expect(created?.thread_id).toBe(threadId);
    const run = await s.client.runs.get(threadId, created!.run_id);
    expect(run.status).toBe("success");
    expect(run.assistant_id).toBeDefined();

    // the answer is the thread's state, which is final (nothing next)
    const state = await s.client.threads.getState<RefineValues>(threadId);
    expect(state.next).toEqual([]);
    expect(state.values.answer).toBe(out.answer);
    const thread = await s.client.threads.get(threadId);
    expect(thread.status).toBe("idle");
    expect((thread.values as unknown as RefineValues).answer).toBe(out.answer);
  });

  it("background create + join returns the same values as wait, and the run succeeds", async () => {
    const waited = await valuesOf<RefineValues>(
      s.client.runs.wait(await newThread(), "refine", {
        input: REFINE_TASK,
        config: refineConfig(11),
      }),
    );

    const threadId = await newThread();
    const run = await s.client.runs.create(threadId, "refine", {
      input: REFINE_TASK,
      config: refineConfig(11),
    });
    expect(run.thread_id).toBe(threadId);
    expect(["pending", "running"]).toContain(run.status);
    expect(run.multitask_strategy).toBe("reject");

    const joined = await valuesOf<RefineValues>(s.client.runs.join(threadId, run.run_id));
    expect(deterministic(joined)).toEqual(deterministic(waited));
    expect((await s.client.runs.get(threadId, run.run_id)).status).toBe("success");
    // a second join of the finished run answers the same values at once
    expect(await s.client.runs.join(threadId, run.run_id)).toEqual(joined);
  });

  it("lists runs newest first, filters by status, and gets one run", async () => {
    const threadId = await newThread();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      await s.client.runs.wait(threadId, "slow", {
        input: { topic: `r${i}`, delayMs: 0 },
        onRunCreated: (m) => ids.push(m.run_id),
      });
    }
    await s.client.runs.wait(threadId, "failing", { input: { topic: "x" }, raiseError: false });

    const all = await s.client.runs.list(threadId);
    expect(all).toHaveLength(4);
    expect(all.slice(1).map((r) => r.run_id)).toEqual([...ids].reverse());
    expect(all[0]?.status).toBe("error");
    expect(all.every((r) => r.thread_id === threadId)).toBe(true);

    const ok = await s.client.runs.list(threadId, { status: "success" });
    expect(ok.map((r) => r.run_id)).toEqual([...ids].reverse());
    const failed = await s.client.runs.list(threadId, { status: "error" });
    expect(failed).toHaveLength(1);
    expect(await s.client.runs.list(threadId, { status: "pending" })).toEqual([]);
    expect(await s.client.runs.list(threadId, { limit: 2, offset: 1 })).toEqual(all.slice(1, 3));

    const one = await s.client.runs.get(threadId, ids[1]!);
    expect(one.run_id).toBe(ids[1]);
    expect(one.status).toBe("success");
    expect((one as Run & { kwargs: { input: unknown } }).kwargs.input).toEqual({
      topic: "r1",
      delayMs: 0,
    });
    // a run of another thread is not found under this one
    expect(await statusOf(s.client.runs.get(await newThread(), ids[1]!))).toBe(404);
    expect(await statusOf(s.client.runs.get(threadId, randomUUID()))).toBe(404);
  });

  it("stamps a run as the LangGraph server does: metadata from the assistant, thread and caller; kwargs keep context, subgraphs, resumable and the run id", async () => {
    const assistant = await s.client.assistants.create({
      graphId: "slow",
      metadata: { team: "blue", owner: "assistant" },
      context: { tone: "dry", length: 1 },
    });
    const threadId = (await s.client.threads.create({ metadata: { project: "p1" } })).thread_id;
    const run = (await s.client.runs.create(threadId, assistant.assistant_id, {
      input: { topic: "m", delayMs: 0 },
      metadata: { owner: "caller" },
      context: { length: 2 } as never,
      streamSubgraphs: true,
      streamResumable: true,
    })) as Run & { kwargs: Record<string, unknown> & { config: Record<string, never> } };
    const stamped = {
      team: "blue",
      project: "p1",
      graph_id: "slow",
      assistant_id: assistant.assistant_id,
      owner: "caller",
    };
    expect(run.metadata).toEqual(stamped);
    expect(run.kwargs).toMatchObject({
      subgraphs: true,
      resumable: true,
      context: { tone: "dry", length: 2 },
      config: {
        metadata: stamped,
        configurable: {
          run_id: run.run_id,
          thread_id: threadId,
          graph_id: "slow",
          assistant_id: assistant.assistant_id,
        },
      },
    });
    expect(run.kwargs).not.toHaveProperty("command");
    await s.client.runs.join(threadId, run.run_id);
    // get and list answer the same stamped run; the thread keeps its metadata plus the graph's
    expect((await s.client.runs.get(threadId, run.run_id)).metadata).toEqual(stamped);
    expect((await s.client.runs.list(threadId))[0]?.metadata).toEqual(stamped);
    expect((await s.client.threads.get(threadId)).metadata).toEqual({
      project: "p1",
      graph_id: "slow",
      assistant_id: assistant.assistant_id,
    });
    // a run of a system assistant carries its created_by; a thread the run creates adds nothing
    const created = randomUUID();
    const fresh = await s.client.runs.create(created, "slow", {
      input: { topic: "n", delayMs: 0 },
      ifNotExists: "create",
    });
    expect(fresh.metadata).toEqual({ created_by: "system" });
    await s.client.runs.join(created, fresh.run_id);
    expect((await s.client.threads.get(created)).metadata).toMatchObject({ graph_id: "slow" });
  });

  it("deletes a run: 409 while in flight, 204 once finished, then 404", async () => {
    const threadId = await newThread();
    const run = await s.client.runs.create(threadId, "slow", {
      input: { topic: "del", delayMs: 150 },
    });
    expect(await statusOf(s.client.runs.delete(threadId, run.run_id))).toBe(409);
    await s.client.runs.join(threadId, run.run_id);
    await expect(s.client.runs.delete(threadId, run.run_id)).resolves.toBeUndefined();
    expect(await statusOf(s.client.runs.get(threadId, run.run_id))).toBe(404);
    expect(await s.client.runs.list(threadId)).toEqual([]);
    // the thread and its state are untouched
    const state = await s.client.threads.getState<StepValues>(threadId);
    expect(state.values.log).toEqual(["one", "two", "three"]);
  });
});

describe("interrupts", () => {
  it("interrupts in a node and resumes with command.resume", async () => {
    const threadId = await newThread();
    // As the LangGraph server answers (issue 22): a run stopped at an interrupt answers it.
    const first = await valuesOf<{ __interrupt__: { id: string; value: unknown }[] }>(
      s.client.runs.wait(threadId, "approval", {
        input: { topic: "t1" },
      }),
    );
    expect(first).toEqual({
      __interrupt__: [
        { id: expect.any(String), value: { question: "approve?", draft: "draft:t1" } },
      ],
    });
    expect((await s.client.threads.getState<StepValues>(threadId)).values.log).toEqual([
      "draft:t1",
    ]);

    const thread = await s.client.threads.get(threadId);
    expect(thread.status).toBe("interrupted");
    const interrupts = Object.values(thread.interrupts).flat();
    expect(interrupts).toHaveLength(1);
    expect(interrupts[0]?.value).toEqual({ question: "approve?", draft: "draft:t1" });

    const state = await s.client.threads.getState<StepValues>(threadId);
    expect(state.next).toEqual(["review"]);
    expect(state.tasks).toHaveLength(1);
    expect(state.tasks[0]?.name).toBe("review");
    expect(state.tasks[0]?.interrupts[0]?.value).toEqual({
      question: "approve?",
      draft: "draft:t1",
    });
    expect(state.tasks[0]?.interrupts[0]?.id).toBeTruthy();

    const resumed = await valuesOf<StepValues>(
      s.client.runs.wait(threadId, "approval", {
        command: { resume: "ok" },
      }),
    );
    expect(resumed.log).toEqual(["draft:t1", "review:ok", "publish:ok"]);
    expect(resumed.decision).toBe("ok");
    const after = await s.client.threads.get(threadId);
    expect(after.status).toBe("idle");
    expect(after.interrupts).toEqual({});
    expect((await s.client.threads.getState(threadId)).next).toEqual([]);

    // nothing left to resume: a precise 409
    expect(
      await statusOf(s.client.runs.wait(threadId, "approval", { command: { resume: "again" } })),
    ).toBe(409);
  });

  it("command.goto as {node, input} is a Send, as the LangGraph server reads it (issue 22)", async () => {
    const threadId = await newThread();
    await s.client.runs.wait(threadId, "approval", { input: { topic: "g" } });
    const out = await valuesOf<StepValues & { __error__?: unknown }>(
      s.client.runs.wait(threadId, "approval", {
        command: { goto: { node: "publish", input: { topic: "sent" } } as never },
      }),
    );
    expect(out.__error__).toBeUndefined();
    const state = await s.client.threads.getState<StepValues>(threadId);
    expect(state.values.log).toContain("publish:undefined");
  });

  it("command.goto while an interrupt is pending answers the values after the node it went to (issue 22)", async () => {
    const threadId = await newThread();
    await s.client.runs.wait(threadId, "approval", { input: { topic: "j" } });
    const out = await valuesOf<StepValues & { __interrupt__?: unknown }>(
      s.client.runs.wait(threadId, "approval", { command: { goto: "publish" } }),
    );
    // the pending review interrupts again in the same step, and publish runs: its values come
    // last, and /wait answers them, as the LangGraph server does
    expect(out.__interrupt__).toBeUndefined();
    expect(out.log).toEqual(["draft:j", expect.stringMatching(/^publish:/)]);
    const thread = await s.client.threads.get(threadId);
    expect(thread.status).toBe("interrupted");
    expect((await s.client.threads.getState(threadId)).next).toEqual(["review"]);
  });

  it("stops before a node with interruptBefore and continues with input null", async () => {
    const threadId = await newThread();
    const out = await valuesOf<StepValues>(
      s.client.runs.wait(threadId, "slow", {
        input: { topic: "ib", delayMs: 0 },
        interruptBefore: ["two"],
      }),
    );
    expect(out).toEqual({ __interrupt__: [] });
    expect((await s.client.threads.getState<StepValues>(threadId)).values.log).toEqual(["one"]);
    expect((await s.client.threads.getState(threadId)).next).toEqual(["two"]);
    expect((await s.client.threads.get(threadId)).status).toBe("interrupted");

    const done = await valuesOf<StepValues>(s.client.runs.wait(threadId, "slow", { input: null }));
    expect(done.log).toEqual(["one", "two", "three"]);
    expect((await s.client.threads.get(threadId)).status).toBe("idle");
  });

  it("stops after a node with interruptAfter and continues with input null", async () => {
    const threadId = await newThread();
    const out = await valuesOf<StepValues>(
      s.client.runs.wait(threadId, "slow", {
        input: { topic: "ia", delayMs: 0 },
        interruptAfter: ["one", "two"],
      }),
    );
    expect(out).toEqual({ __interrupt__: [] });
    expect((await s.client.threads.getState<StepValues>(threadId)).values.log).toEqual(["one"]);
    expect((await s.client.threads.getState(threadId)).next).toEqual(["two"]);
    expect((await s.client.threads.get(threadId)).status).toBe("interrupted");

    // the continuation has no interrupt_after of its own: it runs to the end
    const done = await valuesOf<StepValues>(s.client.runs.wait(threadId, "slow", { input: null }));
    expect(done.log).toEqual(["one", "two", "three"]);
    expect((await s.client.threads.getState(threadId)).next).toEqual([]);
  });

  it('interruptBefore "*" stops before every node', async () => {
    const threadId = await newThread();
    const logs: string[][] = [];
    const logNow = async () => (await s.client.threads.getState<StepValues>(threadId)).values.log;
    await s.client.runs.wait(threadId, "slow", {
      input: { topic: "all", delayMs: 0 },
      interruptBefore: "*",
    });
    logs.push(await logNow());
    for (let i = 0; i < 3; i++) {
      await s.client.runs.wait(threadId, "slow", { input: null, interruptBefore: "*" });
      logs.push(await logNow());
    }
    expect(logs).toEqual([[], ["one"], ["one", "two"], ["one", "two", "three"]]);
  });
});

describe("stateless runs", () => {
  /** A dedicated assistant, so the temporary threads of its runs can be found by metadata. */
  async function assistantForSlow() {
    const a = await s.client.assistants.create({
      graphId: "slow",
      name: `stateless-${randomUUID()}`,
    });
    const threadsOf = () =>
      s.client.threads.search({ metadata: { assistant_id: a.assistant_id }, limit: 100 });
    return { id: a.assistant_id, threadsOf };
  }

  it("runs.wait(null) answers the values and deletes the temporary thread", async () => {
    const a = await assistantForSlow();
    let created: { run_id: string; thread_id?: string } | undefined;
    const out = await valuesOf<StepValues>(
      s.client.runs.wait(null, a.id, {
        input: { topic: "sl", delayMs: 0 },
        onRunCreated: (m) => (created = m),
      }),
    );
    expect(out.log).toEqual(["one", "two", "three"]);
    expect(created?.run_id).toBeTruthy();
    expect(await a.threadsOf()).toEqual([]);
  });

  it("runs.stream(null) streams the run and deletes the temporary thread", async () => {
    const a = await assistantForSlow();
    const events: { event: string; data: unknown }[] = [];
    for await (const e of s.client.runs.stream(null, a.id, {
      input: { topic: "ss", delayMs: 0 },
      streamMode: "values",
    })) {
      events.push(e);
    }
    expect(events[0]?.event).toBe("metadata");
    const last = events.at(-1);
    expect(last?.event).toBe("values");
    expect((last?.data as StepValues).log).toEqual(["one", "two", "three"]);
    expect(await a.threadsOf()).toEqual([]);
  });

  it("runs.create(null) runs in the background and deletes the thread when done", async () => {
    const a = await assistantForSlow();
    const run = await s.client.runs.create(null, a.id, { input: { topic: "sc", delayMs: 50 } });
    expect(run.thread_id).toBeTruthy();
    // the temporary thread exists while the run is in flight, then disappears
    expect((await a.threadsOf()).map((t) => t.thread_id)).toEqual([run.thread_id]);
    await eventually(async () => {
      const status = await statusOf(s.client.threads.get(run.thread_id)).catch(() => undefined);
      return status === 404 ? true : undefined;
    }, "the temporary thread to be deleted");
    expect(await a.threadsOf()).toEqual([]);
  });

  it('on_completion "keep" keeps the thread with its state and run', async () => {
    const a = await assistantForSlow();
    const run = await s.client.runs.create(null, a.id, {
      input: { topic: "keep", delayMs: 0 },
      onCompletion: KEEP,
    });
    const out = await valuesOf<StepValues>(s.client.runs.join(run.thread_id, run.run_id));
    expect(out.log).toEqual(["one", "two", "three"]);
    const thread = await s.client.threads.get(run.thread_id);
    expect(thread.status).toBe("idle");
    expect((thread.values as unknown as StepValues).log).toEqual(["one", "two", "three"]);
    expect((await s.client.runs.get(run.thread_id, run.run_id)).status).toBe("success");
    expect((await s.client.threads.getState<StepValues>(run.thread_id)).values.topic).toBe("keep");

    // the SDK's types do not let a stateless wait keep its thread: raw HTTP does
    const res = await fetch(`${s.url}/runs/wait`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        assistant_id: a.id,
        input: { topic: "keep2", delayMs: 0 },
        on_completion: "keep",
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-location")).toMatch(/^\/runs\/[0-9a-f-]{36}$/);
    expect(((await res.json()) as StepValues).topic).toBe("keep2");
    expect(await a.threadsOf()).toHaveLength(2);
  });
});

describe("threads that do not exist", () => {
  it('if_not_exists "create" creates the thread; the default rejects with 404', async () => {
    const threadId = randomUUID();
    expect(
      await statusOf(s.client.runs.wait(threadId, "slow", { input: { topic: "x", delayMs: 0 } })),
    ).toBe(404);
    expect(await statusOf(s.client.threads.get(threadId))).toBe(404);

    const out = await valuesOf<StepValues>(
      s.client.runs.wait(threadId, "slow", {
        input: { topic: "ine", delayMs: 0 },
        ifNotExists: "create",
      }),
    );
    expect(out.log).toEqual(["one", "two", "three"]);
    const thread = await s.client.threads.get(threadId);
    expect(thread.status).toBe("idle");
    expect(thread.metadata?.graph_id).toBe("slow");

    // on an existing thread, if_not_exists "create" just runs on it
    const again = await valuesOf<StepValues>(
      s.client.runs.wait(threadId, "slow", {
        input: { topic: "ine2", delayMs: 0 },
        ifNotExists: "create",
      }),
    );
    expect(again.log).toEqual(["one", "two", "three", "one", "two", "three"]);
  });
});

describe("errors in a graph", () => {
  it("runs.wait throws the graph's error; the run and the thread are in error", async () => {
    const threadId = await newThread();
    let runId: string | undefined;
    await expect(
      s.client.runs.wait(threadId, "failing", {
        input: { topic: "f" },
        onRunCreated: (m) => (runId = m.run_id),
      }),
    ).rejects.toThrow(/boom: this node always fails/);
    const run = await s.client.runs.get(threadId, runId!);
    expect(run.status).toBe("error");
    const thread = await s.client.threads.get(threadId);
    expect(thread.status).toBe("error");

    // raiseError: false hands back the {__error__} body the server sent
    const body = await valuesOf<{ __error__?: { error: string; message: string } }>(
      s.client.runs.wait(threadId, "failing", { input: { topic: "f2" }, raiseError: false }),
    );
    expect(body.__error__).toEqual({
      error: expect.any(String),
      message: "boom: this node always fails",
    });

    // join of a failed background run answers the same error
    const bg = await s.client.runs.create(threadId, "failing", { input: { topic: "f3" } });
    const joined = await valuesOf<{ __error__?: { message: string } }>(
      s.client.runs.join(threadId, bg.run_id),
    );
    expect(joined.__error__?.message).toBe("boom: this node always fails");
  });

  it("rejects an unknown graph and a bad body with precise 4xx errors", async () => {
    const threadId = await newThread();
    expect(await statusOf(s.client.runs.wait(threadId, "no-such-graph", { input: {} }))).toBe(404);
    // The input beside a command is ignored (as LangGraph does); this thread has nothing to resume.
    expect(
      await statusOf(
        s.client.runs.wait(threadId, "slow", {
          input: { topic: "x" },
          command: { resume: "y" },
        }),
      ),
    ).toBe(409);
    expect(
      await statusOf(s.client.runs.wait(threadId, "slow", { multitaskStrategy: "x" as never })),
    ).toBe(422);
    // nothing was inserted
    expect(await s.client.runs.list(threadId)).toEqual([]);
    expect((await s.client.threads.get(threadId)).status).toBe("idle");
  });
});

describe("/wait while the run lasts", () => {
  it("sends newline keep-alives, then the values as JSON", async () => {
    const threadId = await newThread();
    const res = await fetch(`${s.url}/threads/${threadId}/runs/wait`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ assistant_id: "slow", input: { topic: "ka", delayMs: 400 } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("content-location")).toMatch(
      new RegExp(`^/threads/${threadId}/runs/[0-9a-f-]{36}$`),
    );
    const text = await res.text();
    expect(text.startsWith("\n")).toBe(true);
    expect((JSON.parse(text) as StepValues).log).toEqual(["one", "two", "three"]);
  });

  it('on_disconnect "cancel": a client that gives up on /wait cancels the run', async () => {
    const threadId = await newThread();
    const controller = new AbortController();
    let runId: string | undefined;
    const waiting = s.client.runs.wait(threadId, "slow", {
      input: { topic: "wd", delayMs: 400 },
      onDisconnect: "cancel",
      signal: controller.signal,
      onRunCreated: (m) => (runId = m.run_id),
    });
    await eventually(async () => {
      const state = await s.client.threads.getState<StepValues>(threadId);
      return state.values.log?.includes("one") ? true : undefined;
    }, "the first step");
    controller.abort();
    await expect(waiting).rejects.toThrow();
    const runs = await s.client.runs.list(threadId);
    runId ??= runs[0]?.run_id;
    const status = await eventually(async () => {
      const run = await s.client.runs.get(threadId, runId!);
      return run.status === "running" || run.status === "pending" ? undefined : run.status;
    }, "the run to stop");
    expect(status).toBe("interrupted");
    expect((await s.client.threads.getState<StepValues>(threadId)).values.log).toEqual(["one"]);
  });
});

describe("/wait latency", () => {
  it("answers as soon as the run ends (20 sequential waits finish fast)", async () => {
    const threadId = await newThread();
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      const out = await valuesOf<StepValues>(
        s.client.runs.wait(threadId, "slow", {
          input: { topic: `w${i}`, delayMs: 0 },
        }),
      );
      expect(out.topic).toBe(`w${i}`);
    }
    // Not a speed target (bench/ measures speed): a /wait that noticed the run's end by polling
    // once a second would take 20 s or more here. Under a loaded 2-core CI machine, on Postgres,
    // the 20 runs themselves took up to 5.7 s, so the bound leaves room for load, not for polling.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await s.client.runs.list(threadId, { limit: 100 })).toHaveLength(20);
  });
});

describe("dev routes", () => {
  it("POST /internal/truncate is a 404 unless the server runs with REFINERY_DEV=1", async () => {
    const res = await fetch(`${s.url}/internal/truncate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ threads: true }),
    });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { message: string }).message).toContain("/internal/truncate");
    const doc = (await (await fetch(`${s.url}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    expect(doc.paths["/internal/truncate"]).toBeUndefined();
    expect(doc.paths["/runs/batch"]).toBeDefined();
  });
});
