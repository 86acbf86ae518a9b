// A LangGraph BaseStore on Postgres (`pg`), with the semantics of the SQLite store and of
// LangGraph's InMemoryStore (store-ops.ts); `query` is ignored (no index). Ours because
// @langchain/langgraph-checkpoint-postgres 1.0.5's PostgresStore matches namespaces with
// `LIKE 'a:b%'` (["lessons", "a1"] also finds ["lessons", "a10"]), refuses '_' in labels, drops
// instead of cutting at maxDepth and runs a batch outside any transaction.
import { createHash } from "node:crypto";
import {
  BaseStore,
  type Item,
  type ListNamespacesOperation,
  type Operation,
  type OperationResults,
  type PutOperation,
  type SearchOperation,
} from "@langchain/langgraph-checkpoint";
import type pg from "pg";
import { inTransaction, openPostgresPool } from "../storage/postgres/pool.ts";
import { looksLikeConnectionFailure } from "../storage/transient.ts";
import { RefineryError } from "../errors.ts";
import {
  descendantRange,
  joinNamespace,
  literalPrefix,
  planBatch,
  refreshes,
  selectNamespaces,
  ttlMsOf,
  splitNamespace,
  type Condition,
  type Scalar,
} from "./store-ops.ts";

export interface PostgresStoreOptions {
  /** A connection string, or an existing pool (then `stop()` leaves it open). */
  connection: string | pg.Pool;
  /** Schema holding the tables; created if missing. Default "public". */
  schema?: string;
}

interface Row {
  seq: string;
  ttl_ms: string | null;
  namespace: string;
  key: string;
  value: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

/** Not expired at `$n` (a timestamptz parameter). */
const live = (param: string) => `(expires_at IS NULL OR expires_at > ${param})`;
const COLUMNS = "seq, namespace, key, value, created_at, updated_at, ttl_ms";

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
// Serialises concurrent setup() calls across processes (CREATE TABLE IF NOT EXISTS can race).
const SETUP_LOCK = 0x5245_4649; // "REFI"

export class PostgresStore extends BaseStore {
  readonly pool: pg.Pool;
  readonly schema: string;
  private readonly owned: boolean;
  private readonly table: string;
  private readonly prefix: string;
  private ready?: Promise<void>;

  constructor(options: PostgresStoreOptions) {
    super();
    this.schema = options.schema ?? "public";
    if (!SCHEMA_NAME.test(this.schema)) {
      throw new RefineryError("invalid_config", `invalid Postgres schema name "${this.schema}"`, {
        field: "schema",
        fix: "use letters, digits and underscores (at most 63), starting with a letter or underscore",
      });
    }
    this.owned = typeof options.connection === "string";
    this.pool =
      typeof options.connection === "string"
        ? openPostgresPool(options.connection, 10)
        : options.connection;
    this.table = `"${this.schema}".store_items`;
    // Prepared-statement names are per connection and cut at 63 bytes: keep them short, unique.
    this.prefix = `store_${createHash("sha1").update(this.schema).digest("hex").slice(0, 12)}`;
  }

  /** Creates the schema and table if missing; idempotent, and run by the first batch anyway. */
  setup(): Promise<void> {
    this.ready ??= this.transaction(async (client) => {
      await client.query("SELECT pg_advisory_xact_lock($1)", [SETUP_LOCK]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.table} (
        seq BIGSERIAL PRIMARY KEY,
        namespace TEXT COLLATE "C" NOT NULL,
        key TEXT NOT NULL,
        value JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        UNIQUE (namespace, key)
      )`);
      // TTLs (the Store API); a table made before them gets the columns.
      await client.query(`ALTER TABLE ${this.table}
        ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ, ADD COLUMN IF NOT EXISTS ttl_ms BIGINT`);
      await client.query(`CREATE INDEX IF NOT EXISTS store_items_expiry
        ON ${this.table} (expires_at) WHERE expires_at IS NOT NULL`);
    }).catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  override async start(): Promise<void> {
    await this.setup();
  }

  /** Ends the pool if this store created it. */
  override async stop(): Promise<void> {
    if (this.owned && !this.pool.ended) await this.pool.end();
  }

  async batch<Op extends Operation[]>(operations: Op): Promise<OperationResults<Op>> {
    const plan = planBatch(operations);
    await this.setup();
    const results: unknown[] = operations.map(() => undefined);
    const now = new Date();
    await this.transaction(async (client) => {
      for (const read of plan.reads) {
        if (read.kind === "get") {
          const { rows } = await client.query<Row>({
            name: `${this.prefix}_get`,
            text: `SELECT ${COLUMNS} FROM ${this.table}
                   WHERE namespace = $1 AND key = $2 AND ${live("$3")}`,
            values: [joinNamespace(read.op.namespace), read.op.key, now],
          });
          if (refreshes(read.op)) await this.refresh_(client, rows, now);
          results[read.index] = rows[0] ? toItem(rows[0]) : null;
        } else if (read.kind === "search") {
          const rows = await this.search_(client, read.op, read.conditions, now);
          if (refreshes(read.op)) await this.refresh_(client, rows, now);
          results[read.index] = rows.map(toItem);
        } else {
          results[read.index] = await this.listNamespaces_(client, read.op, now);
        }
      }
      for (const put of plan.puts) await this.put_(client, put, now);
    });
    return results as OperationResults<Op>;
  }

  /** Deletes the items whose TTL has run out (reads skip them already); returns how many. */
  async sweepExpired(now = Date.now()): Promise<number> {
    await this.setup();
    let deleted = 0;
    await this.transaction(async (client) => {
      const result = await client.query(
        `DELETE FROM ${this.table} WHERE expires_at IS NOT NULL AND expires_at <= $1`,
        [new Date(now)],
      );
      deleted = result.rowCount ?? 0;
    });
    return deleted;
  }

  /** Deletes every item (POST /internal/truncate, dev servers only). */
  async clear(): Promise<void> {
    await this.setup();
    await this.transaction(async (client) => {
      await client.query(`DELETE FROM ${this.table}`);
    });
  }

  private async refresh_(client: pg.PoolClient, rows: Row[], now: Date): Promise<void> {
    const seqs = rows.filter((r) => r.ttl_ms !== null).map((r) => r.seq);
    if (seqs.length === 0) return;
    await client.query(
      `UPDATE ${this.table} SET expires_at = $1::timestamptz + ttl_ms * interval '1 millisecond'
       WHERE seq = ANY($2::bigint[])`,
      [now, seqs],
    );
  }

  private async put_(client: pg.PoolClient, op: PutOperation, now: Date): Promise<void> {
    const ns = joinNamespace(op.namespace);
    if (op.value === null) {
      await client.query({
        name: `${this.prefix}_delete`,
        text: `DELETE FROM ${this.table} WHERE namespace = $1 AND key = $2`,
        values: [ns, op.key],
      });
      return;
    }
    const ttlMs = ttlMsOf(op);
    // An expired item is replaced as new (a fresh created_at), as if the sweeper had run.
    await client.query({
      name: `${this.prefix}_put`,
      text: `INSERT INTO ${this.table} (namespace, key, value, created_at, updated_at, expires_at, ttl_ms)
             VALUES ($1, $2, $3, $4, $4, $5, $6)
             ON CONFLICT (namespace, key) DO UPDATE
             SET value = excluded.value, updated_at = excluded.updated_at,
               expires_at = excluded.expires_at, ttl_ms = excluded.ttl_ms,
               created_at = CASE WHEN ${this.table}.expires_at IS NOT NULL
                 AND ${this.table}.expires_at <= $4 THEN excluded.created_at
                 ELSE ${this.table}.created_at END`,
      values: [
        ns,
        op.key,
        JSON.stringify(op.value),
        now,
        ttlMs === null ? null : new Date(now.getTime() + ttlMs),
        ttlMs,
      ],
    });
  }

  private async search_(
    client: pg.PoolClient,
    op: SearchOperation,
    conditions: Condition[],
    now: Date,
  ): Promise<Row[]> {
    const values: unknown[] = [];
    const bind = (v: unknown) => `$${values.push(v)}`;
    let scope = `WHERE ${live(bind(now))}`;
    if (op.namespacePrefix.length > 0) {
      const { from, to } = descendantRange(op.namespacePrefix);
      scope += ` AND (namespace = ${bind(joinNamespace(op.namespacePrefix))}
               OR (namespace >= ${bind(from)} AND namespace < ${bind(to)}))`;
    }
    const where = conditions.map((c) => conditionSql(c, bind));
    const text = `SELECT ${COLUMNS} FROM
      (SELECT *, MIN(seq) OVER (PARTITION BY namespace) AS ns_first FROM ${this.table} ${scope}) AS t
      ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY ns_first, seq LIMIT ${bind(op.limit ?? 10)} OFFSET ${bind(op.offset ?? 0)}`;
    const { rows } = await client.query<Row>(text, values);
    return rows;
  }

  private async listNamespaces_(
    client: pg.PoolClient,
    op: ListNamespacesOperation,
    now: Date,
  ): Promise<string[][]> {
    const prefix = literalPrefix(op);
    const { rows } = prefix
      ? await client.query<{ namespace: string }>(
          `SELECT DISTINCT namespace FROM ${this.table}
           WHERE ${live("$4")} AND (namespace = $1 OR (namespace >= $2 AND namespace < $3))`,
          [joinNamespace(prefix), descendantRange(prefix).from, descendantRange(prefix).to, now],
        )
      : await client.query<{ namespace: string }>(
          `SELECT DISTINCT namespace FROM ${this.table} WHERE ${live("$1")}`,
          [now],
        );
    return selectNamespaces(
      rows.map((r) => splitNamespace(r.namespace)),
      op,
    );
  }

  private async transaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    try {
      await inTransaction(this.pool, work);
    } catch (err) {
      throw storageError(err);
    }
  }
}

function toItem(row: Row): Item {
  return {
    namespace: splitNamespace(row.namespace),
    key: row.key,
    value: row.value,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function conditionSql(c: Condition, bind: (v: unknown) => string): string {
  const field = `(t.value -> ${bind(c.field)}::text)`;
  const json = (v: Scalar | Scalar[]) => `${bind(JSON.stringify(v))}::jsonb`;
  switch (c.op) {
    case "absent":
      return `${field} IS NULL`;
    case "eq":
      return `${field} = ${json(c.value)}`;
    case "ne":
      return `${field} IS DISTINCT FROM ${json(c.value)}`;
    case "in":
    case "nin": {
      const any = `${field} IN (SELECT jsonb_array_elements(${json(c.values)}))`;
      return c.op === "in" ? `COALESCE(${any}, false)` : `NOT COALESCE(${any}, false)`;
    }
    default: {
      const sign = { gt: ">", gte: ">=", lt: "<", lte: "<=" }[c.op];
      return `CASE WHEN jsonb_typeof(${field}) = 'number'
              THEN (${field})::text::float8 ${sign} ${bind(c.value)}::float8 ELSE false END`;
    }
  }
}

/** Postgres errors become RefineryErrors; NUL characters get their own explanation. */
function storageError(err: unknown): Error {
  if (err instanceof RefineryError) return err;
  const code = (err as { code?: string }).code;
  if (code === "22P05" || code === "22021") {
    return new RefineryError("invalid_input", "Postgres cannot store NUL characters (\\u0000)", {
      fix: "remove NUL characters from the value, key and namespace",
      cause: err,
    });
  }
  const transient = code === undefined || looksLikeConnectionFailure(err);
  return new RefineryError("storage_error", `Postgres store: ${(err as Error).message}`, {
    fix: "check that Postgres is reachable and the store schema is usable",
    retryable: transient,
    cause: err,
  });
}
