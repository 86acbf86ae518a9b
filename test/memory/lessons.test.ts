// The lessons memory — de-duplication, the cap, ranking, demotion, edits and deletes — on each
// store it runs on: LangGraph's InMemoryStore, the SQLite store (a real temp file) and the
// Postgres store (the real Postgres on this machine, a schema of its own, dropped afterwards).
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InMemoryStore, type BaseStore } from "@langchain/langgraph-checkpoint";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { LessonMemory } from "../../core/memory/lessons.ts";
import { openStore } from "../../core/memory/open-store.ts";
import { bm25, jaccard, keywords, tokenize } from "../../core/memory/text.ts";

const PG_URL = process.env.REFINERY_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const PG_SCHEMA = `refinery_lessons_test_${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "refinery-lessons-"));
const closers: (() => Promise<void>)[] = [];
let opened = 0;

afterAll(async () => {
  for (const close of closers) await close();
  rmSync(dir, { recursive: true, force: true });
  const admin = new pg.Pool({ connectionString: PG_URL });
  await admin.query(`DROP SCHEMA IF EXISTS "${PG_SCHEMA}" CASCADE`);
  await admin.end();
});

const STORES: Record<string, () => Promise<BaseStore>> = {
  memory: async () => new InMemoryStore(),
  sqlite: async () => {
    const s = await openStore({ dbPath: join(dir, `lessons-${(opened += 1)}.db`) });
    closers.push(s.close);
    return s.store;
  },
  postgres: async () => {
    const s = await openStore({ postgresUrl: PG_URL, schema: PG_SCHEMA });
    closers.push(s.close);
    return s.store;
  },
};

describe("text helpers", () => {
  it("tokenizes without stop words and numbers, with light stemming", () => {
    expect(tokenize("The trains travelled 120 km in 2 hours")).toEqual([
      "train",
      "travell",
      "km",
      "hour",
    ]);
    expect(keywords("apples and apples and pears", 2)).toEqual(["apple", "pear"]);
  });
  it("scores near duplicates and ranks by shared rare terms", () => {
    expect(jaccard("Check the units of speed", "check the speed units")).toBe(1);
    expect(jaccard("Check the units", "Use a JSON object")).toBe(0);
    const s = bm25(
      ["speed", "train"],
      [
        { id: "a", terms: ["speed", "train", "km"] },
        { id: "b", terms: ["json", "field"] },
      ],
    );
    expect(s.get("a")).toBeGreaterThan(0);
    expect(s.get("b")).toBe(0);
  });
});

describe.each(Object.keys(STORES))("LessonMemory on the %s store", (kind) => {
  // Each test gets its own assistant namespace, so tests sharing a database do not meet.
  let n = 0;
  let A = "";
  async function memory(options: ConstructorParameters<typeof LessonMemory>[1] = {}) {
    let t = Date.parse("2026-11-01T00:00:00Z");
    A = `assistant-${kind}-${(n += 1)}-${randomBytes(3).toString("hex")}`;
    return new LessonMemory(await STORES[kind]!(), {
      now: () => new Date((t += 1000)),
      ...options,
    });
  }

  it("stores a lesson and merges an exact or near duplicate into it", async () => {
    const m = await memory();
    const first = await m.add(A, {
      text: "Convert minutes to hours before dividing distance by time.",
      graph_id: "refine",
      task: "A train travels 90 km in 45 minutes. What is its speed in km/h?",
      source: "critique",
      evidence: { thread_id: "t1", iteration: 1 },
    });
    expect(first.created).toBe(true);
    const again = await m.add(A, {
      text: "convert minutes to hours before dividing  distance by time",
      graph_id: "refine",
      task: "A cyclist rides 12 km in 40 minutes.",
      source: "critique",
      evidence: { thread_id: "t2", iteration: 2 },
    });
    expect(again.created).toBe(false);
    expect(again.lesson.id).toBe(first.lesson.id);
    expect(again.lesson.evidence.map((e) => e.thread_id)).toEqual(["t1", "t2"]);
    expect(again.lesson.keywords).toEqual(expect.arrayContaining(["train", "cyclist"]));
    const near = await m.add(A, {
      text: "Always convert minutes to hours before dividing distance by time.",
      graph_id: "refine",
      source: "critique",
    });
    expect(near.created).toBe(false);
    expect(await m.list(A)).toHaveLength(1);
  });

  it("retrieves relevant lessons for a similar task and none for an unrelated one", async () => {
    const m = await memory();
    await m.add(A, {
      text: "Convert minutes to hours before computing a speed in km/h.",
      graph_id: "refine",
      task: "A train travels 90 km in 45 minutes. What is its average speed in km/h?",
      source: "critique",
    });
    await m.add(A, {
      text: "Every required JSON field must be present, with the schema's types.",
      graph_id: "refine",
      task: "Extract the contact's name, email and phone as JSON.",
      source: "verifier",
    });
    const hits = await m.retrieve(
      A,
      "A bus travels 60 km in 50 minutes. What is its average speed?",
    );
    expect(hits.map((h) => h.text)).toEqual([
      "Convert minutes to hours before computing a speed in km/h.",
    ]);
    expect(await m.retrieve(A, "Write a haiku about autumn leaves")).toEqual([]);
    expect(await m.retrieve("other-assistant", "A bus travels 60 km in 50 minutes.")).toEqual([]);
  });

  it("caps the memory, evicting unpinned, least useful, oldest lessons first", async () => {
    const m = await memory({ maxLessons: 3 });
    const ids: string[] = [];
    for (const [i, word] of ["alpha", "bravo", "charlie", "delta", "echo"].entries()) {
      const { lesson } = await m.add(A, {
        text: `Lesson ${word} about topic ${word}${i}`,
        graph_id: "refine",
        source: "manual",
        pinned: i === 0,
      });
      ids.push(lesson.id);
    }
    const left = (await m.list(A, { limit: 10 })).map((l) => l.id).sort();
    expect(left).toEqual([ids[0], ids[3], ids[4]].sort());
  });

  it("credits and demotes lessons by whether the first draft then passed", async () => {
    const m = await memory({ demoteAfter: 2 });
    const { lesson } = await m.add(A, {
      text: "Show every arithmetic step on its own line.",
      graph_id: "refine",
      task: "Compute the total cost of 12 pencils at 3 dollars each",
      source: "verifier",
    });
    await m.recordUse(A, [lesson.id], true);
    await m.recordUse(A, [lesson.id], false);
    await m.recordUse(A, [lesson.id], false);
    expect((await m.get(A, lesson.id))!.demoted).toBe(false);
    await m.recordUse(A, [lesson.id], false);
    const demoted = (await m.get(A, lesson.id))!;
    expect(demoted).toMatchObject({ uses: 4, helped: 1, failed: 3, demoted: true });
    expect(await m.retrieve(A, "total cost of 7 pencils at 2 dollars each")).toEqual([]);
    await m.update(A, lesson.id, { pinned: true });
    expect(await m.retrieve(A, "total cost of 7 pencils at 2 dollars each")).toHaveLength(1);
    const restored = await m.update(A, lesson.id, { demoted: false, pinned: false });
    expect(restored).toMatchObject({ demoted: false, failed: 0 });
  });

  it("edits, searches and deletes; rejects empty and oversized text", async () => {
    const m = await memory();
    const { lesson } = await m.add(A, {
      text: "Quote units in the answer.",
      graph_id: "refine",
      source: "manual",
    });
    const edited = await m.update(A, lesson.id, { text: "Quote the units in the final answer." });
    expect(edited!.text).toBe("Quote the units in the final answer.");
    expect((await m.list(A, { query: "units answer" }))[0]!.id).toBe(lesson.id);
    expect(await m.list(A, { query: "zebra" })).toEqual([]);
    expect(await m.delete(A, lesson.id)).toBe(true);
    expect(await m.delete(A, lesson.id)).toBe(false);
    expect(await m.get(A, lesson.id)).toBeUndefined();
    await expect(m.add(A, { text: "  ", graph_id: "refine", source: "manual" })).rejects.toThrow(
      /empty/,
    );
    await expect(
      m.add(A, { text: "x".repeat(501), graph_id: "refine", source: "manual" }),
    ).rejects.toThrow(/over the limit of 500/);
  });

  it("tells listeners about its writes; forget makes another instance's next retrieve read the store", async () => {
    // Two instances on one store, as the server thread and a run thread have.
    const writer = await memory();
    const reader = new LessonMemory(writer.store, { snapshotMs: 60_000 });
    const task = "A car travels 150 km in 2 hours. What is its speed in km/h?";
    expect(await reader.retrieve(A, task)).toEqual([]); // the reader keeps this snapshot
    const changed: string[] = [];
    writer.onChange((assistantId) => changed.push(assistantId));
    await writer.add(A, {
      text: "Speed is distance divided by time; state the unit km/h.",
      graph_id: "refine",
      task,
      source: "critique",
    });
    expect(changed).toEqual([A]);
    expect(await reader.retrieve(A, task)).toEqual([]); // still the old snapshot
    reader.forget(A);
    expect((await reader.retrieve(A, task)).map((l) => l.text)).toEqual([
      "Speed is distance divided by time; state the unit km/h.",
    ]);
  });

  it("ranks by embeddings when an embeddings model is configured", async () => {
    // A toy embedding: counts of three marker words, enough to order by cosine.
    const embed = (t: string) =>
      ["speed", "json", "poem"].map((w) => (t.toLowerCase().split(w).length - 1) as number);
    const m = await memory({
      embeddings: {
        embedQuery: async (t: string) => embed(t),
        embedDocuments: async (ts: string[]) => ts.map(embed),
      },
    });
    await m.add(A, { text: "Speed is distance over time.", graph_id: "refine", source: "manual" });
    await m.add(A, { text: "Return a JSON object only.", graph_id: "refine", source: "manual" });
    const hits = await m.retrieve(A, "what speed, what speed");
    expect(hits.map((h) => h.text)).toEqual(["Speed is distance over time."]);
  });
});
