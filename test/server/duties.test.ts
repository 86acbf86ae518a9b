// Periodic duties across processes sharing one database: exactly one DutyLeader does a duty at a
// time, keeps it while it passes, and hands it over when it stops (gracefully: at once; by
// crashing: when its lease lapses). Two leaders on one SQLite file stand for two processes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { createSqliteStorage } from "../../core/storage/sqlite.ts";
import { DutyLeader } from "../../server/duties.ts";
import { silentLogger } from "../../server/log.ts";

const dirs: string[] = [];
const dbs: Database.Database[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function leaders(leaseMs: number): [DutyLeader, DutyLeader] {
  const dir = mkdtempSync(join(tmpdir(), "refinery-duties-"));
  dirs.push(dir);
  const open = () => {
    const db = new Database(join(dir, "refinery.db"));
    db.pragma("journal_mode = WAL");
    dbs.push(db);
    return createSqliteStorage(db);
  };
  return [
    new DutyLeader(open().duties, () => leaseMs, silentLogger),
    new DutyLeader(open().duties, () => leaseMs, silentLogger),
  ];
}

describe("DutyLeader", () => {
  it("one process does each duty; the other takes it over at once after a graceful stop", async () => {
    const [a, b] = leaders(60_000);
    expect(await a.holds("approvals")).toBe(true);
    expect(await b.holds("approvals")).toBe(false);
    expect(await b.holds("thread-sweep")).toBe(true);
    // Passes renew the lease: it stays with its holder.
    for (let i = 0; i < 3; i++) {
      expect(await a.holds("approvals")).toBe(true);
      expect(await b.holds("approvals")).toBe(false);
    }
    await a.releaseAll();
    expect(await b.holds("approvals")).toBe(true);
  });

  it("a holder that stops passing (crashed) loses the duty once its lease lapses", async () => {
    // A lease of 0 ms lapses at once: b does not wait for a clock.
    const [a, b] = leaders(0);
    expect(await a.holds("store-sweep")).toBe(true);
    expect(await b.holds("store-sweep")).toBe(true);
    expect(await a.holds("store-sweep")).toBe(true);
  });
});
