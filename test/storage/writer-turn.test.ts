// The SQLite writer turn (core/storage/sqlite/writer-turn.ts): this process's connections take
// turns to write, handed over at once, instead of meeting at SQLite's lock and sleeping in its busy
// handler. Real threads writing one real file.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { threadId, Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import {
  MAX_WAIT_MS,
  takeWriterTurns,
  writerTurnBuffer,
} from "../../core/storage/sqlite/writer-turn.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function newFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "refinery-turn-"));
  dirs.push(dir);
  const file = join(dir, "db.sqlite");
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.exec("CREATE TABLE t (worker INTEGER, n INTEGER)");
  db.close();
  return file;
}

/** `threads` workers each writing `count` rows at the same moment; their busy refusals. */
async function race(file: string, threads: number, count: number, turn?: SharedArrayBuffer) {
  const start = new SharedArrayBuffer(4);
  const entry = join(import.meta.dirname, "writer-turn-worker.ts");
  const workers = Array.from(
    { length: threads },
    (_, index) =>
      new Worker(new URL("../../server/run-thread.mjs", import.meta.url), {
        workerData: { entry, file, count, index, start, turn },
      }),
  );
  const message = (w: Worker) =>
    new Promise<{ busy: number; written: number }>((resolve, reject) => {
      w.once("message", resolve);
      w.once("error", reject);
    });
  // Every worker has loaded and waits on the start word before any writes.
  await Promise.all(workers.map(message));
  const results = workers.map(message);
  Atomics.store(new Int32Array(start), 0, 1);
  Atomics.notify(new Int32Array(start), 0);
  const out = await Promise.all(results);
  await Promise.all(workers.map((w) => w.terminate()));
  return out;
}

describe("SQLite writer turn", () => {
  it("threads sharing the turn never meet at SQLite's lock: no write refused busy, none lost", async () => {
    const file = newFile();
    const out = await race(file, 3, 1_500, writerTurnBuffer());
    expect(out.map((o) => o.busy)).toEqual([0, 0, 0]);
    const db = new Database(file, { readonly: true });
    expect(db.prepare("SELECT COUNT(*) AS n FROM t").get()).toEqual({ n: 4_500 });
    db.close();
  }, 60_000);

  it("without the turn the same threads do meet there (what the turn saves them)", async () => {
    const out = await race(newFile(), 3, 1_500);
    const busy = out.reduce((a, o) => a + o.busy, 0);
    expect(busy).toBeGreaterThan(0);
  }, 60_000);

  it("a turn left taken (its thread died holding it) delays a write, never blocks it", () => {
    const file = newFile();
    const db = new Database(file);
    takeWriterTurns(db);
    const turn = new Int32Array(writerTurnBuffer());
    Atomics.store(turn, 0, 1_000); // held by a thread that is gone
    const began = performance.now();
    db.prepare("INSERT INTO t (worker, n) VALUES (1, 1)").run();
    expect(performance.now() - began).toBeGreaterThanOrEqual(MAX_WAIT_MS - 1);
    expect(Atomics.load(turn, 0)).toBe(0);
    expect(db.prepare("SELECT COUNT(*) AS n FROM t").get()).toEqual({ n: 1 });
    db.close();
  });

  it("a failing transaction gives the turn back; nested transactions and reads do not take it again", () => {
    const file = newFile();
    const db = new Database(file);
    takeWriterTurns(db);
    const turn = new Int32Array(writerTurnBuffer());
    const insert = db.prepare("INSERT INTO t (worker, n) VALUES (?, ?)");
    const failing = db.transaction(() => {
      insert.run(1, 1);
      throw new Error("boom");
    });
    expect(() => failing.immediate()).toThrow("boom");
    expect(Atomics.load(turn, 0)).toBe(0);
    const inner = db.transaction((n: number) => insert.run(2, n));
    const outer = db.transaction(() => {
      expect(Atomics.load(turn, 0)).toBe(threadId + 1);
      inner(1);
      inner.immediate(2);
      return db.prepare("SELECT COUNT(*) AS n FROM t").get();
    });
    expect(outer.immediate()).toEqual({ n: 2 });
    expect(Atomics.load(turn, 0)).toBe(0);
    db.close();
  });

  it("a thread holding the turn writes on its other connections without waiting for itself", () => {
    const file = newFile();
    const [a, b] = [new Database(file), new Database(newFile())];
    takeWriterTurns(a);
    takeWriterTurns(b);
    const turn = new Int32Array(writerTurnBuffer());
    const write = a.transaction(() => {
      a.prepare("INSERT INTO t (worker, n) VALUES (1, 1)").run();
      // Another connection of this thread (another file): the turn is this thread's already.
      b.prepare("INSERT INTO t (worker, n) VALUES (2, 2)").run();
      expect(Atomics.load(turn, 0)).toBe(threadId + 1);
    });
    write.immediate();
    expect(Atomics.load(turn, 0)).toBe(0);
    expect(b.prepare("SELECT COUNT(*) AS n FROM t").get()).toEqual({ n: 1 });
    a.close();
    b.close();
  });

  it("leaves in-memory databases alone", () => {
    const db = new Database(":memory:");
    const transaction = db.transaction;
    takeWriterTurns(db);
    expect(db.transaction).toBe(transaction);
    db.close();
  });
});
