// SQLite implementation of the storage contracts, in the same database file as the checkpoints.
// better-sqlite3 is synchronous, so every method is one atomic step; the async signatures match
// the Postgres implementation (core/storage/postgres/storage.ts), which gets the same atomicity
// from transactions and row locks.
import type Database from "better-sqlite3";
import { RefineryError } from "../../errors.ts";
import { jsonText, packJson } from "../../packing.ts";
import {
  ASSISTANT_SORT,
  CRON_SORT,
  j,
  newRun,
  now,
  reaches,
  THREAD_SORT,
  toUtcIso,
} from "../common.ts";
import type {
  Access,
  Assistant,
  AssistantPatch,
  AssistantQuery,
  AssistantStore,
  CreateRunResult,
  Cron,
  CronQuery,
  CronStore,
  DueCron,
  DutyLeaseStore,
  WebhookDelivery,
  WebhookOutboxStore,
  Metadata,
  NewAssistant,
  NewRun,
  Run,
  RunStatus,
  RunStore,
  Storage,
  Thread,
  ThreadQuery,
  ThreadSnapshot,
  ThreadStore,
} from "../types.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS refinery_assistants (
  assistant_id TEXT PRIMARY KEY,
  graph_id TEXT NOT NULL,
  config TEXT NOT NULL,
  context TEXT NOT NULL,
  metadata TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT,
  version INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refinery_assistant_versions (
  assistant_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  graph_id TEXT NOT NULL,
  config TEXT NOT NULL,
  context TEXT NOT NULL,
  metadata TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT,
  created_at TEXT NOT NULL,
  PRIMARY KEY (assistant_id, version)
);
CREATE TABLE IF NOT EXISTS refinery_threads (
  thread_id TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  metadata TEXT NOT NULL,
  status TEXT NOT NULL,
  "values" TEXT,
  interrupts TEXT NOT NULL,
  config TEXT NOT NULL,
  error TEXT
);
CREATE INDEX IF NOT EXISTS refinery_threads_status ON refinery_threads(status, updated_at);
CREATE TABLE IF NOT EXISTS refinery_runs (
  run_id TEXT PRIMARY KEY,
  thread_id TEXT NOT NULL,
  assistant_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  not_before TEXT NOT NULL,
  status TEXT NOT NULL,
  metadata TEXT NOT NULL,
  multitask_strategy TEXT NOT NULL,
  kwargs TEXT NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  seq INTEGER NOT NULL,
  partition TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS refinery_runs_thread ON refinery_runs(thread_id, status);
-- The queue: claimNext walks pending runs in seq order and stops at the first due one.
DROP INDEX IF EXISTS refinery_runs_queue;
CREATE INDEX IF NOT EXISTS refinery_runs_claim ON refinery_runs(status, seq);
CREATE INDEX IF NOT EXISTS refinery_runs_seq ON refinery_runs(seq);
CREATE TABLE IF NOT EXISTS refinery_crons (
  cron_id TEXT PRIMARY KEY,
  assistant_id TEXT NOT NULL,
  thread_id TEXT,
  on_run_completed TEXT,
  end_time TEXT,
  schedule TEXT NOT NULL,
  timezone TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  payload TEXT NOT NULL,
  user_id TEXT,
  next_run_date TEXT,
  metadata TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  owner TEXT NOT NULL,
  partition TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS refinery_crons_due ON refinery_crons(enabled, next_run_date);
CREATE INDEX IF NOT EXISTS refinery_crons_partition ON refinery_crons(partition);
CREATE INDEX IF NOT EXISTS refinery_crons_thread ON refinery_crons(thread_id);
-- One row per firing: the primary key is the claim of (cron, fire time); the newest are kept.
CREATE TABLE IF NOT EXISTS refinery_cron_fires (
  cron_id TEXT NOT NULL,
  fire_at TEXT NOT NULL,
  claimed_at TEXT NOT NULL,
  run_id TEXT,
  error TEXT,
  PRIMARY KEY (cron_id, fire_at)
);
-- Duties one process does at a time (approval deadlines, crons, sweeps): who, until when (ms).
CREATE TABLE IF NOT EXISTS refinery_duty_leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
-- Run webhook calls not delivered yet (queued with the run's end): due at next_at (epoch ms).
CREATE TABLE IF NOT EXISTS refinery_webhook_outbox (
  run_id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  last_error TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refinery_webhook_outbox_due ON refinery_webhook_outbox (next_at);
`;

/** Firings kept per cron (the newest), for inspection; older ones are deleted as new ones come. */
export const CRON_FIRES_KEPT = 100;

/** Columns added after a table was first shipped: added to older files at open. */
const ADDED_COLUMNS: { table: string; column: string; ddl: string }[] = [
  { table: "refinery_runs", column: "partition", ddl: "partition TEXT NOT NULL DEFAULT ''" },
  // A thread's TTL (ms) and when it expires (epoch ms): its last update plus the TTL.
  { table: "refinery_threads", column: "ttl_ms", ddl: "ttl_ms INTEGER" },
  { table: "refinery_threads", column: "expires_at", ddl: "expires_at INTEGER" },
  // A running run's lease: its executor, and until when (epoch ms) it holds the run without a
  // heartbeat. NULL: leased to nobody (a run the CLI executes).
  { table: "refinery_runs", column: "lease_owner", ddl: "lease_owner TEXT" },
  { table: "refinery_runs", column: "lease_expires_at", ddl: "lease_expires_at INTEGER" },
  // Attempts the database's failure cut short (Run.lost_to_storage): not counted as attempts.
  {
    table: "refinery_runs",
    column: "lost_to_storage",
    ddl: "lost_to_storage INTEGER NOT NULL DEFAULT 0",
  },
];
const AFTER_COLUMNS = `
CREATE INDEX IF NOT EXISTS refinery_runs_partition ON refinery_runs(partition, status);
CREATE INDEX IF NOT EXISTS refinery_threads_expires ON refinery_threads(expires_at) WHERE expires_at IS NOT NULL;
`;

/** SQL that moves a thread's expiry to now (the \`?\`, epoch ms) plus its TTL, if it has one. */
const TOUCH_EXPIRY = "expires_at = CASE WHEN ttl_ms IS NULL THEN NULL ELSE ? + ttl_ms END";

function addMissingColumns(db: Database.Database): void {
  for (const { table, column, ddl } of ADDED_COLUMNS) {
    const columns = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
    if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${ddl}`);
  }
  db.exec(AFTER_COLUMNS);
}

const p = <T>(v: unknown, fallback: T): T =>
  typeof v === "string" ? (JSON.parse(v) as T) : fallback;

/**
 * SQL conditions for JSON containment, as Postgres `@>` does it: nested objects are contained key
 * by key (in any order), scalars must match in type too (json_extract turns `true` into 1).
 * Arrays compare as whole values (unlike `@>`; the Postgres storage does the same,
 * core/storage/postgres/filters.ts).
 */
function containment(
  column: string,
  filter: Record<string, unknown> | undefined,
  args: unknown[],
  prefix = "$",
): string[] {
  if (!filter) return [];
  const out: string[] = [];
  for (const [key, value] of Object.entries(filter)) {
    const path = `${prefix}."${key.replace(/"/g, '""')}"`;
    if (value === null) {
      out.push(`json_type(${column}, ?) = 'null'`);
      args.push(path);
    } else if (Array.isArray(value)) {
      out.push(`json(json_extract(${column}, ?)) = json(?)`);
      args.push(path, JSON.stringify(value));
    } else if (typeof value === "object") {
      out.push(`json_type(${column}, ?) = 'object'`);
      args.push(path);
      out.push(...containment(column, value as Record<string, unknown>, args, path));
    } else if (typeof value === "boolean") {
      out.push(`json_type(${column}, ?) = ?`);
      args.push(path, value ? "true" : "false");
    } else if (typeof value === "number") {
      out.push(`json_type(${column}, ?) IN ('integer', 'real') AND json_extract(${column}, ?) = ?`);
      args.push(path, path, value);
    } else {
      out.push(`json_extract(${column}, ?) = ?`);
      args.push(path, value);
    }
  }
  return out;
}

/**
 * SQL conditions for auth filters on a JSON metadata column, to the semantics of
 * isAuthMatching (core/auth-filters.ts): strict, type-aware equality; `$contains` on array
 * fields. Keys are matched through json_each, so any key text is safe.
 */
export function authFilterSql(
  column: string,
  filters: Record<string, unknown> | undefined,
  args: unknown[],
): string[] {
  if (!filters) return [];
  const out: string[] = [];
  for (const [key, expected] of Object.entries(filters)) {
    if (typeof expected === "object" && expected !== null) {
      const ops = expected as { $eq?: unknown; $contains?: unknown };
      if (ops.$eq) {
        out.push(fieldIs(column, key, ops.$eq, args));
      } else if (ops.$contains) {
        const wanted = Array.isArray(ops.$contains) ? ops.$contains : [ops.$contains];
        for (const value of wanted) {
          args.push(key);
          out.push(
            `EXISTS (SELECT 1 FROM json_each(${column}) f WHERE f.key = ? AND f.type = 'array' AND EXISTS (SELECT 1 FROM json_each(f.value) x WHERE ${typedEquals("x", value, args)}))`,
          );
        }
      }
    } else {
      out.push(fieldIs(column, key, expected, args));
    }
  }
  return out;
}

function fieldIs(column: string, key: string, value: unknown, args: unknown[]): string {
  args.push(key);
  return `EXISTS (SELECT 1 FROM json_each(${column}) f WHERE f.key = ? AND ${typedEquals("f", value, args)})`;
}

/** `alias.type`/`alias.value` equal to `value` as === would have it (objects never are). */
function typedEquals(alias: string, value: unknown, args: unknown[]): string {
  if (value === null) return `${alias}.type = 'null'`;
  switch (typeof value) {
    case "string":
      args.push(value);
      return `${alias}.type = 'text' AND ${alias}.value = ?`;
    case "number":
      args.push(value);
      return `${alias}.type IN ('integer', 'real') AND ${alias}.value = ?`;
    case "boolean":
      return `${alias}.type = '${value ? "true" : "false"}'`;
    default:
      return "0";
  }
}

/** The SQL form of `reaches`, for searches and counts. */
function accessSql(column: string, access: Access | undefined, args: unknown[]): string[] {
  if (!access?.filters) return [];
  const conds = authFilterSql(column, access.filters, args);
  if (conds.length === 0) return [];
  const all = conds.join(" AND ");
  return [
    access.system
      ? `(json_extract(${column}, '$.created_by') IS 'system' OR (${all}))`
      : `(${all})`,
  ];
}

function page(
  sortBy: string | undefined,
  allowed: ReadonlySet<string>,
  order: string | undefined,
  fallback: string,
) {
  const column = sortBy && allowed.has(sortBy) ? sortBy : fallback;
  return `ORDER BY ${column} ${order === "asc" ? "ASC" : "DESC"}`;
}

function rowToAssistant(r: Record<string, unknown>): Assistant {
  return {
    assistant_id: r.assistant_id as string,
    graph_id: r.graph_id as string,
    config: p(r.config, {}),
    context: p(r.context, {}),
    metadata: p(r.metadata, {}),
    name: r.name as string,
    description: (r.description as string | null) ?? null,
    version: r.version as number,
    created_at: r.created_at as string,
    updated_at: (r.updated_at ?? r.created_at) as string,
  };
}

function rowToThread(r: Record<string, unknown>): Thread {
  return {
    thread_id: r.thread_id as string,
    created_at: r.created_at as string,
    updated_at: r.updated_at as string,
    metadata: p(r.metadata, {}),
    status: r.status as Thread["status"],
    values: p(jsonText(r.values), null),
    interrupts: p(r.interrupts, {}),
    config: p(r.config, {}),
    error: p(r.error, null),
  };
}

function rowToRun(r: Record<string, unknown>): Run {
  return {
    run_id: r.run_id as string,
    thread_id: r.thread_id as string,
    assistant_id: r.assistant_id as string,
    created_at: r.created_at as string,
    updated_at: r.updated_at as string,
    status: r.status as RunStatus,
    metadata: p(r.metadata, {}),
    multitask_strategy: r.multitask_strategy as Run["multitask_strategy"],
    kwargs: kwargsOf(r.kwargs),
    attempt: r.attempt as number,
    error: p(r.error, null),
    ...(Number(r.lost_to_storage) > 0 ? { lost_to_storage: Number(r.lost_to_storage) } : {}),
  };
}

/** A stored run's kwargs; older rows named `subgraphs` `stream_subgraphs`. */
function kwargsOf(raw: unknown): Run["kwargs"] {
  const kwargs = p<Run["kwargs"] & { stream_subgraphs?: boolean }>(raw, {
    config: { configurable: {} },
    stream_mode: ["values"],
  });
  if (kwargs.stream_subgraphs === undefined) return kwargs;
  const { stream_subgraphs: subgraphs, ...rest } = kwargs;
  return { ...rest, subgraphs };
}

function rowToCron(r: Record<string, unknown>): Cron {
  return {
    cron_id: r.cron_id as string,
    assistant_id: r.assistant_id as string,
    thread_id: (r.thread_id as string | null) ?? null,
    on_run_completed: (r.on_run_completed as Cron["on_run_completed"]) ?? null,
    end_time: (r.end_time as string | null) ?? null,
    schedule: r.schedule as string,
    timezone: (r.timezone as string | null) ?? null,
    created_at: r.created_at as string,
    updated_at: r.updated_at as string,
    payload: p(r.payload, {}),
    user_id: (r.user_id as string | null) ?? null,
    next_run_date: (r.next_run_date as string | null) ?? null,
    metadata: p(r.metadata, {}),
    enabled: r.enabled === 1,
  };
}

/**
 * `db.prepare` with the statements kept: preparing costs more than running most of these
 * statements. Dynamic SQL (searches with filters) is bounded by clearing the cache when full.
 */
export function statementCache(
  db: Database.Database,
  max = 256,
): (sql: string) => Database.Statement {
  const cache = new Map<string, Database.Statement>();
  return (sql) => {
    let statement = cache.get(sql);
    if (!statement) {
      if (cache.size >= max) cache.clear();
      statement = db.prepare(sql);
      cache.set(sql, statement);
    }
    return statement;
  };
}

export function createSqliteStorage(db: Database.Database): Storage {
  db.exec(SCHEMA);
  addMissingColumns(db);
  // A thread's values column holds packed JSON (packJson); SQL reads its text through this.
  db.function("refinery_json", { deterministic: true }, (v: unknown) => jsonText(v));
  const prep = statementCache(db);
  // Read inside the insert's transaction: another connection to the same file may have enqueued.
  const maxSeq = prep("SELECT COALESCE(MAX(seq), 0) AS s FROM refinery_runs");
  const nextSeq = () => (maxSeq.get() as { s: number }).s + 1;

  const assistants: AssistantStore = {
    async create(input: NewAssistant, ifExists = "raise") {
      return db
        .transaction(() => {
          const existing = prep("SELECT * FROM refinery_assistants WHERE assistant_id = ?").get(
            input.assistant_id,
          );
          if (existing) {
            if (ifExists === "do_nothing")
              return rowToAssistant(existing as Record<string, unknown>);
            throw new RefineryError("conflict", `assistant ${input.assistant_id} already exists`, {
              field: "assistant_id",
              fix: 'use another assistant_id, or if_exists: "do_nothing"',
            });
          }
          const t = now();
          const a: Assistant = {
            assistant_id: input.assistant_id,
            graph_id: input.graph_id,
            config: input.config ?? {},
            context: input.context ?? {},
            metadata: input.metadata ?? {},
            name: input.name ?? "Untitled",
            description: input.description ?? null,
            version: 1,
            created_at: t,
            updated_at: t,
          };
          insertAssistant(a);
          insertVersion(a);
          return a;
        })
        .immediate();
    },
    async get(id, access) {
      const r = prep("SELECT * FROM refinery_assistants WHERE assistant_id = ?").get(id);
      const a = r ? rowToAssistant(r as Record<string, unknown>) : undefined;
      return a && reaches(a.metadata, access) ? a : undefined;
    },
    async update(id, patch: AssistantPatch, access) {
      return db
        .transaction(() => {
          const r = prep("SELECT * FROM refinery_assistants WHERE assistant_id = ?").get(id);
          if (!r) return undefined;
          const cur = rowToAssistant(r as Record<string, unknown>);
          if (!reaches(cur.metadata, access)) return undefined;
          const maxVersion = (
            prep(
              "SELECT MAX(version) AS v FROM refinery_assistant_versions WHERE assistant_id = ?",
            ).get(id) as { v: number }
          ).v;
          const next: Assistant = {
            ...cur,
            graph_id: patch.graph_id ?? cur.graph_id,
            config: patch.config ?? cur.config,
            context: patch.context ?? cur.context,
            metadata: patch.metadata ? { ...cur.metadata, ...patch.metadata } : cur.metadata,
            name: patch.name ?? cur.name,
            description: patch.description !== undefined ? patch.description : cur.description,
            version: maxVersion + 1,
            updated_at: now(),
          };
          prep("DELETE FROM refinery_assistants WHERE assistant_id = ?").run(id);
          insertAssistant(next);
          insertVersion(next);
          return next;
        })
        .immediate();
    },
    async delete(id, access) {
      return db
        .transaction(() => {
          const r = prep("SELECT metadata FROM refinery_assistants WHERE assistant_id = ?").get(id);
          if (!r || !reaches(p((r as { metadata: unknown }).metadata, {}), access)) return false;
          const n = prep("DELETE FROM refinery_assistants WHERE assistant_id = ?").run(id).changes;
          prep("DELETE FROM refinery_assistant_versions WHERE assistant_id = ?").run(id);
          return n > 0;
        })
        .immediate();
    },
    async search(q: AssistantQuery) {
      const args: unknown[] = [];
      const where = assistantWhere(q, args);
      const sql = `SELECT * FROM refinery_assistants ${where} ${page(q.sort_by, ASSISTANT_SORT, q.sort_order, "created_at")} LIMIT ? OFFSET ?`;
      return (
        prep(sql).all(...args, q.limit ?? 10, q.offset ?? 0) as Record<string, unknown>[]
      ).map(rowToAssistant);
    },
    async count(q) {
      const args: unknown[] = [];
      const where = assistantWhere(q, args);
      return (
        prep(`SELECT COUNT(*) AS n FROM refinery_assistants ${where}`).get(...args) as {
          n: number;
        }
      ).n;
    },
    async versions(id, q = {}) {
      const args: unknown[] = [id];
      const conds = [
        "assistant_id = ?",
        ...containment("metadata", q.metadata, args),
        ...accessSql("metadata", q, args),
      ];
      const rows = prep(
        `SELECT * FROM refinery_assistant_versions WHERE ${conds.join(" AND ")} ORDER BY version DESC LIMIT ? OFFSET ?`,
      ).all(...args, q.limit ?? 10, q.offset ?? 0) as Record<string, unknown>[];
      return rows.map(rowToAssistant);
    },
    async setLatest(id, version, access) {
      return db
        .transaction(() => {
          const v = prep(
            "SELECT * FROM refinery_assistant_versions WHERE assistant_id = ? AND version = ?",
          ).get(id, version);
          if (!v) return undefined;
          const cur = prep(
            "SELECT created_at, metadata FROM refinery_assistants WHERE assistant_id = ?",
          ).get(id) as { created_at: string; metadata: string } | undefined;
          if (!cur || !reaches(p(cur.metadata, {}), access)) return undefined;
          const a = {
            ...rowToAssistant(v as Record<string, unknown>),
            created_at: cur.created_at,
            updated_at: now(),
          };
          prep("DELETE FROM refinery_assistants WHERE assistant_id = ?").run(id);
          insertAssistant(a);
          return a;
        })
        .immediate();
    },
  };

  function assistantWhere(
    q: Omit<AssistantQuery, "limit" | "offset" | "sort_by" | "sort_order">,
    args: unknown[],
  ): string {
    const conds: string[] = [];
    if (q.graph_id) {
      conds.push("graph_id = ?");
      args.push(q.graph_id);
    }
    if (q.name) {
      conds.push("name LIKE ? ESCAPE '\\'");
      args.push(`%${q.name.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    }
    conds.push(...containment("metadata", q.metadata, args));
    conds.push(...accessSql("metadata", q, args));
    return conds.length ? `WHERE ${conds.join(" AND ")}` : "";
  }

  function insertAssistant(a: Assistant) {
    prep(
      `INSERT INTO refinery_assistants (assistant_id, graph_id, config, context, metadata, name, description, version, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      a.assistant_id,
      a.graph_id,
      j(a.config),
      j(a.context),
      j(a.metadata),
      a.name,
      a.description,
      a.version,
      a.created_at,
      a.updated_at,
    );
  }

  function insertVersion(a: Assistant) {
    prep(
      `INSERT INTO refinery_assistant_versions (assistant_id, version, graph_id, config, context, metadata, name, description, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      a.assistant_id,
      a.version,
      a.graph_id,
      j(a.config),
      j(a.context),
      j(a.metadata),
      a.name,
      a.description,
      a.updated_at,
    );
  }

  function writeSnapshot(id: string, s: ThreadSnapshot): void {
    prep(
      `UPDATE refinery_threads SET status = ?, "values" = ?, interrupts = ?, error = ?, updated_at = ?, ${TOUCH_EXPIRY} WHERE thread_id = ?`,
    ).run(s.status, packJson(s.values), j(s.interrupts), j(s.error ?? null), now(), Date.now(), id);
  }

  const threads: ThreadStore = {
    async create(input, ifExists = "raise") {
      return db
        .transaction(() => {
          const existing = prep("SELECT * FROM refinery_threads WHERE thread_id = ?").get(
            input.thread_id,
          );
          if (existing) {
            if (ifExists === "do_nothing") return rowToThread(existing as Record<string, unknown>);
            throw new RefineryError("conflict", `thread ${input.thread_id} already exists`, {
              field: "thread_id",
              fix: 'use another thread_id, or if_exists: "do_nothing"',
            });
          }
          const t = now();
          const thread: Thread = {
            thread_id: input.thread_id,
            created_at: t,
            updated_at: t,
            metadata: input.metadata ?? {},
            status: "idle",
            values: null,
            interrupts: {},
            config: {},
            error: null,
          };
          insertThread(thread);
          if (input.ttl_ms)
            prep("UPDATE refinery_threads SET ttl_ms = ?, expires_at = ? WHERE thread_id = ?").run(
              input.ttl_ms,
              Date.now() + input.ttl_ms,
              input.thread_id,
            );
          return thread;
        })
        .immediate();
    },
    async get(id, access) {
      const r = prep("SELECT * FROM refinery_threads WHERE thread_id = ?").get(id);
      const t = r ? rowToThread(r as Record<string, unknown>) : undefined;
      return t && reaches(t.metadata, access) ? t : undefined;
    },
    async update(id, patch, access) {
      return db
        .transaction(() => {
          const r = prep("SELECT * FROM refinery_threads WHERE thread_id = ?").get(id);
          if (!r) return undefined;
          const t = rowToThread(r as Record<string, unknown>);
          if (!reaches(t.metadata, access)) return undefined;
          const metadata = { ...t.metadata, ...(patch.metadata ?? {}) };
          const updated = now();
          if (patch.ttl_ms !== undefined)
            prep("UPDATE refinery_threads SET ttl_ms = ? WHERE thread_id = ?").run(
              patch.ttl_ms,
              id,
            );
          prep(
            `UPDATE refinery_threads SET metadata = ?, updated_at = ?, ${TOUCH_EXPIRY} WHERE thread_id = ?`,
          ).run(j(metadata), updated, Date.now(), id);
          return { ...t, metadata, updated_at: updated };
        })
        .immediate();
    },
    async delete(id, access) {
      return db
        .transaction(() => {
          const r = prep("SELECT metadata FROM refinery_threads WHERE thread_id = ?").get(id);
          if (!r || !reaches(p((r as { metadata: unknown }).metadata, {}), access)) return false;
          const n = prep("DELETE FROM refinery_threads WHERE thread_id = ?").run(id).changes;
          prep("DELETE FROM refinery_runs WHERE thread_id = ?").run(id);
          // A thread's crons have nothing left to run on.
          prep(
            "DELETE FROM refinery_cron_fires WHERE cron_id IN (SELECT cron_id FROM refinery_crons WHERE thread_id = ?)",
          ).run(id);
          prep("DELETE FROM refinery_crons WHERE thread_id = ?").run(id);
          return n > 0;
        })
        .immediate();
    },
    async search(q: ThreadQuery) {
      const args: unknown[] = [];
      const where = threadWhere(q, args);
      const sql = `SELECT * FROM refinery_threads ${where} ${page(q.sort_by, THREAD_SORT, q.sort_order, "created_at")} LIMIT ? OFFSET ?`;
      return (
        prep(sql).all(...args, q.limit ?? 10, q.offset ?? 0) as Record<string, unknown>[]
      ).map(rowToThread);
    },
    async count(q) {
      const args: unknown[] = [];
      const where = threadWhere(q, args);
      return (
        prep(`SELECT COUNT(*) AS n FROM refinery_threads ${where}`).get(...args) as {
          n: number;
        }
      ).n;
    },
    async setSnapshot(id, s: ThreadSnapshot) {
      writeSnapshot(id, s);
    },
    async expired(nowMs, limit) {
      // A thread with a run pending or running is left for a later sweep: its run touches it.
      return (
        prep(
          `SELECT thread_id FROM refinery_threads t WHERE expires_at IS NOT NULL AND expires_at <= ?
             AND NOT EXISTS (SELECT 1 FROM refinery_runs r WHERE r.thread_id = t.thread_id AND r.status IN ('pending', 'running'))
           ORDER BY expires_at LIMIT ?`,
        ).all(nowMs, limit) as { thread_id: string }[]
      ).map((r) => r.thread_id);
    },
  };

  function threadWhere(
    q: Omit<ThreadQuery, "limit" | "offset" | "sort_by" | "sort_order">,
    args: unknown[],
  ): string {
    const conds: string[] = [];
    if (q.ids?.length) {
      conds.push(`thread_id IN (${q.ids.map(() => "?").join(", ")})`);
      args.push(...q.ids);
    }
    if (q.status) {
      conds.push("status = ?");
      args.push(q.status);
    }
    conds.push(...containment("metadata", q.metadata, args));
    // Values are stored packed (core/packing.ts): refinery_json gives their text back.
    conds.push(...containment('refinery_json("values")', q.values, args));
    conds.push(...accessSql("metadata", q, args));
    return conds.length ? `WHERE ${conds.join(" AND ")}` : "";
  }

  function insertThread(t: Thread) {
    prep(
      `INSERT INTO refinery_threads (thread_id, created_at, updated_at, metadata, status, "values", interrupts, config, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      t.thread_id,
      t.created_at,
      t.updated_at,
      j(t.metadata),
      t.status,
      packJson(t.values),
      j(t.interrupts),
      j(t.config),
      j(t.error),
    );
  }

  const partitionInflight = prep(
    "SELECT COUNT(*) AS n FROM refinery_runs WHERE partition = ? AND status IN ('pending', 'running')",
  );
  const inflightStmt = prep(
    "SELECT * FROM refinery_runs WHERE thread_id = ? AND status IN ('pending', 'running') ORDER BY seq",
  );

  const runs: RunStore = {
    async create(
      input: NewRun,
      { rejectIfInflight, partitionLimit, requireInterrupted },
    ): Promise<CreateRunResult> {
      return db
        .transaction((): CreateRunResult => {
          const thread = prep("SELECT * FROM refinery_threads WHERE thread_id = ?").get(
            input.thread_id,
          );
          if (!thread)
            throw new RefineryError("not_found", `thread ${input.thread_id} not found`, {
              field: "thread_id",
            });
          const inflight = (inflightStmt.all(input.thread_id) as Record<string, unknown>[]).map(
            rowToRun,
          );
          if (
            requireInterrupted &&
            ((thread as { status: string }).status !== "interrupted" || inflight.length > 0)
          )
            return { created: false, inflight, reason: "not_interrupted" };
          if (rejectIfInflight && inflight.length > 0)
            return { created: false, inflight, reason: "inflight" };
          if (partitionLimit !== undefined) {
            const { n } = partitionInflight.get(input.partition ?? "") as { n: number };
            if (n >= partitionLimit) return { created: false, inflight, reason: "partition_limit" };
          }
          const t = now();
          // Stored as UTC ISO so claimNext's text comparison orders instants, whatever the offset.
          const notBefore = input.not_before === undefined ? t : toUtcIso(input.not_before);
          const run = newRun(input, t);
          prep(
            `INSERT INTO refinery_runs (run_id, thread_id, assistant_id, created_at, updated_at, not_before, status, metadata, multitask_strategy, kwargs, attempt, error, seq, partition)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
          ).run(
            run.run_id,
            run.thread_id,
            run.assistant_id,
            t,
            t,
            notBefore,
            run.status,
            j(run.metadata),
            run.multitask_strategy,
            j(run.kwargs),
            run.attempt,
            nextSeq(),
            input.partition ?? "",
          );
          const meta = {
            ...p<Metadata>((thread as Record<string, unknown>).metadata, {}),
            graph_id: input.graph_id,
            assistant_id: input.assistant_id,
          };
          // The thread keeps the config its runs were given (thread.config), as the LangGraph
          // server fills it: each run's over the one before.
          const config = input.thread_config
            ? {
                ...p<Record<string, unknown>>((thread as Record<string, unknown>).config, {}),
                ...input.thread_config,
              }
            : p<Record<string, unknown>>((thread as Record<string, unknown>).config, {});
          prep(
            `UPDATE refinery_threads SET status = 'busy', metadata = ?, config = ?, updated_at = ?, ${TOUCH_EXPIRY} WHERE thread_id = ?`,
          ).run(j(meta), j(config), t, Date.now(), input.thread_id);
          return { created: true, run, inflight };
        })
        .immediate();
    },
    async get(runId, threadId) {
      const r = prep("SELECT * FROM refinery_runs WHERE run_id = ?").get(runId) as
        Record<string, unknown> | undefined;
      if (!r || (threadId !== undefined && r.thread_id !== threadId)) return undefined;
      return rowToRun(r);
    },
    async list(threadId, q = {}) {
      const args: unknown[] = [threadId];
      let sql = "SELECT * FROM refinery_runs WHERE thread_id = ?";
      if (q.status) {
        sql += " AND status = ?";
        args.push(q.status);
      }
      sql += " ORDER BY seq DESC LIMIT ? OFFSET ?";
      return (
        prep(sql).all(...args, q.limit ?? 10, q.offset ?? 0) as Record<string, unknown>[]
      ).map(rowToRun);
    },
    async delete(runId, threadId) {
      return (
        prep("DELETE FROM refinery_runs WHERE run_id = ? AND thread_id = ?").run(runId, threadId)
          .changes > 0
      );
    },
    async cancelPending(runId, action) {
      const changes =
        action === "rollback"
          ? prep("DELETE FROM refinery_runs WHERE run_id = ? AND status = 'pending'").run(runId)
              .changes
          : prep(
              "UPDATE refinery_runs SET status = 'interrupted', updated_at = ? WHERE run_id = ? AND status = 'pending'",
            ).run(now(), runId).changes;
      return changes > 0;
    },
    async inflight(threadId) {
      return (inflightStmt.all(threadId) as Record<string, unknown>[]).map(rowToRun);
    },
    async allInflight() {
      return (
        prep(
          "SELECT * FROM refinery_runs WHERE status IN ('pending', 'running') ORDER BY seq",
        ).all() as Record<string, unknown>[]
      ).map(rowToRun);
    },
    async claimNext(lease) {
      return db
        .transaction(() => {
          const r = prep(
            // Unary + keeps the planner on refinery_runs_claim (seq order, no sort of every pending
            // run) and the per-thread check on refinery_runs_thread.
            `SELECT * FROM refinery_runs r WHERE r.status = 'pending' AND +r.not_before <= ?
             AND NOT EXISTS (SELECT 1 FROM refinery_runs x WHERE x.thread_id = r.thread_id AND x.status = 'running')
             AND NOT EXISTS (SELECT 1 FROM refinery_runs y WHERE y.thread_id = r.thread_id AND y.status = 'pending' AND +y.seq < r.seq)
             ORDER BY r.seq LIMIT 1`,
          ).get(now()) as Record<string, unknown> | undefined;
          if (!r) return undefined;
          const t = now();
          prep(
            "UPDATE refinery_runs SET status = 'running', attempt = attempt + 1, updated_at = ?, lease_owner = ?, lease_expires_at = ? WHERE run_id = ?",
          ).run(t, lease?.owner ?? null, lease ? Date.now() + lease.ttlMs : null, r.run_id);
          return {
            ...rowToRun(r),
            status: "running" as const,
            attempt: (r.attempt as number) + 1,
            updated_at: t,
          };
        })
        .immediate();
    },
    async setStatus(runId, status, error = null) {
      const t = now();
      const n = prep(
        "UPDATE refinery_runs SET status = ?, error = ?, updated_at = ? WHERE run_id = ?",
      ).run(status, j(error), t, runId).changes;
      if (!n) return undefined;
      return rowToRun(
        prep("SELECT * FROM refinery_runs WHERE run_id = ?").get(runId) as Record<string, unknown>,
      );
    },
    async requeue(runId, attempt, options = {}) {
      return (
        prep(
          `UPDATE refinery_runs SET status = 'pending', updated_at = ?, lease_owner = NULL, lease_expires_at = NULL,
             lost_to_storage = lost_to_storage + ?
           WHERE run_id = ? AND status = 'running' AND attempt = ?`,
        ).run(now(), options.storageLost ? 1 : 0, runId, attempt).changes > 0
      );
    },
    async finish(runId, status, error, thread, webhook, attempt) {
      return db
        .transaction(() => {
          const fenced = attempt !== undefined;
          const ended = prep(
            `UPDATE refinery_runs SET status = ?, error = ?, updated_at = ? WHERE run_id = ?${
              fenced ? " AND attempt = ? AND status = 'running'" : ""
            }`,
          ).run(status, j(error), now(), runId, ...(fenced ? [attempt] : []));
          if (fenced && ended.changes === 0) return false;
          if (webhook) {
            const t = Date.now();
            prep(
              `INSERT INTO refinery_webhook_outbox (run_id, url, body, next_at, created_at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING`,
            ).run(runId, webhook.url, webhook.body, t, t);
          }
          if (!thread) return true;
          const pending = prep(
            "SELECT 1 FROM refinery_runs WHERE thread_id = ? AND status = 'pending' LIMIT 1",
          ).get(thread.threadId);
          writeSnapshot(
            thread.threadId,
            pending ? { ...thread.snapshot, status: "busy" } : thread.snapshot,
          );
          return true;
        })
        .immediate();
    },
    async setCheckpointBefore(runId, checkpointId) {
      prep(
        "UPDATE refinery_runs SET kwargs = json_set(kwargs, '$.checkpoint_before', json(?)) WHERE run_id = ?",
      ).run(j(checkpointId), runId);
    },
    async renewLeases(owner, runIds, ttlMs) {
      if (runIds.length === 0) return [];
      return db
        .transaction(() => {
          const renew = prep(
            "UPDATE refinery_runs SET lease_expires_at = ? WHERE run_id = ? AND status = 'running' AND lease_owner = ?",
          );
          const until = Date.now() + ttlMs;
          return runIds.filter((id) => renew.run(until, id, owner).changes === 0);
        })
        .immediate();
    },
    async reclaimRunning(options = {}) {
      const { gone, storageLost, exhausted } = options;
      return db
        .transaction(() => {
          const t = Date.now();
          const rows = (
            prep(
              "SELECT * FROM refinery_runs WHERE status = 'running' ORDER BY seq",
            ).all() as Record<string, unknown>[]
          ).filter((r) => {
            const expires = r.lease_expires_at as number | null;
            if (expires !== null && expires <= t) return true;
            return gone?.(rowToRun(r), (r.lease_owner as string | null) ?? null) ?? false;
          });
          const updated = now();
          const back = prep(
            "UPDATE refinery_runs SET status = ?, error = ?, updated_at = ?, lease_owner = NULL, lease_expires_at = NULL, lost_to_storage = ? WHERE run_id = ?",
          );
          return rows.map((r) => {
            const run = rowToRun(r);
            const owner = (r.lease_owner as string | null) ?? null;
            const lost = (run.lost_to_storage ?? 0) + (storageLost?.(run, owner) ? 1 : 0);
            const failed = exhausted !== undefined && run.attempt - lost >= exhausted.attempts;
            const status: RunStatus = failed ? "error" : "pending";
            const error = failed ? exhausted.error : run.error;
            back.run(status, j(error), updated, lost, run.run_id);
            // lost only grows: a run that had losses still has some.
            const losses = lost > 0 ? { lost_to_storage: lost } : {};
            return { ...run, status, error, updated_at: updated, ...losses };
          });
        })
        .immediate();
    },
    async countByStatus() {
      const out: Record<RunStatus, number> = {
        pending: 0,
        running: 0,
        error: 0,
        success: 0,
        timeout: 0,
        interrupted: 0,
      };
      for (const r of prep(
        "SELECT status, COUNT(*) AS n FROM refinery_runs GROUP BY status",
      ).all() as { status: RunStatus; n: number }[]) {
        out[r.status] = r.n;
      }
      return out;
    },
  };

  function cronWhere(
    q: Omit<CronQuery, "limit" | "offset" | "sort_by" | "sort_order">,
    args: unknown[],
  ) {
    const conds: string[] = [];
    if (q.assistant_id) {
      conds.push("assistant_id = ?");
      args.push(q.assistant_id);
    }
    if (q.thread_id) {
      conds.push("thread_id = ?");
      args.push(q.thread_id);
    }
    if (q.enabled !== undefined) {
      conds.push("enabled = ?");
      args.push(q.enabled ? 1 : 0);
    }
    conds.push(...containment("metadata", q.metadata, args));
    conds.push(...accessSql("metadata", q, args));
    return conds.length ? `WHERE ${conds.join(" AND ")}` : "";
  }

  const cronById = (id: string) =>
    prep("SELECT * FROM refinery_crons WHERE cron_id = ?").get(id) as
      Record<string, unknown> | undefined;

  const crons: CronStore = {
    async create(input, options = {}) {
      return db
        .transaction(() => {
          if (options.partitionLimit !== undefined) {
            const { n } = prep("SELECT COUNT(*) AS n FROM refinery_crons WHERE partition = ?").get(
              input.owner.partition,
            ) as { n: number };
            if (n >= options.partitionLimit) return undefined;
          }
          if (cronById(input.cron_id)) {
            throw new RefineryError("conflict", `cron ${input.cron_id} already exists`, {
              field: "cron_id",
            });
          }
          const t = now();
          prep(
            `INSERT INTO refinery_crons (cron_id, assistant_id, thread_id, on_run_completed, end_time, schedule, timezone, created_at, updated_at, payload, user_id, next_run_date, metadata, enabled, owner, partition)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(
            input.cron_id,
            input.assistant_id,
            input.thread_id,
            input.on_run_completed,
            input.end_time,
            input.schedule,
            input.timezone,
            t,
            t,
            j(input.payload),
            input.user_id,
            input.next_run_date,
            j(input.metadata),
            input.enabled ? 1 : 0,
            j(input.owner),
            input.owner.partition,
          );
          return rowToCron(cronById(input.cron_id)!);
        })
        .immediate();
    },
    async get(id, access) {
      const r = cronById(id);
      const c = r ? rowToCron(r) : undefined;
      return c && reaches(c.metadata, access) ? c : undefined;
    },
    async update(id, patch, access) {
      return db
        .transaction(() => {
          const r = cronById(id);
          if (!r) return undefined;
          const cur = rowToCron(r);
          if (!reaches(cur.metadata, access)) return undefined;
          const next: Cron = {
            ...cur,
            ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)),
            metadata: patch.metadata ? { ...cur.metadata, ...patch.metadata } : cur.metadata,
            updated_at: now(),
          };
          prep(
            `UPDATE refinery_crons SET schedule = ?, timezone = ?, end_time = ?, payload = ?, metadata = ?, enabled = ?, on_run_completed = ?, next_run_date = ?, updated_at = ? WHERE cron_id = ?`,
          ).run(
            next.schedule,
            next.timezone,
            next.end_time,
            j(next.payload),
            j(next.metadata),
            next.enabled ? 1 : 0,
            next.on_run_completed,
            next.next_run_date,
            next.updated_at,
            id,
          );
          return next;
        })
        .immediate();
    },
    async delete(id, access) {
      return db
        .transaction(() => {
          const r = cronById(id);
          if (!r || !reaches(p(r.metadata, {}), access)) return false;
          prep("DELETE FROM refinery_cron_fires WHERE cron_id = ?").run(id);
          return prep("DELETE FROM refinery_crons WHERE cron_id = ?").run(id).changes > 0;
        })
        .immediate();
    },
    async search(q) {
      const args: unknown[] = [];
      const where = cronWhere(q, args);
      const sql = `SELECT * FROM refinery_crons ${where} ${page(q.sort_by, CRON_SORT, q.sort_order, "created_at")}, cron_id LIMIT ? OFFSET ?`;
      return (
        prep(sql).all(...args, q.limit ?? 10, q.offset ?? 0) as Record<string, unknown>[]
      ).map(rowToCron);
    },
    async count(q) {
      const args: unknown[] = [];
      const where = cronWhere(q, args);
      return (
        prep(`SELECT COUNT(*) AS n FROM refinery_crons ${where}`).get(...args) as { n: number }
      ).n;
    },
    async claimDue(at, limit, nextOf) {
      return db
        .transaction((): DueCron[] => {
          const rows = prep(
            `SELECT * FROM refinery_crons WHERE enabled = 1 AND next_run_date IS NOT NULL AND next_run_date <= ?
             ORDER BY next_run_date, cron_id LIMIT ?`,
          ).all(at, limit) as Record<string, unknown>[];
          const claimed: DueCron[] = [];
          const t = now();
          for (const r of rows) {
            const cron = rowToCron(r);
            const fireAt = cron.next_run_date!;
            let next: string | null;
            try {
              next = nextOf(cron);
            } catch {
              next = null; // a schedule that cannot be computed any more fires no more
            }
            // Both in this transaction: the unique (cron, fire time) row, and next_run_date moved
            // on only from the value read. Either one failing means another process claimed it.
            const fired = prep(
              "INSERT OR IGNORE INTO refinery_cron_fires (cron_id, fire_at, claimed_at) VALUES (?, ?, ?)",
            ).run(cron.cron_id, fireAt, t).changes;
            if (fired !== 1) continue;
            const moved = prep(
              "UPDATE refinery_crons SET next_run_date = ? WHERE cron_id = ? AND next_run_date = ?",
            ).run(next, cron.cron_id, fireAt).changes;
            if (moved !== 1) throw new Error(`cron ${cron.cron_id} moved during its claim`);
            prep(
              `DELETE FROM refinery_cron_fires WHERE cron_id = ? AND fire_at <
               (SELECT fire_at FROM refinery_cron_fires WHERE cron_id = ? ORDER BY fire_at DESC LIMIT 1 OFFSET ?)`,
            ).run(cron.cron_id, cron.cron_id, CRON_FIRES_KEPT - 1);
            claimed.push({
              ...cron,
              next_run_date: next,
              owner: p(r.owner, { scopes: [], partition: "" }),
              fire_at: fireAt,
            });
          }
          return claimed;
        })
        .immediate();
    },
    async recordFiring(cronId, fireAt, outcome) {
      prep(
        "UPDATE refinery_cron_fires SET run_id = ?, error = ? WHERE cron_id = ? AND fire_at = ?",
      ).run(outcome.run_id ?? null, outcome.error ?? null, cronId, fireAt);
    },
  };

  const duties: DutyLeaseStore = {
    async acquire(name, owner, ttlMs) {
      const t = Date.now();
      return (
        prep(
          `INSERT INTO refinery_duty_leases (name, owner, expires_at) VALUES (?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
           WHERE refinery_duty_leases.owner = excluded.owner OR refinery_duty_leases.expires_at <= ?`,
        ).run(name, owner, t + ttlMs, t).changes > 0
      );
    },
    async release(name, owner) {
      prep("DELETE FROM refinery_duty_leases WHERE name = ? AND owner = ?").run(name, owner);
    },
    async holders(names) {
      if (names.length === 0) return new Map();
      const rows = prep(
        `SELECT name, owner FROM refinery_duty_leases
         WHERE name IN (SELECT value FROM json_each(?)) AND expires_at > ?`,
      ).all(JSON.stringify(names), Date.now()) as { name: string; owner: string }[];
      return new Map(rows.map((r) => [r.name, r.owner]));
    },
    async sweep(prefix, graceMs) {
      // substr, not LIKE: a prefix is matched as written (no wildcards, case kept).
      return prep(
        `DELETE FROM refinery_duty_leases
         WHERE substr(name, 1, length(?)) = ? AND expires_at <= ?`,
      ).run(prefix, prefix, Date.now() - graceMs).changes;
    },
  };

  const webhooks: WebhookOutboxStore = {
    async due(limit) {
      return prep(
        `SELECT run_id, url, body, attempts FROM refinery_webhook_outbox
         WHERE next_at <= ? ORDER BY next_at, created_at LIMIT ?`,
      ).all(Date.now(), limit) as WebhookDelivery[];
    },
    async settle(runId) {
      prep("DELETE FROM refinery_webhook_outbox WHERE run_id = ?").run(runId);
    },
    async retry(runId, delayMs, error) {
      prep(
        `UPDATE refinery_webhook_outbox SET attempts = attempts + 1, next_at = ?, last_error = ?
         WHERE run_id = ?`,
      ).run(Date.now() + delayMs, error, runId);
    },
    async count() {
      return (prep("SELECT COUNT(*) AS n FROM refinery_webhook_outbox").get() as { n: number }).n;
    },
  };

  return { assistants, threads, runs, crons, duties, webhooks, close: async () => {} };
}
