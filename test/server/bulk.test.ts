// The bulk operations of the LangGraph server protocol through the official SDK (createBatch,
// cancelMany, prune) and the dev server's POST /internal/truncate: one open dev server
// (REFINERY_DEV=1). Auth (another tenant's objects untouched, truncate for admins only) is in
// test/server/isolation.test.ts; the documented statuses and bodies in openapi.test.ts.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;

beforeAll(async () => {
  s = await startTestServer({ env: { REFINERY_DEV: "1" } });
});
afterAll(async () => {
  await s?.close();
});

const post = async (path: string, body: unknown) => {
  const res = await fetch(`${s.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : null };
};

describe("POST /runs/batch", () => {
  it("creates one stateless run per item, in order, each on its own thread", async () => {
    const runs = await s.client.runs.createBatch([
      { assistantId: "slow", input: { topic: "b1" }, on_completion: "keep" } as never,
      { assistantId: "slow", input: { topic: "b2" }, on_completion: "keep" } as never,
    ]);
    expect(runs).toHaveLength(2);
    expect(runs[0]!.thread_id).not.toBe(runs[1]!.thread_id);
    for (const run of runs) await s.client.runs.join(run.thread_id, run.run_id);
    // on_completion "keep" (the body's own field: the SDK passes the item through) keeps them.
    expect((await s.client.threads.getState(runs[1]!.thread_id)).values).toMatchObject({
      topic: "b2",
    });
  });

  it("refuses a batch with a bad item before creating any run, naming the item", async () => {
    const marker = randomUUID();
    const res = await post("/runs/batch", [
      { assistant_id: "slow", input: { topic: marker }, on_completion: "keep" },
      { assistant_id: "slow", stream_mode: "nope" },
    ]);
    expect(res.status).toBe(422);
    expect(String(res.json?.field)).toMatch(/^\[1\]\.?stream_mode/);
    const threads = await s.client.threads.search({ values: { topic: marker } });
    expect(threads).toEqual([]);
    expect((await post("/runs/batch", { assistant_id: "slow" })).status).toBe(422);
    // an empty batch is refused too, as the LangGraph server refuses it
    const empty = await post("/runs/batch", []);
    expect(empty.status).toBe(422);
    expect(String(empty.json?.message)).toMatch(/empty/);
  });
});

describe("POST /runs/cancel", () => {
  it("cancels the runs named on a thread; a missing run is a 404 that cancels nothing", async () => {
    const thread = await s.client.threads.create();
    const run = await s.client.runs.create(thread.thread_id, "slow", {
      input: { topic: "c", delayMs: 30_000 },
    });
    const missing = await post("/runs/cancel", {
      thread_id: thread.thread_id,
      run_ids: [run.run_id, randomUUID()],
    });
    expect(missing.status).toBe(404);
    expect((await s.client.runs.get(thread.thread_id, run.run_id)).status).not.toBe("interrupted");
    await s.client.runs.cancelMany({ threadId: thread.thread_id, runIds: [run.run_id] });
    await s.client.runs.join(thread.thread_id, run.run_id);
    expect((await s.client.runs.get(thread.thread_id, run.run_id)).status).toBe("interrupted");
  });

  it("cancels by status: pending ones only, then the running one", async () => {
    const thread = await s.client.threads.create();
    const first = await s.client.runs.create(thread.thread_id, "slow", {
      input: { topic: "first", delayMs: 30_000 },
    });
    // The first has started (a pending-only cancel would otherwise take it too).
    while ((await s.client.runs.get(thread.thread_id, first.run_id)).status === "pending")
      await new Promise((r) => setTimeout(r, 20));
    const queued = await s.client.runs.create(thread.thread_id, "slow", {
      input: { topic: "queued" },
      multitaskStrategy: "enqueue",
    });
    await s.client.runs.cancelMany({ status: "pending" });
    expect((await s.client.runs.get(thread.thread_id, queued.run_id)).status).toBe("interrupted");
    expect((await s.client.runs.get(thread.thread_id, first.run_id)).status).toBe("running");
    await s.client.runs.cancelMany({ status: "running", action: "interrupt" });
    await s.client.runs.join(thread.thread_id, first.run_id);
    expect((await s.client.runs.get(thread.thread_id, first.run_id)).status).toBe("interrupted");
  });

  it("names what is wrong in a bad request", async () => {
    const neither = await post("/runs/cancel", {});
    expect(neither).toMatchObject({ status: 422, json: { field: "thread_id" } });
    const both = await post("/runs/cancel", { status: "all", thread_id: randomUUID() });
    expect(both).toMatchObject({ status: 422, json: { field: "status" } });
    expect((await post("/runs/cancel", { status: "done" })).json?.field).toBe("status");
    expect((await post("/runs/cancel?action=explode", { status: "all" })).json?.field).toBe(
      "action",
    );
  });
});

describe("POST /threads/prune", () => {
  it("keep_latest keeps a thread's state and drops its history; delete deletes it", async () => {
    const thread = await s.client.threads.create();
    await s.client.runs.wait(thread.thread_id, "slow", { input: { topic: "one" } });
    await s.client.runs.wait(thread.thread_id, "slow", { input: { topic: "two" } });
    const before = await s.client.threads.getState(thread.thread_id);
    expect((await s.client.threads.getHistory(thread.thread_id)).length).toBeGreaterThan(2);

    const kept = await s.client.threads.prune([thread.thread_id, randomUUID()], {
      strategy: "keep_latest",
    });
    expect(kept).toEqual({ pruned_count: 1 });
    expect(await s.client.threads.getHistory(thread.thread_id)).toHaveLength(1);
    const after = await s.client.threads.getState(thread.thread_id);
    expect(after.values).toEqual(before.values);
    expect(after.checkpoint.checkpoint_id).toBe(before.checkpoint.checkpoint_id);
    // The thread still runs on from its latest state.
    await s.client.runs.wait(thread.thread_id, "slow", { input: { topic: "three" } });
    expect((await s.client.threads.getState(thread.thread_id)).values).toMatchObject({
      topic: "three",
      log: ["one", "two", "three", "one", "two", "three", "one", "two", "three"],
    });

    const other = await s.client.threads.create();
    expect(await s.client.threads.prune([thread.thread_id, other.thread_id])).toEqual({
      pruned_count: 2,
    });
    await expect(s.client.threads.get(thread.thread_id)).rejects.toMatchObject({ status: 404 });
    await expect(s.client.threads.get(other.thread_id)).rejects.toMatchObject({ status: 404 });
  });

  it("names what is wrong in a bad request", async () => {
    expect((await post("/threads/prune", {})).json?.field).toBe("thread_ids");
    expect((await post("/threads/prune", { thread_ids: ["x"] })).status).toBe(422);
    const strategy = await post("/threads/prune", { thread_ids: [], strategy: "all" });
    expect(strategy).toMatchObject({ status: 422, json: { field: "strategy" } });
  });
});

describe("POST /internal/truncate (REFINERY_DEV=1)", () => {
  it("deletes what the flags say, keeps the graphs' own assistants", async () => {
    const assistant = await s.client.assistants.create({ graphId: "slow", name: "truncated" });
    const thread = await s.client.threads.create();
    await s.client.runs.wait(thread.thread_id, "slow", { input: { topic: "t" } });
    await s.client.store.putItem(["dev"], "k", { v: 1 });

    expect(await post("/internal/truncate", { runs: true })).toEqual({
      status: 200,
      json: { ok: true },
    });
    expect(await s.client.runs.list(thread.thread_id)).toEqual([]);
    expect((await s.client.threads.getState(thread.thread_id)).values).toMatchObject({
      topic: "t",
    });

    await post("/internal/truncate", { checkpointer: true });
    expect(await s.client.threads.getHistory(thread.thread_id)).toEqual([]);

    await post("/internal/truncate", { threads: true, assistants: true, store: true });
    expect(await s.client.threads.search({ limit: 100 })).toEqual([]);
    await expect(s.client.assistants.get(assistant.assistant_id)).rejects.toMatchObject({
      status: 404,
    });
    expect((await s.client.assistants.get("slow")).graph_id).toBe("slow");
    expect(await s.client.store.getItem(["dev"], "k")).toBeNull();
  });

  it("refuses flags that are not booleans, and unknown ones", async () => {
    expect(await post("/internal/truncate", { runs: "yes" })).toMatchObject({
      status: 422,
      json: { field: "runs" },
    });
    expect((await post("/internal/truncate", { everything: true })).status).toBe(422);
  });
});
