// The conformance suite every Storage implementation runs (sqlite.test.ts, postgres.test.ts): the
// contracts of core/storage/types.ts, exercised only through the interface, never through SQL.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isAuthMatching } from "../../core/auth-filters.ts";
import { RefineryError } from "../../core/errors.ts";
import type { NewCron, NewRun, Run, RunStatus, Storage } from "../../core/storage/types.ts";

/** A thread value long enough that the SQLite storage packs it. */
const LONG_TEXT = Array.from(
  { length: 60 },
  (_, i) => `draft line ${i}: the answer is ${i * 7}`,
).join("\n");

export interface OpenedStorage {
  storage: Storage;
  /** Releases everything `open` created (files, connections, schemas). */
  cleanup: () => Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Lets the clock move past the current millisecond, so the next write gets a later timestamp. */
const nextTick = () => sleep(3);

/** The same instant written with a non-UTC offset, e.g. `2024-01-01T05:30:00.000+05:30`. */
function isoWithOffset(ms: number, offsetMinutes: number): string {
  const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 23);
  const abs = Math.abs(offsetMinutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, "0");
  const mm = String(abs % 60).padStart(2, "0");
  return `${local}${offsetMinutes < 0 ? "-" : "+"}${hh}:${mm}`;
}

function newRun(threadId: string, runId: string, extra: Partial<NewRun> = {}): NewRun {
  return {
    run_id: runId,
    thread_id: threadId,
    assistant_id: "asst-1",
    graph_id: "refine",
    multitask_strategy: "enqueue",
    kwargs: { input: { task: runId }, config: { configurable: {} }, stream_mode: ["values"] },
    ...extra,
  };
}

const ids = (items: ReadonlyArray<{ run_id: string }>) => items.map((r) => r.run_id);

function newCron(cronId: string, extra: Partial<NewCron> = {}): NewCron {
  return {
    cron_id: cronId,
    assistant_id: "asst-1",
    thread_id: null,
    on_run_completed: "delete",
    end_time: null,
    schedule: "* * * * *",
    timezone: null,
    payload: { input: { task: cronId } },
    user_id: "u1",
    next_run_date: "2031-01-01T00:01:00.000Z",
    metadata: { tenant_id: "t1" },
    enabled: true,
    owner: { scopes: ["member"], partition: "t1", user: { identity: "u1" } },
    ...extra,
  };
}

/** The next minute after `at` (what a "* * * * *" schedule gives). */
const nextMinute = (at: string) =>
  new Date(Math.floor(Date.parse(at) / 60_000) * 60_000 + 60_000).toISOString();

async function expectRefineryError(promise: Promise<unknown>, code: string, field?: string) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RefineryError);
  expect((err as RefineryError).code).toBe(code);
  if (field !== undefined) expect((err as RefineryError).field).toBe(field);
}

function expectIsoTime(value: string) {
  expect(typeof value).toBe("string");
  expect(Number.isNaN(Date.parse(value))).toBe(false);
}

export function storageConformance(name: string, open: () => Promise<OpenedStorage>): void {
  describe(`storage conformance: ${name}`, () => {
    let storage: Storage;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ storage, cleanup } = await open());
    });

    afterEach(async () => {
      await storage.close();
      await cleanup();
    });

    describe("assistants", () => {
      it("creates version 1 with defaults", async () => {
        const a = await storage.assistants.create({ assistant_id: "a1", graph_id: "refine" });
        expect(a).toMatchObject({
          assistant_id: "a1",
          graph_id: "refine",
          version: 1,
          name: "Untitled",
          config: {},
          context: {},
          metadata: {},
          description: null,
        });
        expectIsoTime(a.created_at);
        expectIsoTime(a.updated_at);
        expect(await storage.assistants.get("a1")).toEqual(a);
      });

      it("keeps every field it is given", async () => {
        const input = {
          assistant_id: "a1",
          graph_id: "refine",
          config: { tags: ["x"], recursion_limit: 7, configurable: { model: "m" } },
          context: { tone: "dry" },
          metadata: { owner: "ann", n: 2 },
          name: "Reviewer",
          description: "reviews drafts",
        };
        const a = await storage.assistants.create(input);
        expect(a).toMatchObject({ ...input, version: 1 });
        expect(await storage.assistants.get("a1")).toMatchObject({ ...input, version: 1 });
      });

      it("rejects a duplicate id with a conflict naming assistant_id", async () => {
        await storage.assistants.create({ assistant_id: "a1", graph_id: "refine", name: "first" });
        await expectRefineryError(
          storage.assistants.create({ assistant_id: "a1", graph_id: "other" }),
          "conflict",
          "assistant_id",
        );
        await expectRefineryError(
          storage.assistants.create({ assistant_id: "a1", graph_id: "other" }, "raise"),
          "conflict",
          "assistant_id",
        );
        expect(await storage.assistants.get("a1")).toMatchObject({
          graph_id: "refine",
          name: "first",
        });
      });

      it('returns the existing assistant with ifExists "do_nothing"', async () => {
        const first = await storage.assistants.create({
          assistant_id: "a1",
          graph_id: "refine",
          name: "first",
        });
        const again = await storage.assistants.create(
          { assistant_id: "a1", graph_id: "other", name: "second" },
          "do_nothing",
        );
        expect(again).toEqual(first);
        expect(await storage.assistants.versions("a1")).toHaveLength(1);
      });

      it("returns undefined for a missing assistant", async () => {
        expect(await storage.assistants.get("nope")).toBeUndefined();
        expect(await storage.assistants.update("nope", { name: "x" })).toBeUndefined();
        expect(await storage.assistants.setLatest("nope", 1)).toBeUndefined();
        expect(await storage.assistants.versions("nope")).toEqual([]);
      });

      it("update writes version 2, carries unspecified fields over and merges metadata", async () => {
        const v1 = await storage.assistants.create({
          assistant_id: "a1",
          graph_id: "refine",
          config: { recursion_limit: 5 },
          context: { tone: "dry" },
          metadata: { owner: "ann", stage: "draft" },
          name: "Reviewer",
          description: "reviews",
        });
        await nextTick();
        const v2 = await storage.assistants.update("a1", { metadata: { stage: "final", n: 1 } });
        expect(v2).toEqual({
          ...v1,
          metadata: { owner: "ann", stage: "final", n: 1 },
          version: 2,
          updated_at: v2?.updated_at,
        });
        expect(Date.parse(v2!.updated_at)).toBeGreaterThan(Date.parse(v1.updated_at));
        expect(await storage.assistants.get("a1")).toEqual(v2);
      });

      it("update replaces the fields it is given", async () => {
        await storage.assistants.create({
          assistant_id: "a1",
          graph_id: "refine",
          config: { recursion_limit: 5, tags: ["a"] },
          description: "reviews",
        });
        const v2 = await storage.assistants.update("a1", {
          graph_id: "other",
          config: { tags: ["b"] },
          context: { k: 1 },
          name: "Renamed",
          description: null,
        });
        expect(v2).toMatchObject({
          graph_id: "other",
          config: { tags: ["b"] },
          context: { k: 1 },
          name: "Renamed",
          description: null,
          version: 2,
        });
        expect(v2?.config).not.toHaveProperty("recursion_limit");
      });

      it("versions lists newest first with limit, offset and a metadata filter", async () => {
        await storage.assistants.create({
          assistant_id: "a1",
          graph_id: "refine",
          name: "one",
          metadata: { stage: "a" },
        });
        await storage.assistants.update("a1", { name: "two", metadata: { stage: "b" } });
        await storage.assistants.update("a1", { name: "three", metadata: { stage: "c" } });
        await storage.assistants.create({ assistant_id: "a2", graph_id: "refine" });

        const all = await storage.assistants.versions("a1");
        expect(all.map((v) => [v.version, v.name, v.metadata.stage])).toEqual([
          [3, "three", "c"],
          [2, "two", "b"],
          [1, "one", "a"],
        ]);
        expect(all.every((v) => v.assistant_id === "a1")).toBe(true);
        const page = await storage.assistants.versions("a1", { limit: 1, offset: 1 });
        expect(page.map((v) => v.version)).toEqual([2]);
        const b = await storage.assistants.versions("a1", { metadata: { stage: "b" } });
        expect(b.map((v) => v.version)).toEqual([2]);
        expect(await storage.assistants.versions("a1", { metadata: { stage: "z" } })).toEqual([]);
      });

      it("setLatest restores an older version's fields", async () => {
        const v1 = await storage.assistants.create({
          assistant_id: "a1",
          graph_id: "refine",
          name: "one",
          config: { recursion_limit: 3 },
          metadata: { stage: "a" },
        });
        await storage.assistants.update("a1", {
          name: "two",
          graph_id: "other",
          config: { recursion_limit: 9 },
          metadata: { stage: "b", extra: true },
        });
        const restored = await storage.assistants.setLatest("a1", 1);
        expect(restored).toMatchObject({
          assistant_id: "a1",
          version: 1,
          name: "one",
          graph_id: "refine",
          config: { recursion_limit: 3 },
          metadata: { stage: "a" },
          created_at: v1.created_at,
        });
        expect(await storage.assistants.get("a1")).toMatchObject({ version: 1, name: "one" });
        // Restoring keeps the history, and the next update still gets a fresh number.
        expect((await storage.assistants.versions("a1")).map((v) => v.version)).toEqual([2, 1]);
        const v3 = await storage.assistants.update("a1", { name: "three" });
        expect(v3).toMatchObject({ version: 3, name: "three", graph_id: "refine" });
        expect(await storage.assistants.setLatest("a1", 99)).toBeUndefined();
        expect(await storage.assistants.get("a1")).toMatchObject({ version: 3 });
      });

      it("delete removes the assistant and its versions", async () => {
        await storage.assistants.create({ assistant_id: "a1", graph_id: "refine" });
        await storage.assistants.update("a1", { name: "two" });
        await storage.assistants.create({ assistant_id: "a2", graph_id: "refine" });

        expect(await storage.assistants.delete("a1")).toBe(true);
        expect(await storage.assistants.get("a1")).toBeUndefined();
        expect(await storage.assistants.versions("a1")).toEqual([]);
        expect(await storage.assistants.setLatest("a1", 1)).toBeUndefined();
        expect(await storage.assistants.delete("a1")).toBe(false);
        expect(await storage.assistants.get("a2")).toBeDefined();
        // The id is free again and starts over at version 1.
        const again = await storage.assistants.create({ assistant_id: "a1", graph_id: "x" });
        expect(again.version).toBe(1);
      });

      describe("search and count", () => {
        beforeEach(async () => {
          const rows = [
            {
              assistant_id: "a1",
              graph_id: "refine",
              name: "Alpha reviewer",
              metadata: { team: "red", n: 1, on: true, nested: { k: "v", deep: { x: 1 } } },
            },
            {
              assistant_id: "a2",
              graph_id: "refine",
              name: "Beta 100% sure",
              metadata: { team: "blue", n: 2, on: false, nested: { k: "w" } },
            },
            {
              assistant_id: "a3",
              graph_id: "summarise",
              name: "gamma_writer",
              metadata: { team: "red", n: "1", on: "true" },
            },
            {
              assistant_id: "a4",
              graph_id: "summarise",
              name: "gammaXwriter",
              metadata: { team: "green", n: 1.5, none: null },
            },
          ];
          for (const row of rows) {
            await storage.assistants.create(row);
            await nextTick();
          }
        });

        const found = async (q: Parameters<Storage["assistants"]["search"]>[0]) =>
          (await storage.assistants.search({ limit: 100, ...q })).map((a) => a.assistant_id).sort();

        it("filters by graph_id", async () => {
          expect(await found({ graph_id: "refine" })).toEqual(["a1", "a2"]);
          expect(await found({ graph_id: "summarise" })).toEqual(["a3", "a4"]);
          expect(await found({ graph_id: "none" })).toEqual([]);
        });

        it("filters by metadata containment with strict JSON types", async () => {
          expect(await found({ metadata: { team: "red" } })).toEqual(["a1", "a3"]);
          expect(await found({ metadata: { n: 1 } })).toEqual(["a1"]);
          expect(await found({ metadata: { n: "1" } })).toEqual(["a3"]);
          expect(await found({ metadata: { n: 1.5 } })).toEqual(["a4"]);
          expect(await found({ metadata: { on: true } })).toEqual(["a1"]);
          expect(await found({ metadata: { on: false } })).toEqual(["a2"]);
          expect(await found({ metadata: { on: "true" } })).toEqual(["a3"]);
          expect(await found({ metadata: { none: null } })).toEqual(["a4"]);
          expect(await found({ metadata: { team: "red", n: 1 } })).toEqual(["a1"]);
          expect(await found({ metadata: { team: "red", n: 2 } })).toEqual([]);
          expect(await found({ metadata: { missing: "x" } })).toEqual([]);
          expect(await found({ metadata: {} })).toEqual(["a1", "a2", "a3", "a4"]);
        });

        it("does not confuse booleans with the numbers 1 and 0", async () => {
          await storage.assistants.create({
            assistant_id: "b1",
            graph_id: "g",
            metadata: { flag: 1, off: 0 },
          });
          expect(await found({ metadata: { on: 1 } })).toEqual([]);
          expect(await found({ metadata: { on: 0 } })).toEqual([]);
          expect(await found({ metadata: { flag: true } })).toEqual([]);
          expect(await found({ metadata: { off: false } })).toEqual([]);
          expect(await found({ metadata: { flag: 1 } })).toEqual(["b1"]);
        });

        it("filters by nested objects as containment, whatever the key order", async () => {
          expect(await found({ metadata: { nested: { k: "v", deep: { x: 1 } } } })).toEqual(["a1"]);
          expect(await found({ metadata: { nested: { deep: { x: 1 }, k: "v" } } })).toEqual(["a1"]);
          expect(await found({ metadata: { nested: { k: "v" } } })).toEqual(["a1"]);
          expect(await found({ metadata: { nested: { deep: {} } } })).toEqual(["a1"]);
          expect(await found({ metadata: { nested: { k: "w" } } })).toEqual(["a2"]);
          expect(await found({ metadata: { nested: {} } })).toEqual(["a1", "a2"]);
          expect(await found({ metadata: { nested: { k: "v", other: 1 } } })).toEqual([]);
          expect(await found({ metadata: { team: { k: "v" } } })).toEqual([]);
        });

        it("filters by name substring, treating % and _ literally", async () => {
          expect(await found({ name: "review" })).toEqual(["a1"]);
          expect(await found({ name: "gamma" })).toEqual(["a3", "a4"]);
          expect(await found({ name: "a_w" })).toEqual(["a3"]);
          expect(await found({ name: "100%" })).toEqual(["a2"]);
          expect(await found({ name: "%" })).toEqual(["a2"]);
          expect(await found({ name: "_" })).toEqual(["a3"]);
          expect(await found({ name: "zzz" })).toEqual([]);
        });

        it("combines filters", async () => {
          expect(await found({ graph_id: "summarise", metadata: { team: "red" } })).toEqual(["a3"]);
          expect(await found({ graph_id: "refine", name: "gamma" })).toEqual([]);
        });

        it("sorts by sort_by and sort_order", async () => {
          const order = async (q: Parameters<Storage["assistants"]["search"]>[0]) =>
            (await storage.assistants.search(q)).map((a) => a.assistant_id);
          expect(await order({ sort_by: "created_at", sort_order: "asc" })).toEqual([
            "a1",
            "a2",
            "a3",
            "a4",
          ]);
          expect(await order({ sort_by: "created_at", sort_order: "desc" })).toEqual([
            "a4",
            "a3",
            "a2",
            "a1",
          ]);
          expect(await order({ sort_by: "assistant_id", sort_order: "desc" })).toEqual([
            "a4",
            "a3",
            "a2",
            "a1",
          ]);
          // Names that only differ in case or punctuation would sort by collation, so compare
          // plain ones.
          expect(await order({ graph_id: "refine", sort_by: "name", sort_order: "asc" })).toEqual([
            "a1",
            "a2",
          ]);
          expect(await order({ graph_id: "refine", sort_by: "name", sort_order: "desc" })).toEqual([
            "a2",
            "a1",
          ]);
          await nextTick();
          await storage.assistants.update("a2", { name: "Beta" });
          expect(await order({ sort_by: "updated_at", sort_order: "desc", limit: 1 })).toEqual([
            "a2",
          ]);
        });

        it("pages with limit and offset", async () => {
          const q = { sort_by: "assistant_id", sort_order: "asc" } as const;
          const ids = async (limit: number, offset: number) =>
            (await storage.assistants.search({ ...q, limit, offset })).map((a) => a.assistant_id);
          expect(await ids(2, 0)).toEqual(["a1", "a2"]);
          expect(await ids(2, 2)).toEqual(["a3", "a4"]);
          expect(await ids(2, 3)).toEqual(["a4"]);
          expect(await ids(10, 4)).toEqual([]);
        });

        it("counts with the same filters", async () => {
          expect(await storage.assistants.count({})).toBe(4);
          expect(await storage.assistants.count({ graph_id: "refine" })).toBe(2);
          expect(await storage.assistants.count({ metadata: { team: "red" } })).toBe(2);
          expect(await storage.assistants.count({ metadata: { nested: { k: "v" } } })).toBe(1);
          expect(await storage.assistants.count({ name: "gamma" })).toBe(2);
          expect(await storage.assistants.count({ name: "_" })).toBe(1);
          expect(
            await storage.assistants.count({ graph_id: "summarise", metadata: { team: "red" } }),
          ).toBe(1);
          expect(await storage.assistants.count({ graph_id: "none" })).toBe(0);
        });
      });
    });

    describe("threads", () => {
      it("creates an idle thread without metadata", async () => {
        const t = await storage.threads.create({ thread_id: "t1" });
        expect(t).toMatchObject({
          thread_id: "t1",
          metadata: {},
          status: "idle",
          values: null,
          interrupts: {},
          config: {},
          error: null,
        });
        expectIsoTime(t.created_at);
        expectIsoTime(t.updated_at);
        expect(await storage.threads.get("t1")).toEqual(t);
      });

      it("creates a thread with metadata", async () => {
        const metadata = { owner: "ann", n: 1, nested: { a: [1, 2] } };
        const t = await storage.threads.create({ thread_id: "t1", metadata });
        expect(t).toMatchObject({ metadata, status: "idle", values: null, interrupts: {} });
        expect(await storage.threads.get("t1")).toEqual(t);
      });

      it("rejects a duplicate id with a conflict naming thread_id", async () => {
        await storage.threads.create({ thread_id: "t1", metadata: { v: 1 } });
        await expectRefineryError(
          storage.threads.create({ thread_id: "t1", metadata: { v: 2 } }),
          "conflict",
          "thread_id",
        );
        expect((await storage.threads.get("t1"))?.metadata).toEqual({ v: 1 });
      });

      it('returns the existing thread with ifExists "do_nothing"', async () => {
        const first = await storage.threads.create({ thread_id: "t1", metadata: { v: 1 } });
        const again = await storage.threads.create(
          { thread_id: "t1", metadata: { v: 2 } },
          "do_nothing",
        );
        expect(again).toEqual(first);
      });

      it("returns undefined or false for a missing thread", async () => {
        expect(await storage.threads.get("nope")).toBeUndefined();
        expect(await storage.threads.update("nope", { metadata: { a: 1 } })).toBeUndefined();
        expect(await storage.threads.delete("nope")).toBe(false);
      });

      it("update merges metadata shallowly and bumps updated_at", async () => {
        const t = await storage.threads.create({
          thread_id: "t1",
          metadata: { a: 1, b: { x: 1 }, keep: "yes" },
        });
        await nextTick();
        const u = await storage.threads.update("t1", { metadata: { b: { y: 2 }, c: 3, a: null } });
        expect(u?.metadata).toEqual({ a: null, b: { y: 2 }, c: 3, keep: "yes" });
        expect(u?.created_at).toBe(t.created_at);
        expect(Date.parse(u!.updated_at)).toBeGreaterThan(Date.parse(t.updated_at));
        expect(await storage.threads.get("t1")).toEqual(u);
        // An empty patch still touches the thread and keeps its metadata.
        await nextTick();
        const touched = await storage.threads.update("t1", {});
        expect(touched?.metadata).toEqual(u?.metadata);
        expect(Date.parse(touched!.updated_at)).toBeGreaterThan(Date.parse(u!.updated_at));
      });

      it("setSnapshot is reflected by get", async () => {
        const t = await storage.threads.create({ thread_id: "t1", metadata: { m: 1 } });
        await nextTick();
        await storage.threads.setSnapshot("t1", {
          status: "interrupted",
          values: { draft: "x", round: 2 },
          interrupts: { task1: [{ value: "approve?" }] },
        });
        const got = await storage.threads.get("t1");
        expect(got).toMatchObject({
          thread_id: "t1",
          status: "interrupted",
          values: { draft: "x", round: 2 },
          interrupts: { task1: [{ value: "approve?" }] },
          error: null,
          metadata: { m: 1 },
          created_at: t.created_at,
        });
        expect(Date.parse(got!.updated_at)).toBeGreaterThan(Date.parse(t.updated_at));

        const error = { error: "ModelError", message: "boom" };
        await storage.threads.setSnapshot("t1", {
          status: "error",
          values: null,
          interrupts: {},
          error,
        });
        expect(await storage.threads.get("t1")).toMatchObject({
          status: "error",
          values: null,
          interrupts: {},
          error,
        });

        await storage.threads.setSnapshot("t1", {
          status: "idle",
          values: { done: true },
          interrupts: {},
          error: null,
        });
        expect(await storage.threads.get("t1")).toMatchObject({
          status: "idle",
          values: { done: true },
          error: null,
        });
      });

      it("delete removes the thread and its runs", async () => {
        await storage.threads.create({ thread_id: "t1" });
        await storage.threads.create({ thread_id: "t2" });
        await storage.runs.create(newRun("t1", "r1"), { rejectIfInflight: false });
        await storage.runs.create(newRun("t1", "r2"), { rejectIfInflight: false });
        await storage.runs.create(newRun("t2", "r3"), { rejectIfInflight: false });

        expect(await storage.threads.delete("t1")).toBe(true);
        expect(await storage.threads.get("t1")).toBeUndefined();
        expect(await storage.runs.get("r1")).toBeUndefined();
        expect(await storage.runs.get("r2")).toBeUndefined();
        expect(await storage.runs.list("t1")).toEqual([]);
        expect(await storage.runs.inflight("t1")).toEqual([]);
        expect(await storage.threads.delete("t1")).toBe(false);
        // Other threads and their runs stay, and the deleted runs are never claimed.
        expect(await storage.runs.get("r3")).toBeDefined();
        expect((await storage.runs.claimNext())?.run_id).toBe("r3");
        expect(await storage.runs.claimNext()).toBeUndefined();
      });

      it("a TTL expires a thread after its last update; a run in flight keeps it", async () => {
        const t0 = Date.now();
        await storage.threads.create({ thread_id: "t1", ttl_ms: 60_000 });
        await storage.threads.create({ thread_id: "t2" });
        await storage.threads.create({ thread_id: "t3", ttl_ms: 60_000 });
        expect(await storage.threads.expired(t0 + 30_000, 10)).toEqual([]);
        expect((await storage.threads.expired(t0 + 61_000, 10)).sort()).toEqual(["t1", "t3"]);
        expect(await storage.threads.expired(t0 + 61_000, 1)).toHaveLength(1);
        // A run in flight keeps t3; an update moves t1's expiry on, and null removes its TTL.
        await storage.runs.create(newRun("t3", "r1"), { rejectIfInflight: false });
        expect(await storage.threads.expired(t0 + 61_000, 10)).toEqual(["t1"]);
        await storage.threads.update("t1", { ttl_ms: null });
        expect(await storage.threads.expired(t0 + 10_000_000, 10)).toEqual([]);
        await storage.threads.update("t2", { ttl_ms: 1_000 });
        expect(await storage.threads.expired(Date.now() + 2_000, 10)).toEqual(["t2"]);
      });

      it("a run's thread_config is merged over the thread's config", async () => {
        await storage.threads.create({ thread_id: "t1" });
        await storage.runs.create(
          newRun("t1", "r1", { thread_config: { tags: ["a"], configurable: { x: 1 } } }),
          { rejectIfInflight: false },
        );
        await storage.runs.create(
          newRun("t1", "r2", { thread_config: { configurable: { x: 1, y: 2 } } }),
          { rejectIfInflight: false },
        );
        expect((await storage.threads.get("t1"))?.config).toEqual({
          tags: ["a"],
          configurable: { x: 1, y: 2 },
        });
      });

      describe("search and count", () => {
        beforeEach(async () => {
          const rows: Array<
            [string, Record<string, unknown>, Parameters<Storage["threads"]["setSnapshot"]>[1]]
          > = [
            [
              "t1",
              { user: "ann", n: 1 },
              { status: "idle", values: { topic: "a", n: 1 }, interrupts: {} },
            ],
            [
              "t2",
              { user: "bob", n: 2 },
              { status: "busy", values: { topic: "b" }, interrupts: {} },
            ],
            [
              "t3",
              { user: "ann", tags: { lang: "en" } },
              {
                status: "interrupted",
                // Long enough to be stored packed (core/packing.ts on SQLite).
                values: { topic: "a", meta: { k: 1 }, text: LONG_TEXT },
                interrupts: { x: [1] },
              },
            ],
            [
              "t4",
              { user: "cid", on: true },
              {
                status: "error",
                values: null,
                interrupts: {},
                error: { error: "E", message: "m" },
              },
            ],
          ];
          for (const [id, metadata, snapshot] of rows) {
            await storage.threads.create({ thread_id: id, metadata });
            await storage.threads.setSnapshot(id, snapshot);
            await nextTick();
          }
        });

        const found = async (q: Parameters<Storage["threads"]["search"]>[0]) =>
          (await storage.threads.search({ limit: 100, ...q })).map((t) => t.thread_id).sort();

        it("filters by status", async () => {
          expect(await found({ status: "idle" })).toEqual(["t1"]);
          expect(await found({ status: "busy" })).toEqual(["t2"]);
          expect(await found({ status: "interrupted" })).toEqual(["t3"]);
          expect(await found({ status: "error" })).toEqual(["t4"]);
        });

        it("filters by metadata containment", async () => {
          expect(await found({ metadata: { user: "ann" } })).toEqual(["t1", "t3"]);
          expect(await found({ metadata: { n: 2 } })).toEqual(["t2"]);
          expect(await found({ metadata: { on: true } })).toEqual(["t4"]);
          expect(await found({ metadata: { tags: { lang: "en" } } })).toEqual(["t3"]);
          expect(await found({ metadata: { user: "ann", n: 1 } })).toEqual(["t1"]);
          expect(await found({ metadata: { user: "zed" } })).toEqual([]);
        });

        it("filters by values containment", async () => {
          expect(await found({ values: { topic: "a" } })).toEqual(["t1", "t3"]);
          expect(await found({ values: { topic: "a", n: 1 } })).toEqual(["t1"]);
          expect(await found({ values: { meta: { k: 1 } } })).toEqual(["t3"]);
          expect(await found({ values: { topic: "z" } })).toEqual([]);
          expect(await found({ values: { text: LONG_TEXT } })).toEqual(["t3"]);
          expect(await found({ values: { text: "other" } })).toEqual([]);
          expect((await storage.threads.get("t3"))?.values).toEqual({
            topic: "a",
            meta: { k: 1 },
            text: LONG_TEXT,
          });
        });

        it("filters by ids", async () => {
          expect(await found({ ids: ["t2", "t4", "missing"] })).toEqual(["t2", "t4"]);
          expect(await found({ ids: ["t1"], status: "busy" })).toEqual([]);
          expect(await found({ ids: ["t1", "t3"], metadata: { user: "ann" } })).toEqual([
            "t1",
            "t3",
          ]);
        });

        it("combines filters", async () => {
          expect(await found({ status: "interrupted", metadata: { user: "ann" } })).toEqual(["t3"]);
          expect(await found({ status: "idle", values: { topic: "b" } })).toEqual([]);
        });

        it("sorts by sort_by and sort_order", async () => {
          const order = async (q: Parameters<Storage["threads"]["search"]>[0]) =>
            (await storage.threads.search(q)).map((t) => t.thread_id);
          expect(await order({ sort_by: "created_at", sort_order: "asc" })).toEqual([
            "t1",
            "t2",
            "t3",
            "t4",
          ]);
          expect(await order({ sort_by: "created_at", sort_order: "desc" })).toEqual([
            "t4",
            "t3",
            "t2",
            "t1",
          ]);
          expect(await order({ sort_by: "thread_id", sort_order: "desc" })).toEqual([
            "t4",
            "t3",
            "t2",
            "t1",
          ]);
          expect(await order({ sort_by: "status", sort_order: "asc" })).toEqual([
            "t2",
            "t4",
            "t1",
            "t3",
          ]);
          await storage.threads.update("t2", { metadata: { touched: true } });
          expect(await order({ sort_by: "updated_at", sort_order: "desc", limit: 1 })).toEqual([
            "t2",
          ]);
        });

        it("pages with limit and offset", async () => {
          const page = async (limit: number, offset: number) =>
            (
              await storage.threads.search({
                sort_by: "thread_id",
                sort_order: "asc",
                limit,
                offset,
              })
            ).map((t) => t.thread_id);
          expect(await page(2, 0)).toEqual(["t1", "t2"]);
          expect(await page(2, 2)).toEqual(["t3", "t4"]);
          expect(await page(3, 3)).toEqual(["t4"]);
          expect(await page(5, 4)).toEqual([]);
        });

        it("counts with the same filters", async () => {
          expect(await storage.threads.count({})).toBe(4);
          expect(await storage.threads.count({ status: "idle" })).toBe(1);
          expect(await storage.threads.count({ metadata: { user: "ann" } })).toBe(2);
          expect(await storage.threads.count({ values: { topic: "a" } })).toBe(2);
          expect(
            await storage.threads.count({ status: "interrupted", metadata: { user: "ann" } }),
          ).toBe(1);
          expect(await storage.threads.count({ metadata: { user: "zed" } })).toBe(0);
        });
      });
    });

    describe("access (auth filters)", () => {
      // Metadata shapes and filters as auth handlers write them (LangGraph semantics).
      const rows: Record<string, Record<string, unknown>> = {
        a: { owner: "alice", tags: ["x", "y"], n: 1, flag: true },
        b: { owner: "bob", tags: ["y"], n: 2, flag: false },
        c: { owner: "alice", tags: "x", n: "1", nil: null },
        d: {},
        e: { owner: "al\"ice's", tags: [1, "1", true] },
      };
      const filters: Record<string, unknown>[] = [
        {},
        { owner: "alice" },
        { owner: { $eq: "alice" } },
        { owner: { $eq: "" } },
        { owner: "alice", n: 1 },
        { n: "1" },
        { flag: true },
        { flag: false },
        { nil: null },
        { tags: { $contains: "x" } },
        { tags: { $contains: ["x", "y"] } },
        { tags: { $contains: 1 } },
        { tags: { $contains: true } },
        { tags: { $contains: { a: 1 } } },
        { tags: { other: 1 } },
        { owner: { $eq: { nested: 1 } } },
        { owner: "al\"ice's" },
        { missing: "x" },
        { tags: ["x", "y"] },
      ];

      const threadIds = Object.keys(rows).map((k) => `access-${k}`);
      beforeEach(async () => {
        for (const [k, metadata] of Object.entries(rows))
          await storage.threads.create({ thread_id: `access-${k}`, metadata });
      });

      it("searches and counts match exactly what isAuthMatching accepts, filter by filter", async () => {
        for (const f of filters) {
          const expected = threadIds.filter((_, i) => isAuthMatching(Object.values(rows)[i], f));
          const found = await storage.threads.search({ filters: f, limit: 100 });
          expect(found.map((t) => t.thread_id).sort(), JSON.stringify(f)).toEqual(expected.sort());
          expect(await storage.threads.count({ filters: f }), JSON.stringify(f)).toBe(
            expected.length,
          );
        }
      });

      it("get, update and delete see a row only when it matches; the others are untouched", async () => {
        const mine = { filters: { owner: "alice" } };
        expect(await storage.threads.get("access-a", mine)).toBeDefined();
        expect(await storage.threads.get("access-b", mine)).toBeUndefined();
        expect(await storage.threads.update("access-b", { metadata: { x: 1 } }, mine)).toBe(
          undefined,
        );
        expect(await storage.threads.delete("access-b", mine)).toBe(false);
        expect((await storage.threads.get("access-b"))?.metadata).toEqual(rows.b);
        expect(await storage.threads.delete("access-a", mine)).toBe(true);
        expect(await storage.threads.get("access-a")).toBeUndefined();
      });

      it("assistants: filters apply to get, search, count, versions, update, setLatest and delete; `system` also reaches the server's own", async () => {
        await storage.assistants.create({
          assistant_id: "sys",
          graph_id: "g",
          metadata: { created_by: "system" },
        });
        await storage.assistants.create({
          assistant_id: "a1",
          graph_id: "g",
          metadata: { owner: "alice" },
        });
        await storage.assistants.create({
          assistant_id: "b1",
          graph_id: "g",
          metadata: { owner: "bob" },
        });
        const alice = { filters: { owner: "alice" } };
        const aliceRead = { ...alice, system: true };
        expect(
          (await storage.assistants.search({ ...alice, limit: 10 })).map((a) => a.assistant_id),
        ).toEqual(["a1"]);
        expect(
          (await storage.assistants.search({ ...aliceRead, limit: 10 }))
            .map((a) => a.assistant_id)
            .sort(),
        ).toEqual(["a1", "sys"]);
        expect(await storage.assistants.count(aliceRead)).toBe(2);
        expect(await storage.assistants.get("sys", alice)).toBeUndefined();
        expect(await storage.assistants.get("sys", aliceRead)).toBeDefined();
        expect(await storage.assistants.get("b1", aliceRead)).toBeUndefined();
        expect(await storage.assistants.versions("b1", aliceRead)).toEqual([]);
        expect(await storage.assistants.versions("a1", aliceRead)).toHaveLength(1);
        expect(await storage.assistants.update("b1", { name: "x" }, alice)).toBeUndefined();
        expect(await storage.assistants.setLatest("b1", 1, alice)).toBeUndefined();
        expect(await storage.assistants.delete("b1", alice)).toBe(false);
        expect((await storage.assistants.get("b1"))?.name).not.toBe("x");
        expect((await storage.assistants.update("a1", { name: "x" }, alice))?.version).toBe(2);
      });
    });

    describe("runs: a resume is created only while its thread waits", () => {
      it("requireInterrupted: one resume of an interrupt is created; a second, during or after the first, is not", async () => {
        await storage.threads.create({ thread_id: "w1" });
        await storage.threads.setSnapshot("w1", {
          status: "interrupted",
          values: {},
          interrupts: { t: [{ id: "i1", value: "approve?" }] },
        });
        const resume = (runId: string) =>
          storage.runs.create(newRun("w1", runId), {
            rejectIfInflight: true,
            requireInterrupted: true,
          });
        expect((await resume("first")).created).toBe(true);
        expect(await resume("second")).toMatchObject({
          created: false,
          reason: "not_interrupted",
        });
        await storage.runs.finish("first", "success", null, {
          threadId: "w1",
          snapshot: { status: "idle", values: {}, interrupts: {} },
        });
        expect(await resume("third")).toMatchObject({
          created: false,
          reason: "not_interrupted",
        });
        expect((await storage.runs.list("w1")).map((r) => r.run_id)).toEqual(["first"]);
      });
    });

    describe("run webhook outbox", () => {
      it("finish queues the webhook call with the run's end, once; retry delays it; settle removes it", async () => {
        await storage.threads.create({ thread_id: "h1" });
        await storage.runs.create(newRun("h1", "hooked"), { rejectIfInflight: false });
        await storage.runs.claimNext();
        const webhook = { url: "https://hooks.example.com/run", body: '{"run_id":"hooked"}' };
        const snapshot = { status: "idle" as const, values: {}, interrupts: {} };
        await storage.runs.finish("hooked", "success", null, { threadId: "h1", snapshot }, webhook);
        // A second finish of the same run (a retried step) does not queue a second call.
        await storage.runs.finish("hooked", "success", null, { threadId: "h1", snapshot }, webhook);
        expect((await storage.runs.get("hooked"))?.status).toBe("success");
        expect(await storage.webhooks.due(10)).toEqual([
          { run_id: "hooked", ...webhook, attempts: 0 },
        ]);
        expect(await storage.webhooks.count()).toBe(1);
        await storage.webhooks.retry("hooked", 60_000, "HTTP 503");
        expect(await storage.webhooks.due(10)).toEqual([]);
        expect(await storage.webhooks.count()).toBe(1);
        await storage.webhooks.retry("hooked", -1, "HTTP 503");
        expect(await storage.webhooks.due(10)).toMatchObject([{ run_id: "hooked", attempts: 2 }]);
        await storage.webhooks.settle("hooked");
        expect(await storage.webhooks.count()).toBe(0);
        expect(await storage.webhooks.due(10)).toEqual([]);
      });
    });

    describe("runs: an end fenced by the attempt", () => {
      it("finish with an attempt ends the run only while it runs as that attempt; otherwise it changes nothing", async () => {
        await storage.threads.create({ thread_id: "f1" });
        await storage.runs.create(newRun("f1", "fenced"), { rejectIfInflight: false });
        const claimed = await storage.runs.claimNext();
        expect(claimed).toMatchObject({ run_id: "fenced", attempt: 1, status: "running" });
        const before = await storage.threads.get("f1");
        const webhook = { url: "https://hooks.example.com/run", body: '{"run_id":"fenced"}' };
        const snapshot = { status: "idle" as const, values: { answer: 42 }, interrupts: {} };
        const end = (status: "success" | "error", attempt: number, hook?: typeof webhook) =>
          storage.runs.finish("fenced", status, null, { threadId: "f1", snapshot }, hook, attempt);
        // Another worker's attempt (this one was taken over): nothing is recorded.
        expect(await end("success", 2, webhook)).toBe(false);
        expect((await storage.runs.get("fenced"))?.status).toBe("running");
        expect(await storage.threads.get("f1")).toEqual(before);
        expect(await storage.webhooks.count()).toBe(0);
        // The attempt that holds it ends it, once.
        expect(await end("success", 1, webhook)).toBe(true);
        expect((await storage.runs.get("fenced"))?.status).toBe("success");
        expect((await storage.threads.get("f1"))?.values).toEqual({ answer: 42 });
        expect(await storage.webhooks.count()).toBe(1);
        expect(await end("error", 1)).toBe(false);
        expect((await storage.runs.get("fenced"))?.status).toBe("success");
        // Without an attempt (the CLI ending the run it executes itself) it is not fenced.
        expect(await storage.runs.finish("fenced", "error", null)).toBe(true);
        expect((await storage.runs.get("fenced"))?.status).toBe("error");
      });
    });

    describe("runs: cancelling a run that has not started", () => {
      it("cancelPending deletes (rollback) or interrupts a pending run, and leaves a claimed one alone", async () => {
        await storage.threads.create({ thread_id: "c1" });
        const make = (id: string) =>
          storage.runs.create(newRun("c1", id), { rejectIfInflight: false });
        await make("p-rollback");
        await make("p-interrupt");
        expect(await storage.runs.cancelPending("p-rollback", "rollback")).toBe(true);
        expect(await storage.runs.get("p-rollback")).toBeUndefined();
        expect(await storage.runs.cancelPending("p-interrupt", "interrupt")).toBe(true);
        expect((await storage.runs.get("p-interrupt"))?.status).toBe("interrupted");
        await make("claimed");
        expect((await storage.runs.claimNext())?.run_id).toBe("claimed");
        expect(await storage.runs.cancelPending("claimed", "rollback")).toBe(false);
        expect(await storage.runs.cancelPending("claimed", "interrupt")).toBe(false);
        expect((await storage.runs.get("claimed"))?.status).toBe("running");
        expect(await storage.runs.cancelPending("none-such", "rollback")).toBe(false);
      });
    });

    describe("runs: per-partition cap", () => {
      it("refuses a run when its partition already has `partitionLimit` runs in flight, counting no other partition", async () => {
        for (const id of ["p1", "p2", "p3", "q1"]) await storage.threads.create({ thread_id: id });
        const make = (thread: string, run: string, partition: string) =>
          storage.runs.create(newRun(thread, run, { partition }), {
            rejectIfInflight: false,
            partitionLimit: 2,
          });
        expect((await make("p1", "r1", "acme")).created).toBe(true);
        expect((await make("p2", "r2", "acme")).created).toBe(true);
        expect(await make("p3", "r3", "acme")).toMatchObject({
          created: false,
          reason: "partition_limit",
        });
        expect((await make("q1", "r4", "beta")).created).toBe(true);
        expect(await storage.runs.get("r3")).toBeUndefined();
        await storage.runs.setStatus("r1", "success");
        expect((await make("p3", "r3", "acme")).created).toBe(true);
      });
    });

    describe("runs", () => {
      beforeEach(async () => {
        await storage.threads.create({ thread_id: "t1", metadata: { owner: "ann" } });
        await storage.threads.create({ thread_id: "t2" });
      });

      const create = (threadId: string, runId: string, extra: Partial<NewRun> = {}) =>
        storage.runs.create(newRun(threadId, runId, extra), { rejectIfInflight: false });

      async function created(
        threadId: string,
        runId: string,
        extra: Partial<NewRun> = {},
      ): Promise<Run> {
        const result = await create(threadId, runId, extra);
        if (!result.created) throw new Error(`run ${runId} was not created`);
        return result.run;
      }

      it("refuses a run on a missing thread with not_found", async () => {
        await expectRefineryError(
          storage.runs.create(newRun("nope", "r1"), { rejectIfInflight: false }),
          "not_found",
        );
        await expectRefineryError(
          storage.runs.create(newRun("nope", "r1"), { rejectIfInflight: true }),
          "not_found",
        );
        expect(await storage.runs.get("r1")).toBeUndefined();
        expect(await storage.threads.get("nope")).toBeUndefined();
      });

      it("creates a pending run, marks the thread busy and records graph and assistant", async () => {
        const kwargs: NewRun["kwargs"] = {
          input: { task: "write" },
          command: null,
          config: { tags: ["t"], recursion_limit: 5, configurable: { thread_id: "t1" } },
          stream_mode: ["values", "updates"],
          on_disconnect: "continue",
          checkpoint_before: "cp-1",
        };
        const result = await storage.runs.create(
          newRun("t1", "r1", {
            assistant_id: "asst-9",
            graph_id: "refine",
            metadata: { source: "test" },
            multitask_strategy: "reject",
            kwargs,
          }),
          { rejectIfInflight: true },
        );
        expect(result.created).toBe(true);
        expect(result.inflight).toEqual([]);
        if (!result.created) return;
        expect(result.run).toMatchObject({
          run_id: "r1",
          thread_id: "t1",
          assistant_id: "asst-9",
          status: "pending",
          metadata: { source: "test" },
          multitask_strategy: "reject",
          kwargs,
          attempt: 0,
          error: null,
        });
        expectIsoTime(result.run.created_at);
        expectIsoTime(result.run.updated_at);
        expect(await storage.runs.get("r1")).toEqual(result.run);
        expect(await storage.runs.get("r1", "t1")).toEqual(result.run);

        const thread = await storage.threads.get("t1");
        expect(thread?.status).toBe("busy");
        expect(thread?.metadata).toEqual({
          owner: "ann",
          graph_id: "refine",
          assistant_id: "asst-9",
        });
      });

      it("refuses a run id that already exists and keeps the original", async () => {
        const first = await created("t1", "r1");
        await expect(create("t2", "r1")).rejects.toThrow();
        expect(await storage.runs.get("r1")).toEqual(first);
        expect(await storage.runs.list("t2")).toEqual([]);
        expect((await storage.threads.get("t2"))?.status).toBe("idle");
      });

      it("defaults run metadata to {}", async () => {
        const run = await created("t1", "r1");
        expect(run.metadata).toEqual({});
      });

      it("with rejectIfInflight, returns the pending run and inserts nothing", async () => {
        const first = await created("t1", "r1");
        const result = await storage.runs.create(
          newRun("t1", "r2", { assistant_id: "other", graph_id: "g2" }),
          {
            rejectIfInflight: true,
          },
        );
        expect(result).toEqual({ created: false, inflight: [first], reason: "inflight" });
        expect(await storage.runs.get("r2")).toBeUndefined();
        expect(ids(await storage.runs.list("t1"))).toEqual(["r1"]);
        expect((await storage.threads.get("t1"))?.metadata).toMatchObject({
          assistant_id: "asst-1",
        });
      });

      it("with rejectIfInflight, also rejects while a run is running, and accepts once it ends", async () => {
        await created("t1", "r1");
        await storage.runs.claimNext();
        const busy = await storage.runs.create(newRun("t1", "r2"), { rejectIfInflight: true });
        expect(busy.created).toBe(false);
        expect(busy.inflight.map((r) => [r.run_id, r.status])).toEqual([["r1", "running"]]);
        await storage.runs.setStatus("r1", "success");
        const ok = await storage.runs.create(newRun("t1", "r2"), { rejectIfInflight: true });
        expect(ok.created).toBe(true);
        expect(ok.inflight).toEqual([]);
      });

      it("without rejectIfInflight, creates the run and lists the prior inflight runs", async () => {
        const r1 = await created("t1", "r1");
        const second = await create("t1", "r2");
        expect(second.created).toBe(true);
        expect(second.inflight).toEqual([r1]);
        const third = await create("t1", "r3");
        expect(ids(third.inflight)).toEqual(["r1", "r2"]);
        expect(ids(await storage.runs.inflight("t1"))).toEqual(["r1", "r2", "r3"]);
        expect(await storage.runs.inflight("t2")).toEqual([]);
      });

      it("finish ends a run and writes its thread's snapshot together; busy while another run is pending", async () => {
        await created("t1", "r1");
        await storage.runs.claimNext();
        await storage.runs.finish(
          "r1",
          "error",
          { error: "Boom", message: "it broke" },
          {
            threadId: "t1",
            snapshot: {
              status: "error",
              values: { answer: 41 },
              interrupts: {},
              error: { error: "Boom", message: "it broke" },
            },
          },
        );
        expect(await storage.runs.get("r1")).toMatchObject({
          status: "error",
          error: { error: "Boom", message: "it broke" },
        });
        expect(await storage.threads.get("t1")).toMatchObject({
          status: "error",
          values: { answer: 41 },
          error: { error: "Boom", message: "it broke" },
        });

        // A run of the thread is pending: the thread stays busy, with the new values.
        await created("t1", "r2");
        await created("t1", "r3");
        await storage.runs.claimNext();
        await storage.runs.finish("r2", "success", null, {
          threadId: "t1",
          snapshot: { status: "idle", values: { answer: 42 }, interrupts: {}, error: null },
        });
        expect((await storage.runs.get("r2"))?.status).toBe("success");
        expect(await storage.threads.get("t1")).toMatchObject({
          status: "busy",
          values: { answer: 42 },
          error: null,
        });

        // Without a thread (a temporary one about to be deleted), only the run changes.
        await storage.runs.claimNext();
        await storage.runs.finish("r3", "success", null);
        expect((await storage.runs.get("r3"))?.status).toBe("success");
        expect((await storage.threads.get("t1"))?.values).toEqual({ answer: 42 });
      });

      it("inflight lists pending and running runs only", async () => {
        await created("t1", "r1");
        await created("t1", "r2");
        await created("t1", "r3");
        await storage.runs.setStatus("r1", "success");
        await storage.runs.claimNext();
        const inflight = await storage.runs.inflight("t1");
        expect(inflight.map((r) => [r.run_id, r.status])).toEqual([
          ["r2", "running"],
          ["r3", "pending"],
        ]);
      });

      it("get checks the thread when one is given", async () => {
        await created("t1", "r1");
        expect(await storage.runs.get("r1", "t2")).toBeUndefined();
        expect(await storage.runs.get("r1", "nope")).toBeUndefined();
        expect(await storage.runs.get("nope")).toBeUndefined();
        expect(await storage.runs.get("nope", "t1")).toBeUndefined();
      });

      it("list returns a thread's runs newest first, with status filter, limit and offset", async () => {
        for (const id of ["r1", "r2", "r3", "r4"]) await created("t1", id);
        await created("t2", "other");
        await storage.runs.setStatus("r2", "success");
        await storage.runs.setStatus("r4", "error", { error: "E", message: "m" });

        expect(ids(await storage.runs.list("t1"))).toEqual(["r4", "r3", "r2", "r1"]);
        expect(ids(await storage.runs.list("t1", { limit: 2 }))).toEqual(["r4", "r3"]);
        expect(ids(await storage.runs.list("t1", { limit: 2, offset: 2 }))).toEqual(["r2", "r1"]);
        expect(ids(await storage.runs.list("t1", { offset: 3 }))).toEqual(["r1"]);
        expect(ids(await storage.runs.list("t1", { status: "pending" }))).toEqual(["r3", "r1"]);
        expect(
          ids(await storage.runs.list("t1", { status: "pending", limit: 1, offset: 1 })),
        ).toEqual(["r1"]);
        expect(ids(await storage.runs.list("t1", { status: "success" }))).toEqual(["r2"]);
        expect(ids(await storage.runs.list("t1", { status: "running" }))).toEqual([]);
        expect(ids(await storage.runs.list("t2"))).toEqual(["other"]);
        expect(await storage.runs.list("nope")).toEqual([]);
      });

      it("setStatus returns the updated run, and undefined for a missing run", async () => {
        const run = await created("t1", "r1");
        await nextTick();
        const error = { error: "TimeoutError", message: "took too long" };
        const updated = await storage.runs.setStatus("r1", "timeout", error);
        expect(updated).toMatchObject({
          ...run,
          status: "timeout",
          error,
          updated_at: updated?.updated_at,
        });
        expect(Date.parse(updated!.updated_at)).toBeGreaterThan(Date.parse(run.updated_at));
        expect(await storage.runs.get("r1")).toEqual(updated);

        const cleared = await storage.runs.setStatus("r1", "success");
        expect(cleared).toMatchObject({ status: "success", error: null });
        expect(await storage.runs.get("r1")).toEqual(cleared);
        expect(await storage.runs.setStatus("nope", "success")).toBeUndefined();
        expect(await storage.runs.get("nope")).toBeUndefined();
      });

      it("delete removes one run of the given thread", async () => {
        await created("t1", "r1");
        await created("t1", "r2");
        expect(await storage.runs.delete("r1", "t2")).toBe(false);
        expect(await storage.runs.get("r1")).toBeDefined();
        expect(await storage.runs.delete("r1", "t1")).toBe(true);
        expect(await storage.runs.get("r1")).toBeUndefined();
        expect(await storage.runs.delete("r1", "t1")).toBe(false);
        expect(ids(await storage.runs.list("t1"))).toEqual(["r2"]);
        expect(await storage.runs.delete("nope", "t1")).toBe(false);
      });

      it("countByStatus counts every status, zero included", async () => {
        const zero: Record<RunStatus, number> = {
          pending: 0,
          running: 0,
          error: 0,
          success: 0,
          timeout: 0,
          interrupted: 0,
        };
        expect(await storage.runs.countByStatus()).toEqual(zero);
        await created("t1", "r1");
        await created("t1", "r2");
        await created("t2", "r3");
        await created("t2", "r4");
        await storage.runs.claimNext();
        await storage.runs.setStatus("r3", "success");
        await storage.runs.setStatus("r4", "interrupted");
        expect(await storage.runs.countByStatus()).toEqual({
          ...zero,
          pending: 1,
          running: 1,
          success: 1,
          interrupted: 1,
        });
      });

      describe("claimNext", () => {
        it("returns undefined when nothing is pending", async () => {
          expect(await storage.runs.claimNext()).toBeUndefined();
        });

        it("claims the oldest due pending run, marks it running with attempt 1", async () => {
          const r1 = await created("t1", "r1");
          await created("t2", "r2");
          const claimed = await storage.runs.claimNext();
          expect(claimed).toMatchObject({
            ...r1,
            status: "running",
            attempt: 1,
            updated_at: claimed?.updated_at,
          });
          expect(await storage.runs.get("r1")).toEqual(claimed);
        });

        it("never claims a run created running (the CLI executes it itself), nor another run of its thread", async () => {
          const own = await created("t1", "r1", { status: "running" });
          expect(own).toMatchObject({ status: "running", attempt: 1 });
          expect(await storage.runs.get("r1")).toEqual(own);
          expect((await storage.threads.get("t1"))?.status).toBe("busy");
          await created("t1", "r2");
          expect(await storage.runs.claimNext()).toBeUndefined();
          expect((await storage.runs.inflight("t1")).map((r) => r.run_id)).toEqual(["r1", "r2"]);
        });

        it("does not claim a second run of a thread that has a running run", async () => {
          await created("t1", "r1");
          await created("t1", "r2");
          expect((await storage.runs.claimNext())?.run_id).toBe("r1");
          expect(await storage.runs.claimNext()).toBeUndefined();
          expect((await storage.runs.get("r2"))?.status).toBe("pending");
          await storage.runs.setStatus("r1", "success");
          expect(await storage.runs.claimNext()).toMatchObject({
            run_id: "r2",
            status: "running",
            attempt: 1,
          });
        });

        it("claims runs of other threads while one thread is running", async () => {
          await created("t1", "r1");
          await created("t1", "r2");
          await created("t2", "r3");
          expect((await storage.runs.claimNext())?.run_id).toBe("r1");
          expect((await storage.runs.claimNext())?.run_id).toBe("r3");
          expect(await storage.runs.claimNext()).toBeUndefined();
        });

        it("claims across threads in creation order, even within one millisecond", async () => {
          await storage.threads.create({ thread_id: "t3" });
          for (const [thread, run] of [
            ["t3", "z"],
            ["t1", "y"],
            ["t2", "x"],
          ] as const) {
            await created(thread, run);
          }
          const order = [];
          for (let i = 0; i < 3; i++) order.push((await storage.runs.claimNext())?.run_id);
          expect(order).toEqual(["z", "y", "x"]);
        });

        it("does not claim a run before its not_before time, and claims it once due", async () => {
          const hour = new Date(Date.now() + 3_600_000).toISOString();
          await created("t1", "next-hour", { not_before: hour });
          expect(await storage.runs.claimNext()).toBeUndefined();
          // A due run of another thread is not held up by it.
          await created("t2", "now");
          expect((await storage.runs.claimNext())?.run_id).toBe("now");
          expect(await storage.runs.claimNext()).toBeUndefined();
          // A short delay, so the test also sees a run become claimable as time passes.
          await storage.threads.create({ thread_id: "t3" });
          const due = Date.now() + 250;
          await created("t3", "soon", { not_before: new Date(due).toISOString() });
          const early = await storage.runs.claimNext();
          if (Date.now() < due) expect(early).toBeUndefined();
          await sleep(Math.max(0, due - Date.now()) + 30);
          if (!early) {
            expect(await storage.runs.claimNext()).toMatchObject({ run_id: "soon", attempt: 1 });
          }
          expect(await storage.runs.claimNext()).toBeUndefined();
          expect((await storage.runs.get("next-hour"))?.status).toBe("pending");
        });

        it("accepts a past not_before and compares times, not strings, across offsets", async () => {
          await created("t1", "past", { not_before: new Date(Date.now() - 60_000).toISOString() });
          expect((await storage.runs.claimNext())?.run_id).toBe("past");
          // One hour ago written at +14:00 reads later than now in UTC; one hour ahead written
          // at -12:00 reads earlier. Only the instant may count.
          await created("t2", "ahead-west", {
            not_before: isoWithOffset(Date.now() + 3_600_000, -12 * 60),
          });
          expect(await storage.runs.claimNext()).toBeUndefined();
          await storage.threads.create({ thread_id: "t3" });
          await created("t3", "ago-east", {
            not_before: isoWithOffset(Date.now() - 3_600_000, 14 * 60),
          });
          expect((await storage.runs.claimNext())?.run_id).toBe("ago-east");
        });

        it("refuses a not_before that is not a time, naming the field", async () => {
          await expectRefineryError(
            create("t1", "r1", { not_before: "next tuesday" }),
            "invalid_input",
            "not_before",
          );
          expect(await storage.runs.get("r1")).toBeUndefined();
          expect((await storage.threads.get("t1"))?.status).toBe("idle");
        });

        it("keeps FIFO order per thread even when created within one millisecond", async () => {
          // Ids sort against enqueue order, so ordering by id or timestamp would show.
          const enqueued = ["r9", "r5", "r7", "r1", "r3", "r8", "r2"];
          for (const id of enqueued) await created("t1", id);
          expect(ids(await storage.runs.list("t1", { limit: 100 }))).toEqual(
            [...enqueued].reverse(),
          );
          expect(ids(await storage.runs.inflight("t1"))).toEqual(enqueued);
          const claimed: string[] = [];
          for (;;) {
            const run = await storage.runs.claimNext();
            if (!run) break;
            claimed.push(run.run_id);
            await storage.runs.setStatus(run.run_id, "success");
          }
          expect(claimed).toEqual(enqueued);
        });

        it("keeps FIFO order per thread for runs created concurrently", async () => {
          const enqueued = ["c", "a", "b", "e", "d"];
          const results = await Promise.all(enqueued.map((id) => create("t1", id)));
          expect(results.every((r) => r.created)).toBe(true);
          // Whatever order the store settled on, list, inflight and claims agree with it.
          const order = ids(await storage.runs.inflight("t1"));
          expect([...order].sort()).toEqual([...enqueued].sort());
          expect(ids(await storage.runs.list("t1"))).toEqual([...order].reverse());
          const claimed: string[] = [];
          for (
            let run = await storage.runs.claimNext();
            run;
            run = await storage.runs.claimNext()
          ) {
            claimed.push(run.run_id);
            await storage.runs.setStatus(run.run_id, "success");
          }
          expect(claimed).toEqual(order);
        });

        it("skips finished runs", async () => {
          await created("t1", "r1");
          await created("t1", "r2");
          await storage.runs.setStatus("r1", "interrupted");
          expect((await storage.runs.claimNext())?.run_id).toBe("r2");
        });
      });

      describe("leases", () => {
        const lapsed = { owner: "w1", ttlMs: 0 };
        const held = { owner: "w1", ttlMs: 60_000 };

        it("reclaims nothing when nothing is running", async () => {
          await created("t1", "r1");
          expect(await storage.runs.reclaimRunning()).toEqual([]);
          expect((await storage.runs.get("r1"))?.status).toBe("pending");
        });

        it("takes back runs whose lease lapsed, keeps held ones; a later claim counts attempt 2, in thread order", async () => {
          await created("t1", "r1");
          await created("t2", "r2");
          await created("t2", "r3");
          await storage.threads.create({ thread_id: "t3" });
          await created("t3", "held");
          expect(await storage.runs.claimNext(lapsed)).toMatchObject({ run_id: "r1", attempt: 1 });
          expect(await storage.runs.claimNext(lapsed)).toMatchObject({ run_id: "r2", attempt: 1 });
          expect(await storage.runs.claimNext(held)).toMatchObject({ run_id: "held" });
          await nextTick();

          const reclaimed = await storage.runs.reclaimRunning();
          expect(reclaimed.map((r) => [r.run_id, r.status, r.attempt])).toEqual([
            ["r1", "pending", 1],
            ["r2", "pending", 1],
          ]);
          expect((await storage.runs.get("held"))?.status).toBe("running");
          expect((await storage.runs.get("r3"))?.status).toBe("pending");
          expect(await storage.runs.reclaimRunning()).toEqual([]);

          expect(await storage.runs.claimNext(held)).toMatchObject({ run_id: "r1", attempt: 2 });
          // r2 was enqueued before r3 on its thread, so it still goes first.
          expect(await storage.runs.claimNext(held)).toMatchObject({ run_id: "r2", attempt: 2 });
          expect(await storage.runs.claimNext(held)).toBeUndefined();
        });

        it("renewLeases keeps the holder's runs and names the ones it lost", async () => {
          await storage.threads.create({ thread_id: "t3" });
          await created("t1", "r1");
          await created("t2", "r2");
          await created("t3", "r3");
          await storage.runs.claimNext(lapsed);
          await storage.runs.claimNext(held);
          await storage.runs.claimNext(lapsed);
          await nextTick();
          // r1 lapsed but nobody took it yet: its holder may still renew it. r3 is taken over.
          expect(await storage.runs.renewLeases("w1", ["r1", "r2"], 60_000)).toEqual([]);
          expect(ids(await storage.runs.reclaimRunning())).toEqual(["r3"]);
          expect((await storage.runs.get("r1"))?.status).toBe("running");
          expect(await storage.runs.renewLeases("w1", ["r1", "r2", "r3"], 60_000)).toEqual(["r3"]);
          expect(await storage.runs.renewLeases("w2", ["r1"], 60_000)).toEqual(["r1"]);
          expect(await storage.runs.renewLeases("w1", [], 60_000)).toEqual([]);
          // Ended runs are not held by anyone.
          await storage.runs.setStatus("r2", "success");
          expect(await storage.runs.renewLeases("w1", ["r1", "r2"], 60_000)).toEqual(["r2"]);
        });

        it("gone names runs whose holder stopped (and lease-less ones, as a dead CLI's)", async () => {
          await created("t1", "cli-live", { status: "running", metadata: { source: "cli" } });
          await created("t2", "cli-dead", { status: "running", metadata: { source: "cli" } });
          await storage.threads.create({ thread_id: "t3" });
          await created("t3", "dead");
          await storage.threads.create({ thread_id: "t4" });
          await created("t4", "alive");
          await storage.runs.claimNext({ owner: "gone-worker", ttlMs: 60_000 });
          await storage.runs.claimNext(held);
          const asked: [string, string | null][] = [];
          const reclaimed = await storage.runs.reclaimRunning({
            gone: (run, owner) => {
              asked.push([run.run_id, owner]);
              return owner === "gone-worker" || run.run_id === "cli-dead";
            },
          });
          expect(ids(reclaimed)).toEqual(["cli-dead", "dead"]);
          expect(asked.sort()).toEqual([
            ["alive", "w1"],
            ["cli-dead", null],
            ["cli-live", null],
            ["dead", "gone-worker"],
          ]);
          expect((await storage.runs.get("cli-live"))?.status).toBe("running");
          expect((await storage.runs.get("alive"))?.status).toBe("running");
          expect((await storage.runs.get("dead"))?.status).toBe("pending");
        });

        it("with exhausted, a run already on its last attempt ends as an error instead", async () => {
          await created("t1", "r1");
          await created("t2", "r2");
          const error = { error: "RunThreadLost", message: "no attempts left" };
          await storage.runs.claimNext(lapsed);
          await nextTick();
          await storage.runs.reclaimRunning();
          expect(await storage.runs.claimNext(lapsed)).toMatchObject({ run_id: "r1", attempt: 2 });
          expect(await storage.runs.claimNext(lapsed)).toMatchObject({ run_id: "r2", attempt: 1 });
          await nextTick();
          const reclaimed = await storage.runs.reclaimRunning({
            exhausted: { attempts: 2, error },
          });
          expect(reclaimed.map((r) => [r.run_id, r.status, r.error])).toEqual([
            ["r1", "error", error],
            ["r2", "pending", null],
          ]);
          expect(await storage.runs.get("r1")).toMatchObject({ status: "error", error });
          expect(await storage.runs.claimNext(held)).toMatchObject({ run_id: "r2", attempt: 2 });
        });

        it("storageLost: an attempt the database cut short is counted apart and does not exhaust the run", async () => {
          await created("t1", "r1");
          await created("t2", "r2");
          const error = { error: "RunThreadLost", message: "no attempts left" };
          // Two attempts each; r1's were both cut short by the database, r2's were not.
          for (let i = 0; i < 2; i++) {
            await storage.runs.claimNext(held);
            await storage.runs.claimNext(held);
            const reclaimed = await storage.runs.reclaimRunning({
              gone: () => true,
              storageLost: (run) => run.run_id === "r1",
              exhausted: { attempts: 3, error },
            });
            expect(reclaimed.map((r) => [r.run_id, r.status, r.lost_to_storage])).toEqual([
              ["r1", "pending", i + 1],
              ["r2", "pending", undefined],
            ]);
          }
          expect(await storage.runs.get("r1")).toMatchObject({ attempt: 2, lost_to_storage: 2 });
          expect((await storage.runs.get("r2"))?.lost_to_storage).toBeUndefined();
          // Third attempts, not cut short: r2 has used its three; r1 has used one.
          await storage.runs.claimNext(held);
          await storage.runs.claimNext(held);
          const reclaimed = await storage.runs.reclaimRunning({
            gone: () => true,
            exhausted: { attempts: 3, error },
          });
          expect(reclaimed.map((r) => [r.run_id, r.status, r.attempt])).toEqual([
            ["r1", "pending", 3],
            ["r2", "error", 3],
          ]);
          expect(await storage.runs.claimNext(held)).toMatchObject({
            run_id: "r1",
            attempt: 4,
            lost_to_storage: 2,
          });
        });

        it("requeue puts back a run running as the given attempt, counting a storage loss apart", async () => {
          await created("t1", "r1");
          await created("t2", "r2");
          expect(await storage.runs.claimNext(held)).toMatchObject({ run_id: "r1", attempt: 1 });
          // Not running as attempt 2, nor running at all: nothing changes.
          expect(await storage.runs.requeue("r1", 2, { storageLost: true })).toBe(false);
          expect(await storage.runs.requeue("r2", 0)).toBe(false);
          expect(await storage.runs.get("r2")).toMatchObject({ status: "pending", attempt: 0 });
          expect(await storage.runs.requeue("r1", 1, { storageLost: true })).toBe(true);
          expect(await storage.runs.get("r1")).toMatchObject({
            status: "pending",
            attempt: 1,
            lost_to_storage: 1,
          });
          // Its lease went with it: no heartbeat keeps it, and a claim takes it again.
          expect(await storage.runs.renewLeases("w1", ["r1"], 60_000)).toEqual(["r1"]);
          expect(await storage.runs.claimNext(held)).toMatchObject({ run_id: "r1", attempt: 2 });
          expect(await storage.runs.requeue("r1", 2)).toBe(true);
          expect(await storage.runs.get("r1")).toMatchObject({
            status: "pending",
            attempt: 2,
            lost_to_storage: 1,
          });
          expect(await storage.runs.requeue("r1", 2)).toBe(false);
        });

        it("concurrent reclaimers take each lapsed run exactly once", async () => {
          for (let i = 0; i < 8; i++) {
            await storage.threads.create({ thread_id: `lt${i}` });
            await created(`lt${i}`, `lr${i}`);
            await storage.runs.claimNext(lapsed);
          }
          await nextTick();
          const all = (
            await Promise.all(Array.from({ length: 4 }, () => storage.runs.reclaimRunning()))
          ).flat();
          expect(ids(all).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `lr${i}`).sort());
        });
      });

      describe("duty leases", () => {
        it("one holder at a time: renewable by its holder, free once released or lapsed", async () => {
          expect(await storage.duties.acquire("crons", "a", 60_000)).toBe(true);
          expect(await storage.duties.acquire("crons", "b", 60_000)).toBe(false);
          expect(await storage.duties.acquire("crons", "a", 60_000)).toBe(true);
          // Another duty is another lease.
          expect(await storage.duties.acquire("approvals", "b", 0)).toBe(true);
          await storage.duties.release("crons", "b"); // not b's: nothing happens
          expect(await storage.duties.acquire("crons", "b", 60_000)).toBe(false);
          await storage.duties.release("crons", "a");
          expect(await storage.duties.acquire("crons", "b", 60_000)).toBe(true);
          await nextTick();
          // b's lease on approvals lapsed: a takes it.
          expect(await storage.duties.acquire("approvals", "a", 60_000)).toBe(true);
          expect(await storage.duties.acquire("approvals", "b", 60_000)).toBe(false);
        });

        it("holders names the holder of each lease not lapsed", async () => {
          expect(await storage.duties.holders([])).toEqual(new Map());
          await storage.duties.acquire("h1", "a", 60_000);
          await storage.duties.acquire("h2", "b", 60_000);
          await storage.duties.acquire("h3", "c", 0);
          await nextTick();
          expect(await storage.duties.holders(["h1", "h2", "h3", "h4"])).toEqual(
            new Map([
              ["h1", "a"],
              ["h2", "b"],
            ]),
          );
          await storage.duties.release("h1", "a");
          expect(await storage.duties.holders(["h1", "h2"])).toEqual(new Map([["h2", "b"]]));
        });

        it("sweep deletes the lapsed leases of a prefix, after the grace, and nothing else", async () => {
          await storage.duties.acquire("cancel:r1", "interrupt:a", 0); // lapsed
          await storage.duties.acquire("cancel:r2", "interrupt:b", 60_000); // live
          await storage.duties.acquire("cancelled", "x", 0); // lapsed, another name
          await storage.duties.acquire("CANCEL:r3", "x", 0); // lapsed, other case
          await storage.duties.acquire("approvals", "x", 0); // lapsed duty
          await nextTick();
          // The prefix is taken as written: no LIKE wildcards.
          expect(await storage.duties.sweep("c_ncel:", 0)).toBe(0);
          expect(await storage.duties.sweep("%", 0)).toBe(0);
          // Lapsed for less than the grace: kept.
          expect(await storage.duties.sweep("cancel:", 60_000)).toBe(0);
          expect(await storage.duties.sweep("cancel:", 0)).toBe(1);
          expect(await storage.duties.sweep("cancel:", 0)).toBe(0);
          // The live cancel stands, and the other leases are still there: their owners still
          // hold them against others until they lapse, so b is refused on the live one.
          expect(await storage.duties.holders(["cancel:r1", "cancel:r2"])).toEqual(
            new Map([["cancel:r2", "interrupt:b"]]),
          );
          expect(await storage.duties.acquire("cancel:r2", "interrupt:c", 60_000)).toBe(false);
          expect(await storage.duties.sweep("", 0)).toBe(3); // cancelled, CANCEL:r3, approvals
          // A swept name is free for anyone.
          expect(await storage.duties.acquire("cancel:r1", "rollback:c", 60_000)).toBe(true);
        });

        it("of concurrent acquirers exactly one gets a free lease", async () => {
          const got = await Promise.all(
            ["a", "b", "c", "d"].map((o) => storage.duties.acquire("sweep", o, 60_000)),
          );
          expect(got.filter(Boolean)).toHaveLength(1);
        });
      });

      describe("concurrency", () => {
        it("concurrent claimNext calls claim each run exactly once", async () => {
          const threadIds = Array.from({ length: 10 }, (_, i) => `ct${i}`);
          for (const id of threadIds) {
            await storage.threads.create({ thread_id: id });
            await created(id, `run-${id}`);
          }
          const results = await Promise.all(
            Array.from({ length: 20 }, () => storage.runs.claimNext()),
          );
          const claimed = results.filter((r): r is Run => r !== undefined);
          expect(claimed).toHaveLength(10);
          expect(ids(claimed).sort()).toEqual(threadIds.map((id) => `run-${id}`).sort());
          expect(claimed.every((r) => r.status === "running" && r.attempt === 1)).toBe(true);
          for (const run of claimed) {
            expect(await storage.runs.get(run.run_id)).toMatchObject({
              status: "running",
              attempt: 1,
            });
          }
          expect(await storage.runs.claimNext()).toBeUndefined();
          expect((await storage.runs.countByStatus()).running).toBe(10);
        });
      });
    });

    describe("crons", () => {
      it("stores, reads through access, merges metadata on update, and deletes", async () => {
        const c = await storage.crons.create(newCron("c1"));
        expect(c).toMatchObject({
          cron_id: "c1",
          thread_id: null,
          enabled: true,
          payload: { input: { task: "c1" } },
          next_run_date: "2031-01-01T00:01:00.000Z",
        });
        expect(c).not.toHaveProperty("owner");
        expectIsoTime(c!.created_at);
        expect(await storage.crons.get("c1", { filters: { tenant_id: "t2" } })).toBeUndefined();
        expect(await storage.crons.get("c1", { filters: { tenant_id: "t1" } })).toMatchObject({
          cron_id: "c1",
        });
        const updated = await storage.crons.update("c1", {
          metadata: { note: "x" },
          enabled: false,
          next_run_date: null,
        });
        expect(updated).toMatchObject({
          metadata: { tenant_id: "t1", note: "x" },
          enabled: false,
          next_run_date: null,
        });
        expect(
          await storage.crons.update("c1", { enabled: true }, { filters: { tenant_id: "t2" } }),
        ).toBeUndefined();
        expect(await storage.crons.delete("c1", { filters: { tenant_id: "t2" } })).toBe(false);
        expect(await storage.crons.delete("c1")).toBe(true);
        expect(await storage.crons.get("c1")).toBeUndefined();
      });

      it("caps crons per partition", async () => {
        expect(await storage.crons.create(newCron("a"), { partitionLimit: 2 })).toBeDefined();
        expect(await storage.crons.create(newCron("b"), { partitionLimit: 2 })).toBeDefined();
        expect(await storage.crons.create(newCron("c"), { partitionLimit: 2 })).toBeUndefined();
        const other = { scopes: [], partition: "t2" };
        expect(
          await storage.crons.create(newCron("d", { owner: other }), { partitionLimit: 2 }),
        ).toBeDefined();
        expect(await storage.crons.count({})).toBe(3);
      });

      it("searches and counts by assistant, thread, enabled, metadata and access", async () => {
        await storage.threads.create({ thread_id: "t-1" });
        await storage.crons.create(newCron("s1", { next_run_date: "2031-01-01T00:03:00.000Z" }));
        await storage.crons.create(
          newCron("s2", { thread_id: "t-1", next_run_date: "2031-01-01T00:02:00.000Z" }),
        );
        await storage.crons.create(
          newCron("s3", { assistant_id: "asst-2", enabled: false, metadata: { tenant_id: "t2" } }),
        );
        const ids = (cs: { cron_id: string }[]) => cs.map((c) => c.cron_id);
        expect(
          ids(
            await storage.crons.search({
              sort_by: "next_run_date",
              sort_order: "asc",
              filters: { tenant_id: "t1" },
            }),
          ),
        ).toEqual(["s2", "s1"]);
        expect(ids(await storage.crons.search({ thread_id: "t-1" }))).toEqual(["s2"]);
        expect(ids(await storage.crons.search({ assistant_id: "asst-2" }))).toEqual(["s3"]);
        expect(ids(await storage.crons.search({ enabled: false }))).toEqual(["s3"]);
        expect(await storage.crons.count({ metadata: { tenant_id: "t1" } })).toBe(2);
        expect(await storage.crons.count({ filters: { tenant_id: "t2" } })).toBe(1);
        expect(
          ids(
            await storage.crons.search({
              metadata: { tenant_id: "t1" },
              sort_by: "next_run_date",
              sort_order: "asc",
              limit: 1,
              offset: 1,
            }),
          ),
        ).toEqual(["s1"]);
        // A thread's crons go with it.
        await storage.threads.delete("t-1");
        expect(await storage.crons.get("s2")).toBeUndefined();
      });

      it("claims each due firing once: missed ticks fire once, disabled and future crons wait", async () => {
        await storage.crons.create(newCron("due"));
        await storage.crons.create(newCron("off", { enabled: false }));
        await storage.crons.create(newCron("later", { next_run_date: "2031-01-01T01:00:00.000Z" }));
        // Ten minutes late: one firing, at the time it was due; next is after now.
        const at = "2031-01-01T00:10:30.000Z";
        const claimed = await storage.crons.claimDue(at, 10, () => nextMinute(at));
        expect(claimed.map((c) => [c.cron_id, c.fire_at, c.next_run_date])).toEqual([
          ["due", "2031-01-01T00:01:00.000Z", "2031-01-01T00:11:00.000Z"],
        ]);
        expect(claimed[0]!.owner).toEqual({
          scopes: ["member"],
          partition: "t1",
          user: { identity: "u1" },
        });
        expect(await storage.crons.claimDue(at, 10, () => nextMinute(at))).toEqual([]);
        expect((await storage.crons.get("due"))?.next_run_date).toBe("2031-01-01T00:11:00.000Z");
        await storage.crons.recordFiring("due", claimed[0]!.fire_at, { run_id: "r1" });
        // A schedule with no next time (past its end) is claimed once more, then never.
        const end = await storage.crons.claimDue("2031-01-01T00:11:00.000Z", 10, () => null);
        expect(end.map((c) => [c.cron_id, c.next_run_date])).toEqual([["due", null]]);
        const last = await storage.crons.claimDue("2032-01-01T00:00:00.000Z", 10, () => null);
        expect(last.map((c) => [c.cron_id, c.fire_at])).toEqual([
          ["later", "2031-01-01T01:00:00.000Z"],
        ]);
        expect(await storage.crons.claimDue("2033-01-01T00:00:00.000Z", 10, () => null)).toEqual(
          [],
        );
      });

      it("of concurrent claims of the same firings, each is won by one", async () => {
        for (let i = 0; i < 10; i++) await storage.crons.create(newCron(`race-${i}`));
        const at = "2031-01-01T00:01:00.000Z";
        const results = await Promise.all(
          Array.from({ length: 8 }, () => storage.crons.claimDue(at, 100, () => nextMinute(at))),
        );
        const won = results.flat().map((c) => `${c.cron_id}@${c.fire_at}`);
        expect(won).toHaveLength(10);
        expect(new Set(won).size).toBe(10);
      });
    });
  });
}
