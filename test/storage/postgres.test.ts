// The Postgres storage against the real Postgres CI provides (REFINERY_TEST_POSTGRES_URL, default
// postgres://postgres@127.0.0.1:5432/test): the shared conformance suite, each test in its own
// schema (dropped afterwards), then what only several pools on one database can show: migrations
// applied once when processes start together, and claims, resumes and partition caps racing
// between two pools. No Postgres fails the file; it never skips.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RefineryError } from "../../core/errors.ts";
import { MIGRATIONS } from "../../core/storage/postgres/migrations.ts";
import { openPostgresPool } from "../../core/storage/postgres/pool.ts";
import { openPostgresStorage, type PostgresStorage } from "../../core/storage/postgres/storage.ts";
import { isTransientStorageFailure } from "../../core/storage/transient.ts";
import type { NewRun, Run } from "../../core/storage/types.ts";
import { storageConformance } from "./conformance.ts";

const PG_URL = process.env.REFINERY_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const PREFIX = `refinery_storage_test_${randomBytes(4).toString("hex")}`;
let admin: pg.Pool;
let schemas = 0;
const nextSchema = () => `${PREFIX}_${(schemas += 1)}`;

beforeAll(async () => {
  admin = new pg.Pool({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
  admin.on("error", () => {});
  // Fails the whole file when Postgres is not there.
  await admin.query("SELECT 1");
});

afterAll(async () => {
  const { rows } = await admin.query<{ nspname: string }>(
    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
    [PREFIX],
  );
  for (const { nspname } of rows) await admin.query(`DROP SCHEMA "${nspname}" CASCADE`);
  await admin.end();
});

/**
 * The conformance suite on one schema, migrated by its first test and emptied before each next
 * one (much cheaper than a schema per test); dropped with the others after the file.
 */
function conformanceOn(name: string, options: { packMinLength?: number } = {}): void {
  const schema = nextSchema();
  let opened = false;
  storageConformance(name, async () => {
    if (opened) {
      await admin.query(
        `TRUNCATE ${[
          "refinery_assistants",
          "refinery_assistant_versions",
          "refinery_threads",
          "refinery_runs",
          "refinery_crons",
          "refinery_cron_fires",
          "refinery_duty_leases",
        ]
          .map((t) => `"${schema}".${t}`)
          .join(", ")} RESTART IDENTITY`,
      );
    }
    opened = true;
    // The file's shared pool; the storage leaves it open on close.
    const storage = await openPostgresStorage({ connection: admin, schema, ...options });
    return { storage, cleanup: async () => {} };
  });
}

conformanceOn("postgres");
// Again with every thread values and run kwargs packed that packing shrinks (on the suite's short
// documents the default leaves them JSONB), so searches match them in the process.
conformanceOn("postgres, documents packed", { packMinLength: 0 });

function newRun(threadId: string, runId: string, extra: Partial<NewRun> = {}): NewRun {
  return {
    run_id: runId,
    thread_id: threadId,
    assistant_id: "asst-1",
    graph_id: "refine",
    multitask_strategy: "enqueue",
    kwargs: { input: { n: 1 }, config: { configurable: {} }, stream_mode: ["values"] },
    ...extra,
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("postgres storage: migrations", () => {
  const versions = MIGRATIONS.map((m) => m.version);

  it("applies every migration once when several processes open a fresh schema at once", async () => {
    const schema = nextSchema();
    // Own pools, as separate processes would have.
    const opened = await Promise.all(
      Array.from({ length: 4 }, () => openPostgresStorage({ connection: PG_URL, schema, max: 2 })),
    );
    try {
      const applied = opened.map((s) => s.migrations.applied);
      expect(applied.filter((a) => a.length > 0)).toEqual([versions]);
      expect(applied.filter((a) => a.length === 0)).toHaveLength(3);
      for (const s of opened) expect(s.migrations.current).toEqual(versions);
      const { rows } = await admin.query(
        `SELECT version FROM "${schema}".refinery_schema_migrations ORDER BY version`,
      );
      expect(rows.map((r: { version: number }) => r.version)).toEqual(versions);
      // They share one database: what one writes the others read.
      await opened[0]!.threads.create({ thread_id: "t1", metadata: { by: 0 } });
      expect((await opened[3]!.threads.get("t1"))?.metadata).toEqual({ by: 0 });
    } finally {
      await Promise.all(opened.map((s) => s.close()));
    }
  });

  it("reopening applies nothing and keeps the data; the tables live in the chosen schema only", async () => {
    const schema = nextSchema();
    const first = await openPostgresStorage({ connection: admin, schema });
    await first.assistants.create({ assistant_id: "a1", graph_id: "refine", name: "one" });
    const before = await first.assistants.get("a1");
    await first.close();
    const again = await openPostgresStorage({ connection: admin, schema });
    expect(again.migrations).toEqual({ applied: [], current: versions });
    expect(await again.assistants.get("a1")).toEqual(before);
    const { rows } = await admin.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
      [schema],
    );
    expect(rows.map((r) => r.table_name)).toEqual([
      "refinery_approval_notices",
      "refinery_assistant_versions",
      "refinery_assistants",
      "refinery_checkpoint_archive",
      "refinery_cron_fires",
      "refinery_crons",
      "refinery_duty_leases",
      "refinery_eval_jobs",
      "refinery_eval_records",
      "refinery_feedback",
      "refinery_graph_specs",
      "refinery_model_attempts",
      "refinery_rollback_writes",
      "refinery_run_outcomes",
      "refinery_run_ratings",
      "refinery_runs",
      "refinery_schema_migrations",
      "refinery_threads",
      "refinery_webhook_outbox",
    ]);
    await again.close();
  });

  it("refuses a schema whose recorded migration differs from the shipped one, naming it", async () => {
    const schema = nextSchema();
    await (await openPostgresStorage({ connection: admin, schema })).close();
    await admin.query(
      `UPDATE "${schema}".refinery_schema_migrations SET checksum = 'edited' WHERE version = 1`,
    );
    const err = await openPostgresStorage({ connection: admin, schema }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefineryError);
    expect((err as RefineryError).code).toBe("storage_error");
    expect((err as RefineryError).message).toMatch(/migration 1 /);
    expect((err as RefineryError).fix).toMatch(/new numbered migration/);
  });

  it("refuses an invalid schema name, and names an unreachable server without its password", async () => {
    const bad = await openPostgresStorage({ connection: admin, schema: 'x"; DROP TABLE y; --' })
      .then(() => undefined)
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(RefineryError);
    expect((bad as RefineryError).field).toBe("schema");
    const down = await openPostgresStorage({
      connection: "postgres://postgres:secret@127.0.0.1:1/test",
    }).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(RefineryError);
    expect((down as RefineryError).code).toBe("storage_error");
    expect((down as RefineryError).retryable).toBe(true);
    expect((down as RefineryError).toLine()).toMatch(
      /cannot reach Postgres at 127\.0\.0\.1:1\/test/,
    );
    expect((down as RefineryError).toLine()).not.toContain("secret");
  });

  it("refuses a NUL character as invalid input and changes nothing", async () => {
    const storage = await openPostgresStorage({ connection: admin, schema: nextSchema() });
    await storage.threads.create({ thread_id: "t1" });
    const err = await storage.runs
      .create(newRun("t1", "r1", { metadata: { text: "a\u0000b" } }), { rejectIfInflight: false })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefineryError);
    expect((err as RefineryError).code).toBe("invalid_input");
    expect(await storage.runs.get("r1")).toBeUndefined();
    expect((await storage.threads.get("t1"))?.status).toBe("idle");
    await storage.close();
  });
});

describe("postgres storage: packed thread values and run kwargs (migration 10)", () => {
  /** The value columns of a thread or a run as stored. */
  async function columns(schema: string, table: string, key: string, id: string) {
    const { rows } = await admin.query<Record<string, unknown>>(
      `SELECT * FROM "${schema}".${table} WHERE ${key} = $1`,
      [id],
    );
    return rows[0]!;
  }

  // Values with long text are packed; short ones stay JSONB. Each carries fields to filter on.
  const valuesOf = (i: number) => ({
    kind: i % 3,
    flag: i % 4 === 0,
    n: i,
    tags: i % 5 === 0 ? ["a", "b"] : ["a"],
    nested: { a: i % 2, b: null, deep: { on: i % 7 === 0 } },
    items: [{ x: i % 2, y: "k" }],
    text: i % 2 === 0 ? `draft ${i % 6} `.repeat(60) : `short ${i % 6}`,
  });

  it("store long values and kwargs packed, short ones as JSONB, and read both back unchanged", async () => {
    const schema = nextSchema();
    const storage = await openPostgresStorage({ connection: admin, schema });
    await storage.threads.create({ thread_id: "long" });
    await storage.threads.create({ thread_id: "short" });
    await storage.threads.setSnapshot("long", {
      status: "idle",
      values: valuesOf(2),
      interrupts: {},
    });
    await storage.threads.setSnapshot("short", {
      status: "idle",
      values: valuesOf(1),
      interrupts: {},
    });
    const long = await columns(schema, "refinery_threads", "thread_id", "long");
    expect(long.values).toBeNull();
    expect(Buffer.isBuffer(long.values_packed)).toBe(true);
    expect((long.values_packed as Buffer).length).toBeLessThan(
      JSON.stringify(valuesOf(2)).length / 4,
    );
    const short = await columns(schema, "refinery_threads", "thread_id", "short");
    expect(short.values_packed).toBeNull();
    expect(short.values).toEqual(valuesOf(1));
    expect((await storage.threads.get("long"))!.values).toEqual(valuesOf(2));
    expect((await storage.threads.get("short"))!.values).toEqual(valuesOf(1));

    // A run's kwargs: packed when long; checkpoint_before set later on either kind of row.
    const big = {
      input: { task: "t ".repeat(300) },
      config: { configurable: { a: 1 } },
      stream_mode: ["values"],
    };
    await storage.runs.create(newRun("long", "r-big", { kwargs: big }), {
      rejectIfInflight: false,
    });
    await storage.runs.create(newRun("short", "r-small"), { rejectIfInflight: false });
    const stored = await columns(schema, "refinery_runs", "run_id", "r-big");
    expect(stored.kwargs).toBeNull();
    expect(Buffer.isBuffer(stored.kwargs_packed)).toBe(true);
    expect((await storage.runs.get("r-big"))!.kwargs).toEqual(big);
    for (const id of ["r-big", "r-small"]) {
      await storage.runs.setCheckpointBefore(id, "cp-1");
      expect((await storage.runs.get(id))!.kwargs.checkpoint_before).toBe("cp-1");
      await storage.runs.setCheckpointBefore(id, null);
      expect((await storage.runs.get(id))!.kwargs.checkpoint_before).toBeNull();
    }
    // A JSONB kwargs also carries it, for a process of an earlier version.
    expect((await columns(schema, "refinery_runs", "run_id", "r-small")).kwargs).toMatchObject({
      checkpoint_before: null,
    });

    // The thread's end writes its values packed too (finish's one statement).
    await storage.runs.claimNext();
    await storage.runs.finish("r-big", "success", null, {
      threadId: "long",
      snapshot: { status: "idle", values: valuesOf(4), interrupts: {} },
    });
    expect((await columns(schema, "refinery_threads", "thread_id", "long")).values).toBeNull();
    expect((await storage.threads.get("long"))!.values).toEqual(valuesOf(4));

    // A process of an earlier version writes the JSONB column only (a rolling upgrade): what it
    // wrote last is what reads, searches and counts see, not the packed bytes left beside it.
    await admin.query(
      `UPDATE "${schema}".refinery_threads SET "values" = '{"kind": 99}' WHERE thread_id = 'long'`,
    );
    expect((await storage.threads.get("long"))!.values).toEqual({ kind: 99 });
    const ids = async (values: Record<string, unknown>) =>
      (await storage.threads.search({ values, limit: 10 })).map((t) => t.thread_id);
    expect(await ids({ kind: 99 })).toEqual(["long"]);
    expect(await ids({ kind: valuesOf(4).kind, flag: valuesOf(4).flag })).toEqual([]);
    expect(await storage.threads.count({ values: { kind: 99 } })).toBe(1);
    expect(await storage.threads.count({ values: { n: 4 } })).toBe(0);
    await storage.close();
  });

  it("REFINERY_PACK_CHECKPOINTS=off (pack: false) writes JSONB only, and reads packed rows written before", async () => {
    const schema = nextSchema();
    const on = await openPostgresStorage({ connection: admin, schema });
    await on.threads.create({ thread_id: "t" });
    await on.threads.setSnapshot("t", { status: "idle", values: valuesOf(0), interrupts: {} });
    const off = await openPostgresStorage({ connection: admin, schema, pack: false });
    expect((await off.threads.get("t"))!.values).toEqual(valuesOf(0));
    await off.threads.setSnapshot("t", { status: "idle", values: valuesOf(2), interrupts: {} });
    const row = await columns(schema, "refinery_threads", "thread_id", "t");
    expect(row.values_packed).toBeNull();
    expect(row.values).toEqual(valuesOf(2));
    const big = {
      input: { task: "t ".repeat(300) },
      config: { configurable: {} },
      stream_mode: ["values"],
    };
    await off.runs.create(newRun("t", "r", { kwargs: big }), { rejectIfInflight: false });
    expect((await columns(schema, "refinery_runs", "run_id", "r")).kwargs_packed).toBeNull();
    await on.close();
    await off.close();
  });

  it("search and count with a values filter answer as with nothing packed, across pages of rows", async () => {
    // The same 1,100 threads in two schemas, one written packed and one not; every query must
    // answer the same on both. 1,100 rows make the packed search read three pages.
    const packed = await openPostgresStorage({ connection: admin, schema: nextSchema() });
    const plain = await openPostgresStorage({
      connection: admin,
      schema: nextSchema(),
      pack: false,
    });
    const ids = Array.from({ length: 1100 }, (_, i) => `t${String(i).padStart(4, "0")}`);
    for (const storage of [packed, plain]) {
      for (let at = 0; at < ids.length; at += 50) {
        await Promise.all(
          ids.slice(at, at + 50).map(async (id, k) => {
            const i = at + k;
            await storage.threads.create({ thread_id: id, metadata: { group: i % 2 } });
            await storage.threads.setSnapshot(id, {
              status: i % 10 === 0 ? "error" : "idle",
              values: valuesOf(i),
              interrupts: {},
            });
          }),
        );
      }
    }
    const { rows } = await admin.query<{ n: number }>(
      `SELECT COUNT(*)::int AS n FROM "${packed.schema}".refinery_threads WHERE values_packed IS NOT NULL`,
    );
    expect(rows[0]!.n).toBe(550);
    const filters: Record<string, unknown>[] = [
      { kind: 1 },
      { flag: true },
      { kind: 2, flag: true },
      { nested: { a: 1 } },
      { nested: { b: null } },
      { nested: { deep: { on: true } } },
      { nested: {} },
      { tags: ["a", "b"] },
      { tags: ["a"] },
      { tags: ["b", "a"] },
      { items: [{ y: "k", x: 0 }] },
      { n: 998 },
      { n: 998.0 },
      { kind: "1" },
      { missing: null },
      { nested: { a: null } },
      { text: valuesOf(4).text },
      { text: "short 1" },
    ];
    const pages = [
      { limit: 10, offset: 0, sort_by: "thread_id", sort_order: "asc" },
      { limit: 7, offset: 3, sort_by: "thread_id", sort_order: "desc" },
      { limit: 1000, offset: 0, sort_by: "thread_id", sort_order: "asc" },
      { limit: 5, offset: 540, sort_by: "thread_id", sort_order: "desc" },
    ] as const;
    for (const values of filters) {
      for (const extra of [{}, { status: "idle" as const, metadata: { group: 0 } }]) {
        const counted = await packed.threads.count({ values, ...extra });
        expect(counted, JSON.stringify(values)).toBe(
          await plain.threads.count({ values, ...extra }),
        );
        for (const p of pages) {
          const query = { values, ...extra, ...p };
          const got = await packed.threads.search(query);
          const want = await plain.threads.search(query);
          expect(
            got.map((t) => [t.thread_id, t.values]),
            JSON.stringify(query),
          ).toEqual(want.map((t) => [t.thread_id, t.values]));
        }
      }
    }
    // A filter that matches rows of both kinds does match some of each.
    const both = await packed.threads.search({
      values: { kind: 1 },
      limit: 1000,
      sort_by: "thread_id",
    });
    expect(
      both.some(
        (t) =>
          typeof (t.values as { text: string }).text === "string" &&
          (t.values as { text: string }).text.length > 300,
      ),
    ).toBe(true);
    expect(both.some((t) => (t.values as { text: string }).text.startsWith("short"))).toBe(true);
    await packed.close();
    await plain.close();
  });
});

describe("postgres storage: a client that stops inside a transaction", () => {
  it("loses its session, and its row locks, once idle past the limit; every pool has the limit", async () => {
    const schema = nextSchema();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    await admin.query(`CREATE TABLE "${schema}".t (id int PRIMARY KEY, v int)`);
    await admin.query(`INSERT INTO "${schema}".t VALUES (1, 0)`);
    const frozen = openPostgresPool(PG_URL, 1, 300);
    const other = openPostgresPool(PG_URL, 1);
    try {
      const client = await frozen.connect();
      client.on("error", () => {});
      await client.query("BEGIN");
      await client.query(`UPDATE "${schema}".t SET v = 1 WHERE id = 1`);
      // The client now sends nothing more, as a process stopped between BEGIN and COMMIT would.
      const started = Date.now();
      await other.query(`UPDATE "${schema}".t SET v = 2 WHERE id = 1`);
      expect(Date.now() - started).toBeLessThan(8000);
      const { rows } = await admin.query(`SELECT v FROM "${schema}".t`);
      expect(rows).toEqual([{ v: 2 }]); // the frozen transaction was rolled back
      await expect(client.query("COMMIT")).rejects.toThrow();
      client.release(true);
      const shown = await other.query("SHOW idle_in_transaction_session_timeout");
      expect(shown.rows[0].idle_in_transaction_session_timeout).toBe("10s");
    } finally {
      await frozen.end();
      await other.end();
    }
  });
});

describe("postgres storage: which failures say the database went away", () => {
  it("its pools' failures carry the storage mark; the same error from other code does not count", async () => {
    const pool = openPostgresPool(PG_URL, 2);
    const refused = openPostgresPool("postgres://postgres@127.0.0.1:1/test", 1);
    const caught = (p: Promise<unknown>) =>
      p.then(
        () => expect.fail("expected a failure"),
        (err: unknown) => err,
      );
    try {
      // A wrong statement is marked but is no outage.
      expect(isTransientStorageFailure(await caught(pool.query("SELECT 1/0")))).toBe(false);
      // Its session ended by the server (a restart's 57P01), on a checked-out client and on the
      // pool's own query.
      const client = await pool.connect();
      const cut = await caught(client.query("SELECT pg_terminate_backend(pg_backend_pid())"));
      client.release(true);
      expect((cut as { code?: string }).code).toBe("57P01");
      expect(isTransientStorageFailure(cut)).toBe(true);
      const viaPool = caught(pool.query("SELECT pg_sleep(5)"));
      await new Promise((r) => setTimeout(r, 200));
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1", [
        "SELECT pg_sleep(5)",
      ]);
      expect(isTransientStorageFailure(await viaPool)).toBe(true);
      // Nothing listening: refused at connect, by the pool's query and by connect().
      expect(isTransientStorageFailure(await caught(refused.query("SELECT 1")))).toBe(true);
      expect(isTransientStorageFailure(await caught(refused.connect()))).toBe(true);
      // The same codes and message from a graph's own code are not the storage's.
      const own = [
        Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }),
        Object.assign(new Error("terminating connection"), { code: "57P01" }),
        new Error("Connection terminated unexpectedly"),
      ];
      for (const err of own) expect(isTransientStorageFailure(err)).toBe(false);
      // Nor from a pg client the graph opened itself.
      const ownClient = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:1/test" });
      expect(isTransientStorageFailure(await caught(ownClient.connect()))).toBe(false);
    } finally {
      await pool.end();
      await refused.end();
    }
  });
});

describe("postgres storage: two pools on one schema", () => {
  let a: PostgresStorage;
  let b: PostgresStorage;

  beforeAll(async () => {
    const schema = nextSchema();
    [a, b] = await Promise.all([
      openPostgresStorage({ connection: PG_URL, schema, max: 4 }),
      openPostgresStorage({ connection: PG_URL, schema, max: 4 }),
    ]);
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it("claimNext across pools, many trials: each run claimed once, in enqueue order per thread, never two running on a thread", async () => {
    const THREADS = 4;
    const RUNS_PER_THREAD = 6;
    const WORKERS_PER_POOL = 3;
    for (let trial = 0; trial < 20; trial++) {
      const threadIds = Array.from({ length: THREADS }, (_, i) => `race-${trial}-t${i}`);
      for (const id of threadIds) await a.threads.create({ thread_id: id });
      const total = THREADS * RUNS_PER_THREAD;
      const enqueued = new Map<string, string[]>(threadIds.map((id) => [id, []]));
      const claimedByThread = new Map<string, string[]>(threadIds.map((id) => [id, []]));
      const claims: string[] = [];
      const runningThreads = new Set<string>();
      const violations: string[] = [];
      let produced = 0;
      let finished = 0;

      const enqueue = async (i: number) => {
        const thread = threadIds[i % THREADS]!;
        const runId = `race-${trial}-r${i}`;
        // Recorded before the insert: a worker may claim it before create returns.
        enqueued.get(thread)!.push(runId);
        await (i % 2 ? b : a).runs.create(newRun(thread, runId), { rejectIfInflight: false });
        produced += 1;
      };
      // Half the runs queue up before the workers start, so every thread has a backlog; the rest
      // are enqueued while the workers claim, alternating pools.
      for (let i = 0; i < total / 2; i++) await enqueue(i);
      const producer = (async () => {
        for (let i = total / 2; i < total; i++) await enqueue(i);
      })();

      const worker = async (storage: PostgresStorage) => {
        while (finished < total) {
          const run: Run | undefined = await storage.runs.claimNext();
          if (!run) {
            await sleep(produced < total ? 0 : 1);
            continue;
          }
          claims.push(run.run_id);
          claimedByThread.get(run.thread_id)!.push(run.run_id);
          // Removed from the set before the run ends, so a claim seeing the thread here is a
          // second running run, never a run claimed just after the first one ended.
          if (runningThreads.has(run.thread_id))
            violations.push(`${run.run_id} on ${run.thread_id}`);
          runningThreads.add(run.thread_id);
          expect(run.attempt).toBe(1);
          await sleep(Math.random() < 0.5 ? 0 : 1);
          runningThreads.delete(run.thread_id);
          await storage.runs.finish(run.run_id, "success", null, {
            threadId: run.thread_id,
            snapshot: { status: "idle", values: { last: run.run_id }, interrupts: {} },
          });
          finished += 1;
        }
      };

      await Promise.all([
        producer,
        ...Array.from({ length: WORKERS_PER_POOL }, () => worker(a)),
        ...Array.from({ length: WORKERS_PER_POOL }, () => worker(b)),
      ]);

      expect(violations, `trial ${trial}`).toEqual([]);
      expect(claims, `trial ${trial}`).toHaveLength(total);
      expect(new Set(claims).size, `trial ${trial}`).toBe(total);
      for (const id of threadIds) {
        expect(claimedByThread.get(id), `trial ${trial} ${id}`).toEqual(enqueued.get(id));
        // Every run ended, and the thread's last snapshot is its last run's.
        expect(await b.threads.get(id), `trial ${trial} ${id}`).toMatchObject({
          status: "idle",
          values: { last: enqueued.get(id)!.at(-1) },
        });
      }
    }
    expect(await a.runs.countByStatus()).toMatchObject({ pending: 0, running: 0 });
  });

  it("leases across pools, many trials: a heartbeat racing reclaimers keeps a run, or the run is reclaimed exactly once and its holder told", async () => {
    for (let trial = 0; trial < 25; trial++) {
      const runIds: string[] = [];
      for (let i = 0; i < 6; i++) {
        const thread = `lease-${trial}-t${i}`;
        await a.threads.create({ thread_id: thread });
        await a.runs.create(newRun(thread, `${thread}-r`), { rejectIfInflight: false });
        runIds.push((await a.runs.claimNext({ owner: "wa", ttlMs: 3 }))!.run_id);
      }
      await sleep(Math.floor(Math.random() * 6));
      const [fromB, fromA, renewal] = await Promise.all([
        b.runs.reclaimRunning(),
        a.runs.reclaimRunning(),
        a.runs.renewLeases("wa", runIds, 60_000),
      ]);
      const reclaimed = [...fromB, ...fromA].map((r) => r.run_id);
      expect(new Set(reclaimed).size, `trial ${trial}`).toBe(reclaimed.length);
      // The heartbeat lost exactly the runs reclaimed before it; after it, nothing is lost more.
      expect([...renewal].sort(), `trial ${trial}`).toEqual([...reclaimed].sort());
      expect(await a.runs.renewLeases("wa", runIds, 60_000)).toEqual(renewal);
      for (const id of runIds) {
        expect((await b.runs.get(id))?.status, `trial ${trial} ${id}`).toBe(
          reclaimed.includes(id) ? "pending" : "running",
        );
        await b.runs.setStatus(id, "success");
      }
    }
  });

  it("duty leases across pools: of acquirers racing many times, one holds each duty", async () => {
    for (let trial = 0; trial < 20; trial++) {
      const name = `duty-${trial}`;
      const got = await Promise.all(
        ["a1", "b1", "a2", "b2"].map((owner, i) =>
          (i % 2 ? b : a).duties.acquire(name, owner, 60_000),
        ),
      );
      expect(got.filter(Boolean), `trial ${trial}`).toHaveLength(1);
    }
  });

  it("of resumes racing from both pools on one interrupt, exactly one is created", async () => {
    for (let trial = 0; trial < 10; trial++) {
      const thread = `resume-${trial}`;
      await a.threads.create({ thread_id: thread });
      await a.threads.setSnapshot(thread, {
        status: "interrupted",
        values: {},
        interrupts: { t: [{ id: "i1", value: "approve?" }] },
      });
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 ? b : a).runs.create(newRun(thread, `${thread}-r${i}`), {
            rejectIfInflight: true,
            requireInterrupted: true,
          }),
        ),
      );
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(results.filter((r) => !r.created).map((r) => !r.created && r.reason)).toEqual(
        Array(5).fill("not_interrupted"),
      );
      const [created] = await a.runs.list(thread);
      expect(await a.runs.list(thread)).toHaveLength(1);
      // Ended, so the next tests on this schema find no pending run of it.
      await a.runs.setStatus(created!.run_id, "success");
    }
  });

  it("a run ending while another is enqueued from the other pool leaves the thread busy", async () => {
    for (let trial = 0; trial < 15; trial++) {
      const thread = `end-${trial}`;
      await a.threads.create({ thread_id: thread });
      await a.runs.create(newRun(thread, `${thread}-r1`), { rejectIfInflight: false });
      expect((await a.runs.claimNext())?.run_id).toBe(`${thread}-r1`);
      await Promise.all([
        a.runs.finish(`${thread}-r1`, "success", null, {
          threadId: thread,
          snapshot: { status: "idle", values: { n: 1 }, interrupts: {} },
        }),
        b.runs.create(newRun(thread, `${thread}-r2`), { rejectIfInflight: false }),
      ]);
      // Whichever went first, r2 is pending, so the thread must say busy.
      expect((await b.runs.get(`${thread}-r2`))?.status).toBe("pending");
      expect((await b.threads.get(thread))?.status, `trial ${trial}`).toBe("busy");
      expect((await b.runs.claimNext())?.run_id).toBe(`${thread}-r2`);
      await b.runs.setStatus(`${thread}-r2`, "success");
    }
  });

  it("crons: a partition cap and each due firing hold across both pools", async () => {
    const owner = { scopes: [], partition: "cron-cap" };
    const cron = (id: string) => ({
      cron_id: id,
      assistant_id: "asst-1",
      thread_id: null,
      on_run_completed: null,
      end_time: null,
      schedule: "* * * * *",
      timezone: null,
      payload: {},
      user_id: null,
      next_run_date: "2031-01-01T00:01:00.000Z",
      metadata: {},
      enabled: true,
      owner,
    });
    const made = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? b : a).crons.create(cron(`pool-cron-${i}`), { partitionLimit: 4 }),
      ),
    );
    expect(made.filter((c) => c !== undefined)).toHaveLength(4);
    const at = "2031-01-01T00:05:00.000Z";
    const claims = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        (i % 2 ? b : a).crons.claimDue(at, 100, () => "2031-01-01T00:06:00.000Z"),
      ),
    );
    const won = claims.flat().map((c) => `${c.cron_id}@${c.fire_at}`);
    expect(won.sort()).toEqual(
      made
        .filter((c) => c !== undefined)
        .map((c) => `${c.cron_id}@2031-01-01T00:01:00.000Z`)
        .sort(),
    );
  });

  it("a partition cap holds for runs created at once from both pools on different threads", async () => {
    const threadIds = Array.from({ length: 12 }, (_, i) => `cap-t${i}`);
    for (const id of threadIds) await a.threads.create({ thread_id: id });
    const results = await Promise.all(
      threadIds.map((id, i) =>
        (i % 2 ? b : a).runs.create(newRun(id, `cap-r${i}`, { partition: "acme" }), {
          rejectIfInflight: false,
          partitionLimit: 3,
        }),
      ),
    );
    expect(results.filter((r) => r.created)).toHaveLength(3);
    expect(results.filter((r) => !r.created && r.reason === "partition_limit")).toHaveLength(9);
    const created = await Promise.all(threadIds.map((id) => a.runs.inflight(id)));
    expect(created.flat()).toHaveLength(3);
  });
});
