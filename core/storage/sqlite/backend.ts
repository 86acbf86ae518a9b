// The SQLite backend: every table in one file (REFINERY_DB), beside the checkpoints. Its `db` is
// there for what only SQLite has (the server's WAL checkpointer thread).
import type Database from "better-sqlite3";
import { openSqliteCheckpointer } from "../../checkpointer.ts";
import type { ProcessSettings } from "../../config.ts";
import type { BackendOptions, PersistenceBackend } from "../backend.ts";
import { createSqliteCheckpointAdmin, ensureSaverSetup } from "../checkpoint-admin.ts";
import { createSqliteFeedbackInbox } from "../feedback-inbox.ts";
import { createSqliteLearningRecords } from "./learning-records.ts";
import { createSqliteStorage } from "./storage.ts";
import { createSqliteApprovalNotices } from "./approval-notices.ts";
import { createSqliteEvalJobStore } from "./eval-jobs.ts";
import { createSqliteGraphSpecStore } from "./graph-specs.ts";

export interface SqliteBackend extends PersistenceBackend {
  readonly kind: "sqlite";
  readonly db: Database.Database;
}

export async function openSqliteBackend(
  settings: ProcessSettings,
  options: BackendOptions = {},
): Promise<SqliteBackend> {
  const opened = openSqliteCheckpointer(settings.dbPath, {
    // A run thread's file was checked by the server thread (a quick_check reads the whole file;
    // above QUICK_CHECK_MAX_BYTES, on the server's WAL thread after it listens).
    check: !options.thread,
    limits: settings.stateLimits,
    runMetadata: options.runMetadata,
    packOnCompact: options.compactAfterRuns,
  });
  const db = opened.db!;
  try {
    // The server thread's connection copies the WAL into the database file (its own commits and
    // a timer); run threads only append to it, so checkpointing stays off their path.
    if (options.thread) db.pragma("wal_autocheckpoint = 0");
    await ensureSaverSetup(opened.saver);
    const storage = createSqliteStorage(db);
    return {
      kind: "sqlite",
      where: db.name,
      db,
      saver: opened.saver,
      storage,
      inbox: createSqliteFeedbackInbox(db),
      checkpoints: createSqliteCheckpointAdmin(db, opened.saver),
      records: createSqliteLearningRecords(db),
      graphSpecs: createSqliteGraphSpecStore(db),
      approvalNotices: createSqliteApprovalNotices(db),
      evalJobs: createSqliteEvalJobStore(db),
      store: { db },
      async ping() {
        db.prepare("SELECT 1").get();
      },
      async close() {
        await storage.close();
        opened.close();
      },
    };
  } catch (err) {
    opened.close();
    throw err;
  }
}
