// Opens the checkpoint store: a SQLite file by default (WAL, so a crash mid-write leaves the
// last committed checkpoint intact), or an in-memory saver for tests.
import { mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { MemorySaver, type BaseCheckpointSaver } from "@langchain/langgraph";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import Database from "better-sqlite3";
import { RefineryError } from "./errors.ts";

export interface OpenedCheckpointer {
  saver: BaseCheckpointSaver;
  /** The open database, shared with other tables that live beside the checkpoints. */
  db?: Database.Database;
  close(): void;
}

export function openSqliteCheckpointer(path: string): OpenedCheckpointer {
  const file = resolve(path);
  const fix = "set REFINERY_DB (or `db` in the config file) to a writable SQLite file path";
  try {
    if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
      throw new RefineryError("invalid_config", `database path ${file} is a directory`, {
        field: "REFINERY_DB",
        fix,
      });
    }
    mkdirSync(dirname(file), { recursive: true });
  } catch (err) {
    if (err instanceof RefineryError) throw err;
    throw new RefineryError(
      "invalid_config",
      `cannot create the database folder for ${file}: ${(err as Error).message}`,
      {
        field: "REFINERY_DB",
        fix,
      },
    );
  }
  let db: Database.Database;
  try {
    db = new Database(file);
    // Touch the schema so a file that is not a SQLite database fails here, not mid-run.
    db.pragma("schema_version");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("busy_timeout = 5000");
    const check = db.pragma("quick_check", { simple: true });
    if (check !== "ok") throw new Error(`integrity check failed: ${String(check)}`);
  } catch (err) {
    throw new RefineryError(
      "storage_error",
      `cannot open ${file} as a SQLite database (${(err as Error).message})`,
      {
        field: "REFINERY_DB",
        fix: "point REFINERY_DB at a new file or a Refinery database; move the damaged file away",
      },
    );
  }
  const saver = new SqliteSaver(db);
  return {
    saver,
    db,
    close: () => {
      if (db.open) db.close();
    },
  };
}

export function openMemoryCheckpointer(): OpenedCheckpointer {
  return { saver: new MemorySaver(), close: () => {} };
}
