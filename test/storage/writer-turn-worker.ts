// A worker thread for writer-turn.test.ts (loaded through server/run-thread.mjs): waits for the
// start signal, then writes `count` rows, one IMMEDIATE transaction each, on a connection that
// never waits in SQLite's busy handler (busy_timeout 0), counting the writes SQLite refused busy.
import { workerData, parentPort } from "node:worker_threads";
import Database from "better-sqlite3";
import { takeWriterTurns, useWriterTurn } from "../../core/storage/sqlite/writer-turn.ts";

const data = workerData as {
  file: string;
  count: number;
  index: number;
  start: SharedArrayBuffer;
  turn?: SharedArrayBuffer;
};
if (data.turn) useWriterTurn(data.turn);
const db = new Database(data.file);
takeWriterTurns(db);
const insert = db.prepare("INSERT INTO t (worker, n) VALUES (?, ?)");
const write = db.transaction((n: number) => {
  insert.run(data.index, n);
});
// Opening and preparing read the file, while the other workers open it too: the first to read
// the WAL rebuilds its index, and a reader meanwhile is told SQLITE_BUSY_RECOVERY. That wait is
// left to SQLite's busy handler (better-sqlite3's default timeout); only the writes, from the start
// signal on, run without it.
db.prepare("SELECT COUNT(*) FROM t").get();
db.pragma("busy_timeout = 0");
const start = new Int32Array(data.start);
parentPort!.postMessage({ ready: true });
Atomics.wait(start, 0, 0);
let busy = 0;
let written = 0;
for (let n = 0; n < data.count; n++) {
  try {
    write.immediate(n);
    written++;
  } catch (err) {
    if ((err as { code?: string }).code !== "SQLITE_BUSY") throw err;
    busy++;
  }
}
db.close();
parentPort!.postMessage({ busy, written });
