// Thread and run features of the LangGraph protocol over the real server and the official SDK:
// supersteps on thread create, the thread's config, the thread stream (with Last-Event-ID),
// thread TTLs and their sweeper, a run's runtime context (merged over the assistant's, checked
// against the graph's context schema) and /wait and /join of a run stopped at an interrupt.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";
import { countCheckpoints, queryTestDatabase, TEST_BACKEND } from "../support/test-backend.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    configPath: join(import.meta.dirname, "../fixtures/threads-runs.langgraph.json"),
    // Expired threads are swept every 100 ms (the TTL tests use TTLs of a fraction of a second).
    env: { REFINERY_THREAD_SWEEP_MS: "100" },
  });
});
afterAll(async () => s?.close());

/** The SDK error of a failing request: its status and parsed JSON body. */
async function failure(
  promise: Promise<unknown>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { status?: number; text?: string };
    if (typeof e.status !== "number" || typeof e.text !== "string") throw err;
    return { status: e.status, body: JSON.parse(e.text) as Record<string, unknown> };
  }
  throw new Error("expected the request to fail");
}

const checkpointRows = (threadId: string): Promise<number> => countCheckpoints(s.dbPath, threadId);

describe("supersteps on thread create", () => {
  it("apply each superstep as a step made as its nodes, so the graph goes on from there", async () => {
    const thread = await s.client.threads.create({
      graphId: "slow",
      supersteps: [
        { updates: [{ values: { topic: "seeded", log: "one" }, asNode: "one" }] },
        { updates: [{ values: { log: "two" }, asNode: "two" }] },
      ],
    });
    expect(thread.values).toMatchObject({ topic: "seeded", log: ["one", "two"] });
    const state = await s.client.threads.getState(thread.thread_id);
    expect(state.values).toMatchObject({ log: ["one", "two"] });
    expect(state.next).toEqual(["three"]);
    const history = await s.client.threads.getHistory(thread.thread_id);
    expect(history.map((h) => h.metadata?.source)).toContain("update");
    // A run without input continues with the next node.
    const out = await s.client.runs.wait(thread.thread_id, "slow", { input: null });
    expect(out).toMatchObject({ log: ["one", "two", "three"] });
  });

  it("a command update is applied as a Command: its goto joins the node's own edge", async () => {
    const thread = await s.client.threads.create({
      graphId: "slow",
      supersteps: [
        {
          updates: [
            {
              values: undefined,
              command: { update: { topic: "jump" }, goto: "three" },
              asNode: "one",
            },
          ],
        },
      ],
    });
    const state = await s.client.threads.getState(thread.thread_id);
    expect(state.values).toMatchObject({ topic: "jump" });
    expect([...state.next].sort()).toEqual(["three", "two"]);
  });

  it("without a graph, or naming a node the graph lacks, is a 422 and leaves no thread", async () => {
    const before = await s.client.threads.count();
    const noGraph = await failure(
      s.client.threads.create({
        supersteps: [{ updates: [{ values: { topic: "x" }, asNode: "one" }] }],
      }),
    );
    expect(noGraph.status).toBe(422);
    expect(noGraph.body.field).toBe("graph_id");
    const threadId = crypto.randomUUID();
    const badNode = await failure(
      s.client.threads.create({
        threadId,
        graphId: "slow",
        supersteps: [{ updates: [{ values: { topic: "x" }, asNode: "nope" }] }],
      }),
    );
    expect(badNode.status).toBe(422);
    expect(badNode.body.field).toBe("supersteps");
    const missingAsNode = await fetch(`${s.url}/threads`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        metadata: { graph_id: "slow" },
        supersteps: [{ updates: [{ values: {} }] }],
      }),
    });
    expect(missingAsNode.status).toBe(422);
    expect(((await missingAsNode.json()) as { field: string }).field).toBe(
      "supersteps[0].updates[0].as_node",
    );
    expect((await failure(s.client.threads.get(threadId))).status).toBe(404);
    expect(await checkpointRows(threadId)).toBe(0);
    expect(await s.client.threads.count()).toBe(before);
  });
});

describe("thread.config", () => {
  it("holds the configurable its runs were given, without per-run keys, and keeps it", async () => {
    const thread = await s.client.threads.create();
    expect(thread.config).toEqual({});
    await s.client.runs.wait(thread.thread_id, "slow", {
      input: { topic: "a" },
      config: { configurable: { user_pref: "short" }, tags: ["t1"] },
    });
    const after = await s.client.threads.get(thread.thread_id);
    expect(after.config).toEqual({ tags: ["t1"], configurable: { user_pref: "short" } });
    // A later run without it keeps it (and what it adds joins it).
    await s.client.runs.wait(thread.thread_id, "slow", {
      input: { topic: "b" },
      config: { configurable: { other: 1 } },
    });
    const again = await s.client.threads.get(thread.thread_id);
    expect(again.config?.configurable).toEqual({ user_pref: "short", other: 1 });
  });
});

describe("the thread stream", () => {
  /** Reads the thread's stream until `until` says stop, then leaves. */
  async function collect(
    threadId: string,
    until: (events: { id?: string; event: string; data: unknown }[]) => boolean,
    options: { lastEventId?: string; streamMode?: "run_modes" | "lifecycle" | "state_update" } = {},
  ) {
    const abort = new AbortController();
    const events: { id?: string; event: string; data: unknown }[] = [];
    const done = (async () => {
      try {
        for await (const e of s.client.threads.joinStream(threadId, {
          ...options,
          signal: abort.signal,
        })) {
          events.push(e as never);
          if (until(events)) break;
        }
      } catch (err) {
        if (!abort.signal.aborted) throw err;
      }
      return events;
    })();
    return { done, abort };
  }
  const runsDone = (n: number) => (events: { event: string }[]) =>
    events.filter((e) => e.event === "run_done").length >= n;

  it("carries every run on the thread, one after the other, each closed by run_done", async () => {
    const thread = await s.client.threads.create();
    const reader = await collect(thread.thread_id, runsDone(2));
    const first = await s.client.runs.create(thread.thread_id, "slow", {
      input: { topic: "one", delayMs: 50 },
    });
    await s.client.runs.join(thread.thread_id, first.run_id);
    const second = await s.client.runs.create(thread.thread_id, "slow", {
      input: { topic: "two" },
      streamMode: ["updates"],
    });
    const events = await reader.done;
    reader.abort.abort();
    const byRun = (runId: string) => events.filter((e) => e.id?.startsWith(`${runId}:`));
    expect(byRun(first.run_id).map((e) => e.event)).toEqual([
      "metadata",
      "values",
      "values",
      "values",
      "values",
      "run_done",
    ]);
    expect(byRun(second.run_id).map((e) => e.event)).toEqual([
      "metadata",
      "updates",
      "updates",
      "updates",
      "run_done",
    ]);
    expect(events.at(-1)?.data).toEqual({ run_id: second.run_id, status: "success" });

    // Last-Event-ID: after the first run's end, only the second run's events come again.
    const rejoin = await collect(thread.thread_id, runsDone(1), {
      lastEventId: `${first.run_id}:done`,
    });
    const replayed = await rejoin.done;
    rejoin.abort.abort();
    expect(replayed.every((e) => e.id?.startsWith(`${second.run_id}:`))).toBe(true);
    expect(replayed.map((e) => e.event)).toEqual([
      "metadata",
      "updates",
      "updates",
      "updates",
      "run_done",
    ]);

    // Inside a run: the events after the one named.
    const middle = byRun(second.run_id)[1]!.id!;
    const partial = await collect(thread.thread_id, runsDone(1), { lastEventId: middle });
    const rest = await partial.done;
    partial.abort.abort();
    expect(rest.map((e) => e.event)).toEqual(["updates", "updates", "run_done"]);
  });

  it("lifecycle keeps each run's start and end; state_update its values", async () => {
    const thread = await s.client.threads.create();
    const lifecycle = await collect(thread.thread_id, runsDone(1), { streamMode: "lifecycle" });
    const values = await collect(thread.thread_id, (e) => e.length >= 4, {
      streamMode: "state_update",
    });
    await s.client.runs.wait(thread.thread_id, "slow", { input: { topic: "x" } });
    const life = await lifecycle.done;
    lifecycle.abort.abort();
    const vals = await values.done;
    values.abort.abort();
    expect(life.map((e) => e.event)).toEqual(["metadata", "run_done"]);
    expect(vals.map((e) => e.event)).toEqual(["values", "values", "values", "values"]);
  });

  it("ends when the thread is deleted; a missing thread or an unknown mode is refused", async () => {
    const thread = await s.client.threads.create();
    // Connected (headers in) before the delete, then read to its end.
    const res = await fetch(`${s.url}/threads/${thread.thread_id}/stream`);
    expect(res.status).toBe(200);
    await s.client.threads.delete(thread.thread_id);
    expect(await res.text()).not.toContain("event:");
    const missing = await fetch(`${s.url}/threads/${crypto.randomUUID()}/stream`);
    expect(missing.status).toBe(404);
    const badMode = await fetch(
      `${s.url}/threads/${(await s.client.threads.create()).thread_id}/stream?stream_mode=values`,
    );
    expect(badMode.status).toBe(422);
    expect(((await badMode.json()) as { field: string }).field).toBe("query.stream_mode");
  });
});

describe("thread TTL", () => {
  const waitGone = async (threadId: string) => {
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${s.url}/threads/${threadId}`);
      if (res.status === 404) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  };

  it("a thread whose TTL ran out is deleted with its runs and checkpoints; others stay", async () => {
    const keep = await s.client.threads.create();
    // 0.005 minutes: 300 ms after its last update.
    const short = await s.client.threads.create({ ttl: 0.005 });
    await s.client.runs.wait(short.thread_id, "slow", { input: { topic: "gone soon" } });
    await s.client.runs.wait(keep.thread_id, "slow", { input: { topic: "stays" } });
    expect(await checkpointRows(short.thread_id)).toBeGreaterThan(0);
    expect(await waitGone(short.thread_id)).toBe(true);
    expect(await checkpointRows(short.thread_id)).toBe(0);
    expect((await fetch(`${s.url}/threads/${short.thread_id}/runs`)).status).toBe(404);
    expect((await s.client.threads.get(keep.thread_id)).thread_id).toBe(keep.thread_id);
  });

  it("the sweeper also deletes the cancel requests of cancellers that died, and only those", async () => {
    // As a process that died while it waited for a cancel leaves it: lapsed two minutes ago.
    const insert =
      TEST_BACKEND === "postgres"
        ? "INSERT INTO refinery_duty_leases (name, owner, expires_at) VALUES (?, ?, now() + ? * interval '1 millisecond')"
        : "INSERT INTO refinery_duty_leases (name, owner, expires_at) VALUES (?, ?, CAST(unixepoch('subsec') * 1000 AS INTEGER) + ?)";
    const dead = `cancel:${randomUUID()}`;
    const live = `cancel:${randomUUID()}`;
    await queryTestDatabase(s.dbPath, insert, [dead, "interrupt:gone", -120_000]);
    await queryTestDatabase(s.dbPath, insert, [live, "interrupt:waiting", 600_000]);
    const names = async () =>
      (
        await queryTestDatabase<{ name: string }>(
          s.dbPath,
          "SELECT name FROM refinery_duty_leases WHERE name IN (?, ?)",
          [dead, live],
        )
      ).map((r) => r.name);
    let left = await names();
    for (let i = 0; i < 100 && left.includes(dead); i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = await names();
    }
    expect(left).toEqual([live]);
  });

  it("update sets (or, with null, removes) a TTL; the SDK's object form is read too", async () => {
    const a = await s.client.threads.create();
    await s.client.threads.update(a.thread_id, { ttl: { ttl: 0.005, strategy: "delete" } });
    expect(await waitGone(a.thread_id)).toBe(true);
    const b = await s.client.threads.create({ ttl: 0.02 });
    const patched = await fetch(`${s.url}/threads/${b.thread_id}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ttl: null }),
    });
    expect(patched.status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await s.client.threads.get(b.thread_id)).thread_id).toBe(b.thread_id);
  });

  it("a TTL that is not a positive number of minutes, or another strategy, is a 422", async () => {
    const before = await s.client.threads.count();
    const post = (body: unknown) =>
      fetch(`${s.url}/threads`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const negative = await post({ ttl: -1 });
    expect(negative.status).toBe(422);
    expect(((await negative.json()) as { field: string }).field).toBe("ttl.ttl");
    const strategy = await post({ ttl: { ttl: 5, strategy: "archive" } });
    expect(strategy.status).toBe(422);
    expect(((await strategy.json()) as { field: string }).field).toBe("ttl.strategy");
    const text = await post({ ttl: "soon" });
    expect(text.status).toBe(422);
    expect(((await text.json()) as { field: string }).field).toBe("ttl");
    expect(await s.client.threads.count()).toBe(before);
  });
});

describe("runtime context", () => {
  it("reaches the nodes, merged over the assistant's context key by key", async () => {
    const direct = await s.client.runs.wait(null, "ctx", {
      input: {},
      context: { tone: "formal" },
    });
    expect(direct).toEqual({ log: ["tone:formal limit:none"] });
    const assistant = await s.client.assistants.create({
      graphId: "ctx",
      context: { tone: "casual", limit: 3 },
    });
    const merged = await s.client.runs.wait(null, assistant.assistant_id, {
      input: {},
      context: { tone: "formal" },
    });
    expect(merged).toEqual({ log: ["tone:formal limit:3"] });
    const defaults = await s.client.runs.wait(null, assistant.assistant_id, { input: {} });
    expect(defaults).toEqual({ log: ["tone:casual limit:3"] });
    // The run keeps the context it ran with.
    const thread = await s.client.threads.create();
    const run = await s.client.runs.create(thread.thread_id, assistant.assistant_id, {
      input: {},
      context: { limit: 5 },
    });
    expect((run as unknown as { kwargs: { context: unknown } }).kwargs.context).toEqual({
      tone: "casual",
      limit: 5,
    });
    await s.client.runs.join(thread.thread_id, run.run_id);
  });

  it("a context the graph's schema refuses is a 422 naming context.<field>, and no run", async () => {
    const thread = await s.client.threads.create();
    const wrong = await failure(
      s.client.runs.create(thread.thread_id, "ctx", { input: {}, context: { tone: "rude" } }),
    );
    expect(wrong.status).toBe(422);
    expect(wrong.body.field).toBe("context.tone");
    const missing = await failure(s.client.runs.create(thread.thread_id, "ctx", { input: {} }));
    expect(missing.status).toBe(422);
    expect(missing.body.field).toBe("context.tone");
    const notObject = await failure(
      s.client.runs.create(thread.thread_id, "ctx", { input: {}, context: "formal" }),
    );
    expect(notObject.status).toBe(422);
    expect(notObject.body.field).toBe("context");
    expect(await s.client.runs.list(thread.thread_id)).toEqual([]);
    // A graph without a context schema takes any object.
    const free = await s.client.runs.wait(null, "slow", {
      input: { topic: "t" },
      context: { anything: true },
    });
    expect(free).toMatchObject({ log: ["one", "two", "three"] });
  });
});

describe("a run stopped at an interrupt", () => {
  it("/wait answers __interrupt__; /join once it stopped, the thread's values (as the reference)", async () => {
    const thread = await s.client.threads.create();
    const waited = (await s.client.runs.wait(thread.thread_id, "approval", {
      input: { topic: "t" },
    })) as Record<string, unknown>;
    expect(waited.__interrupt__).toEqual([
      expect.objectContaining({ value: { question: "approve?", draft: "draft:t" } }),
    ]);
    const [run] = await s.client.runs.list(thread.thread_id);
    const joined = (await s.client.runs.join(thread.thread_id, run!.run_id)) as Record<
      string,
      unknown
    >;
    expect(joined).toEqual({
      topic: "t",
      log: ["draft:t"],
      delayMs: 0,
      decision: null,
      dbPath: "",
    });
    expect(joined.__interrupt__).toBeUndefined();
  });
});
