// Copies the SQLite write-ahead log back into the database file from a thread of its own. A WAL
// checkpoint copies every page committed since the last one and syncs the file. SQLite's default
// (wal_autocheckpoint = 1000 pages) makes whichever connection commits past that size do it, so
// every ~20 runs a request or a run step paid a few milliseconds for it (measured: 4-16 ms in one
// run's outcome write out of ten). With this thread running, no connection of the server
// checkpoints on commit; this one does, on a timer: PASSIVE (it never waits for readers or
// writers) while the WAL is small. PASSIVE alone never lets the WAL start over under steady load
// (some reader always holds an older snapshot; measured: 1.5 GB of WAL after 3,900 runs at 16
// concurrent), so once the WAL holds more than `restartBytes` it also checkpoints with RESTART,
// which waits for the readers of old snapshots (holding new writers meanwhile) so that the next
// commit writes the WAL from its start again. The file then stays near `restartBytes`. It also
// runs the integrity check of a file too large to check at start-up (QUICK_CHECK_MAX_BYTES).
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";
import { databaseBytes, QUICK_CHECK_MAX_BYTES } from "../core/checkpointer.ts";
import type { Logger } from "./log.ts";

/** What the thread runs (CommonJS, no loader needed): open the file, checkpoint every `everyMs`. */
const SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
// How long a RESTART waits for old readers (and holds writers) before it gives up until next tick.
db.pragma("busy_timeout = 1000");
db.pragma("wal_autocheckpoint = 0");
// A WAL frame is a page and its 24-byte header.
const frameBytes = db.pragma("page_size", { simple: true }) + 24;
let failed = false;
const checkpoint = () => {
  try {
    // \`log\`: the frames in the WAL now. The file keeps its size when the WAL starts over, so the
    // frame count, not the file, tells when it has grown past the limit.
    const [{ log }] = db.pragma("wal_checkpoint(PASSIVE)");
    if (log * frameBytes > workerData.restartBytes) db.pragma("wal_checkpoint(RESTART)");
    failed = false;
  } catch (err) {
    // Reported once per run of failures, not every tick.
    if (!failed) parentPort.postMessage({ error: String((err && err.message) || err) });
    failed = true;
  }
};
const timer = setInterval(checkpoint, workerData.everyMs);
// A file too large to check as it opened (QUICK_CHECK_MAX_BYTES) is checked here, once, after the
// server listens: a reader in WAL mode holds up neither the server's writes nor its requests.
if (workerData.integrityCheck) {
  setTimeout(() => {
    try {
      const result = db.pragma("quick_check", { simple: true });
      if (result !== "ok") parentPort.postMessage({ integrity: String(result) });
    } catch (err) {
      parentPort.postMessage({ integrity: String((err && err.message) || err) });
    }
  }, 0);
}
parentPort.on("message", (message) => {
  if (message !== "close") return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

const DRIVER = createRequire(import.meta.url).resolve("better-sqlite3");

export class WalCheckpointer {
  private closing = false;
  private readonly exited: Promise<void>;

  private constructor(private readonly worker: Worker) {
    this.exited = new Promise<void>((r) => worker.once("exit", () => r()));
  }

  /**
   * Starts the thread for the file `db` is open on and turns checkpointing on commit off for `db`
   * (other connections to the file turn it off themselves). If the thread stops, `db` checkpoints
   * on commit again, as SQLite does by default.
   */
  static start(
    db: Database.Database,
    log: Logger,
    options: { everyMs?: number; restartBytes?: number } = {},
  ): WalCheckpointer {
    const everyMs = options.everyMs ?? 200;
    const restartBytes = options.restartBytes ?? 32 * 1024 * 1024;
    const worker = new Worker(SOURCE, {
      eval: true,
      workerData: {
        driver: DRIVER,
        file: resolve(db.name),
        everyMs,
        restartBytes,
        integrityCheck: databaseBytes(resolve(db.name)) > QUICK_CHECK_MAX_BYTES,
      },
    });
    worker.unref();
    const self = new WalCheckpointer(worker);
    db.pragma("wal_autocheckpoint = 0");
    worker.on("message", (m: { error?: string; integrity?: string }) => {
      if (m.error) log("warn", "WAL checkpoint failed", { error: m.error });
      if (m.integrity)
        log("error", `integrity check of ${db.name} failed: ${m.integrity}`, {
          field: "REFINERY_DB",
          fix: "stop the server, move the damaged file away (or restore a backup) and start again",
        });
    });
    worker.on("error", (err) => {
      log("error", "WAL checkpoint thread crashed", { error: err.message });
    });
    worker.on("exit", () => {
      if (self.closing || !db.open) return;
      db.pragma("wal_autocheckpoint = 1000");
      log("warn", "WAL checkpoint thread stopped; the server thread checkpoints on commit again");
    });
    return self;
  }

  /** A last checkpoint, then the thread's connection closes. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.worker.postMessage("close");
    const timer = setTimeout(() => void this.worker.terminate(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}
