// Postgres implementation of the storage contracts (core/storage/types.ts), with the semantics of
// the SQLite one (core/storage/sqlite/storage.ts); both run test/storage/conformance.ts. Differences come
// from Postgres being shared by several processes, and are what make that safe:
// - Every multi-statement method is one transaction. Writers that touch a thread lock its row
//   first (SELECT … FOR UPDATE), so a run's creation, the end of a run and a thread's deletion
//   serialize per thread, and runs get their enqueue number (`seq`) in that order.
// - claimNext is one statement: the oldest due pending run whose thread has no running run and no
//   earlier pending run, locked with FOR UPDATE SKIP LOCKED, so concurrent claimers (any number of
//   pools and processes) never take one run twice; a partial unique index backs the rule of at
//   most one running run per thread.
// - The per-partition caps (runs, crons) count under a transaction-scoped advisory lock.
// - claimDue locks due crons with FOR UPDATE SKIP LOCKED; the unique (cron, fire time) row and
//   the compare-and-set of next_run_date make each firing claimed once across processes.
// - Due times (`not_before`) compare with the database's clock, the one clock all processes share.
// Timestamps are TIMESTAMPTZ written from JavaScript time and returned as ISO strings
// (`toISOString()`), as SQLite returns them. JSON lives in JSONB: keys come back in JSONB's order,
// and a NUL character (\u0000) cannot be stored (refused as invalid_input). A thread's values and
// a run's kwargs are packed (core/packing.ts packJson, migration 10) when packing is on: a thread
// search that filters on values matches the packed rows in the process (searchPackedAware).
import { createHash } from "node:crypto";
import pg from "pg";
import { inTransaction, openPostgresPool } from "./pool.ts";
import { RefineryError } from "../../errors.ts";
import { looksLikeConnectionFailure } from "../transient.ts";
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
import { jsonText, packJson } from "../../packing.ts";
import { accessSql, containmentSql, containsJson, type Bind } from "./filters.ts";
import { checkSchemaName, migrate, type MigrationResult } from "./migrations.ts";

export interface PostgresStorageOptions {
  /** A connection string (the storage owns the pool), or an existing pool (`close` leaves it). */
  connection: string | pg.Pool;
  /** Schema holding the tables, created and migrated at open. Default "public". */
  schema?: string;
  /** Pool size when `connection` is a string (default 10). */
  max?: number;
  /**
   * Write thread values and run kwargs packed (default true). Off during a rolling upgrade from a
   * version that cannot read them (REFINERY_PACK_CHECKPOINTS); packed rows are always read.
   */
  pack?: boolean;
  /**
   * Documents shorter than this (JSON characters) stay JSONB (default 256, packJson's). Tests set
   * 0 to run the conformance suite with every document packed that packing shrinks.
   */
  packMinLength?: number;
}

export interface PostgresStorage extends Storage {
  readonly pool: pg.Pool;
  readonly schema: string;
  /** What the migrations did at open. */
  readonly migrations: MigrationResult;
}

type Row = Record<string, unknown>;
type Client = pg.Pool | pg.PoolClient;

const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : String(v));

const TEXT_COLUMNS = new Set([
  "assistant_id",
  "graph_id",
  "name",
  "thread_id",
  "status",
  "cron_id",
  "next_run_date",
]);

/** Firings kept per cron (the newest), as the SQLite storage keeps them. */
const CRON_FIRES_KEPT = 100;

// Advisory lock classes for a partition's run and cron caps (second key: hash of schema and
// partition).
const PARTITION_LOCK = 0x52465054; // "RFPT"
const CRON_PARTITION_LOCK = 0x52464350; // "RFCP"
const RETRIES = 3;

function page(
  sortBy: string | undefined,
  allowed: ReadonlySet<string>,
  order: string | undefined,
  fallback: string,
) {
  const column = sortBy && allowed.has(sortBy) ? sortBy : fallback;
  // Byte order for text, as SQLite's default collation sorts; NULL sorts lowest, as in SQLite.
  const key = TEXT_COLUMNS.has(column) ? `${column} COLLATE "C"` : column;
  return `ORDER BY ${key} ${order === "asc" ? "ASC NULLS FIRST" : "DESC NULLS LAST"}`;
}

function rowToAssistant(r: Row): Assistant {
  return {
    assistant_id: r.assistant_id as string,
    graph_id: r.graph_id as string,
    config: (r.config as Assistant["config"]) ?? {},
    context: (r.context as Assistant["context"]) ?? {},
    metadata: (r.metadata as Assistant["metadata"]) ?? {},
    name: r.name as string,
    description: (r.description as string | null) ?? null,
    version: r.version as number,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at ?? r.created_at),
  };
}

/** A JSON document as stored: JSONB text, or packed bytes (then the JSONB column is NULL). */
interface Stored {
  json: string | null;
  packed: Buffer | null;
}

/**
 * A column pair's document: the JSONB value when it is not null, else the packed bytes. This
 * version writes one of the two; a process of an earlier version writes the JSONB column only,
 * and what it wrote last is what a reader must see.
 */
function unpacked(json: unknown, packed: unknown): unknown {
  if (json !== null && json !== undefined) return json;
  return packed instanceof Uint8Array ? JSON.parse(jsonText(packed)!) : json;
}

/** A bytea literal for `batch`'s inlined statements. */
function byteaLit(b: Buffer | null): string {
  return b === null ? "NULL" : `'\\x${b.toString("hex")}'::bytea`;
}

function rowToThread(r: Row): Thread {
  return {
    thread_id: r.thread_id as string,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    metadata: (r.metadata as Thread["metadata"]) ?? {},
    status: r.status as Thread["status"],
    values: (unpacked(r.values, r.values_packed) as Thread["values"]) ?? null,
    interrupts: (r.interrupts as Thread["interrupts"]) ?? {},
    config: (r.config as Thread["config"]) ?? {},
    error: (r.error as Thread["error"]) ?? null,
  };
}

function rowToRun(r: Row): Run {
  const kwargs = unpacked(r.kwargs, r.kwargs_packed) as Run["kwargs"] | null;
  // checkpoint_before has its own column (its JSON text) since migration 10; NULL: not set there.
  const before = typeof r.checkpoint_before === "string" ? r.checkpoint_before : undefined;
  return {
    run_id: r.run_id as string,
    thread_id: r.thread_id as string,
    assistant_id: r.assistant_id as string,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    status: r.status as RunStatus,
    metadata: (r.metadata as Run["metadata"]) ?? {},
    multitask_strategy: r.multitask_strategy as Run["multitask_strategy"],
    kwargs: kwargs
      ? before
        ? { ...kwargs, checkpoint_before: JSON.parse(before) as string | null }
        : kwargs
      : { config: { configurable: {} }, stream_mode: ["values"] },
    attempt: r.attempt as number,
    error: (r.error as Run["error"]) ?? null,
    ...(Number(r.lost_to_storage) > 0 ? { lost_to_storage: Number(r.lost_to_storage) } : {}),
  };
}

function rowToCron(r: Row): Cron {
  return {
    cron_id: r.cron_id as string,
    assistant_id: r.assistant_id as string,
    thread_id: (r.thread_id as string | null) ?? null,
    on_run_completed: (r.on_run_completed as Cron["on_run_completed"]) ?? null,
    end_time: (r.end_time as string | null) ?? null,
    schedule: r.schedule as string,
    timezone: (r.timezone as string | null) ?? null,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    payload: (r.payload as Cron["payload"]) ?? {},
    user_id: (r.user_id as string | null) ?? null,
    next_run_date: (r.next_run_date as string | null) ?? null,
    metadata: (r.metadata as Cron["metadata"]) ?? {},
    enabled: r.enabled === true,
  };
}

/** Postgres errors as RefineryErrors (RefineryErrors pass through). */
function storageError(err: unknown): Error {
  if (err instanceof RefineryError) return err;
  const e = err as { code?: string; constraint?: string; message?: string };
  if (e.code === "22P05" || e.code === "22021") {
    return new RefineryError("invalid_input", "Postgres cannot store NUL characters (\\u0000)", {
      fix: "remove NUL characters from the metadata, values and inputs",
      cause: err,
    });
  }
  if (e.code === "23505" && e.constraint === "refinery_runs_pkey") {
    return new RefineryError("conflict", "a run with this run_id already exists", {
      field: "run_id",
      fix: "use another run_id",
      cause: err,
    });
  }
  if (e.code === "23505" && e.constraint === "refinery_runs_one_running") {
    return new RefineryError("conflict", "the thread already has a running run", {
      field: "thread_id",
      fix: "wait for the thread's running run to end",
      cause: err,
    });
  }
  const code = e.code ?? "";
  // No SQLSTATE (pg's "Connection terminated"), connection exceptions (08), the server shutting
  // down or starting (57P), serialization failures and deadlocks, and the socket's own errors.
  const transient =
    code === "" || code === "40001" || code === "40P01" || looksLikeConnectionFailure(err);
  return new RefineryError("storage_error", `Postgres storage: ${e.message ?? String(err)}`, {
    fix: "check that Postgres is reachable and the schema is migrated",
    retryable: transient,
    cause: err,
  });
}

/** `$n` placeholders for dynamic SQL. */
function binder(values: unknown[]): Bind {
  return (v) => `$${values.push(v)}`;
}

/** Opens (and migrates) the Postgres storage. */
export async function openPostgresStorage(
  options: PostgresStorageOptions,
): Promise<PostgresStorage> {
  const schema = options.schema ?? "public";
  checkSchemaName(schema);
  const owned = typeof options.connection === "string";
  const pool =
    typeof options.connection === "string"
      ? openPostgresPool(options.connection, options.max ?? 10)
      : options.connection;
  let migrations: MigrationResult;
  try {
    migrations = await migrate(pool, schema);
  } catch (err) {
    if (owned) await pool.end().catch(() => {});
    throw err instanceof RefineryError ? err : openError(err, options.connection, schema);
  }
  return createPostgresStorage(pool, schema, {
    migrations,
    owned,
    pack: options.pack,
    packMinLength: options.packMinLength,
  });
}

function openError(err: unknown, connection: string | pg.Pool, schema: string): RefineryError {
  const where = typeof connection === "string" ? describeUrl(connection) : "the given pool";
  const code = (err as { code?: string }).code ?? "";
  const detail = (err as Error).message;
  const reach = ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH"];
  if (reach.includes(code) || /timeout/i.test(detail)) {
    return new RefineryError(
      "storage_error",
      `cannot reach Postgres at ${where} (${code || detail})`,
      {
        fix: "start Postgres, or correct the host and port of the database URL",
        retryable: true,
        cause: err,
      },
    );
  }
  if (code === "42501") {
    return new RefineryError(
      "storage_error",
      `no permission to create or migrate schema "${schema}" at ${where} (${detail})`,
      {
        fix: "grant CREATE on the database or schema to this user, or choose another schema",
        cause: err,
      },
    );
  }
  return new RefineryError(
    "storage_error",
    `cannot open the Postgres storage at ${where} (${detail})`,
    {
      fix: "check the database URL and that Postgres is up",
      retryable: code === "" || code.startsWith("08") || code.startsWith("57P"),
      cause: err,
    },
  );
}

/** host:port/database of a Postgres URL, never its credentials. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || u.searchParams.get("host") || "localhost"}:${u.port || "5432"}${u.pathname || "/"}`;
  } catch {
    return "the database URL (not a valid URL)";
  }
}

/**
 * The storage on an already migrated schema (openPostgresStorage migrates, then calls this).
 * `owned`: `close` ends the pool.
 */
export function createPostgresStorage(
  pool: pg.Pool,
  schema: string,
  opts: {
    migrations?: MigrationResult;
    owned?: boolean;
    pack?: boolean;
    packMinLength?: number;
  } = {},
): PostgresStorage {
  const pack = opts.pack ?? true;
  /** A document as it is written: packed when packing is on and it pays (packJson). */
  const stored = (value: unknown): Stored => {
    if (!pack) return { json: j(value), packed: null };
    const p = packJson(value, opts.packMinLength);
    return typeof p === "string" ? { json: p, packed: null } : { json: null, packed: p };
  };
  checkSchemaName(schema);
  const S = `"${schema}"`;
  const A = `${S}.refinery_assistants`;
  const AV = `${S}.refinery_assistant_versions`;
  const T = `${S}.refinery_threads`;
  const R = `${S}.refinery_runs`;
  const C = `${S}.refinery_crons`;
  const CF = `${S}.refinery_cron_fires`;
  const D = `${S}.refinery_duty_leases`;
  const W = `${S}.refinery_webhook_outbox`;
  // Prepared-statement names are per connection and cut at 63 bytes: short and unique per schema.
  const prefix = `rf_${createHash("sha1").update(schema).digest("hex").slice(0, 10)}`;

  /** A named (prepared) statement: the same text is parsed once per connection. */
  async function q(c: Client, name: string, text: string, values: unknown[] = []): Promise<Row[]> {
    try {
      return (await c.query<Row>({ name: `${prefix}_${name}`, text, values })).rows;
    } catch (err) {
      throw storageError(err);
    }
  }

  /** Dynamic SQL (searches with filters): not prepared. */
  async function dq(c: Client, text: string, values: unknown[]): Promise<Row[]> {
    try {
      return (await c.query<Row>(text, values)).rows;
    } catch (err) {
      throw storageError(err);
    }
  }

  /** Runs `work` in one transaction; retried on a deadlock or serialization failure. */
  async function tx<T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await inTransaction(pool, work);
      } catch (err) {
        const code = ((err as RefineryError).cause as { code?: string } | undefined)?.code;
        const raw = (err as { code?: string }).code;
        const retry = [code, raw].some((c) => c === "40P01" || c === "40001");
        if (retry && attempt < RETRIES) continue;
        throw storageError(err);
      }
    }
  }

  /** A value as an SQL literal, for `batch`: numbers as they are, strings escaped by pg. */
  function lit(v: string | number | null): string {
    if (v === null) return "NULL";
    if (typeof v === "number") {
      if (!Number.isFinite(v))
        throw new RefineryError("invalid_input", `not a finite number: ${v}`);
      return String(v);
    }
    return pg.escapeLiteral(v);
  }

  /**
   * Several statements in one round trip (one simple-protocol query): Postgres runs them as one
   * implicit transaction, all or nothing, and under READ COMMITTED each statement takes a fresh
   * snapshot, so a statement after a `FOR UPDATE` sees every row committed before the lock was
   * granted, exactly as the same statements sent one by one inside BEGIN … COMMIT. Values are
   * inlined with `lit` (simple queries take no parameters). Retried on a deadlock or
   * serialization failure, as `tx`. Returns each statement's rows.
   */
  async function batch(statements: string[]): Promise<Row[][]> {
    for (let attempt = 1; ; attempt++) {
      try {
        const out = (await pool.query(statements.join(";\n"))) as unknown as
          pg.QueryResult<Row> | pg.QueryResult<Row>[];
        return (Array.isArray(out) ? out : [out]).map((r) => r.rows);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if ((code === "40P01" || code === "40001") && attempt < RETRIES) continue;
        throw storageError(err);
      }
    }
  }

  const assistantCols = (a: Assistant) => [
    a.assistant_id,
    a.graph_id,
    j(a.config),
    j(a.context),
    j(a.metadata),
    a.name,
    a.description,
    a.version,
  ];

  async function insertVersion(c: Client, a: Assistant): Promise<void> {
    await q(
      c,
      "asst_version_insert",
      `INSERT INTO ${AV} (assistant_id, graph_id, config, context, metadata, name, description, version, created_at)
       VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6, $7, $8, $9)`,
      [...assistantCols(a), a.updated_at],
    );
  }

  async function writeAssistant(c: Client, a: Assistant): Promise<void> {
    await q(
      c,
      "asst_write",
      `UPDATE ${A} SET graph_id = $2, config = $3::jsonb, context = $4::jsonb, metadata = $5::jsonb,
         name = $6, description = $7, version = $8, created_at = $9, updated_at = $10
       WHERE assistant_id = $1`,
      [...assistantCols(a), a.created_at, a.updated_at],
    );
  }

  const assistants: AssistantStore = {
    async create(input: NewAssistant, ifExists = "raise") {
      return tx(async (c) => {
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
        // ON CONFLICT waits for a concurrent creator of the same id, then sees its row.
        const inserted = await q(
          c,
          "asst_insert",
          `INSERT INTO ${A} (assistant_id, graph_id, config, context, metadata, name, description, version, created_at, updated_at)
           VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10)
           ON CONFLICT (assistant_id) DO NOTHING RETURNING assistant_id`,
          [...assistantCols(a), t, t],
        );
        if (inserted.length === 0) {
          const [existing] = await q(c, "asst_get", `SELECT * FROM ${A} WHERE assistant_id = $1`, [
            input.assistant_id,
          ]);
          if (existing && ifExists === "do_nothing") return rowToAssistant(existing);
          throw new RefineryError("conflict", `assistant ${input.assistant_id} already exists`, {
            field: "assistant_id",
            fix: 'use another assistant_id, or if_exists: "do_nothing"',
          });
        }
        await insertVersion(c, a);
        return a;
      });
    },
    async get(id, access) {
      const [r] = await q(pool, "asst_get", `SELECT * FROM ${A} WHERE assistant_id = $1`, [id]);
      const a = r ? rowToAssistant(r) : undefined;
      return a && reaches(a.metadata, access) ? a : undefined;
    },
    async update(id, patch: AssistantPatch, access) {
      return tx(async (c) => {
        const [r] = await q(
          c,
          "asst_lock",
          `SELECT * FROM ${A} WHERE assistant_id = $1 FOR UPDATE`,
          [id],
        );
        if (!r) return undefined;
        const cur = rowToAssistant(r);
        if (!reaches(cur.metadata, access)) return undefined;
        const [{ v }] = (await q(
          c,
          "asst_max_version",
          `SELECT MAX(version) AS v FROM ${AV} WHERE assistant_id = $1`,
          [id],
        )) as [{ v: number | null }];
        const next: Assistant = {
          ...cur,
          graph_id: patch.graph_id ?? cur.graph_id,
          config: patch.config ?? cur.config,
          context: patch.context ?? cur.context,
          metadata: patch.metadata ? { ...cur.metadata, ...patch.metadata } : cur.metadata,
          name: patch.name ?? cur.name,
          description: patch.description !== undefined ? patch.description : cur.description,
          version: (v ?? cur.version) + 1,
          updated_at: now(),
        };
        await writeAssistant(c, next);
        await insertVersion(c, next);
        return next;
      });
    },
    async delete(id, access) {
      return tx(async (c) => {
        const [r] = await q(
          c,
          "asst_lock",
          `SELECT * FROM ${A} WHERE assistant_id = $1 FOR UPDATE`,
          [id],
        );
        if (!r || !reaches((r.metadata as Record<string, unknown>) ?? {}, access)) return false;
        await q(c, "asst_delete", `DELETE FROM ${A} WHERE assistant_id = $1`, [id]);
        await q(c, "asst_versions_delete", `DELETE FROM ${AV} WHERE assistant_id = $1`, [id]);
        return true;
      });
    },
    async search(query: AssistantQuery) {
      const values: unknown[] = [];
      const bind = binder(values);
      const where = assistantWhere(query, bind);
      const order = page(query.sort_by, ASSISTANT_SORT, query.sort_order, "created_at");
      const rows = await dq(
        pool,
        `SELECT * FROM ${A} ${where} ${order} LIMIT ${bind(query.limit ?? 10)} OFFSET ${bind(query.offset ?? 0)}`,
        values,
      );
      return rows.map(rowToAssistant);
    },
    async count(query) {
      const values: unknown[] = [];
      const where = assistantWhere(query, binder(values));
      const [r] = await dq(pool, `SELECT COUNT(*)::int AS n FROM ${A} ${where}`, values);
      return r!.n as number;
    },
    async versions(id, query = {}) {
      const values: unknown[] = [];
      const bind = binder(values);
      const conds = [
        `assistant_id = ${bind(id)}`,
        ...containmentSql("metadata", query.metadata, bind),
        ...accessSql("metadata", query, bind),
      ];
      const rows = await dq(
        pool,
        `SELECT * FROM ${AV} WHERE ${conds.join(" AND ")} ORDER BY version DESC
         LIMIT ${bind(query.limit ?? 10)} OFFSET ${bind(query.offset ?? 0)}`,
        values,
      );
      return rows.map(rowToAssistant);
    },
    async setLatest(id, version, access) {
      return tx(async (c) => {
        const [cur] = await q(
          c,
          "asst_lock",
          `SELECT * FROM ${A} WHERE assistant_id = $1 FOR UPDATE`,
          [id],
        );
        if (!cur || !reaches((cur.metadata as Record<string, unknown>) ?? {}, access)) {
          return undefined;
        }
        const [v] = await q(
          c,
          "asst_version_get",
          `SELECT * FROM ${AV} WHERE assistant_id = $1 AND version = $2`,
          [id, version],
        );
        if (!v) return undefined;
        const a: Assistant = {
          ...rowToAssistant(v),
          created_at: iso(cur.created_at),
          updated_at: now(),
        };
        await writeAssistant(c, a);
        return a;
      });
    },
  };

  function assistantWhere(
    query: Omit<AssistantQuery, "limit" | "offset" | "sort_by" | "sort_order">,
    bind: Bind,
  ): string {
    const conds: string[] = [];
    if (query.graph_id) conds.push(`graph_id = ${bind(query.graph_id)}`);
    if (query.name) {
      // Case-insensitive, as SQLite's LIKE; % and _ are literal.
      conds.push(
        `name ILIKE ${bind(`%${query.name.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`)} ESCAPE '\\'`,
      );
    }
    conds.push(...containmentSql("metadata", query.metadata, bind));
    conds.push(...accessSql("metadata", query, bind));
    return conds.length ? `WHERE ${conds.join(" AND ")}` : "";
  }

  /** Moves a thread's expiry to `nowMs` plus its TTL, if it has one (`$n` is epoch ms). */
  const touchExpiry = (param: string) =>
    `expires_at = CASE WHEN ttl_ms IS NULL THEN NULL ELSE ${param}::bigint + ttl_ms END`;

  async function writeSnapshot(c: Client, id: string, s: ThreadSnapshot): Promise<void> {
    const v = stored(s.values);
    await q(
      c,
      "thread_snapshot",
      `UPDATE ${T} SET status = $2, "values" = $3::jsonb, values_packed = $8, interrupts = $4::jsonb,
         error = $5::jsonb, updated_at = $6, ${touchExpiry("$7")} WHERE thread_id = $1`,
      [id, s.status, v.json, j(s.interrupts), j(s.error ?? null), now(), Date.now(), v.packed],
    );
  }

  const threads: ThreadStore = {
    async create(input, ifExists = "raise") {
      // No transaction: one INSERT … ON CONFLICT DO NOTHING, and a read only when it existed.
      const c = pool;
      {
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
        const ttl = input.ttl_ms ? input.ttl_ms : null;
        const inserted = await q(
          c,
          "thread_insert",
          `INSERT INTO ${T} (thread_id, created_at, updated_at, metadata, status, "values", interrupts, config, error, ttl_ms, expires_at)
           VALUES ($1, $2, $2, $3::jsonb, 'idle', 'null'::jsonb, '{}'::jsonb, '{}'::jsonb, 'null'::jsonb, $4::bigint, $5::bigint)
           ON CONFLICT (thread_id) DO NOTHING RETURNING thread_id`,
          [thread.thread_id, t, j(thread.metadata), ttl, ttl === null ? null : Date.now() + ttl],
        );
        if (inserted.length === 0) {
          const [existing] = await q(c, "thread_get", `SELECT * FROM ${T} WHERE thread_id = $1`, [
            input.thread_id,
          ]);
          if (existing && ifExists === "do_nothing") return rowToThread(existing);
          throw new RefineryError("conflict", `thread ${input.thread_id} already exists`, {
            field: "thread_id",
            fix: 'use another thread_id, or if_exists: "do_nothing"',
          });
        }
        return thread;
      }
    },
    async get(id, access) {
      const [r] = await q(pool, "thread_get", `SELECT * FROM ${T} WHERE thread_id = $1`, [id]);
      const t = r ? rowToThread(r) : undefined;
      return t && reaches(t.metadata, access) ? t : undefined;
    },
    async update(id, patch, access) {
      return tx(async (c) => {
        const [r] = await q(
          c,
          "thread_lock",
          `SELECT * FROM ${T} WHERE thread_id = $1 FOR UPDATE`,
          [id],
        );
        if (!r) return undefined;
        const t = rowToThread(r);
        if (!reaches(t.metadata, access)) return undefined;
        const metadata = { ...t.metadata, ...(patch.metadata ?? {}) };
        const updated = now();
        if (patch.ttl_ms !== undefined) {
          await q(c, "thread_ttl", `UPDATE ${T} SET ttl_ms = $2::bigint WHERE thread_id = $1`, [
            id,
            patch.ttl_ms,
          ]);
        }
        await q(
          c,
          "thread_update",
          `UPDATE ${T} SET metadata = $2::jsonb, updated_at = $3, ${touchExpiry("$4")} WHERE thread_id = $1`,
          [id, j(metadata), updated, Date.now()],
        );
        return { ...t, metadata, updated_at: updated };
      });
    },
    async delete(id, access) {
      return tx(async (c) => {
        const [r] = await q(
          c,
          "thread_lock",
          `SELECT * FROM ${T} WHERE thread_id = $1 FOR UPDATE`,
          [id],
        );
        if (!r || !reaches((r.metadata as Record<string, unknown>) ?? {}, access)) return false;
        await q(c, "thread_delete", `DELETE FROM ${T} WHERE thread_id = $1`, [id]);
        await q(c, "thread_runs_delete", `DELETE FROM ${R} WHERE thread_id = $1`, [id]);
        // A thread's crons have nothing left to run on.
        await q(
          c,
          "thread_cron_fires_delete",
          `DELETE FROM ${CF} WHERE cron_id IN (SELECT cron_id FROM ${C} WHERE thread_id = $1)`,
          [id],
        );
        await q(c, "thread_crons_delete", `DELETE FROM ${C} WHERE thread_id = $1`, [id]);
        return true;
      });
    },
    async search(query: ThreadQuery) {
      if (filtersValues(query)) return searchPackedAware(query);
      const values: unknown[] = [];
      const bind = binder(values);
      const where = threadWhere(query, bind);
      const order = page(query.sort_by, THREAD_SORT, query.sort_order, "created_at");
      const rows = await dq(
        pool,
        `SELECT * FROM ${T} ${where} ${order} LIMIT ${bind(query.limit ?? 10)} OFFSET ${bind(query.offset ?? 0)}`,
        values,
      );
      return rows.map(rowToThread);
    },
    async count(query) {
      if (filtersValues(query)) return countPackedAware(query);
      const values: unknown[] = [];
      const where = threadWhere(query, binder(values));
      const [r] = await dq(pool, `SELECT COUNT(*)::int AS n FROM ${T} ${where}`, values);
      return r!.n as number;
    },
    async setSnapshot(id, s: ThreadSnapshot) {
      await writeSnapshot(pool, id, s);
    },
    async expired(nowMs, limit) {
      // A thread with a run pending or running is left for a later sweep: its run touches it.
      const rows = await q(
        pool,
        "thread_expired",
        `SELECT thread_id FROM ${T} t WHERE expires_at IS NOT NULL AND expires_at <= $1::bigint
           AND NOT EXISTS (SELECT 1 FROM ${R} r WHERE r.thread_id = t.thread_id AND r.status IN ('pending', 'running'))
         ORDER BY expires_at LIMIT $2`,
        [nowMs, limit],
      );
      return rows.map((r) => r.thread_id as string);
    },
  };

  /** A row whose values are its packed bytes (see unpacked). */
  const PACKED_VALUES = `("values" IS NULL AND values_packed IS NOT NULL)`;

  const filtersValues = (q: { values?: Record<string, unknown> }) =>
    q.values !== undefined && Object.keys(q.values).length > 0;

  /**
   * The conditions of a thread search that filters on values: the rest of the query, and the
   * values filter for rows whose values are JSONB; rows with packed values pass, for the caller
   * to match in the process (containsJson, the same semantics).
   */
  function packedAwareWhere(
    query: Omit<ThreadQuery, "limit" | "offset" | "sort_by" | "sort_order">,
    bind: Bind,
  ): string {
    const rest = threadWhere({ ...query, values: undefined }, bind);
    const inSql = containmentSql('"values"', query.values, bind).join(" AND ");
    const cond = `(${PACKED_VALUES} OR (${inSql}))`;
    return rest ? `${rest} AND ${cond}` : `WHERE ${cond}`;
  }

  /** Work on one connection in a read-only REPEATABLE READ transaction: one snapshot throughout. */
  const inSnapshot = <R>(work: (c: pg.PoolClient) => Promise<R>) =>
    inTransaction(pool, async (c) => {
      await c.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
      return work(c);
    }).catch((err: unknown) => {
      throw storageError(err);
    });

  /** Rows a packed-aware search or count reads at once. */
  const SEARCH_PAGE = 500;

  /**
   * A thread search with a values filter: the sorted rows (ties broken by thread_id) are read
   * through a cursor, a page at a time, in one snapshot; packed values are matched here, until
   * offset + limit threads have matched or the rows run out. One sort, however deep the page.
   */
  async function searchPackedAware(query: ThreadQuery): Promise<Thread[]> {
    const limit = query.limit ?? 10;
    const offset = query.offset ?? 0;
    if (limit <= 0) return [];
    const values: unknown[] = [];
    const where = packedAwareWhere(query, binder(values));
    const order = `${page(query.sort_by, THREAD_SORT, query.sort_order, "created_at")}, thread_id COLLATE "C"`;
    const filter = query.values!;
    return inSnapshot(async (c) => {
      await c.query(
        `DECLARE refinery_search NO SCROLL CURSOR FOR SELECT * FROM ${T} ${where} ${order}`,
        values,
      );
      const out: Thread[] = [];
      let matched = 0;
      for (;;) {
        const { rows } = await c.query<Row>(`FETCH ${SEARCH_PAGE} FROM refinery_search`);
        for (const r of rows) {
          let row = r;
          if (r.values === null && r.values_packed) {
            const doc = unpacked(null, r.values_packed);
            if (!containsJson(doc, filter)) continue;
            row = { ...r, values: doc, values_packed: null };
          }
          if (matched++ < offset) continue;
          out.push(rowToThread(row));
          if (out.length >= limit) return out;
        }
        if (rows.length < SEARCH_PAGE) return out;
      }
    });
  }

  /** count with a values filter: JSONB rows counted in SQL, packed ones read through a cursor. */
  async function countPackedAware(query: ThreadQuery): Promise<number> {
    const values: unknown[] = [];
    const where = packedAwareWhere(query, binder(values));
    const filter = query.values!;
    return inSnapshot(async (c) => {
      const [r] = (
        await c.query<Row>(
          `SELECT COUNT(*)::int AS n FROM ${T} ${where} AND NOT ${PACKED_VALUES}`,
          values,
        )
      ).rows;
      let count = r!.n as number;
      await c.query(
        `DECLARE refinery_count NO SCROLL CURSOR FOR
           SELECT values_packed FROM ${T} ${where} AND ${PACKED_VALUES}`,
        values,
      );
      for (;;) {
        const { rows } = await c.query<Row>(`FETCH ${SEARCH_PAGE} FROM refinery_count`);
        for (const row of rows) {
          if (containsJson(unpacked(null, row.values_packed), filter)) count++;
        }
        if (rows.length < SEARCH_PAGE) return count;
      }
    });
  }

  function threadWhere(
    query: Omit<ThreadQuery, "limit" | "offset" | "sort_by" | "sort_order">,
    bind: Bind,
  ): string {
    const conds: string[] = [];
    if (query.ids?.length) conds.push(`thread_id = ANY(${bind(query.ids)}::text[])`);
    if (query.status) conds.push(`status = ${bind(query.status)}`);
    conds.push(...containmentSql("metadata", query.metadata, bind));
    conds.push(...containmentSql('"values"', query.values, bind));
    conds.push(...accessSql("metadata", query, bind));
    return conds.length ? `WHERE ${conds.join(" AND ")}` : "";
  }

  const inflightOf = async (c: Client, threadId: string) =>
    (
      await q(
        c,
        "run_inflight",
        `SELECT * FROM ${R} WHERE thread_id = $1 AND status IN ('pending', 'running') ORDER BY seq`,
        [threadId],
      )
    ).map(rowToRun);

  /**
   * `runs.create` without a partition cap or an interrupted-thread condition, in one round trip
   * (see `batch`): lock the thread, read its in-flight runs, insert the run (only if the thread
   * exists and, with `rejectIfInflight`, nothing is in flight), mark the thread busy (only if the
   * run was inserted). The statements are those of the transaction below, in the same order.
   */
  async function createInOneTrip(
    input: NewRun,
    rejectIfInflight: boolean | undefined,
  ): Promise<CreateRunResult> {
    const t = now();
    const notBefore = input.not_before === undefined ? null : toUtcIso(input.not_before);
    const run = newRun(input, t);
    const kw = stored(run.kwargs);
    const id = lit(input.thread_id);
    const inflightSql = `SELECT * FROM ${R} WHERE thread_id = ${id} AND status IN ('pending', 'running')`;
    const [locked = [], inflightRows = [], inserted = []] = await batch([
      `SELECT status FROM ${T} WHERE thread_id = ${id} FOR UPDATE`,
      `${inflightSql} ORDER BY seq`,
      `INSERT INTO ${R} (run_id, thread_id, assistant_id, created_at, updated_at, not_before, status, metadata, multitask_strategy, kwargs, kwargs_packed, attempt, error, partition)
       SELECT ${lit(run.run_id)}, ${id}, ${lit(run.assistant_id)}, ${lit(t)}, ${lit(t)}, ${lit(notBefore)},
         ${lit(run.status)}, ${lit(j(run.metadata))}::jsonb, ${lit(run.multitask_strategy)},
         ${lit(kw.json ?? "null")}::jsonb, ${byteaLit(kw.packed)}, ${lit(run.attempt)}, NULL, ${lit(input.partition ?? "")}
       WHERE EXISTS (SELECT 1 FROM ${T} WHERE thread_id = ${id})
         ${rejectIfInflight ? `AND NOT EXISTS (${inflightSql})` : ""}
       RETURNING run_id`,
      // The thread records graph and assistant in its metadata, and keeps the config its runs
      // were given (each run's merged over the one before, key by key), as the LangGraph server.
      `UPDATE ${T} SET status = 'busy',
         metadata = metadata || jsonb_build_object('graph_id', ${lit(input.graph_id)}::text, 'assistant_id', ${lit(input.assistant_id)}::text),
         config = config || ${lit(j(input.thread_config ?? {}))}::jsonb, updated_at = ${lit(t)},
         ${touchExpiry(lit(Date.now()))}
       WHERE thread_id = ${id} AND EXISTS (SELECT 1 FROM ${R} WHERE run_id = ${lit(run.run_id)} AND thread_id = ${id})`,
    ]);
    if (locked.length === 0) {
      throw new RefineryError("not_found", `thread ${input.thread_id} not found`, {
        field: "thread_id",
      });
    }
    const inflight = inflightRows.map(rowToRun);
    if (inserted.length === 0) return { created: false, inflight, reason: "inflight" };
    return { created: true, run, inflight };
  }

  const runs: RunStore = {
    async create(
      input: NewRun,
      { rejectIfInflight, partitionLimit, requireInterrupted },
    ): Promise<CreateRunResult> {
      if (partitionLimit === undefined && !requireInterrupted) {
        return createInOneTrip(input, rejectIfInflight);
      }
      return tx(async (c): Promise<CreateRunResult> => {
        // The thread's row lock serializes every creation, end and deletion on the thread.
        const [thread] = await q(
          c,
          "thread_lock_run",
          `SELECT status FROM ${T} WHERE thread_id = $1 FOR UPDATE`,
          [input.thread_id],
        );
        if (!thread) {
          throw new RefineryError("not_found", `thread ${input.thread_id} not found`, {
            field: "thread_id",
          });
        }
        const inflight = await inflightOf(c, input.thread_id);
        if (requireInterrupted && (thread.status !== "interrupted" || inflight.length > 0)) {
          return { created: false, inflight, reason: "not_interrupted" };
        }
        if (rejectIfInflight && inflight.length > 0) {
          return { created: false, inflight, reason: "inflight" };
        }
        const partition = input.partition ?? "";
        if (partitionLimit !== undefined) {
          // Runs of other threads count too: their creators hold this lock while they count.
          await q(c, "partition_lock", "SELECT pg_advisory_xact_lock($1, hashtext($2))", [
            PARTITION_LOCK,
            `${schema}\u0001${partition}`,
          ]);
          const [{ n }] = (await q(
            c,
            "partition_count",
            `SELECT COUNT(*)::int AS n FROM ${R} WHERE partition = $1 AND status IN ('pending', 'running')`,
            [partition],
          )) as [{ n: number }];
          if (n >= partitionLimit) return { created: false, inflight, reason: "partition_limit" };
        }
        const t = now();
        const notBefore = input.not_before === undefined ? null : toUtcIso(input.not_before);
        const run = newRun(input, t);
        const kw = stored(run.kwargs);
        await q(
          c,
          "run_insert",
          `INSERT INTO ${R} (run_id, thread_id, assistant_id, created_at, updated_at, not_before, status, metadata, multitask_strategy, kwargs, kwargs_packed, attempt, error, partition)
           VALUES ($1, $2, $3, $4, $4, $5, $6, $7::jsonb, $8, $9::jsonb, $12, $10, NULL, $11)`,
          [
            run.run_id,
            run.thread_id,
            run.assistant_id,
            t,
            notBefore,
            run.status,
            j(run.metadata),
            run.multitask_strategy,
            kw.json ?? "null",
            run.attempt,
            partition,
            kw.packed,
          ],
        );
        // The thread records graph and assistant in its metadata, and keeps the config its runs
        // were given (each run's merged over the one before, key by key), as the LangGraph server.
        await q(
          c,
          "thread_busy",
          `UPDATE ${T} SET status = 'busy',
             metadata = metadata || jsonb_build_object('graph_id', $2::text, 'assistant_id', $3::text),
             config = config || $4::jsonb, updated_at = $5, ${touchExpiry("$6")}
           WHERE thread_id = $1`,
          [
            input.thread_id,
            input.graph_id,
            input.assistant_id,
            j(input.thread_config ?? {}),
            t,
            Date.now(),
          ],
        );
        return { created: true, run, inflight };
      });
    },
    async get(runId, threadId) {
      const [r] = await q(pool, "run_get", `SELECT * FROM ${R} WHERE run_id = $1`, [runId]);
      if (!r || (threadId !== undefined && r.thread_id !== threadId)) return undefined;
      return rowToRun(r);
    },
    async list(threadId, query = {}) {
      const rows = query.status
        ? await q(
            pool,
            "run_list_status",
            `SELECT * FROM ${R} WHERE thread_id = $1 AND status = $2 ORDER BY seq DESC LIMIT $3 OFFSET $4`,
            [threadId, query.status, query.limit ?? 10, query.offset ?? 0],
          )
        : await q(
            pool,
            "run_list",
            `SELECT * FROM ${R} WHERE thread_id = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3`,
            [threadId, query.limit ?? 10, query.offset ?? 0],
          );
      return rows.map(rowToRun);
    },
    async delete(runId, threadId) {
      const rows = await q(
        pool,
        "run_delete",
        `DELETE FROM ${R} WHERE run_id = $1 AND thread_id = $2 RETURNING run_id`,
        [runId, threadId],
      );
      return rows.length > 0;
    },
    async cancelPending(runId, action) {
      // One statement: it waits for a claimer holding the row, then sees the run is no longer pending.
      const rows =
        action === "rollback"
          ? await q(
              pool,
              "run_cancel_delete",
              `DELETE FROM ${R} WHERE run_id = $1 AND status = 'pending' RETURNING run_id`,
              [runId],
            )
          : await q(
              pool,
              "run_cancel_interrupt",
              `UPDATE ${R} SET status = 'interrupted', updated_at = $2 WHERE run_id = $1 AND status = 'pending' RETURNING run_id`,
              [runId, now()],
            );
      return rows.length > 0;
    },
    async inflight(threadId) {
      return inflightOf(pool, threadId);
    },
    async allInflight() {
      const rows = await q(
        pool,
        "run_all_inflight",
        `SELECT * FROM ${R} WHERE status IN ('pending', 'running') ORDER BY seq`,
      );
      return rows.map(rowToRun);
    },
    async claimNext(lease) {
      // One statement. A claimer skips rows another holds (SKIP LOCKED); a row claimed and
      // committed after this statement's snapshot is rechecked and no longer pending. The
      // per-thread conditions see a concurrently claimed earlier run as pending, so a thread's
      // later run is never taken while its earlier one is being claimed.
      const [r] = await q(
        pool,
        "run_claim",
        `WITH next AS (
           SELECT r.run_id FROM ${R} r
           WHERE r.status = 'pending' AND (r.not_before IS NULL OR r.not_before <= clock_timestamp())
             AND NOT EXISTS (SELECT 1 FROM ${R} x WHERE x.thread_id = r.thread_id AND x.status = 'running')
             AND NOT EXISTS (SELECT 1 FROM ${R} y WHERE y.thread_id = r.thread_id AND y.status = 'pending' AND y.seq < r.seq)
           ORDER BY r.seq
           LIMIT 1
           FOR UPDATE OF r SKIP LOCKED
         )
         UPDATE ${R} u SET status = 'running', attempt = u.attempt + 1, updated_at = $1,
           lease_owner = $2,
           lease_expires_at = CASE WHEN $2::text IS NULL THEN NULL
             ELSE clock_timestamp() + $3::double precision * interval '1 millisecond' END
         FROM next WHERE u.run_id = next.run_id AND u.status = 'pending'
         RETURNING u.*`,
        [now(), lease?.owner ?? null, lease?.ttlMs ?? 0],
      );
      return r ? rowToRun(r) : undefined;
    },
    async setStatus(runId, status, error = null) {
      const [r] = await q(
        pool,
        "run_set_status",
        `UPDATE ${R} SET status = $2, error = $3::jsonb, updated_at = $4 WHERE run_id = $1 RETURNING *`,
        [runId, status, j(error), now()],
      );
      return r ? rowToRun(r) : undefined;
    },
    async requeue(runId, attempt, options = {}) {
      const rows = await q(
        pool,
        "run_requeue",
        `UPDATE ${R} SET status = 'pending', updated_at = $3, lease_owner = NULL,
           lease_expires_at = NULL, lost_to_storage = lost_to_storage + $4
         WHERE run_id = $1 AND status = 'running' AND attempt = $2 RETURNING run_id`,
        [runId, attempt, now(), options.storageLost ? 1 : 0],
      );
      return rows.length > 0;
    },
    async finish(runId, status, error, thread, webhook, attempt) {
      // One round trip (see `batch`). Thread first (as create): a run created meanwhile is either
      // seen pending by the snapshot's update, which runs after the lock, or waits for the lock.
      // The run's end, its webhook call and the snapshot are one statement (data-modifying CTEs),
      // so an end fenced out by `attempt` changes none of them.
      const t = now();
      const statements: string[] = [];
      if (thread) {
        statements.push(`SELECT 1 FROM ${T} WHERE thread_id = ${lit(thread.threadId)} FOR UPDATE`);
      }
      const fenced = attempt !== undefined;
      const fence = fenced ? ` AND attempt = ${lit(attempt)} AND status = 'running'` : "";
      const parts = [
        `ended AS (UPDATE ${R} SET status = ${lit(status)}, error = ${lit(j(error))}::jsonb, updated_at = ${lit(t)}
           WHERE run_id = ${lit(runId)}${fence} RETURNING run_id)`,
      ];
      if (webhook) {
        parts.push(
          `hook AS (INSERT INTO ${W} (run_id, url, body)
             ${fenced ? `SELECT run_id, ${lit(webhook.url)}, ${lit(webhook.body)} FROM ended` : `VALUES (${lit(runId)}, ${lit(webhook.url)}, ${lit(webhook.body)})`}
             ON CONFLICT (run_id) DO NOTHING)`,
        );
      }
      if (thread) {
        const id = lit(thread.threadId);
        const s = thread.snapshot;
        const v = stored(s.values);
        parts.push(
          `snap AS (UPDATE ${T} SET
             status = CASE WHEN EXISTS (SELECT 1 FROM ${R} WHERE thread_id = ${id} AND status = 'pending')
               THEN 'busy' ELSE ${lit(s.status)} END,
             "values" = ${lit(v.json)}::jsonb, values_packed = ${byteaLit(v.packed)},
             interrupts = ${lit(j(s.interrupts))}::jsonb,
             error = ${lit(j(s.error ?? null))}::jsonb, updated_at = ${lit(t)},
             ${touchExpiry(lit(Date.now()))}
           WHERE thread_id = ${id}${fenced ? " AND EXISTS (SELECT 1 FROM ended)" : ""})`,
        );
      }
      statements.push(`WITH ${parts.join(",\n")} SELECT COUNT(*)::int AS n FROM ended`);
      const results = await batch(statements);
      return !fenced || Number(results.at(-1)?.[0]?.n ?? 0) > 0;
    },
    async setCheckpointBefore(runId, checkpointId) {
      await q(
        pool,
        "run_checkpoint_before",
        // Its own column, which a packed kwargs needs; also in a JSONB kwargs, for a process of an
        // earlier version (migration 10).
        `UPDATE ${R} SET checkpoint_before = $2::text,
           kwargs = CASE WHEN kwargs_packed IS NULL THEN jsonb_set(kwargs, '{checkpoint_before}', $3::jsonb) ELSE kwargs END
         WHERE run_id = $1`,
        [runId, j(checkpointId), j(checkpointId)],
      );
    },
    async renewLeases(owner, runIds, ttlMs) {
      if (runIds.length === 0) return [];
      // Lease times are the database's clock, the one every process shares.
      const rows = await q(
        pool,
        "run_renew_leases",
        `UPDATE ${R} SET lease_expires_at = clock_timestamp() + $3::double precision * interval '1 millisecond'
         WHERE run_id = ANY($2::text[]) AND status = 'running' AND lease_owner = $1
         RETURNING run_id`,
        [owner, runIds, ttlMs],
      );
      const held = new Set(rows.map((r) => r.run_id as string));
      return runIds.filter((id) => !held.has(id));
    },
    async reclaimRunning(options = {}) {
      const { gone, storageLost, exhausted } = options;
      const running = await q(
        pool,
        "run_running_leases",
        `SELECT *, lease_expires_at <= clock_timestamp() AS lapsed FROM ${R}
         WHERE status = 'running' ORDER BY seq`,
      );
      const picked = running.filter(
        (r) =>
          r.lapsed === true ||
          (gone?.(rowToRun(r), (r.lease_owner as string | null) ?? null) ?? false),
      );
      if (picked.length === 0) return [];
      // One statement: a row another reclaimer (or a heartbeat) changed since the read is
      // rechecked after its lock, so each run is reclaimed once, and a renewed lease is kept.
      const rows = await q(
        pool,
        "run_reclaim",
        `UPDATE ${R} u SET
           status = CASE WHEN u.attempt - u.lost_to_storage - g.lost::int >= $4 THEN 'error' ELSE 'pending' END,
           error = CASE WHEN u.attempt - u.lost_to_storage - g.lost::int >= $4 THEN $5::jsonb ELSE u.error END,
           lost_to_storage = u.lost_to_storage + g.lost::int,
           updated_at = $6, lease_owner = NULL, lease_expires_at = NULL
         FROM unnest($1::text[], $2::text[], $3::boolean[], $7::boolean[]) AS g(id, owner, gone, lost)
         WHERE u.run_id = g.id AND u.status = 'running' AND u.lease_owner IS NOT DISTINCT FROM g.owner
           AND (g.gone OR u.lease_expires_at <= clock_timestamp())
         RETURNING u.*`,
        [
          picked.map((r) => r.run_id),
          picked.map((r) => r.lease_owner ?? null),
          picked.map((r) => r.lapsed !== true),
          exhausted?.attempts ?? 2 ** 31 - 1,
          j(exhausted?.error ?? null),
          now(),
          picked.map(
            (r) => storageLost?.(rowToRun(r), (r.lease_owner as string | null) ?? null) ?? false,
          ),
        ],
      );
      return rows.sort((a, b) => Number(a.seq) - Number(b.seq)).map(rowToRun);
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
      const rows = await q(
        pool,
        "run_count_status",
        `SELECT status, COUNT(*)::int AS n FROM ${R} GROUP BY status`,
      );
      for (const r of rows) out[r.status as RunStatus] = r.n as number;
      return out;
    },
  };

  function cronWhere(
    query: Omit<CronQuery, "limit" | "offset" | "sort_by" | "sort_order">,
    bind: Bind,
  ): string {
    const conds: string[] = [];
    if (query.assistant_id) conds.push(`assistant_id = ${bind(query.assistant_id)}`);
    if (query.thread_id) conds.push(`thread_id = ${bind(query.thread_id)}`);
    if (query.enabled !== undefined) conds.push(`enabled = ${bind(query.enabled)}`);
    conds.push(...containmentSql("metadata", query.metadata, bind));
    conds.push(...accessSql("metadata", query, bind));
    return conds.length ? `WHERE ${conds.join(" AND ")}` : "";
  }

  const crons: CronStore = {
    async create(input, options = {}) {
      return tx(async (c) => {
        if (options.partitionLimit !== undefined) {
          // Creators in the partition count one after the other.
          await q(c, "cron_partition_lock", "SELECT pg_advisory_xact_lock($1, hashtext($2))", [
            CRON_PARTITION_LOCK,
            `${schema}\u0001${input.owner.partition}`,
          ]);
          const [{ n }] = (await q(
            c,
            "cron_partition_count",
            `SELECT COUNT(*)::int AS n FROM ${C} WHERE partition = $1`,
            [input.owner.partition],
          )) as [{ n: number }];
          if (n >= options.partitionLimit) return undefined;
        }
        const t = now();
        const [row] = await q(
          c,
          "cron_insert",
          `INSERT INTO ${C} (cron_id, assistant_id, thread_id, on_run_completed, end_time, schedule, timezone, created_at, updated_at, payload, user_id, next_run_date, metadata, enabled, owner, partition)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9::jsonb, $10, $11, $12::jsonb, $13, $14::jsonb, $15)
           ON CONFLICT (cron_id) DO NOTHING RETURNING *`,
          [
            input.cron_id,
            input.assistant_id,
            input.thread_id,
            input.on_run_completed,
            input.end_time,
            input.schedule,
            input.timezone,
            t,
            j(input.payload),
            input.user_id,
            input.next_run_date,
            j(input.metadata),
            input.enabled,
            j(input.owner),
            input.owner.partition,
          ],
        );
        if (!row) {
          throw new RefineryError("conflict", `cron ${input.cron_id} already exists`, {
            field: "cron_id",
          });
        }
        return rowToCron(row);
      });
    },
    async get(id, access) {
      const [r] = await q(pool, "cron_get", `SELECT * FROM ${C} WHERE cron_id = $1`, [id]);
      const cron = r ? rowToCron(r) : undefined;
      return cron && reaches(cron.metadata, access) ? cron : undefined;
    },
    async update(id, patch, access) {
      return tx(async (c) => {
        const [r] = await q(c, "cron_lock", `SELECT * FROM ${C} WHERE cron_id = $1 FOR UPDATE`, [
          id,
        ]);
        if (!r) return undefined;
        const cur = rowToCron(r);
        if (!reaches(cur.metadata, access)) return undefined;
        const next: Cron = {
          ...cur,
          ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)),
          metadata: patch.metadata ? { ...cur.metadata, ...patch.metadata } : cur.metadata,
          updated_at: now(),
        };
        await q(
          c,
          "cron_update",
          `UPDATE ${C} SET schedule = $2, timezone = $3, end_time = $4, payload = $5::jsonb,
             metadata = $6::jsonb, enabled = $7, on_run_completed = $8, next_run_date = $9, updated_at = $10
           WHERE cron_id = $1`,
          [
            id,
            next.schedule,
            next.timezone,
            next.end_time,
            j(next.payload),
            j(next.metadata),
            next.enabled,
            next.on_run_completed,
            next.next_run_date,
            next.updated_at,
          ],
        );
        return next;
      });
    },
    async delete(id, access) {
      return tx(async (c) => {
        const [r] = await q(c, "cron_lock", `SELECT * FROM ${C} WHERE cron_id = $1 FOR UPDATE`, [
          id,
        ]);
        if (!r || !reaches((r.metadata as Record<string, unknown>) ?? {}, access)) return false;
        await q(c, "cron_fires_delete", `DELETE FROM ${CF} WHERE cron_id = $1`, [id]);
        await q(c, "cron_delete", `DELETE FROM ${C} WHERE cron_id = $1`, [id]);
        return true;
      });
    },
    async search(query) {
      const values: unknown[] = [];
      const bind = binder(values);
      const where = cronWhere(query, bind);
      const order = page(query.sort_by, CRON_SORT, query.sort_order, "created_at");
      const rows = await dq(
        pool,
        `SELECT * FROM ${C} ${where} ${order}, cron_id COLLATE "C"
         LIMIT ${bind(query.limit ?? 10)} OFFSET ${bind(query.offset ?? 0)}`,
        values,
      );
      return rows.map(rowToCron);
    },
    async count(query) {
      const values: unknown[] = [];
      const where = cronWhere(query, binder(values));
      const [r] = await dq(pool, `SELECT COUNT(*)::int AS n FROM ${C} ${where}`, values);
      return r!.n as number;
    },
    async claimDue(at, limit, nextOf) {
      return tx(async (c): Promise<DueCron[]> => {
        // Rows another claimer holds are skipped; one it claimed and committed meanwhile is
        // rechecked and no longer due. The unique firing row backs both.
        const rows = await q(
          c,
          "cron_due",
          `SELECT * FROM ${C} WHERE enabled AND next_run_date IS NOT NULL AND next_run_date <= $1
           ORDER BY next_run_date, cron_id COLLATE "C" LIMIT $2 FOR UPDATE SKIP LOCKED`,
          [at, limit],
        );
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
          const fired = await q(
            c,
            "cron_fire_insert",
            `INSERT INTO ${CF} (cron_id, fire_at, claimed_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING RETURNING cron_id`,
            [cron.cron_id, fireAt, t],
          );
          if (fired.length !== 1) continue;
          const moved = await q(
            c,
            "cron_move",
            `UPDATE ${C} SET next_run_date = $2 WHERE cron_id = $1 AND next_run_date = $3 RETURNING cron_id`,
            [cron.cron_id, next, fireAt],
          );
          if (moved.length !== 1) throw new Error(`cron ${cron.cron_id} moved during its claim`);
          await q(
            c,
            "cron_fires_prune",
            `DELETE FROM ${CF} WHERE cron_id = $1 AND fire_at <
               (SELECT fire_at FROM ${CF} WHERE cron_id = $1 ORDER BY fire_at DESC LIMIT 1 OFFSET $2)`,
            [cron.cron_id, CRON_FIRES_KEPT - 1],
          );
          claimed.push({
            ...cron,
            next_run_date: next,
            owner: (r.owner as DueCron["owner"]) ?? { scopes: [], partition: "" },
            fire_at: fireAt,
          });
        }
        return claimed;
      });
    },
    async recordFiring(cronId, fireAt, outcome) {
      await q(
        pool,
        "cron_record_firing",
        `UPDATE ${CF} SET run_id = $3, error = $4 WHERE cron_id = $1 AND fire_at = $2`,
        [cronId, fireAt, outcome.run_id ?? null, outcome.error ?? null],
      );
    },
  };

  const duties: DutyLeaseStore = {
    async acquire(name, owner, ttlMs) {
      const rows = await q(
        pool,
        "duty_acquire",
        `INSERT INTO ${D} AS d (name, owner, expires_at)
         VALUES ($1, $2, clock_timestamp() + $3::double precision * interval '1 millisecond')
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
         WHERE d.owner = excluded.owner OR d.expires_at <= clock_timestamp()
         RETURNING name`,
        [name, owner, ttlMs],
      );
      return rows.length > 0;
    },
    async release(name, owner) {
      await q(pool, "duty_release", `DELETE FROM ${D} WHERE name = $1 AND owner = $2`, [
        name,
        owner,
      ]);
    },
    async holders(names) {
      if (names.length === 0) return new Map();
      const rows = await q(
        pool,
        "duty_holders",
        `SELECT name, owner FROM ${D} WHERE name = ANY($1::text[]) AND expires_at > clock_timestamp()`,
        [names],
      );
      return new Map(rows.map((r) => [r.name as string, r.owner as string]));
    },
    async sweep(prefix, graceMs) {
      // left(), not LIKE: a prefix is matched as written (no wildcards, case kept).
      const rows = await q(
        pool,
        "duty_sweep",
        `DELETE FROM ${D} WHERE left(name, length($1)) = $1
         AND expires_at <= clock_timestamp() - $2::double precision * interval '1 millisecond'
         RETURNING name`,
        [prefix, graceMs],
      );
      return rows.length;
    },
  };

  const webhooks: WebhookOutboxStore = {
    async due(limit) {
      const rows = await q(
        pool,
        "webhook_due",
        `SELECT run_id, url, body, attempts FROM ${W}
         WHERE next_at <= clock_timestamp() ORDER BY next_at, created_at LIMIT $1`,
        [limit],
      );
      return rows as unknown as WebhookDelivery[];
    },
    async settle(runId) {
      await q(pool, "webhook_settle", `DELETE FROM ${W} WHERE run_id = $1`, [runId]);
    },
    async retry(runId, delayMs, error) {
      await q(
        pool,
        "webhook_retry",
        `UPDATE ${W} SET attempts = attempts + 1, last_error = $3,
           next_at = clock_timestamp() + $2::double precision * interval '1 millisecond'
         WHERE run_id = $1`,
        [runId, delayMs, error],
      );
    },
    async count() {
      const [row] = await q(pool, "webhook_count", `SELECT COUNT(*)::int AS n FROM ${W}`);
      return Number(row?.n ?? 0);
    },
  };

  let closed = false;
  return {
    assistants,
    threads,
    runs,
    crons,
    duties,
    webhooks,
    pool,
    schema,
    migrations: opts.migrations ?? { applied: [], current: [] },
    close: async () => {
      if (closed) return;
      closed = true;
      if (opts.owned && !pool.ended) await pool.end();
    },
  };
}
