// A LangGraph BaseStore on better-sqlite3, in the same database file as the checkpoints (the
// embedded default for the lessons memory). Semantics follow LangGraph's InMemoryStore; see
// store-ops.ts for filters and batch order. `query` is ignored, as in a store without an index.
import { mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  BaseStore,
  type Item,
  type ListNamespacesOperation,
  type Operation,
  type OperationResults,
  type PutOperation,
  type SearchOperation,
} from "@langchain/langgraph-checkpoint";
import Database from "better-sqlite3";
import { quickCheckIfSmall } from "../checkpointer.ts";
import { RefineryError } from "../errors.ts";
import { takeWriterTurns } from "../storage/sqlite/writer-turn.ts";
import {
  descendantRange,
  joinNamespace,
  literalPrefix,
  planBatch,
  refreshes,
  ttlMsOf,
  selectNamespaces,
  splitNamespace,
  type Condition,
  type Scalar,
} from "./store-ops.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS store_items (
  seq INTEGER PRIMARY KEY,
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER,
  ttl_ms INTEGER,
  UNIQUE (namespace, key)
);
`;

/** Columns added after the first release: a file made before gets them on open. */
const ADDED_COLUMNS = [
  { column: "expires_at", ddl: "expires_at INTEGER" },
  { column: "ttl_ms", ddl: "ttl_ms INTEGER" },
];
const LIVE = "(expires_at IS NULL OR expires_at > @now)";

// Namespaces come in the order of their oldest item, items in insertion order within one: the
// order InMemoryStore's maps give. An update keeps its `seq`, so it keeps its place.
const ORDER_WINDOW = "MIN(seq) OVER (PARTITION BY namespace) AS ns_first";
const NAMESPACE_WHERE = "(namespace = @ns OR (namespace >= @from AND namespace < @to))";
const STATEMENT_CACHE_SIZE = 64;

interface Row {
  seq: number;
  ttl_ms: number | null;
  namespace: string;
  key: string;
  value: string;
  created_at: number;
  updated_at: number;
}

/** Opens a SQLite file the way the checkpointer does (WAL, synchronous=NORMAL, busy timeout). */
export function openSqliteFile(path: string): Database.Database {
  const file = resolve(path);
  const fix = "set REFINERY_DB (or `db` in the config file) to a writable SQLite file path";
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
    throw new RefineryError("invalid_config", `store database path ${file} is a directory`, {
      field: "REFINERY_DB",
      fix,
    });
  }
  let db: Database.Database | undefined;
  try {
    mkdirSync(dirname(file), { recursive: true });
    db = new Database(file);
    db.pragma("schema_version"); // a file that is not a SQLite database fails here
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("busy_timeout = 5000");
    quickCheckIfSmall(db, file);
    takeWriterTurns(db);
    return db;
  } catch (err) {
    db?.close();
    throw new RefineryError(
      "storage_error",
      `cannot open ${file} as a SQLite database for the store (${(err as Error).message})`,
      {
        field: "REFINERY_DB",
        fix: "point REFINERY_DB at a new file or a Refinery database; move the damaged file away",
        cause: err,
      },
    );
  }
}

export class SqliteStore extends BaseStore {
  readonly db: Database.Database;
  private readonly owned: boolean;
  private readonly statements = new Map<string, Database.Statement>();

  /** A path opens (and owns) that file; a Database is shared, e.g. with the checkpointer. */
  constructor(source: string | Database.Database) {
    super();
    this.owned = typeof source === "string";
    this.db = typeof source === "string" ? openSqliteFile(source) : source;
    try {
      this.db.exec(SCHEMA);
      const have = new Set(
        (this.db.pragma("table_info(store_items)") as Array<{ name: string }>).map((c) => c.name),
      );
      for (const { column, ddl } of ADDED_COLUMNS) {
        if (!have.has(column)) this.db.exec(`ALTER TABLE store_items ADD COLUMN ${ddl}`);
      }
      // Only items with a TTL are in it: the sweep stays cheap.
      this.db.exec(
        "CREATE INDEX IF NOT EXISTS store_items_expiry ON store_items(expires_at) WHERE expires_at IS NOT NULL",
      );
    } catch (err) {
      if (this.owned) this.db.close();
      throw new RefineryError(
        "storage_error",
        `cannot create the store table in ${this.db.name} (${(err as Error).message})`,
        { fix: "check that the database file is writable", cause: err },
      );
    }
  }

  async batch<Op extends Operation[]>(operations: Op): Promise<OperationResults<Op>> {
    const plan = planBatch(operations);
    const results: unknown[] = operations.map(() => undefined);
    const now = Date.now();
    const writes = plan.puts.length > 0;
    /** Rows read with a TTL that the read refreshes. */
    const stale: Row[] = [];
    const run = () => {
      for (const read of plan.reads) {
        if (read.kind === "get") {
          const row = this.stmt(
            `SELECT seq, namespace, key, value, created_at, updated_at, ttl_ms FROM store_items
             WHERE namespace = @ns AND key = @key AND ${LIVE}`,
          ).get({ ns: joinNamespace(read.op.namespace), key: read.op.key, now }) as Row | undefined;
          if (row && refreshes(read.op)) stale.push(row);
          results[read.index] = row ? toItem(row) : null;
        } else if (read.kind === "search") {
          const rows = this.search_(read.op, read.conditions, now);
          if (refreshes(read.op)) stale.push(...rows);
          results[read.index] = rows.map(toItem);
        } else {
          results[read.index] = this.listNamespaces_(read.op, now);
        }
      }
      if (writes) this.refresh_(stale, now);
      for (const put of plan.puts) this.put_(put, now);
    };
    try {
      // IMMEDIATE takes the write lock up front, so two processes never deadlock upgrading a read.
      if (writes) this.db.transaction(run).immediate();
      else {
        this.db.transaction(run).deferred();
        // Reads take no write lock unless what they read has a TTL to push back (the lessons
        // memory never does); an item that expired in between stays expired.
        if (stale.some((r) => r.ttl_ms != null))
          this.db.transaction(() => this.refresh_(stale, now)).immediate();
      }
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      throw new RefineryError("storage_error", `SQLite store: ${(err as Error).message}`, {
        fix: "check that the database file is writable and not locked by another program",
        retryable: code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"),
        cause: err,
      });
    }
    return results as OperationResults<Op>;
  }

  /** Deletes the items whose TTL has run out (reads skip them already); returns how many. */
  sweepExpired(now = Date.now()): number {
    return this.stmt(
      "DELETE FROM store_items WHERE expires_at IS NOT NULL AND expires_at <= ?",
    ).run(now).changes;
  }

  /** Deletes every item (POST /internal/truncate, dev servers only). */
  clear(): void {
    this.stmt("DELETE FROM store_items").run();
  }

  private refresh_(rows: Row[], now: number): void {
    const update = this.stmt(
      "UPDATE store_items SET expires_at = @now + ttl_ms WHERE seq = @seq AND expires_at > @now",
    );
    for (const row of rows) if (row.ttl_ms != null) update.run({ now, seq: row.seq });
  }

  /** Closes the database if this store opened it; a shared one is left to its owner. */
  override stop(): void {
    if (this.owned && this.db.open) this.db.close();
  }

  private put_(op: PutOperation, now: number): void {
    const ns = joinNamespace(op.namespace);
    if (op.value === null) {
      this.stmt("DELETE FROM store_items WHERE namespace = ? AND key = ?").run(ns, op.key);
      return;
    }
    const ttlMs = ttlMsOf(op);
    // An expired item is replaced as new (a fresh created_at), as if the sweeper had run.
    this.stmt(
      `INSERT INTO store_items (namespace, key, value, created_at, updated_at, expires_at, ttl_ms)
       VALUES (@ns, @key, @value, @now, @now, @expires, @ttl)
       ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,
         updated_at = excluded.updated_at, expires_at = excluded.expires_at, ttl_ms = excluded.ttl_ms,
         created_at = CASE WHEN store_items.expires_at IS NOT NULL AND store_items.expires_at <= @now
           THEN excluded.created_at ELSE store_items.created_at END`,
    ).run({
      ns,
      key: op.key,
      value: JSON.stringify(op.value),
      now,
      expires: ttlMs === null ? null : now + ttlMs,
      ttl: ttlMs,
    });
  }

  private search_(op: SearchOperation, conditions: Condition[], now: number): Row[] {
    const params: Record<string, unknown> = {
      limit: op.limit ?? 10,
      offset: op.offset ?? 0,
      now,
    };
    let scope = `WHERE ${LIVE}`;
    if (op.namespacePrefix.length > 0) {
      Object.assign(
        params,
        { ns: joinNamespace(op.namespacePrefix) },
        descendantRange(op.namespacePrefix),
      );
      scope = `WHERE ${LIVE} AND ${NAMESPACE_WHERE}`;
    }
    const where = conditions.map((c, i) => conditionSql(c, `c${i}`, params));
    const sql = `SELECT seq, namespace, key, value, created_at, updated_at, ttl_ms FROM
      (SELECT *, ${ORDER_WINDOW} FROM store_items ${scope}) AS t
      ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY ns_first, seq LIMIT @limit OFFSET @offset`;
    return this.stmt(sql).all(params) as Row[];
  }

  private listNamespaces_(op: ListNamespacesOperation, now: number): string[][] {
    const prefix = literalPrefix(op);
    const rows = (
      prefix
        ? this.stmt(
            `SELECT DISTINCT namespace FROM store_items WHERE ${LIVE} AND ${NAMESPACE_WHERE}`,
          ).all({
            ns: joinNamespace(prefix),
            ...descendantRange(prefix),
            now,
          })
        : this.stmt(`SELECT DISTINCT namespace FROM store_items WHERE ${LIVE}`).all({ now })
    ) as Array<{ namespace: string }>;
    return selectNamespaces(
      rows.map((r) => splitNamespace(r.namespace)),
      op,
    );
  }

  /** Prepared statements by SQL text; filters vary only in shape, their values are bound. */
  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (statement) {
      // Refresh its place so the least recently used statement is the one dropped.
      this.statements.delete(sql);
    } else {
      statement = this.db.prepare(sql);
      if (this.statements.size >= STATEMENT_CACHE_SIZE) {
        this.statements.delete(this.statements.keys().next().value as string);
      }
    }
    this.statements.set(sql, statement);
    return statement;
  }
}

function toItem(row: Row): Item {
  return {
    namespace: splitNamespace(row.namespace),
    key: row.key,
    value: JSON.parse(row.value) as Record<string, unknown>,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** One top-level field of the stored JSON, as json_each sees it (type and atom). */
const field = (name: string, test: string) =>
  `EXISTS (SELECT 1 FROM json_each(t.value) AS j WHERE j.key = @${name} AND (${test}))`;

function equalsSql(value: Scalar, param: string, params: Record<string, unknown>): string {
  if (value === null) return "j.type = 'null'";
  if (typeof value === "boolean") return value ? "j.type = 'true'" : "j.type = 'false'";
  params[param] = value;
  return typeof value === "string"
    ? `j.type = 'text' AND j.atom = @${param}`
    : `j.type IN ('integer', 'real') AND j.atom = @${param}`;
}

function conditionSql(c: Condition, name: string, params: Record<string, unknown>): string {
  params[name] = c.field;
  switch (c.op) {
    case "absent":
      return `NOT ${field(name, "1")}`;
    case "eq":
    case "ne": {
      const test = field(name, equalsSql(c.value, `${name}v`, params));
      return c.op === "eq" ? test : `NOT ${test}`;
    }
    case "in":
    case "nin": {
      const any = c.values.map((v, i) => `(${equalsSql(v, `${name}v${i}`, params)})`);
      const test = any.length > 0 ? field(name, any.join(" OR ")) : "0";
      return c.op === "in" ? test : `NOT ${test}`;
    }
    default: {
      const sign = { gt: ">", gte: ">=", lt: "<", lte: "<=" }[c.op];
      params[`${name}v`] = c.value;
      return field(name, `j.type IN ('integer', 'real') AND j.atom ${sign} @${name}v`);
    }
  }
}
