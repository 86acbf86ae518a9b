// Which backend the server tests run on: a SQLite file per server (the default), or Postgres
// (REFINERY_TEST_BACKEND=postgres, at REFINERY_TEST_POSTGRES_URL, default the CI's
// postgres://postgres@127.0.0.1:5432/test) with one schema per server database: the same
// `dbPath` (a restart) names the same schema. Every schema of a test file shares a prefix and is
// dropped after the file (test/support/backend-setup.ts, a vitest setup file).
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import type { BaseStore } from "@langchain/langgraph-checkpoint";
import Database from "better-sqlite3";
import pg from "pg";
import { processSettingsFromEnv } from "../../core/config.ts";
import { openStore } from "../../core/memory/open-store.ts";
import { openBackend, type PersistenceBackend } from "../../core/storage/backend.ts";

export const TEST_BACKEND: "sqlite" | "postgres" =
  process.env.REFINERY_TEST_BACKEND === "postgres" ? "postgres" : "sqlite";

export const TEST_POSTGRES_URL =
  process.env.REFINERY_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

// Per test file: vitest loads this module afresh for each file.
const prefix = `refinery_t${process.pid}_${randomBytes(3).toString("hex")}`;

/** The environment that points a server at the database of `dbPath` on the test backend. */
export function databaseEnv(dbPath: string): Record<string, string> {
  if (TEST_BACKEND === "sqlite") return { REFINERY_DB: dbPath };
  const schema = `${prefix}_${createHash("sha1").update(dbPath).digest("hex").slice(0, 12)}`;
  return {
    REFINERY_DB: dbPath,
    REFINERY_DATABASE_URL: TEST_POSTGRES_URL,
    REFINERY_DATABASE_SCHEMA: schema,
  };
}

/** Drops every schema this test file's servers created (nothing on SQLite). */
export async function dropTestSchemas(): Promise<void> {
  if (TEST_BACKEND === "sqlite") return;
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
      [`${prefix}_`],
    );
    for (const { nspname } of rows) await admin.query(`DROP SCHEMA "${nspname}" CASCADE`);
  } finally {
    await admin.end();
  }
}

/** The LangGraph store of the server database at `dbPath`, opened beside the server. */
export async function openTestStore(dbPath: string): Promise<{
  store: BaseStore & { sweepExpired(now?: number): number | Promise<number> };
  close(): Promise<void>;
}> {
  const env = databaseEnv(dbPath);
  const opened = await openStore(
    env.REFINERY_DATABASE_URL
      ? { postgresUrl: env.REFINERY_DATABASE_URL, schema: env.REFINERY_DATABASE_SCHEMA }
      : { dbPath },
  );
  return {
    store: opened.store as BaseStore & { sweepExpired(now?: number): number | Promise<number> },
    close: () => opened.close(),
  };
}

/** How many checkpoints of `threadId` the server database at `dbPath` holds (any namespace). */
export async function countCheckpoints(dbPath: string, threadId: string): Promise<number> {
  const env = databaseEnv(dbPath);
  if (!env.REFINERY_DATABASE_URL) {
    const db = new Database(dbPath, { readonly: true });
    try {
      return (
        db.prepare("SELECT COUNT(*) AS n FROM checkpoints WHERE thread_id = ?").get(threadId) as {
          n: number;
        }
      ).n;
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: env.REFINERY_DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      `SELECT COUNT(*) AS n FROM "${env.REFINERY_DATABASE_SCHEMA}".checkpoints WHERE thread_id = $1`,
      [threadId],
    );
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}

/** Run webhook calls still in the outbox of the server database at `dbPath`. */
export async function countWebhookOutbox(dbPath: string): Promise<number> {
  const env = databaseEnv(dbPath);
  if (!env.REFINERY_DATABASE_URL) {
    const db = new Database(dbPath, { readonly: true });
    try {
      return (
        db.prepare("SELECT COUNT(*) AS n FROM refinery_webhook_outbox").get() as { n: number }
      ).n;
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: env.REFINERY_DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      `SELECT COUNT(*) AS n FROM "${env.REFINERY_DATABASE_SCHEMA}".refinery_webhook_outbox`,
    );
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}

/**
 * The persistence backend (storage, checkpoint saver, ...) of the server database at `dbPath` on
 * the test backend, opened beside a server or after it stopped (or died). Close it.
 */
export function openTestBackend(dbPath: string): Promise<PersistenceBackend> {
  return openBackend(processSettingsFromEnv(databaseEnv(dbPath)));
}

/**
 * Runs one SQL statement on the server database at `dbPath`, for tests that read or write rows
 * as only a crash (or an operator) would: unqualified table names, `?` placeholders. Returns the
 * rows it selects (none for a write). JSON columns come back as text on SQLite and parsed on
 * Postgres (`jsonText` reads both); a statement whose SQL differs between the dialects is chosen
 * by the caller with TEST_BACKEND.
 */
export async function queryTestDatabase<T extends object>(
  dbPath: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const env = databaseEnv(dbPath);
  if (!env.REFINERY_DATABASE_URL) {
    const db = new Database(dbPath);
    try {
      const statement = db.prepare(sql);
      if (statement.reader) return statement.all(...params) as T[];
      statement.run(...params);
      return [];
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: env.REFINERY_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`SET search_path TO "${env.REFINERY_DATABASE_SCHEMA}"`);
    let n = 0;
    const { rows } = await client.query(
      sql.replace(/\?/g, () => `$${++n}`),
      params,
    );
    return rows as T[];
  } finally {
    await client.end();
  }
}

/** A JSON column's value as text, whichever backend read it. */
export function jsonText(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Whether the server database at `dbPath` was created: the SQLite file, or the schema. */
export async function testDatabaseExists(dbPath: string): Promise<boolean> {
  const env = databaseEnv(dbPath);
  if (!env.REFINERY_DATABASE_URL) return existsSync(dbPath);
  const client = new pg.Client({ connectionString: env.REFINERY_DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [
      env.REFINERY_DATABASE_SCHEMA,
    ]);
    return rows.length > 0;
  } finally {
    await client.end();
  }
}
