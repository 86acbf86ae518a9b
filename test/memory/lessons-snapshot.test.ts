// retrieve reads a snapshot of an assistant's lessons instead of the whole namespace on every
// generate step. Writes through the same LessonMemory must show at once; writes by another
// process (here: another LessonMemory on the same SQLite file) within `snapshotMs`.
// And runs that end together must not lose a lesson's counts or add the same lesson twice, in one
// instance, and across instances (processes) with the database's lease lock (leaseLock).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { leaseLock } from "../../core/memory/lease-lock.ts";
import { LessonMemory } from "../../core/memory/lessons.ts";
import { openStore, type OpenedStore } from "../../core/memory/open-store.ts";
import { createSqliteStorage } from "../../core/storage/sqlite/storage.ts";

const dir = mkdtempSync(join(tmpdir(), "refinery-lesson-snapshot-"));
const opened: OpenedStore[] = [];
const dbs: Database.Database[] = [];
let files = 0;

afterAll(async () => {
  for (const s of opened) await s.close();
  for (const db of dbs) db.close();
  rmSync(dir, { recursive: true, force: true });
});

async function sqlite(path = join(dir, `s-${(files += 1)}.db`)) {
  const s = await openStore({ dbPath: path });
  opened.push(s);
  return { store: s.store, path };
}

const A = "assistant-a";
const SPEED = {
  text: "Convert minutes to hours before computing a speed in km/h.",
  graph_id: "refine",
  task: "A train travels 90 km in 45 minutes. What is its average speed in km/h?",
  source: "critique" as const,
};
const TASK = "A bus travels 60 km in 50 minutes. What is its average speed?";

describe("LessonMemory.retrieve snapshot", () => {
  it("shows this instance's adds, edits, demotions and deletes at once", async () => {
    const { store } = await sqlite();
    // A long snapshot life: only the instance's own writes can make the changes visible.
    const m = new LessonMemory(store, { snapshotMs: 3_600_000, demoteAfter: 1 });
    expect(await m.retrieve(A, TASK)).toEqual([]);
    const { lesson } = await m.add(A, SPEED);
    expect((await m.retrieve(A, TASK)).map((l) => l.text)).toEqual([SPEED.text]);

    await m.update(A, lesson.id, { text: "Convert minutes to hours first; speed is km/h." });
    expect((await m.retrieve(A, TASK)).map((l) => l.text)).toEqual([
      "Convert minutes to hours first; speed is km/h.",
    ]);

    await m.recordUse(A, [lesson.id], false);
    expect((await m.get(A, lesson.id))!.demoted).toBe(true);
    expect(await m.retrieve(A, TASK)).toEqual([]);
    await m.update(A, lesson.id, { demoted: false });
    expect(await m.retrieve(A, TASK)).toHaveLength(1);

    expect(await m.delete(A, lesson.id)).toBe(true);
    expect(await m.retrieve(A, TASK)).toEqual([]);
  });

  it("evicted lessons leave the snapshot with the cap", async () => {
    const { store } = await sqlite();
    const m = new LessonMemory(store, { snapshotMs: 3_600_000, maxLessons: 1 });
    await m.add(A, SPEED);
    expect(await m.retrieve(A, TASK)).toHaveLength(1);
    const { lesson } = await m.add(A, {
      ...SPEED,
      text: "State the speed's unit, km/h, in the answer line.",
      pinned: true,
    });
    expect((await m.retrieve(A, TASK)).map((l) => l.id)).toEqual([lesson.id]);
  });

  it("sees another process's writes once the snapshot is older than snapshotMs", async () => {
    const { store, path } = await sqlite();
    const other = new LessonMemory((await sqlite(path)).store);
    const cached = new LessonMemory(store, { snapshotMs: 3_600_000 });
    const shortLived = new LessonMemory(store, { snapshotMs: 1 });
    const uncached = new LessonMemory(store, { snapshotMs: 0 });
    for (const m of [cached, shortLived, uncached]) expect(await m.retrieve(A, TASK)).toEqual([]);
    await other.add(A, SPEED);
    expect(await uncached.retrieve(A, TASK)).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await shortLived.retrieve(A, TASK)).toHaveLength(1);
    // Within its snapshot life the cached instance still ranks what it read...
    expect(await cached.retrieve(A, TASK)).toEqual([]);
    // ...and list, add and the other reads go to the store and refresh the snapshot.
    expect(await cached.list(A)).toHaveLength(1);
    expect(await cached.retrieve(A, TASK)).toHaveLength(1);
  });
});

describe("LessonMemory with runs ending together in one process", () => {
  it("counts every use and adds a lesson once", async () => {
    const { store } = await sqlite();
    const m = new LessonMemory(store, { demoteAfter: 100 });
    const { lesson } = await m.add(A, SPEED);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => m.recordUse(A, [lesson.id], i % 2 === 0)),
    );
    expect(await m.get(A, lesson.id)).toMatchObject({ uses: 20, helped: 10, failed: 10 });

    const text = "State the unit of the answer, km/h, on the answer line.";
    const added = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        m.add(A, { ...SPEED, text, evidence: { thread_id: `t${i}`, iteration: 1 } }),
      ),
    );
    expect(added.filter((a) => a.created)).toHaveLength(1);
    const [kept] = (await m.list(A)).filter((l) => l.text === text);
    expect(kept!.evidence.map((e) => e.thread_id).sort()).toEqual(["t0", "t1", "t2", "t3", "t4"]);
    expect(await m.list(A)).toHaveLength(2);
  });
});

describe("LessonMemory in several processes on one database", () => {
  it("loses no use count with the database's lease lock, as it does without one", async () => {
    // Two instances on two connections of one SQLite file: two processes (or run threads).
    const { path } = await sqlite();
    const leases = (p: string) => {
      const db = new Database(p);
      dbs.push(db);
      db.pragma("busy_timeout = 5000");
      return createSqliteStorage(db).duties;
    };
    const run = async (locked: boolean) => {
      const [x, y] = [await sqlite(path), await sqlite(path)].map(
        ({ store }) =>
          new LessonMemory(store, {
            demoteAfter: 1000,
            ...(locked ? { lock: leaseLock(leases(path)) } : {}),
          }),
      );
      const key = locked ? "locked" : "unlocked";
      const { lesson } = await x!.add(key, SPEED);
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? x! : y!).recordUse(key, [lesson.id], true)),
      );
      return (await x!.get(key, lesson.id))!.uses;
    };
    // Without the lock, steps of two instances interleave and overwrite each other's counts.
    expect(await run(false)).toBeLessThan(10);
    expect(await run(true)).toBe(10);
  });
});
