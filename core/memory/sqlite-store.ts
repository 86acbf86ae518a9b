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
  type SearchItem,
  type SearchOperation,
} from "@langchain/langgraph-checkpoint";
import Database from "better-sqlite3";
import { RefineryError } from "../errors.ts";
import {
  descendantRange,
  joinNamespace,
  literalPrefix,
  planBatch,
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
  UNIQUE (namespace, key)
);
`;

// Namespaces come in the order of their oldest item, items in insertion order within one: the
// order InMemoryStore's maps give. An update keeps its `seq`, so it keeps its place.
const ORDER_WINDOW = "MIN(seq) OVER (PARTITION BY namespace) AS ns_first";
const NAMESPACE_WHERE = "(namespace = @ns OR (namespace >= @from AND namespace < @to))";
const STATEMENT_CACHE_SIZE = 64;

interface Row {
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
    const check = db.pragma("quick_check", { simple: true });
    if (check !== "ok") throw new Error(`integrity check failed: ${String(check)}`);
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
    const run = () => {
      for (const read of plan.reads) {
        if (read.kind === "get") {
          const row = this.stmt(
            "SELECT namespace, key, value, created_at, updated_at FROM store_items WHERE namespace = ? AND key = ?",
          ).get(joinNamespace(read.op.namespace), read.op.key) as Row | undefined;
          results[read.index] = row ? toItem(row) : null;
        } else if (read.kind === "search") {
          results[read.index] = this.search_(read.op, read.conditions);
        } else {
          results[read.index] = this.listNamespaces_(read.op);
        }
      }
      const now = Date.now();
      for (const put of plan.puts) this.put_(put, now);
    };
    try {
      // IMMEDIATE takes the write lock up front, so two processes never deadlock upgrading a read.
      if (plan.puts.length > 0) this.db.transaction(run).immediate();
      else this.db.transaction(run).deferred();
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
    this.stmt(
      `INSERT INTO store_items (namespace, key, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    ).run(ns, op.key, JSON.stringify(op.value), now, now);
  }

  private search_(op: SearchOperation, conditions: Condition[]): SearchItem[] {
    const params: Record<string, unknown> = {
      limit: op.limit ?? 10,
      offset: op.offset ?? 0,
    };
    let scope = "";
    if (op.namespacePrefix.length > 0) {
      Object.assign(
        params,
        { ns: joinNamespace(op.namespacePrefix) },
        descendantRange(op.namespacePrefix),
      );
      scope = `WHERE ${NAMESPACE_WHERE}`;
    }
    const where = conditions.map((c, i) => conditionSql(c, `c${i}`, params));
    const sql = `SELECT namespace, key, value, created_at, updated_at FROM
      (SELECT *, ${ORDER_WINDOW} FROM store_items ${scope}) AS t
      ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY ns_first, seq LIMIT @limit OFFSET @offset`;
    return (this.stmt(sql).all(params) as Row[]).map(toItem);
  }

  private listNamespaces_(op: ListNamespacesOperation): string[][] {
    const prefix = literalPrefix(op);
    const rows = (
      prefix
        ? this.stmt(`SELECT DISTINCT namespace FROM store_items WHERE ${NAMESPACE_WHERE}`).all({
            ns: joinNamespace(prefix),
            ...descendantRange(prefix),
          })
        : this.stmt("SELECT DISTINCT namespace FROM store_items").all()
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
