// The SQLite store against a real database file: the store conformance suite, then what only a
// file shows (items surviving a reopen, living beside the checkpoints, a damaged file refused).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSqliteCheckpointer } from "../../core/checkpointer.ts";
import { RefineryError } from "../../core/errors.ts";
import { openStore } from "../../core/memory/open-store.ts";
import { SqliteStore } from "../../core/memory/sqlite-store.ts";
import { describeStoreConformance } from "./store-conformance.ts";
import { describeStoreTtl } from "./store-ttl.ts";

const openSqlite = async () => {
  const dir = mkdtempSync(join(tmpdir(), "refinery-store-"));
  const store = new SqliteStore(join(dir, "refinery.db"));
  return {
    store,
    cleanup: async () => {
      store.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};
describeStoreConformance("sqlite", openSqlite);
describeStoreTtl("sqlite", openSqlite);

describe("sqlite store file", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "refinery-store-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps items, timestamps and order across a reopen", async () => {
    const file = join(dir, "refinery.db");
    const first = await openStore({ dbPath: file });
    expect(first.kind).toBe("sqlite");
    await first.store.put(["lessons", "a1"], "l2", { text: "second" });
    await first.store.put(["lessons", "a1"], "l1", { text: "first", n: 1 });
    await first.store.put(["lessons", "a2"], "l3", { text: "other" });
    const before = await first.store.get(["lessons", "a1"], "l1");
    await first.close();

    const again = await openStore({ dbPath: file });
    const item = await again.store.get(["lessons", "a1"], "l1");
    expect(item).toEqual(before);
    expect(item?.createdAt).toBeInstanceOf(Date);
    expect((await again.store.search(["lessons", "a1"])).map((i) => i.key)).toEqual(["l2", "l1"]);
    expect(await again.store.listNamespaces({ prefix: ["lessons"] })).toEqual([
      ["lessons", "a1"],
      ["lessons", "a2"],
    ]);
    await again.close();
  });

  it("shares the checkpointer's database and leaves it open on close", async () => {
    const file = join(dir, "refinery.db");
    const checkpoints = openSqliteCheckpointer(file);
    const db = checkpoints.db!;
    const opened = await openStore({ db });
    await opened.store.put(["shared"], "k", { v: 1 });
    await opened.close();
    expect(db.open).toBe(true);
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'store%'")
      .all();
    expect(tables).toEqual([{ name: "store_items" }]);
    expect(db.prepare("SELECT count(*) AS n FROM store_items").get()).toEqual({ n: 1 });
    checkpoints.close();
  });

  it("sees writes made through another connection to the same file", async () => {
    const file = join(dir, "refinery.db");
    const a = new SqliteStore(file);
    const b = new SqliteStore(file);
    await a.put(["x"], "k", { from: "a" });
    expect((await b.get(["x"], "k"))?.value).toEqual({ from: "a" });
    await b.put(["x"], "k", { from: "b" });
    expect((await a.get(["x"], "k"))?.value).toEqual({ from: "b" });
    a.stop();
    b.stop();
  });

  it("refuses a file that is not a SQLite database with a RefineryError naming the fix", async () => {
    const file = join(dir, "broken.db");
    writeFileSync(file, "this is not a database, just some text ".repeat(200));
    const err = await openStore({ dbPath: file }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefineryError);
    expect((err as RefineryError).code).toBe("storage_error");
    expect((err as RefineryError).toLine()).toMatch(/broken\.db.*Fix:/);
  });

  it("refuses a directory as the database path", async () => {
    const err = await openStore({ dbPath: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefineryError);
    expect((err as RefineryError).code).toBe("invalid_config");
  });

  it("refuses a filter it cannot express with a RefineryError naming the field", async () => {
    const store = new SqliteStore(join(dir, "refinery.db"));
    const err = await store
      .search(["x"], { filter: { score: { $gt: "high" } } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefineryError);
    expect((err as RefineryError).field).toBe("filter.score.$gt");
    const nested = await store
      .search(["x"], { filter: { meta: { a: 1 } } })
      .catch((e: unknown) => e);
    expect((nested as RefineryError).field).toBe("filter.meta");
    store.stop();
  });

  it("adds the TTL columns to a store table made before them, keeping its items", async () => {
    const file = join(dir, "refinery.db");
    const db = new Database(file);
    db.exec(`CREATE TABLE store_items (seq INTEGER PRIMARY KEY, namespace TEXT NOT NULL,
      key TEXT NOT NULL, value TEXT NOT NULL, created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL, UNIQUE (namespace, key))`);
    db.prepare(
      "INSERT INTO store_items VALUES (1, 'lessons:a1', 'l1', '{\"text\":\"old\"}', 1, 1)",
    ).run();
    db.close();
    const store = new SqliteStore(file);
    expect((await store.get(["lessons", "a1"], "l1"))?.value).toEqual({ text: "old" });
    // A put with a ttl (minutes), as the Store API makes it; a read past it finds nothing.
    await store.batch([{ namespace: ["t"], key: "k", value: { v: 1 }, ttl: 1 } as never]);
    expect(await store.get(["t"], "k")).not.toBeNull();
    expect(store.sweepExpired(Date.now() + 30_000)).toBe(0);
    expect(store.sweepExpired(Date.now() + 61_000)).toBe(1);
    expect(await store.get(["t"], "k")).toBeNull();
    expect((await store.get(["lessons", "a1"], "l1"))?.value).toEqual({ text: "old" });
    store.stop();
  });
});
