// The Postgres checkpoint saver's write path (core/storage/postgres/saver.ts): a step's task
// writes go in the same statement as the thread's next checkpoint when LangGraph puts it in the
// same turn of the event loop, else alone at the next turn; either way putWrites resolves only
// once they are committed, a rolled-back (fenced) thread's queued writes are dropped, and a put
// that fails fails the writes it carried. The whole server suite runs on this saver in the
// Postgres run of `npm test`; this file pins the write path's own rules, in a schema of its own.
import { randomBytes } from "node:crypto";
import type { RunnableConfig } from "@langchain/core/runnables";
import { emptyCheckpoint, type Checkpoint } from "@langchain/langgraph-checkpoint";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isStaleRunError } from "../../core/checkpointer.ts";
import { decodeSegmentWithBlobs, encodeSegment } from "../../core/checkpoint-archive.ts";
import { ATTEMPT_JOURNAL } from "../../core/models/attempt-journal.ts";
import { ARCHIVE_LOCK } from "../../core/storage/postgres/archive.ts";
import { createPostgresCheckpointAdmin } from "../../core/storage/postgres/checkpoint-admin.ts";
import { migrate } from "../../core/storage/postgres/migrations.ts";
import { LimitedPostgresSaver } from "../../core/storage/postgres/saver.ts";
import { TEST_POSTGRES_URL } from "../support/test-backend.ts";

const SCHEMA = `refinery_pgsaver_${process.pid}_${randomBytes(3).toString("hex")}`;
let pool: pg.Pool;
let saver: LimitedPostgresSaver;
const statements: string[] = [];
const recorded = new WeakSet<object>();

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: TEST_POSTGRES_URL, max: 4 });
  await migrate(pool, SCHEMA);
  saver = new LimitedPostgresSaver(pool, SCHEMA);
  await saver.setup();
  // Statements sent through the pool and on its connections (a put outside a run is a
  // transaction on a connection: LimitedPostgresSaver.guarded).
  const recording = (target: { query: (...args: unknown[]) => unknown }) => {
    const query = target.query.bind(target) as (...args: unknown[]) => unknown;
    target.query = (...args) => {
      // Text, or a prepared statement's config ({ name, text, values }).
      const text = typeof args[0] === "string" ? args[0] : (args[0] as { text?: unknown })?.text;
      if (typeof text === "string") statements.push(text.trim().split(/\s+/).slice(0, 4).join(" "));
      return query(...args);
    };
  };
  recording(pool as unknown as { query: (...args: unknown[]) => unknown });
  pool.on("acquire", (client) => {
    if (recorded.has(client)) return;
    recorded.add(client);
    recording(client as unknown as { query: (...args: unknown[]) => unknown });
  });
});
afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await pool.end();
});

function checkpointOf(id: string, values: Record<string, unknown>): Checkpoint {
  const cp = emptyCheckpoint();
  cp.id = id;
  cp.channel_values = values;
  cp.channel_versions = Object.fromEntries(
    Object.keys(values).map((k) => [k, saver.getNextVersion(undefined)]),
  );
  return cp;
}

/** Puts checkpoint `id` as the first (step 0) of `thread`; answers the config of the head. */
async function putFirst(thread: string, id: string, values: Record<string, unknown>) {
  const cp = checkpointOf(id, values);
  return {
    cp,
    at: await saver.put(
      config(thread),
      cp,
      { source: "loop", step: 0, parents: {} },
      cp.channel_versions,
    ),
  };
}

const config = (thread: string, checkpointId?: string): RunnableConfig => ({
  configurable: {
    thread_id: thread,
    checkpoint_ns: "",
    ...(checkpointId ? { checkpoint_id: checkpointId } : {}),
  },
});

async function writesOf(thread: string): Promise<{ task_id: string; channel: string }[]> {
  const { rows } = await pool.query<{ task_id: string; channel: string }>(
    `SELECT task_id, channel FROM "${SCHEMA}".checkpoint_writes WHERE thread_id = $1 ORDER BY task_id, idx`,
    [thread],
  );
  return rows;
}

describe("the Postgres saver's writes", () => {
  it("go with the next checkpoint in one statement when it comes in the same turn", async () => {
    const { cp: c1, at: first } = await putFirst("t1", "1ef0000000000001", { draft: "a" });
    statements.length = 0;
    const w1 = saver.putWrites(first, [["draft", "b"]], "task-a");
    const w2 = saver.putWrites(first, [["log", "critique"]], "task-b");
    const c2 = checkpointOf("1ef0000000000002", { draft: "b" });
    const put = saver.put(first, c2, { source: "loop", step: 1, parents: {} }, c2.channel_versions);
    await Promise.all([w1, w2, put]);
    expect(statements.filter((s) => s.startsWith("INSERT INTO"))).toEqual([]);
    expect(statements.filter((s) => s.startsWith("WITH stored_blobs"))).toHaveLength(1);
    expect(await writesOf("t1")).toEqual([
      { task_id: "task-a", channel: "draft" },
      { task_id: "task-b", channel: "log" },
    ]);
    const tuple = await saver.getTuple(config("t1", c1.id));
    expect(tuple?.pendingWrites?.map(([task, channel, value]) => [task, channel, value])).toEqual([
      ["task-a", "draft", "b"],
      ["task-b", "log", "critique"],
    ]);
  });

  it("alone, are committed before putWrites resolves; a fenced thread's queued writes are dropped", async () => {
    const { at: at } = await putFirst("t2", "1ef0000000000011", { draft: "a" });
    await saver.putWrites(at, [["draft", "z"]], "task-a");
    expect(await writesOf("t2")).toEqual([{ task_id: "task-a", channel: "draft" }]);

    const { at: at3 } = await putFirst("t3", "1ef0000000000021", { draft: "a" });
    const queued = saver.putWrites(at3, [["draft", "late"]], "task-late");
    saver.fence("t3"); // a rollback in the same turn
    await queued;
    saver.unfence("t3");
    await new Promise((r) => setTimeout(r, 50));
    expect(await writesOf("t3")).toEqual([]);
  });

  it("fail with the checkpoint they were carried by", async () => {
    const { at: at } = await putFirst("t4", "1ef0000000000031", { draft: "a" });
    const w = saver.putWrites(at, [["draft", "b"]], "task-a");
    const bad = checkpointOf("1ef0000000000032", { draft: "b" });
    // A metadata value Postgres refuses (a NUL character in jsonb text) fails the statement.
    const put = saver.put(
      at,
      bad,
      { source: "loop", step: 1, parents: {}, note: "a\u0000b" } as never,
      bad.channel_versions,
    );
    await expect(put).rejects.toThrow();
    await expect(w).rejects.toThrow();
    expect(await writesOf("t4")).toEqual([]);
  });

  it("of a run another worker took over (a higher attempt) are refused, with its checkpoint", async () => {
    const server = new LimitedPostgresSaver(pool, SCHEMA, undefined, true);
    await pool.query(
      `INSERT INTO "${SCHEMA}".refinery_runs
         (run_id, thread_id, assistant_id, created_at, updated_at, status, metadata, multitask_strategy, kwargs, attempt)
       VALUES ('run-1', 't5', 'a', now(), now(), 'running', '{}', 'reject', '{}', 1)`,
    );
    const as = (attempt: number, checkpointId?: string): RunnableConfig => ({
      ...config("t5", checkpointId),
      metadata: { run_id: "run-1", run_attempt: attempt },
    });
    const meta = { source: "loop" as const, step: 0, parents: {} };
    const c1 = checkpointOf("1ef0000000000041", { draft: "a" });
    await server.put(as(1), c1, meta, c1.channel_versions);
    // Another worker reclaims the run: attempt 2. The first one wakes and writes its next step.
    await pool.query(`UPDATE "${SCHEMA}".refinery_runs SET attempt = 2 WHERE run_id = 'run-1'`);
    const w = server.putWrites(as(1, c1.id), [["draft", "stale"]], "task-stale");
    const c2 = checkpointOf("1ef0000000000042", { draft: "stale" });
    const put = server.put(as(1, c1.id), c2, { ...meta, step: 1 }, c2.channel_versions);
    const refused = await put.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isStaleRunError(refused)).toBe(true);
    expect(String(refused)).toContain("run-1 attempt 1");
    await expect(w).rejects.toThrow("may not write checkpoints");
    const ids = await pool.query(
      `SELECT checkpoint_id FROM "${SCHEMA}".checkpoints WHERE thread_id = 't5' ORDER BY checkpoint_id`,
    );
    expect(ids.rows).toEqual([{ checkpoint_id: c1.id }]);
    expect(await writesOf("t5")).toEqual([]);
    // The worker that holds the run now writes as before.
    const c3 = checkpointOf("1ef0000000000043", { draft: "b" });
    await server.put(as(2, c1.id), c3, { ...meta, step: 1 }, c3.channel_versions);
    // And a checkpoint that is not a run's (an update of the thread's state) is never fenced.
    await pool.query(
      `UPDATE "${SCHEMA}".refinery_runs SET status = 'success' WHERE run_id = 'run-1'`,
    );
    const c4 = checkpointOf("1ef0000000000044", { draft: "c" });
    await server.put(config("t5", c3.id), c4, { ...meta, step: 2 }, c4.channel_versions);
    const after = await pool.query(
      `SELECT checkpoint_id FROM "${SCHEMA}".checkpoints WHERE thread_id = 't5' ORDER BY checkpoint_id`,
    );
    expect(after.rows.map((r) => r.checkpoint_id)).toEqual([c1.id, c3.id, c4.id]);
  });

  it("write a model attempt's tokens with the thread's next checkpoint, or alone (after 100 ms)", async () => {
    const journal = saver[ATTEMPT_JOURNAL]();
    const tokens = async (row: number | bigint) =>
      (
        await pool.query(
          `SELECT total_tokens FROM "${SCHEMA}".refinery_model_attempts WHERE id = $1`,
          [String(row)],
        )
      ).rows[0]?.total_tokens as string | undefined;
    const key = { threadId: "t6", parentId: "p", taskId: "task", exec: "e" };
    const { at: at } = await putFirst("t6", "1ef0000000000051", { draft: "a" });
    // With the checkpoint that ends the step: one statement.
    const { row } = await journal.start(key, "critique", false);
    statements.length = 0;
    const ended = journal.end(row, { promptTokens: 7, completionTokens: 3, totalTokens: 10 }, "t6");
    expect(await tokens(row)).toBe("0"); // not yet written
    const c2 = checkpointOf("1ef0000000000052", { draft: "b" });
    await saver.put(at, c2, { source: "loop", step: 1, parents: {} }, c2.channel_versions);
    await ended;
    expect(await tokens(row)).toBe("10");
    expect(statements.filter((q) => q.startsWith("UPDATE"))).toEqual([]);
    // Nothing is left to send for them: no statement follows when the 100 ms have passed (an
    // empty one, "WITH SELECT 1", failed and cost the pool its connection).
    const sent = statements.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(statements.slice(sent)).toEqual([]);
    // With no checkpoint coming: alone, after at most 100 ms.
    const second = await journal.start({ ...key, exec: "e2" }, "critique", false);
    await journal.end(second.row, { totalTokens: 4 }, "t6");
    expect(await tokens(second.row)).toBe("4");
  });
});

describe("packed checkpoints (the latest of a thread, once no run of it is in flight)", () => {
  const admin = () => createPostgresCheckpointAdmin(pool, SCHEMA);
  const meta = (step: number) => ({ source: "loop" as const, step, parents: {} });

  /** `parent` with `changes` applied: new versions for the changed channels only. */
  function next(parent: Checkpoint, id: string, changes: Record<string, unknown>) {
    const cp: Checkpoint = {
      ...parent,
      id,
      channel_values: { ...parent.channel_values, ...changes },
      channel_versions: { ...parent.channel_versions },
    };
    const versions: Record<string, string | number> = {};
    for (const k of Object.keys(changes)) {
      versions[k] = saver.getNextVersion(parent.channel_versions[k] as number | undefined);
      cp.channel_versions[k] = versions[k];
    }
    return { cp, versions };
  }

  async function newThread(thread: string) {
    await pool.query(
      `INSERT INTO "${SCHEMA}".refinery_threads (thread_id, created_at, updated_at, metadata, status, interrupts, config)
       VALUES ($1, now(), now(), '{}', 'idle', '{}', '{}')`,
      [thread],
    );
  }

  async function setRun(runId: string, thread: string, status: string, attempt = 1) {
    await pool.query(
      `INSERT INTO "${SCHEMA}".refinery_runs
         (run_id, thread_id, assistant_id, created_at, updated_at, status, metadata, multitask_strategy, kwargs, attempt)
       VALUES ($1, $2, 'a', now(), now(), $3, '{}', 'reject', '{}', $4)
       ON CONFLICT (run_id) DO UPDATE SET status = EXCLUDED.status, attempt = EXCLUDED.attempt`,
      [runId, thread, status, attempt],
    );
  }

  const blobRows = async (thread: string) =>
    Number(
      (
        await pool.query(
          `SELECT count(*) AS n FROM "${SCHEMA}".checkpoint_blobs WHERE thread_id = $1`,
          [thread],
        )
      ).rows[0].n,
    );
  const packedIds = async (thread: string) =>
    (
      await pool.query<{ checkpoint_id: string }>(
        `SELECT checkpoint_id FROM "${SCHEMA}".checkpoints WHERE thread_id = $1 AND packed IS NOT NULL ORDER BY checkpoint_id`,
        [thread],
      )
    ).rows.map((r) => r.checkpoint_id);
  const valuesAt = async (thread: string, id?: string) =>
    (await saver.getTuple(config(thread, id)))?.checkpoint.channel_values;

  it("hold their blobs in their own row: getTuple, list and the next steps read the same values", async () => {
    await newThread("p1");
    const { cp: c1, at } = await putFirst("p1", "1ef0000000000101", {
      draft: "first draft",
      task: "the task",
      notes: ["a", "b"],
    });
    const { cp: c2, versions } = next(c1, "1ef0000000000102", { draft: "second draft" });
    await saver.put(at, c2, meta(1), versions);
    const before = (await saver.getTuple(config("p1", c2.id)))!.checkpoint;
    await admin().compact("p1");
    // c1 went to the archive; c2, the latest, is packed and no blob row is left. The packed row
    // holds the checkpoint too: its column keeps v, id and ts, and reads give back all of it.
    expect(await packedIds("p1")).toEqual([c2.id]);
    expect(await blobRows("p1")).toBe(0);
    const { rows: column } = await pool.query<{ checkpoint: object }>(
      `SELECT checkpoint FROM "${SCHEMA}".checkpoints WHERE thread_id = 'p1' AND checkpoint_id = $1`,
      [c2.id],
    );
    expect(column[0]!.checkpoint).toEqual({ v: before.v, id: c2.id, ts: before.ts });
    const after = (await saver.getTuple(config("p1")))!.checkpoint;
    expect(after).toEqual(before);
    expect(after.channel_versions).toEqual(c2.channel_versions);
    const expected = { draft: "second draft", task: "the task", notes: ["a", "b"] };
    expect(await valuesAt("p1")).toEqual(expected);
    expect(await valuesAt("p1", c2.id)).toEqual(expected);
    expect(await valuesAt("p1", c1.id)).toEqual({
      draft: "first draft",
      task: "the task",
      notes: ["a", "b"],
    });
    const listed = [];
    for await (const t of saver.list(config("p1"))) listed.push(t.checkpoint.channel_values);
    expect(listed).toEqual([expected, { ...expected, draft: "first draft" }]);
    // A put outside a run (a state update) after the packed checkpoint changes one channel; the
    // others are read back from the packed row's blobs, stored again with it.
    const { cp: c3, versions: v3 } = next(c2, "1ef0000000000103", { notes: ["c"] });
    await saver.put(config("p1", c2.id), c3, meta(2), v3);
    expect(await valuesAt("p1")).toEqual({ ...expected, notes: ["c"] });
    // Compacting again archives the packed checkpoint, with its blobs and the whole checkpoint,
    // and packs the new latest.
    await admin().compact("p1");
    expect(await packedIds("p1")).toEqual([c3.id]);
    expect(await blobRows("p1")).toBe(0);
    expect(await valuesAt("p1", c2.id)).toEqual(expected);
    expect((await saver.getTuple(config("p1", c2.id)))!.checkpoint).toEqual(before);
    expect(await valuesAt("p1")).toEqual({ ...expected, notes: ["c"] });
  });

  it("packed before the checkpoint went into the row (blobs only), still read whole", async () => {
    await newThread("p-old");
    const { cp: c1 } = await putFirst("p-old", "1ef0000000000111", { draft: "d", task: "t" });
    const before = (await saver.getTuple(config("p-old")))!.checkpoint;
    await admin().compact("p-old");
    // Rewrite the row as the previous version packed it: the blobs alone, the checkpoint in its
    // column.
    const { rows } = await pool.query<{ packed: Buffer }>(
      `SELECT packed FROM "${SCHEMA}".checkpoints WHERE thread_id = 'p-old'`,
    );
    const { rows: own, blobs } = decodeSegmentWithBlobs(rows[0]!.packed);
    await pool.query(
      `UPDATE "${SCHEMA}".checkpoints SET packed = $1, checkpoint = $2::jsonb WHERE thread_id = 'p-old'`,
      [encodeSegment([], blobs), Buffer.from(own[0]!.checkpoint).toString("utf8")],
    );
    expect((await saver.getTuple(config("p-old", c1.id)))!.checkpoint).toEqual(before);
  });

  it("are not packed while a run of the thread is pending or running", async () => {
    await newThread("p2");
    const { cp: c1, at } = await putFirst("p2", "1ef0000000000201", { draft: "a", task: "t" });
    const { cp: c2, versions } = next(c1, "1ef0000000000202", { draft: "b" });
    await saver.put(at, c2, meta(1), versions);
    for (const status of ["pending", "running"]) {
      await setRun("run-p2", "p2", status);
      await admin().compact("p2");
      expect(await packedIds("p2")).toEqual([]);
      expect(await blobRows("p2")).toBeGreaterThan(0);
    }
    await setRun("run-p2", "p2", "success");
    // A run being created as the compaction starts: its transaction holds the thread's row (as
    // storage.runs.create does) and commits the pending run after the compaction asked for it.
    const creator = await pool.connect();
    try {
      await creator.query("BEGIN");
      await creator.query(
        `SELECT 1 FROM "${SCHEMA}".refinery_threads WHERE thread_id = 'p2' FOR UPDATE`,
      );
      const compaction = admin().compact("p2");
      await new Promise((r) => setTimeout(r, 200));
      await creator.query(
        `INSERT INTO "${SCHEMA}".refinery_runs
           (run_id, thread_id, assistant_id, created_at, updated_at, status, metadata, multitask_strategy, kwargs, attempt)
         VALUES ('run-p2b', 'p2', 'a', now(), now(), 'pending', '{}', 'reject', '{}', 0)`,
      );
      await creator.query("COMMIT");
      await compaction;
    } finally {
      creator.release();
    }
    expect(await packedIds("p2")).toEqual([]);
    await setRun("run-p2b", "p2", "success");
    await admin().compact("p2");
    expect(await packedIds("p2")).toEqual([c2.id]);
  });

  it("a run's first step after packing stores the blobs it keeps, even on the saver that wrote the parent", async () => {
    const server = new LimitedPostgresSaver(pool, SCHEMA, undefined, true);
    await newThread("p3");
    const as = (run: string, id?: string): RunnableConfig => ({
      ...config("p3", id),
      metadata: { run_id: run, run_attempt: 1 },
    });
    await setRun("run-p3a", "p3", "running");
    const c1 = checkpointOf("1ef0000000000301", { draft: "a", task: "keep me" });
    await server.put(as("run-p3a"), c1, meta(0), c1.channel_versions);
    const { cp: c2, versions: v2 } = next(c1, "1ef0000000000302", { draft: "b" });
    // Within the run, the next step stores only the channel it changed.
    statements.length = 0;
    await server.put(as("run-p3a", c1.id), c2, meta(1), v2);
    await setRun("run-p3a", "p3", "success");
    await admin().compact("p3");
    expect(await packedIds("p3")).toEqual([c2.id]);
    // The next run on the same saver: its first step keeps `task` from the packed parent.
    await setRun("run-p3b", "p3", "running");
    const { cp: c3, versions: v3 } = next(c2, "1ef0000000000303", { draft: "c" });
    await server.put(as("run-p3b", c2.id), c3, meta(2), v3);
    const { cp: c4, versions: v4 } = next(c3, "1ef0000000000304", { draft: "d" });
    await server.put(as("run-p3b", c3.id), c4, meta(3), v4);
    expect(await valuesAt("p3", c3.id)).toEqual({ draft: "c", task: "keep me" });
    expect(await valuesAt("p3")).toEqual({ draft: "d", task: "keep me" });
    // c4 followed c3 in the same run: only `draft` went with it.
    const stored = await pool.query(
      `SELECT channel FROM "${SCHEMA}".checkpoint_blobs WHERE thread_id = 'p3' AND version = $1`,
      [String(v4.draft)],
    );
    expect(stored.rows).toEqual([{ channel: "draft" }]);
  });

  it("many trials: state updates racing the packing of their parent never lose a blob", async () => {
    for (let trial = 0; trial < 30; trial++) {
      const thread = `p4-${trial}`;
      await newThread(thread);
      const { cp: c1, at } = await putFirst(thread, "1ef0000000000401", {
        draft: "a",
        task: "kept",
        notes: [trial],
      });
      const { cp: c2, versions } = next(c1, "1ef0000000000402", { draft: "b" });
      await saver.put(at, c2, meta(1), versions);
      // A state update on the latest, at the same time as the compaction that packs it (sent
      // 0-5 ms after it: the compaction's statements take about that long here).
      const { cp: c3, versions: v3 } = next(c2, "1ef0000000000403", { draft: "c" });
      await Promise.all([
        admin().compact(thread),
        new Promise((r) => setTimeout(r, trial % 6)).then(() =>
          saver.put(config(thread, c2.id), c3, meta(2), v3),
        ),
      ]);
      expect(await valuesAt(thread, c3.id)).toEqual({ draft: "c", task: "kept", notes: [trial] });
      expect(await valuesAt(thread, c2.id)).toEqual({ draft: "b", task: "kept", notes: [trial] });
      await admin().compact(thread);
      expect(await valuesAt(thread)).toEqual({ draft: "c", task: "kept", notes: [trial] });
      expect(await valuesAt(thread, c2.id)).toEqual({ draft: "b", task: "kept", notes: [trial] });
    }
  });

  it("a put outside a run waits while the thread's archive lock is held (as packing holds it)", async () => {
    await newThread("p6");
    const { cp: c1, at } = await putFirst("p6", "1ef0000000000601", { draft: "a", task: "t" });
    const holder = await pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [ARCHIVE_LOCK, "p6"]);
      const { cp: c2, versions } = next(c1, "1ef0000000000602", { draft: "b" });
      let done = false;
      const put = saver.put(at, c2, meta(1), versions).then(() => (done = true));
      await new Promise((r) => setTimeout(r, 300));
      expect(done).toBe(false);
      await holder.query("COMMIT");
      await put;
      expect(await valuesAt("p6")).toEqual({ draft: "b", task: "t" });
    } finally {
      holder.release();
    }
  });

  it("many trials: a copy racing the compaction of its thread has every value and checkpoint", async () => {
    for (let trial = 0; trial < 30; trial++) {
      const thread = `p7-${trial}`;
      await newThread(thread);
      const { cp: c1, at } = await putFirst(thread, "1ef0000000000701", { draft: "a", task: "t" });
      const { cp: c2, versions } = next(c1, "1ef0000000000702", { draft: "b" });
      await saver.put(at, c2, meta(1), versions);
      await Promise.all([
        admin().compact(thread),
        new Promise((r) => setTimeout(r, trial % 6)).then(() =>
          admin().copyThread(thread, `${thread}-copy`),
        ),
      ]);
      expect(await valuesAt(`${thread}-copy`)).toEqual({ draft: "b", task: "t" });
      expect(await valuesAt(`${thread}-copy`, c1.id)).toEqual({ draft: "a", task: "t" });
    }
  });

  it("are not made with packing off (REFINERY_PACK_CHECKPOINTS=off), and still read", async () => {
    await newThread("p8");
    const { cp: c1, at } = await putFirst("p8", "1ef0000000000801", { draft: "a", task: "t" });
    const { cp: c2, versions } = next(c1, "1ef0000000000802", { draft: "b" });
    await saver.put(at, c2, meta(1), versions);
    const off = createPostgresCheckpointAdmin(pool, SCHEMA, undefined, { pack: false });
    await off.compact("p8");
    // Archived as before, and the latest's blobs stay rows a process of an earlier version reads.
    expect(await packedIds("p8")).toEqual([]);
    expect(await blobRows("p8")).toBe(2);
    expect(await valuesAt("p8", c1.id)).toEqual({ draft: "a", task: "t" });
    // Packed by a process with packing on: read by every process.
    await admin().compact("p8");
    expect(await packedIds("p8")).toEqual([c2.id]);
    expect(await valuesAt("p8")).toEqual({ draft: "b", task: "t" });
  });

  it("many trials: deleting a thread while it compacts leaves none of its rows", async () => {
    const left = async (thread: string) => {
      const { rows } = await pool.query<{ n: string }>(
        `SELECT (SELECT count(*) FROM "${SCHEMA}".checkpoints WHERE thread_id = $1)
              + (SELECT count(*) FROM "${SCHEMA}".checkpoint_blobs WHERE thread_id = $1)
              + (SELECT count(*) FROM "${SCHEMA}".checkpoint_writes WHERE thread_id = $1)
              + (SELECT count(*) FROM "${SCHEMA}".refinery_checkpoint_archive WHERE thread_id = $1) AS n`,
        [thread],
      );
      return Number(rows[0]!.n);
    };
    for (let trial = 0; trial < 30; trial++) {
      const thread = `p9-${trial}`;
      await newThread(thread);
      const { cp: c1, at } = await putFirst(thread, "1ef0000000000901", { draft: "a", task: "t" });
      let parent = c1;
      let config = at;
      for (let step = 2; step <= 4; step++) {
        const { cp, versions } = next(parent, `1ef000000000090${step}`, { draft: `d${step}` });
        config = await saver.put(config, cp, meta(step - 1), versions);
        parent = cp;
      }
      await Promise.all([
        admin().compact(thread),
        new Promise((r) => setTimeout(r, trial % 6)).then(() => admin().deleteThread(thread)),
      ]);
      expect(await left(thread)).toBe(0);
    }
  });

  it("are copied with their thread", async () => {
    await newThread("p5");
    const { cp: c1, at } = await putFirst("p5", "1ef0000000000501", { draft: "a", task: "t" });
    const { cp: c2, versions } = next(c1, "1ef0000000000502", { draft: "b" });
    await saver.put(at, c2, meta(1), versions);
    await admin().compact("p5");
    expect(await packedIds("p5")).toEqual([c2.id]);
    await admin().copyThread("p5", "p5-copy");
    expect(await valuesAt("p5-copy")).toEqual({ draft: "b", task: "t" });
    expect(await valuesAt("p5-copy", c1.id)).toEqual({ draft: "a", task: "t" });
  });
});
