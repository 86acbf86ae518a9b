// Graphs with subgraphs, loaded from a user's langgraph.json (test/fixtures/subgraph-app) and
// driven through one real server with the official SDK: the subgraphs of an assistant by
// namespace, a thread's state and history with subgraphs and by a subgraph's checkpoint_ns,
// stream_subgraphs, interrupt() inside a subgraph resumed with and without an update of the
// subgraph's state, a subgraph compiled with its own interruptBefore, and the run's
// interrupt_before/after around subgraphs.
import { join } from "node:path";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

const APP = join(import.meta.dirname, "../fixtures/subgraph-app/langgraph.json");

let s: TestServer;
let c: Client;
beforeAll(async () => {
  s = await startTestServer({ configPath: APP });
  c = s.client;
});
afterAll(async () => {
  await s?.close();
});

interface TaskLike {
  name: string;
  interrupts: { id?: string; value: unknown }[];
  checkpoint: Record<string, unknown> | null;
  state: StateLike | null;
}
interface StateLike {
  values: { topic?: string; log?: string[]; decision?: unknown };
  next: string[];
  tasks: TaskLike[];
  metadata?: Record<string, unknown>;
  checkpoint: Record<string, unknown> | null;
}

const stateOf = async (threadId: string, subgraphs = false) =>
  (await c.threads.getState(threadId, undefined, { subgraphs })) as unknown as StateLike;

/** A thread of `nested` stopped at the interrupt() in its innermost subgraph. */
async function interruptedThread(topic = "x"): Promise<string> {
  const thread = await c.threads.create();
  const out = (await c.runs.wait(thread.thread_id, "nested", { input: { topic } })) as Record<
    string,
    unknown
  >;
  expect(out.__interrupt__).toEqual([
    { id: expect.any(String), value: { question: "publish?", topic } },
  ]);
  return thread.thread_id;
}

async function raw(method: string, path: string, body?: unknown) {
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("GET /assistants/{id}/subgraphs", () => {
  it("lists a graph's subgraphs by namespace, nested ones with recurse, one by its namespace", async () => {
    expect(Object.keys(await c.assistants.getSubgraphs("nested"))).toEqual(["review"]);
    const all = await c.assistants.getSubgraphs("nested", { recurse: true });
    expect(Object.keys(all)).toEqual(["review", "review|approve"]);
    for (const schema of Object.values(all)) expect(typeof schema).toBe("object");
    expect(Object.keys(await c.assistants.getSubgraphs("nested", { namespace: "review" }))).toEqual(
      ["review"],
    );
    // A nested namespace needs recurse, as LangGraph's getSubgraphs reads it.
    expect(
      Object.keys(
        await c.assistants.getSubgraphs("nested", { namespace: "review|approve", recurse: true }),
      ),
    ).toEqual(["review|approve"]);
    expect(await c.assistants.getSubgraphs("nested", { namespace: "nope" })).toEqual({});
    expect(await c.assistants.getSubgraphs("flat", { recurse: true })).toEqual({});
    // By a user's assistant of the graph too.
    const mine = await c.assistants.create({ graphId: "staged" });
    expect(Object.keys(await c.assistants.getSubgraphs(mine.assistant_id))).toEqual(["work"]);
  });

  it("refuses a recurse that is not a boolean (422 naming it) and answers 404 for a missing assistant", async () => {
    const bad = await raw("GET", "/assistants/nested/subgraphs?recurse=maybe");
    expect(bad.status).toBe(422);
    expect(bad.json).toMatchObject({ field: "recurse" });
    const missing = await raw(
      "GET",
      "/assistants/00000000-0000-4000-8000-0000000000ff/subgraphs/review",
    );
    expect(missing.status).toBe(404);
  });
});

describe("interrupt() inside a subgraph", () => {
  it("shows the interrupt on the thread and in its state; subgraphs=true fills tasks[].state", async () => {
    const id = await interruptedThread();
    const thread = await c.threads.get(id);
    expect(thread.status).toBe("interrupted");
    expect(Object.values(thread.interrupts ?? {}).flat()).toEqual([
      { id: expect.any(String), value: { question: "publish?", topic: "x" } },
    ]);

    const state = await stateOf(id);
    expect(state.values.log).toEqual(["outline:x"]);
    expect(state.next).toEqual(["review"]);
    const [task] = state.tasks;
    expect(task?.name).toBe("review");
    expect(task?.interrupts[0]?.value).toEqual({ question: "publish?", topic: "x" });
    // Without subgraphs: where the subgraph's state is, not the state itself.
    expect(task?.state).toBeNull();
    expect(task?.checkpoint).toEqual({
      thread_id: id,
      checkpoint_ns: expect.stringMatching(/^review:[0-9a-f-]{36}$/),
    });

    const deep = await stateOf(id, true);
    const review = deep.tasks[0]?.state;
    expect(review?.values.log).toEqual(["outline:x", "prep:x"]);
    expect(review?.next).toEqual(["approve"]);
    expect(review?.checkpoint).toMatchObject({
      checkpoint_ns: task?.checkpoint?.checkpoint_ns,
      checkpoint_id: expect.any(String),
    });
    const approve = review?.tasks[0]?.state;
    expect(approve?.next).toEqual(["ask"]);
    expect(approve?.tasks[0]?.interrupts[0]?.value).toEqual({ question: "publish?", topic: "x" });
    expect(approve?.checkpoint?.checkpoint_ns).toMatch(
      /^review:[0-9a-f-]{36}\|approve:[0-9a-f-]{36}$/,
    );
    // A subgraph checkpoint's metadata names its parents' checkpoints, as the reference stores it.
    expect(approve?.metadata?.checkpoint_map).toMatchObject({ "": deep.checkpoint?.checkpoint_id });
  });

  it("reads a subgraph's state and history by its checkpoint_ns", async () => {
    const id = await interruptedThread();
    const ref = (await stateOf(id)).tasks[0]?.checkpoint as Record<string, unknown>;
    const sub = (await c.threads.getState(id, ref as never)) as unknown as StateLike;
    expect(sub.values.log).toEqual(["outline:x", "prep:x"]);
    expect(sub.next).toEqual(["approve"]);
    expect(sub.checkpoint?.checkpoint_ns).toBe(ref.checkpoint_ns);
    // Its own subgraph task, with where its state is.
    expect(sub.tasks[0]?.checkpoint?.checkpoint_ns).toMatch(/\|approve:/);

    const history = (await c.threads.getHistory(id, {
      checkpoint: ref as never,
      limit: 10,
    })) as unknown as StateLike[];
    expect(history.map((h) => h.next)).toEqual([["approve"], ["prep"], ["__start__"]]);
    expect(new Set(history.map((h) => h.checkpoint?.checkpoint_ns))).toEqual(
      new Set([ref.checkpoint_ns]),
    );
    // The root's history is the root's checkpoints only.
    const root = (await c.threads.getHistory(id)) as unknown as StateLike[];
    expect(new Set(root.map((h) => h.checkpoint?.checkpoint_ns))).toEqual(new Set([""]));
  });

  it("resumes with command.resume without changing the state", async () => {
    const id = await interruptedThread();
    const out = (await c.runs.wait(id, "nested", {
      command: { resume: "yes" },
    })) as StateLike["values"];
    expect(out).toEqual({
      topic: "x",
      log: ["outline:x", "prep:x", 'ask:"yes"', 'publish:"yes"'],
      decision: "yes",
    });
    const thread = await c.threads.get(id);
    expect(thread.status).toBe("idle");
    expect(thread.interrupts).toEqual({});
    expect((await stateOf(id)).next).toEqual([]);
  });

  it("updates the subgraph's state (checkpoint with its checkpoint_ns), then resumes from it", async () => {
    const id = await interruptedThread();
    const inner = (await stateOf(id, true)).tasks[0]?.state?.tasks[0]?.state?.checkpoint;
    expect(inner).toBeTruthy();
    const updated = (await c.threads.updateState(id, {
      values: { topic: "edited" },
      checkpoint: inner as never,
    })) as unknown as { checkpoint: Record<string, unknown> };
    expect(updated.checkpoint).toMatchObject({
      thread_id: id,
      checkpoint_ns: inner?.checkpoint_ns,
      checkpoint_id: expect.any(String),
    });
    expect(updated.checkpoint.checkpoint_id).not.toBe(inner?.checkpoint_id);

    // Still waiting at the interrupt; the root's values are untouched, the subgraph's changed.
    const after = await stateOf(id, true);
    expect(after.values.topic).toBe("x");
    expect(after.next).toEqual(["review"]);
    expect(after.tasks[0]?.interrupts).toHaveLength(1);
    expect(after.tasks[0]?.state?.tasks[0]?.state?.values.topic).toBe("edited");
    expect((await c.threads.get(id)).status).toBe("interrupted");

    const out = (await c.runs.wait(id, "nested", {
      command: { resume: "ok" },
    })) as StateLike["values"];
    // The subgraph's edit flows back to the parent when the subgraph returns.
    expect(out).toEqual({
      topic: "edited",
      log: ["outline:x", "prep:x", 'ask:"ok"', 'publish:"ok"'],
      decision: "ok",
    });
  });

  it("updates the middle subgraph by the namespace-only checkpoint a task reports", async () => {
    const id = await interruptedThread();
    const ref = (await stateOf(id)).tasks[0]?.checkpoint as Record<string, unknown>;
    const updated = (await c.threads.updateState(id, {
      values: { log: ["outline:x", "prep:x", "note"] },
      checkpoint: ref as never,
    })) as unknown as { checkpoint: Record<string, unknown> };
    expect(updated.checkpoint.checkpoint_ns).toBe(ref.checkpoint_ns);
    expect(
      ((await c.threads.getState(id, ref as never)) as unknown as StateLike).values.log,
    ).toEqual(["outline:x", "prep:x", "note"]);
  });

  it("refuses an update at a namespace the thread has no checkpoint in (404, nothing written)", async () => {
    const id = await interruptedThread();
    const ns = (await stateOf(id)).tasks[0]?.checkpoint?.checkpoint_ns as string;
    const before = (await c.threads.getHistory(id, { limit: 100 })).length;
    for (const bad of [
      "review",
      "review:00000000-0000-4000-8000-000000000000",
      `${ns}|approve:x`,
    ]) {
      const res = await raw("POST", `/threads/${id}/state`, {
        values: { topic: "q" },
        checkpoint: { checkpoint_ns: bad },
      });
      expect(res.status, bad).toBe(404);
      expect(res.json).toMatchObject({ field: "checkpoint.checkpoint_ns" });
      expect(
        await c.threads.getHistory(id, { checkpoint: { checkpoint_ns: bad } as never }),
      ).toEqual([]);
    }
    const wrongId = await raw("POST", `/threads/${id}/state`, {
      values: { topic: "q" },
      checkpoint: { checkpoint_ns: ns, checkpoint_id: "00000000-0000-4000-8000-000000000000" },
    });
    expect(wrongId.status).toBe(404);
    expect(wrongId.json).toMatchObject({ field: "checkpoint.checkpoint_id" });
    expect((await c.threads.getHistory(id, { limit: 100 })).length).toBe(before);
  });
});

describe("streaming with subgraphs", () => {
  it("names subgraph chunks <mode>|<namespace> with stream_subgraphs, and leaves them out without", async () => {
    const thread = await c.threads.create();
    const events: string[] = [];
    for await (const e of c.runs.stream(thread.thread_id, "nested", {
      input: { topic: "s" },
      streamMode: ["values", "updates"],
      streamSubgraphs: true,
    }))
      events.push(e.event);
    const ns = (await stateOf(thread.thread_id)).tasks[0]?.checkpoint?.checkpoint_ns as string;
    expect(events).toContain(`values|${ns}`);
    expect(events).toContain(`updates|${ns}`);
    expect(events.some((e) => /^updates\|review:[^|]+\|approve:/.test(e))).toBe(true);
    expect(events.filter((e) => e === "updates").length).toBeGreaterThan(0);

    const resumed: { event: string; data: unknown }[] = [];
    for await (const e of c.runs.stream(thread.thread_id, "nested", {
      command: { resume: "ok" },
      streamMode: ["updates"],
      streamSubgraphs: true,
    }))
      resumed.push({ event: e.event, data: e.data });
    expect(resumed).toContainEqual({
      event: expect.stringMatching(/^updates\|review:[^|]+\|approve:/),
      data: { ask: expect.objectContaining({ decision: "ok" }) },
    });
    expect(resumed).toContainEqual({
      event: "updates",
      data: { publish: expect.objectContaining({ log: expect.arrayContaining(['publish:"ok"']) }) },
    });

    const plain = await c.threads.create();
    const names: string[] = [];
    for await (const e of c.runs.stream(plain.thread_id, "nested", {
      input: { topic: "s" },
      streamMode: ["values", "updates"],
    }))
      names.push(e.event);
    expect(names.filter((n) => n.includes("|"))).toEqual([]);
    expect(names).toContain("updates");
  });
});

describe("interrupts around subgraphs", () => {
  it("stops where a subgraph compiled with interruptBefore says, and continues with input null", async () => {
    const thread = await c.threads.create();
    await c.runs.wait(thread.thread_id, "staged", { input: { topic: "t" } });
    expect((await c.threads.get(thread.thread_id)).status).toBe("interrupted");
    const state = await stateOf(thread.thread_id, true);
    expect(state.next).toEqual(["work"]);
    expect(state.tasks[0]?.state?.next).toEqual(["check"]);
    expect(state.tasks[0]?.state?.values.log).toEqual(["draft:t"]);
    const out = (await c.runs.wait(thread.thread_id, "staged", {
      input: null,
    })) as StateLike["values"];
    expect(out.log).toEqual(["draft:t", "check:t", "done"]);
    expect((await c.threads.get(thread.thread_id)).status).toBe("idle");
  });

  it("stops before a subgraph node named in interrupt_before, which then runs (to its interrupt())", async () => {
    const thread = await c.threads.create();
    await c.runs.wait(thread.thread_id, "nested", {
      input: { topic: "b" },
      interruptBefore: ["review"],
    });
    const state = await stateOf(thread.thread_id, true);
    expect(state.next).toEqual(["review"]);
    expect(state.tasks[0]?.interrupts).toEqual([]);
    // The subgraph has not started: an empty state, no checkpoint of its own yet.
    expect(state.tasks[0]?.state?.values).toEqual({});
    const out = (await c.runs.wait(thread.thread_id, "nested", { input: null })) as Record<
      string,
      unknown
    >;
    expect(out.__interrupt__).toHaveLength(1);
    expect((await stateOf(thread.thread_id, true)).tasks[0]?.state?.values.log).toEqual([
      "outline:b",
      "prep:b",
    ]);
  });

  it("accepts interrupt_before/after naming a subgraph's own node, as the LangGraph server does (a run's lists reach the graph's own nodes only, so the run does not stop there)", async () => {
    for (const body of [{ interrupt_before: ["prep"] }, { interrupt_after: ["review", "ask"] }]) {
      const thread = await c.threads.create();
      const res = await raw("POST", `/threads/${thread.thread_id}/runs/wait`, {
        assistant_id: "nested",
        input: { topic: "r" },
        ...body,
      });
      expect(res.status).toBe(200);
      // The run went past "prep" (it is in the subgraph's log): no stop before it.
      const state = await stateOf(thread.thread_id, true);
      expect(JSON.stringify(state)).toContain("prep:r");
    }
  });
});
