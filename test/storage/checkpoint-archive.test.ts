// The checkpoint archive (core/checkpoint-archive.ts, core/storage/postgres/archive.ts): once a
// run ends, the server moves a thread's checkpoints before the latest into one deflated segment.
// Everything that reads history must read the same as if nothing had moved: list (filters,
// limits, before), getTuple by id, LangGraph's getState and getStateHistory (task results come
// from pending writes), forks from archived checkpoints, subgraph namespaces, and the admin
// operations (copy, rollback, prune, delete), on a real SQLite file and a real Postgres schema.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Annotation,
  Command,
  END,
  interrupt,
  START,
  StateGraph,
  type BaseCheckpointSaver,
} from "@langchain/langgraph";
import type { CheckpointListOptions } from "@langchain/langgraph-checkpoint";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  decodeSegment,
  decodeSegmentWithBlobs,
  encodeSegment,
} from "../../core/checkpoint-archive.ts";
import { openSqliteCheckpointer, type PreparedSqliteSaver } from "../../core/checkpointer.ts";
import {
  createSqliteCheckpointAdmin,
  type CheckpointAdmin,
} from "../../core/storage/checkpoint-admin.ts";
import { createPostgresCheckpointAdmin } from "../../core/storage/postgres/checkpoint-admin.ts";
import { migrate } from "../../core/storage/postgres/migrations.ts";
import { jsonbContains, LimitedPostgresSaver } from "../../core/storage/postgres/saver.ts";
import { TEST_POSTGRES_URL } from "../support/test-backend.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const Inner = Annotation.Root({
  notes: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
});
const State = Annotation.Root({
  log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  notes: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  answer: Annotation<string>,
});

function graph(saver: BaseCheckpointSaver) {
  // A subgraph with a checkpointer of its own namespace.
  const inner = new StateGraph(Inner)
    .addNode("jot", () => ({ notes: ["jot"] }))
    .addNode("check", () => ({ notes: [`check:${interrupt({ q: "inner?" }) as string}`] }))
    .addEdge(START, "jot")
    .addEdge("jot", "check")
    .addEdge("check", END)
    .compile();
  return new StateGraph(State)
    .addNode("draft", (s) => ({ log: [`draft${s.log.length}`], answer: String(s.log.length) }))
    .addNode("inner", inner)
    .addNode("review", () => {
      const decision = interrupt({ question: "ok?" }) as string;
      return { log: [`review:${decision}`] };
    })
    .addNode("fail", () => {
      throw new Error("boom");
    })
    .addEdge(START, "draft")
    .addEdge("draft", "inner")
    .addEdge("inner", "review")
    .addConditionalEdges("review", (s) => (s.log.includes("review:fail") ? "fail" : END))
    .compile({ checkpointer: saver });
}

/** Runs, resumes, a second run on the thread, a fork from its first run, and an error. */
async function scenario(saver: BaseCheckpointSaver, afterRun: (thread: string) => unknown) {
  const g = graph(saver);
  const a = { configurable: { thread_id: "a" } };
  const run = async (input: unknown, config: typeof a, thread = "a") => {
    try {
      await g.invoke(input as never, config);
    } finally {
      await afterRun(thread);
    }
  };
  await run({ log: ["start"] }, a);
  await run(new Command({ resume: "inner-yes" }), a);
  await run(new Command({ resume: "yes" }), a);
  await run({ log: ["again"] }, a);
  await run(new Command({ resume: "inner-2" }), a);
  await run(new Command({ resume: "yes-2" }), a);
  // Fork from the first run's state after `draft` (archived by now when compacting).
  const history = [];
  for await (const s of g.getStateHistory(a)) history.push(s);
  const first = history.filter((s) => s.metadata?.step === 1).at(-1)!;
  expect(first.values.log).toEqual(["start", "draft1"]);
  const edited = await g.updateState(first.config, { log: ["edited"] });
  await run(null, edited as typeof a);
  await run(new Command({ resume: "inner-fork" }), a);
  await run(new Command({ resume: "fork" }), a);
  const b = { configurable: { thread_id: "b" } };
  await run({ log: ["start"] }, b, "b");
  await run(new Command({ resume: "inner-b" }), b, "b");
  await expect(run(new Command({ resume: "fail" }), b, "b")).rejects.toThrow("boom");
  return g;
}

/** Ids as ordinals of first appearance, so two files' histories compare. */
function normalizer(thread: string) {
  const ids = new Map<string, string>();
  const walk = (v: unknown): unknown => {
    if (v === thread) return "<thread>";
    if (typeof v === "string") {
      // Checkpoint, task and thread ids, and interrupt ids (hashes of them).
      if (/^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$/.test(v)) {
        if (!ids.has(v)) ids.set(v, `#${ids.size}`);
        return ids.get(v);
      }
      // Postgres channel versions: "<counter>.<random>" (core/storage/postgres/saver.ts).
      if (/^\d{32}\.[0-9a-f]{16}$/.test(v)) return v.slice(0, 32);
      return v.replace(
        /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g,
        (m) => (walk(m) as string) ?? m,
      );
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (k === "ts" || k === "createdAt" || k === "created_at") continue;
        out[k] = walk(x);
      }
      return out;
    }
    return v;
  };
  return walk;
}

async function listAll(
  saver: BaseCheckpointSaver,
  config: Record<string, unknown>,
  options?: CheckpointListOptions,
) {
  const out = [];
  for await (const t of saver.list({ configurable: config }, options)) out.push(t);
  return out;
}

/** Everything a reader can see of a thread, with ids normalised. */
async function everything(saver: BaseCheckpointSaver, g: ReturnType<typeof graph>, thread: string) {
  const n = normalizer(thread);
  const all = await listAll(saver, { thread_id: thread });
  const root = await listAll(saver, { thread_id: thread, checkpoint_ns: "" });
  const views: Record<string, unknown> = { all, root };
  // Limits, before (from the middle of the history), metadata filters, one namespace.
  const middle = root[Math.floor(root.length / 2)]!.config;
  views.limit3 = await listAll(saver, { thread_id: thread }, { limit: 3 });
  views.before = await listAll(saver, { thread_id: thread, checkpoint_ns: "" }, { before: middle });
  views.beforeLimit = await listAll(
    saver,
    { thread_id: thread, checkpoint_ns: "" },
    { before: middle, limit: 2 },
  );
  views.loop = await listAll(saver, { thread_id: thread }, { filter: { source: "loop" } });
  views.loopLimit = await listAll(
    saver,
    { thread_id: thread },
    { filter: { source: "loop" }, limit: 2 },
  );
  views.step1 = await listAll(saver, { thread_id: thread }, { filter: { step: 1 } });
  // A key whose value is undefined is no condition (the library sends the filter as JSON).
  views.undefinedKey = await listAll(
    saver,
    { thread_id: thread },
    { filter: { source: "loop", step: undefined } },
  );
  const namespaces = [...new Set(all.map((t) => t.config.configurable?.checkpoint_ns as string))];
  views.namespaces = namespaces;
  views.byNamespace = await Promise.all(
    namespaces.map((ns) => listAll(saver, { thread_id: thread, checkpoint_ns: ns })),
  );
  // getTuple of every checkpoint by id, and of the latest.
  views.byId = await Promise.all(all.map((t) => saver.getTuple(t.config)));
  views.latest = await saver.getTuple({ configurable: { thread_id: thread } });
  // LangGraph's own readers: the state with its tasks, and the history.
  const config = { configurable: { thread_id: thread } };
  views.state = await g.getState(config, { subgraphs: true });
  const history = [];
  for await (const s of g.getStateHistory(config)) history.push(s);
  views.history = history;
  views.historyStates = await Promise.all(history.map((s) => g.getState(s.config)));
  return n(JSON.parse(JSON.stringify(views)));
}

/** One database of a backend: its saver, its admin, and SQL to look at what is stored. */
interface Db {
  saver: BaseCheckpointSaver;
  admin: CheckpointAdmin;
  /** Live checkpoint rows per thread and namespace. */
  liveCounts(): Promise<number[]>;
  /** Archive segments (of `thread` when given). */
  segments(thread?: string): Promise<number>;
  /** The same database through a new connection (nothing remembered in memory). */
  reopen(): Promise<Db>;
  /**
   * The next read of a checkpoint listing (live rows or archive segments) is followed, before it
   * returns, by a compaction of `thread` committed through another connection: the interleaving
   * a run thread or another process ending a run can produce at any point of a history read.
   */
  compactAfterNextRead(thread: string): void;
  close(): Promise<void>;
}

/** A listing's reads: the library's list query, or the archive's segment query. */
const LISTING =
  /json_group_array|from "?[a-z0-9_]*"?\.?checkpoints cp|SELECT (rowid|id), thread_id, checkpoint_ns/i;

function sqliteDb(dir: string, name: string): Db {
  const opened = openSqliteCheckpointer(join(dir, name));
  const db = opened.db!;
  let armed: string | undefined;
  let other: ReturnType<typeof openSqliteCheckpointer> | undefined;
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    const statement = prepare(sql);
    if (!LISTING.test(sql)) return statement;
    const all = statement.all.bind(statement);
    statement.all = ((...args: unknown[]) => {
      const rows = all(...args);
      if (armed) {
        const thread = armed;
        armed = undefined;
        other ??= openSqliteCheckpointer(join(dir, name), { check: false });
        (other.saver as PreparedSqliteSaver).compact(thread);
      }
      return rows;
    }) as typeof statement.all;
    return statement;
  }) as typeof db.prepare;
  const n = (sql: string, ...args: unknown[]) => (db.prepare(sql).get(...args) as { n: number }).n;
  return {
    saver: opened.saver,
    admin: createSqliteCheckpointAdmin(db, opened.saver),
    liveCounts: async () =>
      (
        db
          .prepare("SELECT COUNT(*) AS n FROM checkpoints GROUP BY thread_id, checkpoint_ns")
          .all() as { n: number }[]
      ).map((r) => r.n),
    segments: async (thread) =>
      thread === undefined
        ? n("SELECT COUNT(*) AS n FROM refinery_checkpoint_archive")
        : n("SELECT COUNT(*) AS n FROM refinery_checkpoint_archive WHERE thread_id = ?", thread),
    reopen: async () => sqliteDb(dir, name),
    compactAfterNextRead: (thread) => {
      armed = thread;
    },
    close: async () => {
      other?.close();
      opened.close();
    },
  };
}

const pools: pg.Pool[] = [];
const schemas: string[] = [];
afterAll(async () => {
  if (schemas.length > 0) {
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await admin.end();
  }
});

async function postgresDb(schema: string): Promise<Db> {
  if (!schemas.includes(schema)) schemas.push(schema);
  const pool = new pg.Pool({ connectionString: TEST_POSTGRES_URL, max: 4 });
  pools.push(pool);
  await migrate(pool, schema);
  let armed: string | undefined;
  let other: { pool: pg.Pool; admin: CheckpointAdmin } | undefined;
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (
    ...args: unknown[]
  ) => {
    const result = await query(...args);
    if (armed && typeof args[0] === "string" && LISTING.test(args[0])) {
      const thread = armed;
      armed = undefined;
      if (!other) {
        const otherPool = new pg.Pool({ connectionString: TEST_POSTGRES_URL, max: 2 });
        other = { pool: otherPool, admin: createPostgresCheckpointAdmin(otherPool, schema) };
      }
      await other.admin.compact(thread);
    }
    return result;
  };
  const saver = new LimitedPostgresSaver(pool, schema);
  await saver.setup();
  const n = async (sql: string, args: unknown[] = []) =>
    Number((await pool.query<{ n: string }>(sql, args)).rows[0]?.n ?? 0);
  return {
    saver,
    admin: createPostgresCheckpointAdmin(pool, schema, (t) => saver.forget(t)),
    liveCounts: async () =>
      (
        await pool.query<{ n: string }>(
          `SELECT COUNT(*) AS n FROM "${schema}".checkpoints GROUP BY thread_id, checkpoint_ns`,
        )
      ).rows.map((r) => Number(r.n)),
    segments: async (thread) =>
      thread === undefined
        ? n(`SELECT COUNT(*) AS n FROM "${schema}".refinery_checkpoint_archive`)
        : n(
            `SELECT COUNT(*) AS n FROM "${schema}".refinery_checkpoint_archive WHERE thread_id = $1`,
            [thread],
          ),
    reopen: () => postgresDb(schema),
    compactAfterNextRead: (thread) => {
      armed = thread;
    },
    close: async () => {
      await other?.pool.end();
      await pool.end();
    },
  };
}

const schemaName = (label: string) =>
  `refinery_archive_${process.pid}_${randomBytes(3).toString("hex")}_${label}`;

const backends: [string, (label: string) => Promise<Db>][] = [
  [
    "sqlite",
    async (label) => {
      const dir = mkdtempSync(join(tmpdir(), "archive-"));
      dirs.push(dir);
      return sqliteDb(dir, `${label}.db`);
    },
  ],
  ["postgres", (label) => postgresDb(schemaName(label))],
];

describe.each(backends)("the checkpoint archive on %s", (_name, openDb) => {
  it("a thread compacted after every run reads exactly as one never compacted", async () => {
    const plain = await openDb("plain");
    const compacted = await openDb("compacted");
    try {
      const g1 = await scenario(plain.saver, async () => {});
      const g2 = await scenario(compacted.saver, (t) => compacted.admin.compact(t));
      // Only the latest checkpoint of each namespace stays a row; the rest are in segments.
      expect((await compacted.liveCounts()).every((n) => n === 1)).toBe(true);
      expect(await compacted.segments()).toBeGreaterThan(5);
      for (const thread of ["a", "b"]) {
        const expected = await everything(plain.saver, g1, thread);
        expect(await everything(compacted.saver, g2, thread)).toEqual(expected);
        // A new connection (no state remembered in memory) reads the same.
        const fresh = await compacted.reopen();
        try {
          expect(await everything(fresh.saver, graph(fresh.saver), thread)).toEqual(expected);
        } finally {
          await fresh.close();
        }
      }
      // Thread a's history really holds the fork and both runs' interrupts.
      const a = await listAll(compacted.saver, { thread_id: "a", checkpoint_ns: "" });
      const logs = a.map((t) => t.checkpoint.channel_values.log as string[]);
      expect(logs.some((l) => l.includes("review:yes"))).toBe(true);
      expect(logs.some((l) => l.includes("edited"))).toBe(true);
      expect(a.some((t) => t.pendingWrites?.some(([, c]) => c === "__interrupt__"))).toBe(true);
    } finally {
      await plain.close();
      await compacted.close();
    }
  });

  it("a history read while the thread is being compacted still finds every checkpoint (20 trials, then forced)", async () => {
    const db = await openDb("concurrent");
    try {
      const g = graph(db.saver);
      for (let trial = 0; trial < 20; trial++) {
        const config = { configurable: { thread_id: `t${trial}` } };
        await g.invoke({ log: ["start"] }, config);
        await g.invoke(new Command({ resume: "x" }), config);
        const ids = (all: { checkpoint: { id: string } }[]) => all.map((t) => t.checkpoint.id);
        const expected = ids(await listAll(db.saver, { thread_id: `t${trial}` }));
        expect(expected.length).toBeGreaterThan(4);
        // Readers started before, with and after the compaction; it starts after `trial % 4`
        // turns of the event loop, so it lands at different points of their reads.
        const readers = Array.from({ length: 6 }, () =>
          listAll(db.saver, { thread_id: `t${trial}` }),
        );
        for (let k = 0; k < trial % 4; k++) await new Promise((r) => setImmediate(r));
        const compaction = db.admin.compact(`t${trial}`);
        readers.push(listAll(db.saver, { thread_id: `t${trial}` }));
        await compaction;
        readers.push(listAll(db.saver, { thread_id: `t${trial}` }));
        for (const read of await Promise.all(readers)) expect(ids(read)).toEqual(expected);
        expect(await db.segments(`t${trial}`)).toBeGreaterThan(0);
      }
      // The worst case, forced: another connection's compaction commits right after a listing's
      // first read, whichever its reads are; the listing still holds every checkpoint, once.
      for (const options of [{}, { limit: 3 }, { filter: { source: "loop" } }]) {
        const thread = `forced-${JSON.stringify(options)}`;
        const config = { configurable: { thread_id: thread } };
        await g.invoke({ log: ["start"] }, config);
        await g.invoke(new Command({ resume: "x" }), config);
        const expected = await listAll(db.saver, { thread_id: thread }, options);
        expect(expected.length).toBeGreaterThan(1);
        db.compactAfterNextRead(thread);
        const read = await listAll(db.saver, { thread_id: thread }, options);
        expect(await db.segments(thread)).toBeGreaterThan(0);
        expect(read.map((t) => t.checkpoint.id)).toEqual(expected.map((t) => t.checkpoint.id));
        expect(read.map((t) => t.checkpoint.channel_values)).toEqual(
          expected.map((t) => t.checkpoint.channel_values),
        );
      }
    } finally {
      await db.close();
    }
  });

  it("copy, rollback, prune and delete see archived checkpoints", async () => {
    const db = await openDb("admin");
    const { saver, admin } = db;
    try {
      const g = await scenario(saver, (t) => admin.compact(t));
      const before = await everything(saver, g, "a");
      // Copy: the new thread reads the same history.
      await admin.copyThread("a", "copy");
      expect(await everything(saver, g, "copy")).toEqual(before);
      // Rollback to an archived checkpoint: everything after it goes, it becomes the latest.
      const root = await listAll(saver, { thread_id: "copy", checkpoint_ns: "" });
      const keep = root[Math.floor(root.length / 2)]!;
      await admin.rollback("copy", keep.checkpoint.id);
      const after = await listAll(saver, { thread_id: "copy", checkpoint_ns: "" });
      expect(after.map((t) => t.checkpoint.id)).toEqual(
        root.filter((t) => t.checkpoint.id <= keep.checkpoint.id).map((t) => t.checkpoint.id),
      );
      const latest = await saver.getTuple({ configurable: { thread_id: "copy" } });
      expect(latest?.checkpoint.id).toBe(keep.checkpoint.id);
      expect(latest?.checkpoint.channel_values).toEqual(keep.checkpoint.channel_values);
      // The original thread is untouched by its copy's rollback.
      expect(await everything(saver, g, "a")).toEqual(before);
      // Prune: the latest state stays, the history goes, archive included.
      const state = (await g.getState({ configurable: { thread_id: "a" } })).values;
      await admin.keepLatest("a");
      expect((await g.getState({ configurable: { thread_id: "a" } })).values).toEqual(state);
      expect(await db.segments("a")).toBe(0);
      expect((await listAll(saver, { thread_id: "a", checkpoint_ns: "" })).length).toBe(1);
      // Delete: nothing of the thread is left anywhere.
      await admin.deleteThread("copy");
      await saver.deleteThread("b");
      for (const t of ["copy", "b"]) {
        expect(await saver.getTuple({ configurable: { thread_id: t } })).toBeUndefined();
        expect(await db.segments(t)).toBe(0);
      }
    } finally {
      await db.close();
    }
  });
});

function open(dir: string, name: string) {
  const opened = openSqliteCheckpointer(join(dir, name));
  return { ...opened, saver: opened.saver as PreparedSqliteSaver, db: opened.db! };
}

const count = (db: ReturnType<typeof open>["db"], sql: string, ...args: unknown[]) =>
  (db.prepare(sql).get(...args) as { n: number }).n;

describe("the checkpoint archive", () => {
  it("a thread limit counts archived bytes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "archive-"));
    dirs.push(dir);
    const file = join(dir, "db.sqlite");
    const first = open(dir, "db.sqlite");
    await scenario(first.saver, (t) => {
      first.saver.compact(t);
    });
    const archived = count(
      first.db,
      "SELECT SUM(length(data)) AS n FROM refinery_checkpoint_archive WHERE thread_id = 'a'",
    );
    first.close();
    expect(archived).toBeGreaterThan(0);
    // A limit just above the live rows but below live + archive refuses the next write.
    const live = (() => {
      const o = open(dir, "db.sqlite");
      try {
        return count(
          o.db,
          "SELECT SUM(length(checkpoint) + length(metadata)) AS n FROM checkpoints WHERE thread_id = 'a'",
        );
      } finally {
        o.close();
      }
    })();
    const limited = openSqliteCheckpointer(file, {
      limits: { maxCheckpointBytes: 0, maxThreadBytes: live + archived - 1 },
    });
    try {
      const g = graph(limited.saver);
      await expect(
        g.invoke({ log: ["more"] }, { configurable: { thread_id: "a" } }),
      ).rejects.toThrow(/thread/i);
    } finally {
      limited.close();
    }
  });

  it("a segment round-trips every field, null and binary values included", () => {
    const rows = [
      {
        id: "1f000000-0000-6000-8000-000000000001",
        parentId: null,
        type: "json",
        checkpoint: Buffer.from('{"v":4}'),
        metadata: null,
        writes: [],
      },
      {
        id: "1f000000-0000-6000-8000-000000000002",
        parentId: "1f000000-0000-6000-8000-000000000001",
        type: null,
        checkpoint: Buffer.from([0, 1, 2, 255, 254]),
        metadata: Buffer.from("{}"),
        writes: [
          {
            taskId: "t",
            idx: -3,
            channel: "__interrupt__",
            type: "json",
            value: Buffer.from("[]"),
          },
          { taskId: "t", idx: 0, channel: "x", type: null, value: null },
          { taskId: "ü", idx: 7, channel: "ß", type: "bytes", value: Buffer.from([0, 0, 9]) },
        ],
      },
    ];
    const back = decodeSegment(encodeSegment(rows));
    expect(
      back.map((r) => ({
        ...r,
        checkpoint: Buffer.from(r.checkpoint),
        metadata: r.metadata && Buffer.from(r.metadata),
        writes: r.writes.map((w) => ({ ...w, value: w.value && Buffer.from(w.value) })),
      })),
    ).toEqual(rows);
    expect(() => decodeSegment(Buffer.from([9, 1, 2]))).toThrow(/unknown format 9/);
    // The Postgres layout carries the blobs the checkpoints refer to.
    const blobs = [
      { channel: "log", version: "0001.ab", type: "json", blob: Buffer.from('["a"]') },
      { channel: "x", version: "0002.cd", type: "empty", blob: null },
    ];
    const withBlobs = decodeSegmentWithBlobs(encodeSegment(rows.slice(0, 1), blobs));
    expect(withBlobs.rows).toHaveLength(1);
    expect(withBlobs.blobs.map((b) => ({ ...b, blob: b.blob && Buffer.from(b.blob) }))).toEqual(
      blobs,
    );
  });

  it("filters archived metadata as Postgres's @> does", () => {
    const m = { source: "loop", step: 2, parents: { "": "x" }, tags: ["a", "b"] };
    expect(jsonbContains(m, { source: "loop" })).toBe(true);
    expect(jsonbContains(m, { source: "loop", step: 2 })).toBe(true);
    expect(jsonbContains(m, { step: "2" })).toBe(false);
    expect(jsonbContains(m, { parents: {} })).toBe(true);
    expect(jsonbContains(m, { parents: { "": "y" } })).toBe(false);
    expect(jsonbContains(m, { tags: ["b"] })).toBe(true);
    expect(jsonbContains(m, { tags: ["c"] })).toBe(false);
    expect(jsonbContains(m, { missing: null })).toBe(false);
  });
});
