// The persistence seam: everything the server keeps, opened from one backend. SQLite (one file,
// the embedded default) or Postgres (REFINERY_DATABASE_URL: every process of a deployment shares
// it). Both implementations mirror each other: core/storage/sqlite/backend.ts and
// core/storage/postgres/backend.ts. The server and graphs only see this interface.
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import type { ProcessSettings } from "../config.ts";
import type { OpenStoreOptions } from "../memory/open-store.ts";
import type { ApprovalNotices } from "./approval-notices.ts";
import type { CheckpointAdmin } from "./checkpoint-admin.ts";
import type { EvalJobStore } from "./eval-jobs.ts";
import type { FeedbackInbox } from "./feedback-inbox.ts";
import type { GraphSpecStore } from "./graph-specs.ts";
import type { LearningRecords } from "./sqlite/learning-records.ts";
import type { Storage } from "./types.ts";

export interface PersistenceBackend {
  readonly kind: "sqlite" | "postgres";
  /** Where the state lives, for logs and /ok: the SQLite file, or Postgres without credentials. */
  readonly where: string;
  /** LangGraph's checkpoint saver, with the state limits (REFINERY_MAX_*_BYTES). */
  readonly saver: BaseCheckpointSaver;
  readonly storage: Storage;
  readonly inbox: FeedbackInbox;
  readonly checkpoints: CheckpointAdmin;
  /** Run outcomes and ratings of the learning loop. */
  readonly records: LearningRecords;
  readonly graphSpecs: GraphSpecStore;
  readonly approvalNotices: ApprovalNotices;
  /** Evaluation jobs (POST /eval) and their records. */
  readonly evalJobs: EvalJobStore;
  /** Where the LangGraph store (Store API, lessons) lives unless REFINERY_STORE_URL moves it. */
  readonly store: OpenStoreOptions;
  /** Resolves once the database answers a query (GET /ok). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface BackendOptions {
  /** A run thread's backend: the server thread opened (and checked, migrated) it first. */
  thread?: boolean;
  /** Store each run's config.metadata in its checkpoints' metadata (the server). */
  runMetadata?: boolean;
  /**
   * The caller compacts each thread's checkpoints when its run ends (the server's runners): the
   * SQLite saver then packs a checkpoint row at compaction instead of at each put.
   */
  compactAfterRuns?: boolean;
}

/** Postgres when `settings.database` is set (REFINERY_DATABASE_URL), else the SQLite file. */
export async function openBackend(
  settings: ProcessSettings,
  options: BackendOptions = {},
): Promise<PersistenceBackend> {
  if (settings.database) {
    // Loaded on demand: the embedded default (and every CLI start) need not load pg.
    const { openPostgresBackend } = await import("./postgres/backend.ts");
    return openPostgresBackend(settings.database, settings, options);
  }
  const { openSqliteBackend } = await import("./sqlite/backend.ts");
  return openSqliteBackend(settings, options);
}
