// Threads over the real server with the official SDK: create (if_exists), get, update, search,
// count, delete (runs and checkpoints go too), copy (same history, independent), state now and
// at a checkpoint, history (order, limit, before), state updates then continuing, forks from an
// earlier checkpoint, and the thread status through busy, interrupted, idle and error.
import { randomUUID } from "node:crypto";
import type { Config, ThreadState } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";
import { eventually, failure } from "../support/wait.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => s?.close());

interface StepValues {
  topic: string;
  log: string[];
  delayMs: number;
  decision: string | null;
}

const statusOf = async (threadId: string) => (await s.client.threads.get(threadId)).status;

/** A thread that ran the slow graph to the end with delay 0: log one, two, three. */
async function finishedSlowThread(topic = "a", metadata?: Record<string, unknown>) {
  const thread = await s.client.threads.create({ metadata });
  await s.client.runs.wait(thread.thread_id, "slow", { input: { topic } });
  return thread.thread_id;
}

/** POST /threads/{id}/state answers `{checkpoint}` (as the reference server does; the SDK types it as a config). */
const stateUpdate = (r: unknown) =>
  r as { checkpoint: { thread_id: string; checkpoint_ns: string; checkpoint_id: string } };

const history = (threadId: string, options: { limit?: number; before?: unknown } = {}) =>
  s.client.threads.getHistory<StepValues>(threadId, {
    limit: options.limit ?? 100,
    ...(options.before !== undefined ? { before: options.before as Config } : {}),
  });

/** Checkpoint ids from `from` back to the first checkpoint, following parent_checkpoint. */
function ancestry<V>(states: ThreadState<V>[], from: string | null | undefined): string[] {
  const byId = new Map(states.map((h) => [h.checkpoint.checkpoint_id, h]));
  const chain: string[] = [];
  for (let c = from; c; c = byId.get(c)?.parent_checkpoint?.checkpoint_id) chain.push(c);
  return chain;
}

describe("thread CRUD", () => {
  it("creates with and without metadata, with an explicit id, and honours if_exists", async () => {
    const plain = await s.client.threads.create();
    expect(plain).toMatchObject({ status: "idle", metadata: {} });
    expect(plain.thread_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(plain.values ?? null).toBeNull();
    // As the LangGraph server answers (issue 22): no values, interrupts or error until it runs.
    expect(Object.keys(plain).sort()).toEqual(
      ["config", "created_at", "metadata", "status", "thread_id", "updated_at"].sort(),
    );
    await s.client.runs.wait(plain.thread_id, "slow", { input: { topic: "k" } });
    const ran = await s.client.threads.get(plain.thread_id);
    expect(ran).toMatchObject({ values: { topic: "k" }, interrupts: {} });
    expect(ran).not.toHaveProperty("error");

    const tagged = await s.client.threads.create({ metadata: { user: "ann", n: 1 } });
    expect(tagged.metadata).toEqual({ user: "ann", n: 1 });

    const id = randomUUID();
    const explicit = await s.client.threads.create({ threadId: id, metadata: { v: 1 } });
    expect(explicit.thread_id).toBe(id);
    const kept = await s.client.threads.create({
      threadId: id,
      ifExists: "do_nothing",
      metadata: { v: 2 },
    });
    expect(kept.thread_id).toBe(id);
    expect(kept.metadata).toEqual({ v: 1 });
    const raised = await failure(s.client.threads.create({ threadId: id, ifExists: "raise" }));
    expect(raised.status).toBe(409);
    const dflt = await failure(s.client.threads.create({ threadId: id }));
    expect(dflt.status).toBe(409);
    expect((await s.client.threads.get(id)).metadata).toEqual({ v: 1 });
  });

  it("gets and updates metadata (merged), bumping updated_at", async () => {
    const t = await s.client.threads.create({ metadata: { a: 1, b: 1 } });
    expect(await s.client.threads.get(t.thread_id)).toMatchObject({
      thread_id: t.thread_id,
      metadata: { a: 1, b: 1 },
      status: "idle",
    });
    await new Promise((r) => setTimeout(r, 5));
    const updated = await s.client.threads.update(t.thread_id, { metadata: { b: 2, c: 3 } });
    expect(updated.metadata).toEqual({ a: 1, b: 2, c: 3 });
    expect(Date.parse(updated.updated_at)).toBeGreaterThan(Date.parse(t.updated_at));
    expect((await s.client.threads.get(t.thread_id)).metadata).toEqual({ a: 1, b: 2, c: 3 });
  });

  it("searches by status, metadata and values, and counts", async () => {
    const tag = randomUUID();
    const idle = await s.client.threads.create({ metadata: { tag, kind: "empty" } });
    const done = await finishedSlowThread("searched", { tag, kind: "ran" });
    const interrupted = await s.client.threads.create({ metadata: { tag, kind: "asked" } });
    await s.client.runs.wait(interrupted.thread_id, "approval", { input: { topic: "q" } });

    const all = await s.client.threads.search({ metadata: { tag } });
    expect(all.map((t) => t.thread_id).sort()).toEqual(
      [idle.thread_id, done, interrupted.thread_id].sort(),
    );
    const byKind = await s.client.threads.search({ metadata: { tag, kind: "ran" } });
    expect(byKind.map((t) => t.thread_id)).toEqual([done]);
    expect(byKind[0]?.values).toMatchObject({ topic: "searched", log: ["one", "two", "three"] });

    const inter = await s.client.threads.search({ metadata: { tag }, status: "interrupted" });
    expect(inter.map((t) => t.thread_id)).toEqual([interrupted.thread_id]);
    const byValues = await s.client.threads.search({ values: { topic: "searched" } });
    expect(byValues.map((t) => t.thread_id)).toEqual([done]);
    // Newest first, paged with limit/offset, fields picked with select.
    const page = await s.client.threads.search({ metadata: { tag }, limit: 2 });
    expect(page.map((t) => t.thread_id)).toEqual([interrupted.thread_id, done]);
    const rest = await s.client.threads.search({ metadata: { tag }, limit: 2, offset: 2 });
    expect(rest.map((t) => t.thread_id)).toEqual([idle.thread_id]);
    const picked = await s.client.threads.search({
      metadata: { tag, kind: "ran" },
      select: ["thread_id", "status"],
    });
    expect(picked).toEqual([{ thread_id: done, status: "idle" }]);

    expect(await s.client.threads.count({ metadata: { tag } })).toBe(3);
    expect(await s.client.threads.count({ metadata: { tag }, status: "idle" })).toBe(2);
    expect(await s.client.threads.count({ values: { topic: "searched" } })).toBe(1);
    expect(await s.client.threads.count({ metadata: { tag: "nothing-has-this" } })).toBe(0);
  });

  it("search answers X-Pagination-Total: every match, not the page (as the LangGraph server does)", async () => {
    const tag = randomUUID();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await s.client.threads.create({ metadata: { tag } })).thread_id);
    }
    const search = async (path: string, body: unknown) => {
      const res = await fetch(`${s.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return {
        total: res.headers.get("x-pagination-total"),
        rows: (await res.json()) as unknown[],
      };
    };
    const page = await search("/threads/search", { metadata: { tag }, limit: 2 });
    expect(page).toMatchObject({ total: "3" });
    expect(page.rows).toHaveLength(2);
    expect((await search("/threads/search", { ids: ids.slice(0, 2), limit: 1 })).total).toBe("2");
    for (let i = 0; i < 2; i++)
      await s.client.assistants.create({ graphId: "slow", metadata: { tag } });
    const assistants = await search("/assistants/search", { metadata: { tag }, limit: 1 });
    expect(assistants).toMatchObject({ total: "2" });
    expect(assistants.rows).toHaveLength(1);
  });

  it("deletes a thread with its runs and checkpoints: a recreated thread starts empty", async () => {
    const id = await finishedSlowThread("gone");
    expect(await s.client.runs.list(id)).toHaveLength(1);
    const before = await s.client.threads.count();
    await s.client.threads.delete(id);
    expect(await s.client.threads.count()).toBe(before - 1);
    const missing = await failure(s.client.threads.get(id));
    expect(missing.status).toBe(404);
    expect(missing.body).toContain("Thread not found");
    expect((await failure(s.client.threads.delete(id))).status).toBe(404);

    await s.client.threads.create({ threadId: id, metadata: { graph_id: "slow" } });
    const state = await s.client.threads.getState(id);
    expect(state.values).toEqual({});
    expect(state.checkpoint ?? null).toBeNull();
    expect(await s.client.runs.list(id)).toEqual([]);
    expect(await s.client.threads.getHistory(id)).toEqual([]);
    // A run on the recreated thread starts from scratch.
    const out = (await s.client.runs.wait(id, "slow", {
      input: { topic: "new" },
    })) as unknown as StepValues;
    expect(out.log).toEqual(["one", "two", "three"]);
  });
});

describe("delete while busy", () => {
  it("cancels the thread's run and removes everything", async () => {
    const before = await s.client.threads.count();
    const t = await s.client.threads.create();
    const run = await s.client.runs.create(t.thread_id, "slow", {
      input: { topic: "doomed", delayMs: 200 },
    });
    await eventually(
      async () =>
        (await s.client.runs.get(t.thread_id, run.run_id)).status === "running" ? true : undefined,
      "the run to start",
    );
    await s.client.threads.delete(t.thread_id);
    expect((await failure(s.client.threads.get(t.thread_id))).status).toBe(404);
    expect((await failure(s.client.runs.get(t.thread_id, run.run_id))).status).toBe(404);
    // The cancelled run does not bring the thread back when it winds down.
    await new Promise((r) => setTimeout(r, 300));
    expect((await failure(s.client.threads.get(t.thread_id))).status).toBe(404);
    expect(await s.client.threads.count()).toBe(before);
  });
});

describe("copy", () => {
  it("has the same state and history, and running on the copy leaves the original alone", async () => {
    const original = await s.client.threads.create({ metadata: { who: "orig" } });
    await s.client.runs.wait(original.thread_id, "approval", { input: { topic: "c" } });
    const copy = await s.client.threads.copy(original.thread_id);
    expect(copy.thread_id).not.toBe(original.thread_id);
    // As the LangGraph server does, the copy's metadata names the copy.
    expect(copy.metadata).toMatchObject({ thread_id: copy.thread_id });
    expect(copy.metadata).toMatchObject({ who: "orig" });
    expect(copy.status).toBe("interrupted");

    const [os, cs] = await Promise.all([
      s.client.threads.getState<StepValues>(original.thread_id),
      s.client.threads.getState<StepValues>(copy.thread_id),
    ]);
    expect(cs.values).toEqual(os.values);
    expect(cs.next).toEqual(["review"]);
    expect(cs.checkpoint.checkpoint_id).toBe(os.checkpoint.checkpoint_id);
    expect(cs.checkpoint.thread_id).toBe(copy.thread_id);
    expect(cs.tasks[0]?.interrupts[0]?.value).toMatchObject({ question: "approve?" });
    const [oh, ch] = await Promise.all([history(original.thread_id), history(copy.thread_id)]);
    expect(ch.map((h) => h.checkpoint.checkpoint_id)).toEqual(
      oh.map((h) => h.checkpoint.checkpoint_id),
    );
    expect(ch.map((h) => h.values)).toEqual(oh.map((h) => h.values));

    const out = (await s.client.runs.wait(copy.thread_id, "approval", {
      command: { resume: "copy-yes" },
    })) as unknown as StepValues;
    expect(out.log).toEqual(["draft:c", "review:copy-yes", "publish:copy-yes"]);
    expect(await statusOf(copy.thread_id)).toBe("idle");

    // The original is still interrupted at review with its own history and no extra runs.
    expect(await statusOf(original.thread_id)).toBe("interrupted");
    const after = await s.client.threads.getState<StepValues>(original.thread_id);
    expect(after.values).toEqual(os.values);
    expect(after.next).toEqual(["review"]);
    expect(await history(original.thread_id)).toHaveLength(oh.length);
    expect(await s.client.runs.list(original.thread_id)).toHaveLength(1);
    const resumed = (await s.client.runs.wait(original.thread_id, "approval", {
      command: { resume: "orig-no" },
    })) as unknown as StepValues;
    expect(resumed.log).toEqual(["draft:c", "review:orig-no", "publish:orig-no"]);
  });

  it("copying an unknown thread is a 404", async () => {
    expect((await failure(s.client.threads.copy(randomUUID()))).status).toBe(404);
  });
});

describe("state and history", () => {
  it("getState now, at a checkpoint id and by checkpoint object", async () => {
    const id = await finishedSlowThread("st");
    const now = await s.client.threads.getState<StepValues>(id);
    expect(now.values).toMatchObject({ topic: "st", log: ["one", "two", "three"] });
    expect(now.next).toEqual([]);
    expect(now.checkpoint).toMatchObject({ thread_id: id, checkpoint_ns: "" });
    expect(typeof now.checkpoint.checkpoint_id).toBe("string");
    expect(now.parent_checkpoint?.checkpoint_id).toBeTruthy();

    const all = await history(id);
    const afterOne = all.find((h) => h.next[0] === "two");
    expect(afterOne?.values.log).toEqual(["one"]);
    const cid = afterOne?.checkpoint.checkpoint_id ?? "";

    const byId = await s.client.threads.getState<StepValues>(id, cid);
    expect(byId.values.log).toEqual(["one"]);
    expect(byId.next).toEqual(["two"]);
    expect(byId.checkpoint.checkpoint_id).toBe(cid);

    const byObject = await s.client.threads.getState<StepValues>(id, {
      checkpoint_id: cid,
      checkpoint_ns: "",
    } as never);
    expect(byObject.values.log).toEqual(["one"]);
    expect(byObject.checkpoint.checkpoint_id).toBe(cid);

    // The checkpoint of another thread, or a made-up one, is not found.
    const other = await finishedSlowThread("other");
    const missing = await failure(s.client.threads.getState(other, cid));
    expect(missing.status).toBe(404);
    expect(missing.body).toContain("checkpoint");
  });

  it("getHistory is newest first, honours limit and before (string or config)", async () => {
    const id = await finishedSlowThread("h");
    const all = await history(id);
    // input, one, two, three (+ the __start__ checkpoint).
    expect(all.length).toBeGreaterThanOrEqual(4);
    expect(all[0]?.values.log).toEqual(["one", "two", "three"]);
    expect(all[0]?.next).toEqual([]);
    const steps = all.map((h) => h.metadata?.step as number);
    expect(steps).toEqual([...steps].sort((a, b) => b - a));
    const created = all.map((h) => Date.parse(h.created_at ?? ""));
    expect(created).toEqual([...created].sort((a, b) => b - a));
    expect(all[0]?.checkpoint.checkpoint_id).toBe(
      (await s.client.threads.getState(id)).checkpoint.checkpoint_id,
    );
    // Each state's parent is the next one in the list.
    for (let i = 0; i < all.length - 1; i++) {
      expect(all[i]?.parent_checkpoint?.checkpoint_id).toBe(all[i + 1]?.checkpoint.checkpoint_id);
    }

    const two = await history(id, { limit: 2 });
    expect(two.map((h) => h.checkpoint.checkpoint_id)).toEqual(
      all.slice(0, 2).map((h) => h.checkpoint.checkpoint_id),
    );

    const pivot = all[1]?.checkpoint.checkpoint_id ?? "";
    const beforeString = await history(id, { before: pivot });
    expect(beforeString.map((h) => h.checkpoint.checkpoint_id)).toEqual(
      all.slice(2).map((h) => h.checkpoint.checkpoint_id),
    );
    const beforeConfig = await history(id, { before: { configurable: { checkpoint_id: pivot } } });
    expect(beforeConfig.map((h) => h.checkpoint.checkpoint_id)).toEqual(
      all.slice(2).map((h) => h.checkpoint.checkpoint_id),
    );
    const inputs = await s.client.threads.getHistory(id, { metadata: { source: "input" } });
    expect(inputs.map((h) => h.metadata?.source)).toEqual(["input"]);
    const limited = await history(id, { before: pivot, limit: 1 });
    expect(limited.map((h) => h.checkpoint.checkpoint_id)).toEqual([
      all[2]?.checkpoint.checkpoint_id,
    ]);

    // GET /history takes the same limit and before as query parameters.
    const res = await fetch(`${s.url}/threads/${id}/history?limit=1&before=${pivot}`);
    expect(res.status).toBe(200);
    const got = (await res.json()) as ThreadState[];
    expect(got.map((h) => h.checkpoint.checkpoint_id)).toEqual([all[2]?.checkpoint.checkpoint_id]);
  });

  it("a checkpoint's metadata names the run that wrote it, as the LangGraph server's do (issue 22)", async () => {
    const thread = await s.client.threads.create();
    const run = await s.client.runs.create(thread.thread_id, "slow", { input: { topic: "md" } });
    await s.client.runs.join(thread.thread_id, run.run_id);
    const state = await s.client.threads.getState(thread.thread_id);
    expect(state.metadata).toMatchObject({
      run_id: run.run_id,
      run_attempt: 1,
      graph_id: "slow",
      assistant_id: run.assistant_id,
      langgraph_version: expect.stringMatching(/^\d+\.\d+/),
      source: "loop",
    });
    const history = await s.client.threads.getHistory(thread.thread_id);
    expect(history.every((h) => h.metadata?.run_id === run.run_id)).toBe(true);
  });

  it("state/checkpoint without a checkpoint is the latest state; a state update's checkpoint names the graph (issue 22)", async () => {
    const threadId = await finishedSlowThread("lc");
    const res = await fetch(`${s.url}/threads/${threadId}/state/checkpoint`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    const latest = (await res.json()) as ThreadState<StepValues>;
    expect(latest.values.log).toEqual(["one", "two", "three"]);
    await s.client.threads.updateState(threadId, { values: { topic: "changed" } });
    const state = await s.client.threads.getState(threadId);
    expect(state.metadata).toMatchObject({ source: "update", graph_id: "slow" });
  });

  it("a thread that never ran has an empty state and history", async () => {
    const t = await s.client.threads.create();
    const state = await s.client.threads.getState(t.thread_id);
    expect(state).toMatchObject({ values: {}, next: [], tasks: [] });
    expect(await s.client.threads.getHistory(t.thread_id)).toEqual([]);
  });
});

describe("state updates and forks", () => {
  it("updateState before a node, then input null continues from the updated state", async () => {
    const t = await s.client.threads.create();
    await s.client.runs.wait(t.thread_id, "approval", {
      input: { topic: "first" },
      interruptBefore: ["draft"],
    });
    expect(await statusOf(t.thread_id)).toBe("interrupted");
    expect((await s.client.threads.getState(t.thread_id)).next).toEqual(["draft"]);

    const { checkpoint } = stateUpdate(
      await s.client.threads.updateState(t.thread_id, { values: { topic: "edited" } }),
    );
    expect(checkpoint).toMatchObject({ thread_id: t.thread_id });
    const updated = await s.client.threads.getState<StepValues>(t.thread_id);
    expect(updated.values.topic).toBe("edited");
    expect(updated.next).toEqual(["draft"]);
    expect((await s.client.threads.get(t.thread_id)).values).toMatchObject({ topic: "edited" });

    await s.client.runs.wait(t.thread_id, "approval", { input: null });
    const waiting = await s.client.threads.getState<StepValues>(t.thread_id);
    expect(waiting.values.log).toEqual(["draft:edited"]);
    expect(waiting.next).toEqual(["review"]);
    expect(await statusOf(t.thread_id)).toBe("interrupted");
  });

  it("updateState as the interrupted node answers it; input null then finishes the graph", async () => {
    const t = await s.client.threads.create();
    await s.client.runs.wait(t.thread_id, "approval", { input: { topic: "n" } });
    expect(await statusOf(t.thread_id)).toBe("interrupted");

    await s.client.threads.updateState(t.thread_id, {
      values: { decision: "manual", log: "review:manual" },
      asNode: "review",
    });
    const state = await s.client.threads.getState<StepValues>(t.thread_id);
    expect(state.next).toEqual(["publish"]);
    expect(state.values.decision).toBe("manual");
    expect(state.tasks.flatMap((task) => task.interrupts)).toEqual([]);
    // Still paused (a node is next), but the interrupt it was waiting on is answered.
    const paused = await s.client.threads.get(t.thread_id);
    expect(paused.interrupts ?? {}).toEqual({});
    expect(paused.values).toMatchObject({ decision: "manual" });

    const out = (await s.client.runs.wait(t.thread_id, "approval", {
      input: null,
    })) as unknown as StepValues;
    expect(out.log).toEqual(["draft:n", "review:manual", "publish:manual"]);
    expect(await statusOf(t.thread_id)).toBe("idle");
    expect((await s.client.threads.getState(t.thread_id)).next).toEqual([]);
  });

  it("updateState with an unknown node is a 422 naming as_node", async () => {
    const id = await finishedSlowThread("x");
    const head = (await s.client.threads.getState(id)).checkpoint.checkpoint_id;
    const bad = await failure(
      s.client.threads.updateState(id, { values: { topic: "y" }, asNode: "nope" }),
    );
    expect(bad.status).toBe(422);
    expect(bad.body).toContain("as_node");
    expect((await s.client.threads.getState(id)).checkpoint.checkpoint_id).toBe(head);
  });

  it("a run from an earlier checkpoint forks a new branch that history shows", async () => {
    const id = await finishedSlowThread("fork");
    const original = await history(id);
    const head = original[0]?.checkpoint.checkpoint_id;
    const forkPoint = original.find((h) => h.next[0] === "two");
    const cid = forkPoint?.checkpoint.checkpoint_id ?? "";
    expect(cid).toBeTruthy();

    // Edit the state at the fork point (as node "one"), then continue from the edit.
    const edited = stateUpdate(
      await s.client.threads.updateState(id, {
        values: { log: "one-edited" },
        asNode: "one",
        checkpointId: cid,
      }),
    );
    const editId = edited.checkpoint.checkpoint_id;
    const out = (await s.client.runs.wait(id, "slow", {
      input: null,
      checkpointId: editId,
    })) as unknown as StepValues;
    expect(out.log).toEqual(["one", "one-edited", "two", "three"]);
    const now = await s.client.threads.getState<StepValues>(id);
    expect(now.values.log).toEqual(["one", "one-edited", "two", "three"]);
    expect((await s.client.threads.get(id)).values).toMatchObject({
      log: ["one", "one-edited", "two", "three"],
    });

    // History holds both branches; the new head descends from the fork point.
    const after = await history(id);
    expect(after.length).toBe(original.length + 3);
    const chain = ancestry(after, now.checkpoint.checkpoint_id);
    expect(chain).toContain(editId);
    expect(chain).toContain(cid);
    expect(chain).not.toContain(head);
    // The old head is still readable.
    const old = await s.client.threads.getState<StepValues>(id, head ?? "");
    expect(old.values.log).toEqual(["one", "two", "three"]);

    // A plain run from the fork point (no edit) replays the rest of that branch.
    const replay = (await s.client.runs.wait(id, "slow", {
      input: null,
      checkpointId: cid,
    })) as unknown as StepValues;
    expect(replay.log).toEqual(["one", "two", "three"]);
    const replayed = await history(id);
    expect(replayed.length).toBeGreaterThanOrEqual(after.length + 2);
    const headNow = (await s.client.threads.getState(id)).checkpoint.checkpoint_id;
    const replayChain = ancestry(replayed, headNow);
    expect(replayChain).toContain(cid);
    expect(replayChain).not.toContain(editId);
    expect(replayChain).not.toContain(head);
  });
});

describe("thread status", () => {
  it("goes idle -> busy -> interrupted -> idle", async () => {
    const t = await s.client.threads.create();
    expect(t.status).toBe("idle");
    const run = await s.client.runs.create(t.thread_id, "slow", {
      input: { topic: "status", delayMs: 150 },
      interruptBefore: ["three"],
    });
    expect(await statusOf(t.thread_id)).toBe("busy");
    await s.client.runs.join(t.thread_id, run.run_id);
    expect(await statusOf(t.thread_id)).toBe("interrupted");
    expect((await s.client.runs.get(t.thread_id, run.run_id)).status).toBe("success");
    const thread = await s.client.threads.get<StepValues>(t.thread_id);
    expect(thread.values).toMatchObject({ log: ["one", "two"] });

    const next = await s.client.runs.create(t.thread_id, "slow", { input: null });
    expect(await statusOf(t.thread_id)).toBe("busy");
    await s.client.runs.join(t.thread_id, next.run_id);
    expect(await statusOf(t.thread_id)).toBe("idle");
    expect((await s.client.threads.get<StepValues>(t.thread_id)).values).toMatchObject({
      log: ["one", "two", "three"],
    });
  });

  it("an interrupt() makes it interrupted with the interrupt in the thread; resume makes it idle", async () => {
    const t = await s.client.threads.create();
    await s.client.runs.wait(t.thread_id, "approval", { input: { topic: "i" } });
    const thread = await s.client.threads.get(t.thread_id);
    expect(thread.status).toBe("interrupted");
    const interrupts = Object.values(thread.interrupts ?? {}).flat();
    expect(interrupts[0]?.value).toMatchObject({ question: "approve?", draft: "draft:i" });
    await s.client.runs.wait(t.thread_id, "approval", { command: { resume: "ok" } });
    const done = await s.client.threads.get(t.thread_id);
    expect(done.status).toBe("idle");
    expect(Object.keys(done.interrupts ?? {})).toHaveLength(0);
  });

  it("a failing node makes it error, and runs.wait raises with the node's message", async () => {
    const t = await s.client.threads.create();
    await expect(
      s.client.runs.wait(t.thread_id, "failing", { input: { topic: "f" } }),
    ).rejects.toThrow("boom: this node always fails");
    expect(await statusOf(t.thread_id)).toBe("error");
    const [run] = await s.client.runs.list(t.thread_id);
    expect(run?.status).toBe("error");
    const state = await s.client.threads.getState(t.thread_id);
    expect(state.next).toEqual(["boom"]);
    expect(state.tasks[0]?.error).toContain("boom: this node always fails");

    // A later successful run on another graph's thread is unaffected; this one can be retried.
    await expect(s.client.runs.wait(t.thread_id, "failing", { input: null })).rejects.toThrow(
      "boom",
    );
    expect(await statusOf(t.thread_id)).toBe("error");
    expect(await s.client.runs.list(t.thread_id)).toHaveLength(2);
  });

  it("a background run is observable as busy until it finishes", async () => {
    const t = await s.client.threads.create();
    const run = await s.client.runs.create(t.thread_id, "slow", {
      input: { topic: "bg", delayMs: 100 },
    });
    await eventually(
      async () => ((await statusOf(t.thread_id)) === "busy" ? true : undefined),
      "busy",
    );
    const busy = await s.client.threads.search({ status: "busy", ids: [t.thread_id] });
    expect(busy.map((x) => x.thread_id)).toEqual([t.thread_id]);
    await s.client.runs.join(t.thread_id, run.run_id);
    expect(await statusOf(t.thread_id)).toBe("idle");
  });
});
