// The Postgres backend (REFINERY_DATABASE_URL): all state in one schema of one database, shared by
// every process. Opening migrates the schema (versioned, under an advisory lock, see
// migrations.ts), then sets up PostgresSaver's tables under the same lock; the store's table is
// created by the store (core/memory/postgres-store.ts). One pool per backend, shared by the store.
import type pg from "pg";
import type { ProcessSettings } from "../../config.ts";
import { RefineryError } from "../../errors.ts";
import type { BackendOptions, PersistenceBackend } from "../backend.ts";
import { createPostgresApprovalNotices } from "./approval-notices.ts";
import { createPostgresCheckpointAdmin } from "./checkpoint-admin.ts";
import { createPostgresEvalJobStore } from "./eval-jobs.ts";
import { createPostgresFeedbackInbox } from "./feedback-inbox.ts";
import { createPostgresGraphSpecStore } from "./graph-specs.ts";
import { createPostgresLearningRecords } from "./learning-records.ts";
import { LimitedPostgresSaver } from "./saver.ts";
import { openPostgresPool } from "./pool.ts";
import { openPostgresStorage } from "./storage.ts";

const FIELD = "REFINERY_DATABASE_URL";
// Advisory lock class of the saver's own setup (second key: the schema's hash).
const SAVER_SETUP_LOCK = 0x52465356; // "RFSV"

export async function openPostgresBackend(
  database: { url: string; schema: string; packCheckpoints?: boolean },
  settings: ProcessSettings,
  options: BackendOptions = {},
): Promise<PersistenceBackend> {
  const { url, schema } = database;
  const where = `${redactUrl(url)} (schema ${schema})`;
  const pool = openPostgresPool(url, options.thread ? 5 : 10);
  try {
    const pack = database.packCheckpoints ?? true;
    const storage = await openPostgresStorage({ connection: pool, schema, pack });
    const saver = new LimitedPostgresSaver(pool, schema, settings.stateLimits, options.runMetadata);
    if (!options.thread) await underLock(pool, schema, () => saver.setup());
    return {
      kind: "postgres",
      where,
      saver,
      storage,
      inbox: createPostgresFeedbackInbox(pool, schema),
      checkpoints: createPostgresCheckpointAdmin(pool, schema, (t) => saver.forget(t), {
        pack,
      }),
      records: createPostgresLearningRecords(pool, schema),
      graphSpecs: createPostgresGraphSpecStore(pool, schema),
      approvalNotices: createPostgresApprovalNotices(pool, schema),
      evalJobs: createPostgresEvalJobStore(pool, schema),
      store: { postgresPool: pool, schema },
      async ping() {
        await pool.query("SELECT 1");
      },
      async close() {
        await storage.close();
        await pool.end();
      },
    };
  } catch (err) {
    await pool.end().catch(() => {});
    throw openFailure(err, url);
  }
}

/** Runs `work` while holding the schema's setup lock (on a connection of its own). */
async function underLock(pool: pg.Pool, schema: string, work: () => Promise<void>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1, hashtext($2))", [SAVER_SETUP_LOCK, schema]);
    try {
      await work();
    } finally {
      await client.query("SELECT pg_advisory_unlock($1, hashtext($2))", [SAVER_SETUP_LOCK, schema]);
    }
  } finally {
    client.release();
  }
}

/** A Postgres URL with its password replaced by ***, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    for (const key of [...u.searchParams.keys()])
      if (/pass/i.test(key)) u.searchParams.set(key, "***");
    return u.toString();
  } catch {
    return "(REFINERY_DATABASE_URL is not a valid URL)";
  }
}

/** Why the backend did not open, in one line naming the URL (redacted) and the fix. */
function openFailure(err: unknown, url: string): RefineryError {
  const shown = redactUrl(url);
  const cause = err instanceof RefineryError && err.cause !== undefined ? err.cause : err;
  const code = (cause as { code?: string }).code ?? "";
  const detail = (cause as Error).message || code || String(cause);
  const make = (message: string, fix: string, retryable: boolean) =>
    new RefineryError("storage_error", message, { field: FIELD, fix, retryable, cause: err });
  if (
    ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH"].includes(code) ||
    /timeout/i.test(detail)
  ) {
    return make(
      `cannot reach Postgres at ${shown} (${code || "connection timed out"})`,
      "start Postgres, or correct the host and port in REFINERY_DATABASE_URL (unset it to use the SQLite file)",
      true,
    );
  }
  if (code === "28P01" || code === "28000") {
    return make(
      `Postgres at ${shown} refused the credentials (${detail})`,
      "correct the user and password in REFINERY_DATABASE_URL",
      false,
    );
  }
  if (code === "3D000") {
    return make(
      `the Postgres database of ${shown} does not exist`,
      "create it (createdb) or name an existing database in REFINERY_DATABASE_URL",
      false,
    );
  }
  if (err instanceof RefineryError && err.code !== "storage_error") return err;
  return make(
    `cannot open the Postgres database at ${shown} (${(cause as Error).message ?? code})`,
    err instanceof RefineryError && err.fix
      ? err.fix
      : "check REFINERY_DATABASE_URL and that Postgres is up",
    err instanceof RefineryError ? err.retryable : true,
  );
}
