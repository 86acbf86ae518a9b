// The SQLite storage against a real database file: the shared conformance suite, then what only
// a file can show (data surviving a reopen, two connections, living beside the checkpoints).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Annotation, END, START, StateGraph } from "@langchain/langgraph";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSqliteStorage } from "../../core/storage/sqlite/storage.ts";
import type { NewRun } from "../../core/storage/types.ts";
import { storageConformance } from "./conformance.ts";

function openFile(file: string): Database.Database {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 5000");
  return db;
}

storageConformance("sqlite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "refinery-storage-"));
  const db = openFile(join(dir, "refinery.db"));
  return {
    storage: createSqliteStorage(db),
    cleanup: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

function newRun(threadId: string, runId: string): NewRun {
  return {
    run_id: runId,
    thread_id: threadId,
    assistant_id: "asst-1",
    graph_id: "refine",
    multitask_strategy: "enqueue",
    kwargs: { input: { n: 1 }, config: { configurable: {} }, stream_mode: ["values"] },
  };
}

describe("sqlite storage file", () => {
  let dir: string;
  let file: string;
  const opened: Database.Database[] = [];
  const open = () => {
    const db = openFile(file);
    opened.push(db);
    return db;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "refinery-storage-file-"));
    file = join(dir, "refinery.db");
  });

  afterEach(() => {
    for (const db of opened.splice(0)) if (db.open) db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps assistants, threads and runs after closing and reopening the file", async () => {
    const db = open();
    const storage = createSqliteStorage(db);
    await storage.assistants.create({ assistant_id: "a1", graph_id: "refine", name: "one" });
    await storage.assistants.update("a1", { name: "two" });
    await storage.threads.create({ thread_id: "t1", metadata: { user: "ann" } });
    await storage.threads.setSnapshot("t1", {
      status: "interrupted",
      values: { draft: "x" },
      interrupts: { task: [{ value: 1 }] },
    });
    await storage.runs.create(newRun("t1", "r1"), { rejectIfInflight: false });
    await storage.runs.create(newRun("t1", "r2"), { rejectIfInflight: false });
    await storage.runs.claimNext();
    const before = {
      assistant: await storage.assistants.get("a1"),
      thread: await storage.threads.get("t1"),
      runs: await storage.runs.list("t1"),
    };
    await storage.close();
    db.close();

    const again = createSqliteStorage(open());
    expect(await again.assistants.get("a1")).toEqual(before.assistant);
    expect((await again.assistants.versions("a1")).map((v) => v.name)).toEqual(["two", "one"]);
    expect(await again.threads.get("t1")).toEqual(before.thread);
    expect(await again.runs.list("t1")).toEqual(before.runs);

    // The queue carries on where it was: crash recovery, then FIFO after older runs.
    expect((await again.runs.reclaimRunning({ gone: () => true })).map((r) => r.run_id)).toEqual([
      "r1",
    ]);
    await again.runs.create(newRun("t1", "r0"), { rejectIfInflight: false });
    const claimed: string[] = [];
    for (let run = await again.runs.claimNext(); run; run = await again.runs.claimNext()) {
      claimed.push(`${run.run_id}#${run.attempt}`);
      await again.runs.setStatus(run.run_id, "success");
    }
    expect(claimed).toEqual(["r1#2", "r2#1", "r0#1"]);
  });

  it("stores a thread's long values packed, reads and searches them, and reads older text rows", async () => {
    const db = open();
    const storage = createSqliteStorage(db);
    const drafts = Array.from({ length: 20 }, (_, i) => ({ iteration: i, text: `Answer: ${i}` }));
    const values = { task: "What is 2 + 2?", drafts, answer: "Answer: 4" };
    await storage.threads.create({ thread_id: "packed" });
    await storage.threads.setSnapshot("packed", { status: "idle", values, interrupts: {} });
    const row = db
      .prepare(
        `SELECT typeof("values") AS kind, length("values") AS bytes FROM refinery_threads WHERE thread_id = 'packed'`,
      )
      .get() as { kind: string; bytes: number };
    expect(row.kind).toBe("blob");
    expect(row.bytes).toBeLessThan(JSON.stringify(values).length / 2);
    expect((await storage.threads.get("packed"))?.values).toEqual(values);
    const ids = async (v: Record<string, unknown>) =>
      (await storage.threads.search({ values: v, limit: 10 })).map((t) => t.thread_id);
    expect(await ids({ answer: "Answer: 4" })).toEqual(["packed"]);
    expect(await ids({ answer: "Answer: 5" })).toEqual([]);
    // A row written before packing (JSON text) reads and searches the same.
    await storage.threads.create({ thread_id: "text" });
    db.prepare(`UPDATE refinery_threads SET "values" = ? WHERE thread_id = 'text'`).run(
      JSON.stringify({ ...values, answer: "old" }),
    );
    expect((await storage.threads.get("text"))?.values).toEqual({ ...values, answer: "old" });
    expect(await ids({ answer: "old" })).toEqual(["text"]);
  });

  it("keeps FIFO order when two connections enqueue on the same file", async () => {
    const first = createSqliteStorage(open());
    const second = createSqliteStorage(open());
    await first.threads.create({ thread_id: "t1" });
    const enqueued = ["c", "b", "a", "e", "d"];
    for (const [i, id] of enqueued.entries()) {
      await (i % 2 ? second : first).runs.create(newRun("t1", id), { rejectIfInflight: false });
    }
    expect((await first.runs.inflight("t1")).map((r) => r.run_id)).toEqual(enqueued);
    expect((await second.runs.list("t1")).map((r) => r.run_id)).toEqual([...enqueued].reverse());
    const claimed: string[] = [];
    for (let i = 0; i < enqueued.length; i++) {
      const run = await (i % 2 ? first : second).runs.claimNext();
      if (!run) break;
      claimed.push(run.run_id);
      await first.runs.setStatus(run.run_id, "success");
    }
    expect(claimed).toEqual(enqueued);
  });

  it("lives beside the LangGraph checkpoint tables in the same file", async () => {
    const db = open();
    const storage = createSqliteStorage(db);
    const saver = new SqliteSaver(db);
    const State = Annotation.Root({ count: Annotation<number> });
    const graph = new StateGraph(State)
      .addNode("bump", (s) => ({ count: s.count + 1 }))
      .addEdge(START, "bump")
      .addEdge("bump", END)
      .compile({ checkpointer: saver });
    const config = { configurable: { thread_id: "t1" } };

    await storage.threads.create({ thread_id: "t1" });
    expect(await graph.invoke({ count: 41 }, config)).toEqual({ count: 42 });
    await storage.threads.setSnapshot("t1", {
      status: "idle",
      values: { count: 42 },
      interrupts: {},
    });
    db.close();

    const reopened = open();
    const tables = (
      reopened.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
        name: string;
      }[]
    ).map((t) => t.name);
    expect(tables).toEqual(
      expect.arrayContaining([
        "checkpoints",
        "writes",
        "refinery_assistants",
        "refinery_assistant_versions",
        "refinery_threads",
        "refinery_runs",
      ]),
    );
    const again = createSqliteStorage(reopened);
    const tuple = await new SqliteSaver(reopened).getTuple(config);
    expect(tuple?.checkpoint.channel_values).toMatchObject({ count: 42 });
    expect(await again.threads.get("t1")).toMatchObject({ status: "idle", values: { count: 42 } });
    const state = await new StateGraph(State)
      .addNode("bump", (s) => ({ count: s.count + 1 }))
      .addEdge(START, "bump")
      .addEdge("bump", END)
      .compile({ checkpointer: new SqliteSaver(reopened) })
      .getState(config);
    expect(state.values).toEqual({ count: 42 });
  });
});
