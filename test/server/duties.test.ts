// Periodic duties across processes sharing one database: exactly one DutyLeader does a duty at a
// time, keeps it while it passes, and hands it over when it stops (gracefully: at once; by
// crashing: when its lease lapses). Two leaders on one database (two connections to the SQLite
// file, or two pools on the Postgres schema) stand for two processes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { PersistenceBackend } from "../../core/storage/backend.ts";
import { DutyLeader } from "../../server/duties.ts";
import { silentLogger } from "../../server/log.ts";
import { openTestBackend } from "../support/test-backend.ts";

const dirs: string[] = [];
const backends: PersistenceBackend[] = [];
afterEach(async () => {
  for (const backend of backends.splice(0)) await backend.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function leaders(leaseMs: number): Promise<[DutyLeader, DutyLeader]> {
  const dir = mkdtempSync(join(tmpdir(), "refinery-duties-"));
  dirs.push(dir);
  const open = async () => {
    const backend = await openTestBackend(join(dir, "refinery.db"));
    backends.push(backend);
    return backend.storage;
  };
  const first = await open(); // creates (migrates) the database before the second opens it
  return [
    new DutyLeader(first.duties, () => leaseMs, silentLogger),
    new DutyLeader((await open()).duties, () => leaseMs, silentLogger),
  ];
}

describe("DutyLeader", () => {
  it("one process does each duty; the other takes it over at once after a graceful stop", async () => {
    const [a, b] = await leaders(60_000);
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
    const [a, b] = await leaders(0);
    expect(await a.holds("store-sweep")).toBe(true);
    expect(await b.holds("store-sweep")).toBe(true);
    expect(await a.holds("store-sweep")).toBe(true);
  });
});
