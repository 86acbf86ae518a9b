// One writer at a time among this process's connections to SQLite (the server thread's, each run
// thread's, the store's), handed over at once instead of after SQLite's busy sleep.
//
// WAL lets readers run beside a writer, but writers take turns: a connection that finds another
// writing waits in SQLite's busy handler (busy_timeout), which sleeps 1, 2, 5, 10, 15, 20 ms ...
// between tries and, better-sqlite3 being synchronous, blocks its thread's event loop meanwhile.
// A write here lasts 0.05-0.3 ms, so nearly all of each sleep is waste: at 16 concurrent runs on
// the server bench, strace counted ~260 such sleeps a second in each of the server thread and the
// run thread, most of them 1-2 ms (bench/RESULTS.md, issue 20).
//
// Before a write transaction (or a write statement outside one) a connection takes the turn, a
// word in a SharedArrayBuffer the server thread hands its worker threads; a connection that finds
// it taken waits with Atomics.wait and is woken by Atomics.notify the moment it is released. The
// turn is advisory: SQLite's own lock stays the one that counts, and still orders this process's
// writes against other processes (the CLI, another server on the file). A thread terminated
// while it held the turn cannot stall the others: a wait gives up after MAX_WAIT_MS and takes the
// turn anyway, which at worst lets two writers meet at SQLite's lock, as without the turn.
import { isMainThread, threadId } from "node:worker_threads";
import type Database from "better-sqlite3";

const FREE = 0;
/** The turn holds the holder's thread id + 1, so a thread that holds it does not wait on itself. */
const MINE = threadId + 1;
/** Longest wait for the turn; then it is taken anyway (a holder that died, or a long write). */
export const MAX_WAIT_MS = 200;

let cell: Int32Array | undefined;

/**
 * The turn's buffer: the one installed in this thread (useWriterTurn), else a new one. The
 * server thread passes it to its run threads (workerData) so they share its turn.
 */
export function writerTurnBuffer(): SharedArrayBuffer {
  cell ??= new Int32Array(new SharedArrayBuffer(4));
  return cell.buffer as SharedArrayBuffer;
}

/** In a worker thread: share the turn of the thread that started it (before opening a database). */
export function useWriterTurn(buffer: SharedArrayBuffer | undefined): void {
  if (buffer instanceof SharedArrayBuffer && buffer.byteLength >= 4) cell = new Int32Array(buffer);
}

/**
 * Takes the turn; false when this thread already holds it (a write on another of its connections
 * inside a transaction), which the caller then must not release.
 */
function acquire(turn: Int32Array): boolean {
  const seen = Atomics.compareExchange(turn, 0, FREE, MINE);
  if (seen === FREE) return true;
  if (seen === MINE) return false;
  const deadline = performance.now() + MAX_WAIT_MS;
  for (;;) {
    const holder = Atomics.load(turn, 0);
    // Woken by release's notify; the 1 ms bound only covers a notify that came before the wait.
    if (holder !== FREE) Atomics.wait(turn, 0, holder, 1);
    if (Atomics.compareExchange(turn, 0, FREE, MINE) === FREE) return true;
    if (performance.now() > deadline) {
      Atomics.store(turn, 0, MINE);
      return true;
    }
  }
}

function release(turn: Int32Array): void {
  Atomics.store(turn, 0, FREE);
  Atomics.notify(turn, 0, 1);
}

function taking<A extends unknown[], R>(
  db: Database.Database,
  turn: Int32Array,
  fn: (...args: A) => R,
): (...args: A) => R {
  return function (this: unknown, ...args: A): R {
    // Inside a transaction this connection already holds SQLite's lock (and the turn, when the
    // transaction began here); taking the turn there could wait on a thread that waits on us.
    if (db.inTransaction || !acquire(turn)) return fn.apply(this, args);
    try {
      return fn.apply(this, args);
    } finally {
      release(turn);
    }
  };
}

type TransactionFn = ReturnType<Database.Database["transaction"]>;
const VARIANTS = ["deferred", "immediate", "exclusive"] as const;

/**
 * Makes `db`'s write transactions and write statements take the process's writer turn. Applied
 * to a file connection as it opens; a no-op for in-memory databases (not shared).
 */
export function takeWriterTurns(db: Database.Database): void {
  if (db.memory) return;
  // The server thread always has a turn; a worker thread only one it was given.
  if (!cell && !isMainThread) return;
  const turn = new Int32Array(writerTurnBuffer());
  const transaction = db.transaction.bind(db);
  db.transaction = ((fn: (...args: unknown[]) => unknown) => {
    const txn = transaction(fn) as TransactionFn;
    const wrapped = taking(db, turn, txn) as unknown as TransactionFn;
    for (const v of VARIANTS) {
      Object.defineProperty(wrapped, v, {
        value: taking(db, turn, txn[v]),
        enumerable: true,
      });
    }
    Object.defineProperty(wrapped, "default", { value: wrapped, enumerable: true });
    return wrapped;
  }) as Database.Database["transaction"];
  const prepare = db.prepare.bind(db);
  db.prepare = ((source: string) => {
    const stmt = prepare(source);
    if (!stmt.readonly) {
      const s = stmt as unknown as Record<"run" | "get" | "all", (...args: unknown[]) => unknown>;
      s.run = taking(db, turn, s.run);
      s.get = taking(db, turn, s.get);
      s.all = taking(db, turn, s.all);
    }
    return stmt;
  }) as Database.Database["prepare"];
}
