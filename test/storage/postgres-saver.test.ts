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
import { ATTEMPT_JOURNAL } from "../../core/models/attempt-journal.ts";
import { migrate } from "../../core/storage/postgres/migrations.ts";
import { LimitedPostgresSaver } from "../../core/storage/postgres/saver.ts";
import { TEST_POSTGRES_URL } from "../support/test-backend.ts";

const SCHEMA = `refinery_pgsaver_${process.pid}_${randomBytes(3).toString("hex")}`;
let pool: pg.Pool;
let saver: LimitedPostgresSaver;
const statements: string[] = [];

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: TEST_POSTGRES_URL, max: 4 });
  await migrate(pool, SCHEMA);
  saver = new LimitedPostgresSaver(pool, SCHEMA);
  await saver.setup();
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) => {
    // Text, or a prepared statement's config ({ name, text, values }).
    const text = typeof args[0] === "string" ? args[0] : (args[0] as { text?: unknown })?.text;
    if (typeof text === "string") statements.push(text.trim().split(/\s+/).slice(0, 4).join(" "));
    return query(...args);
  };
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
    // With no checkpoint coming: alone, after at most 100 ms.
    const second = await journal.start({ ...key, exec: "e2" }, "critique", false);
    await journal.end(second.row, { totalTokens: 4 }, "t6");
    expect(await tokens(second.row)).toBe("4");
  });
});
