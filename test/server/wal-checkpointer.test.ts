// The WAL checkpoint thread: the server's connections no longer copy the write-ahead log into the
// database file on commit; a thread of its own does, soon after each commit. What is in the
// database file alone (without its -wal) is read from a copy of that file.
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isRefineryError, type RefineryError } from "../../core/errors.ts";
import type { Logger } from "../../server/log.ts";
import { startServer, type StartOptions } from "../../server/start.ts";
import { WalCheckpointer } from "../../server/wal-checkpointer.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "refinery-wal-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `sql` on a copy of the database file without its WAL: what has been checkpointed. */
function inMainFile<T>(file: string, sql: string): T | undefined {
  const copy = `${file}.copy-${Math.random().toString(36).slice(2)}`;
  try {
    copyFileSync(file, copy);
    const db = new Database(copy, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(sql).pluck().get() as T;
    } finally {
      db.close();
    }
  } catch {
    return undefined; // no table yet, or a copy taken mid-write
  } finally {
    rmSync(copy, { force: true });
  }
}

async function eventually<T>(probe: () => T, ok: (v: T) => boolean, ms = 3_000): Promise<T> {
  const until = Date.now() + ms;
  let value = probe();
  while (!ok(value) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 25));
    value = probe();
  }
  return value;
}

function openWal(file: string): Database.Database {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  return db;
}

describe("WalCheckpointer", () => {
  it("copies commits into the database file from its thread; the connection does not", async () => {
    const file = join(dir, "unit.db");
    const db = openWal(file);
    db.exec("CREATE TABLE t (n INTEGER)");
    db.pragma("wal_checkpoint(TRUNCATE)");
    db.pragma("wal_autocheckpoint = 0");
    const insert = db.prepare("INSERT INTO t VALUES (?)");
    for (let i = 0; i < 50; i++) insert.run(i);
    // Without the thread, commits stay in the WAL.
    await new Promise((r) => setTimeout(r, 200));
    expect(inMainFile<number>(file, "SELECT count(*) FROM t")).toBe(0);

    const logs: string[] = [];
    const wal = WalCheckpointer.start(db, (_level, msg) => logs.push(msg), { everyMs: 50 });
    expect(db.pragma("wal_autocheckpoint", { simple: true })).toBe(0);
    for (let i = 50; i < 300; i++) insert.run(i);
    const count = () => inMainFile<number>(file, "SELECT count(*) FROM t");
    expect(await eventually(count, (n) => n === 300)).toBe(300);

    await wal.close();
    expect(logs).toEqual([]);
    // The connection keeps working, and still does not checkpoint on commit.
    insert.run(300);
    expect(db.pragma("wal_autocheckpoint", { simple: true })).toBe(0);
    db.close();
  });

  it("hands checkpointing back to the connection when its thread cannot run", async () => {
    const file = join(dir, "gone.db");
    const db = openWal(file);
    rmSync(file); // the thread opens the file by name and finds nothing
    const logs: { level: string; msg: string }[] = [];
    const log: Logger = (level, msg) => logs.push({ level, msg });
    const wal = WalCheckpointer.start(db, log, { everyMs: 50 });
    await eventually(
      () => logs.length,
      (n) => n >= 2,
    );
    expect(logs.map((l) => l.level)).toEqual(["error", "warn"]);
    expect(logs[1]?.msg).toMatch(/checkpoints on commit again/);
    expect(db.pragma("wal_autocheckpoint", { simple: true })).toBe(1000);
    await wal.close();
    db.close();
  });
});

/** The server on `file`, quiet, on a free loopback port (or `options.port`). */
function start(file: string, options: StartOptions = {}) {
  return startServer({
    env: { REFINERY_DB: file },
    port: 0,
    host: "127.0.0.1",
    log: () => {},
    runThreads: 1,
    ...options,
  });
}

describe("server", () => {
  it("a finished run reaches the database file itself within moments", async () => {
    const file = join(dir, "server.db");
    const running = await start(file);
    try {
      const client = new Client({ apiUrl: running.url, callerOptions: { maxRetries: 0 } });
      const thread = await client.threads.create();
      const run = await client.runs.create(thread.thread_id, "refine", {
        input: { task: "What is 2 + 2?" },
      });
      await client.runs.join(thread.thread_id, run.run_id);
      const status = () =>
        inMainFile<string>(file, `SELECT status FROM refinery_runs WHERE run_id = '${run.run_id}'`);
      expect(await eventually(status, (s) => s === "success")).toBe("success");
    } finally {
      await running.close(2_000);
    }
  });

  it("under steady concurrent load the WAL starts over instead of growing with every run", async () => {
    const file = join(dir, "load.db");
    const restartBytes = 1024 * 1024;
    const running = await start(file, { runThreads: 2, walRestartBytes: restartBytes });
    try {
      const client = new Client({
        apiUrl: running.url,
        callerOptions: { maxRetries: 0, maxConcurrency: 16 },
      });
      let started = 0;
      let largest = 0;
      const worker = async () => {
        while (started < 160) {
          started += 1;
          await client.runs.wait(null, "refine", { input: { task: "What is 2 + 2?" } });
          largest = Math.max(largest, statSync(`${file}-wal`).size);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      // Checkpoints that never wait for readers let it grow by hundreds of KB per run (37.5 MB
      // here). With restarts it stays within a few times the limit: how far past it depends on how
      // many runs commit between two 200 ms ticks (4.2-6.3 MiB seen), so the bound leaves room.
      expect(largest).toBeGreaterThan(restartBytes);
      expect(largest).toBeLessThan(12 * restartBytes);
    } finally {
      await running.close(2_000);
    }
  });

  it("a port already taken fails start-up and leaves no connection to the file open", async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as { port: number }).port;
    const file = join(dir, "taken.db");
    try {
      const failed = await start(file, { port }).catch((err: unknown) => err);
      expect(isRefineryError(failed)).toBe(true);
      expect((failed as RefineryError).toLine()).toBe(
        `PORT: port ${port} on 127.0.0.1 is already in use Fix: stop the process that holds it, ` +
          "or choose another port with PORT or --port",
      );
      // The last connection to close removes the WAL file: none is left open.
      expect(existsSync(`${file}-wal`)).toBe(false);
      expect(existsSync(file)).toBe(true);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});
