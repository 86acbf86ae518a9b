// PreparedSqliteSaver (core/checkpointer.ts) reuses prepared statements for put/putWrites and
// stores checkpoints as deltas from their parents; what it reads back must be exactly what the
// library's SqliteSaver reads for the same runs, and it must read the library's files.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Annotation,
  Command,
  END,
  interrupt,
  START,
  StateGraph,
  type BaseCheckpointSaver,
} from "@langchain/langgraph";
import { emptyCheckpoint, type CheckpointListOptions } from "@langchain/langgraph-checkpoint";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import {
  isStaleRunError,
  openSqliteCheckpointer,
  PreparedSqliteSaver,
} from "../../core/checkpointer.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const State = Annotation.Root({
  log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  answer: Annotation<string>,
});

function graph(saver: BaseCheckpointSaver) {
  return new StateGraph(State)
    .addNode("draft", () => ({ log: ["draft"], answer: "4" }))
    .addNode("review", () => {
      const decision = interrupt({ question: "ok?" }) as string;
      return { log: [`review:${decision}`] };
    })
    .addNode("fail", () => {
      throw new Error("boom");
    })
    .addEdge(START, "draft")
    .addEdge("draft", "review")
    .addConditionalEdges("review", (s) => (s.log.includes("review:fail") ? "fail" : END))
    .compile({ checkpointer: saver });
}

/** Runs to an interrupt, resumes, then a second thread that errors. */
async function exercise(saver: BaseCheckpointSaver) {
  const g = graph(saver);
  const a = { configurable: { thread_id: "a" } };
  await g.invoke({ log: ["start"] }, a);
  await g.invoke(new Command({ resume: "yes" }), a);
  const b = { configurable: { thread_id: "b" } };
  await g.invoke({ log: ["start"] }, b);
  await expect(g.invoke(new Command({ resume: "fail" }), b)).rejects.toThrow("boom");
}

/** A thread's tuples as the saver reads them, without the time-based ids and timestamps. */
async function tuples(
  saver: BaseCheckpointSaver,
  thread_id: string,
  options?: CheckpointListOptions,
) {
  const ids = new Map<string, number>();
  const id = (v: unknown) => {
    if (typeof v !== "string") return v;
    if (!ids.has(v)) ids.set(v, ids.size);
    return `#${ids.get(v)}`;
  };
  const out = [];
  for await (const t of saver.list({ configurable: { thread_id } }, options)) {
    out.push({
      id: id(t.checkpoint.id),
      parent: id(t.parentConfig?.configurable?.checkpoint_id),
      values: t.checkpoint.channel_values,
      versions: t.checkpoint.channel_versions,
      seen: t.checkpoint.versions_seen,
      metadata: t.metadata,
      writes: t.pendingWrites?.map(([, channel, value]) =>
        channel === "__error__" || channel === "__interrupt__" ? channel : [channel, value],
      ),
    });
  }
  return out;
}

/** Every pending write row, without the time-based ids, in a stable order. */
function writeRows(db: Database.Database) {
  const ids = new Map<string, number>();
  const id = (v: string) => {
    if (!ids.has(v)) ids.set(v, ids.size);
    return `#${ids.get(v)}`;
  };
  return (
    db
      .prepare("SELECT * FROM writes ORDER BY thread_id, checkpoint_id, channel, idx")
      .all() as Record<string, unknown>[]
  ).map((r) => ({
    thread_id: r.thread_id,
    checkpoint_id: id(String(r.checkpoint_id)),
    idx: r.idx,
    channel: r.channel,
    type: r.type,
    value: r.channel === "__error__" || r.channel === "__interrupt__" ? "…" : String(r.value),
  }));
}

const checkpointBytes = (db: Database.Database, thread: string) =>
  (
    db
      .prepare("SELECT SUM(length(checkpoint)) AS b FROM checkpoints WHERE thread_id = ?")
      .get(thread) as { b: number }
  ).b;

/** Text that does not compress, so sizes measure what is stored, not how well it packs. */
const noise = (n: number) => randomBytes(n).toString("base64").slice(0, n);

describe("PreparedSqliteSaver", () => {
  it("reads back the same checkpoints as the library's SqliteSaver, and writes the same writes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "saver-"));
    dirs.push(dir);
    const ours = openSqliteCheckpointer(join(dir, "ours.db"));
    const theirs = openSqliteCheckpointer(join(dir, "theirs.db"));
    expect(ours.saver).toBeInstanceOf(PreparedSqliteSaver);
    const library = new SqliteSaver(theirs.db!);
    try {
      await exercise(ours.saver);
      await exercise(library);
      for (const thread of ["a", "b"]) {
        const a = await tuples(ours.saver, thread);
        expect(a.length).toBeGreaterThan(2);
        expect(a).toEqual(await tuples(library, thread));
        // Filters on metadata (some rows store only what changed from the parent's) and limits.
        for (const options of [
          { filter: { source: "loop" } },
          { filter: { source: "loop", step: 1 } },
          { filter: { source: "loop" }, limit: 1 },
          { filter: { parents: {} }, limit: 2 },
          { filter: { source: "nothing" } },
        ]) {
          const filtered = await tuples(ours.saver, thread, options);
          expect(filtered).toEqual(await tuples(library, thread, options));
        }
        expect((await tuples(ours.saver, thread, { filter: { source: "loop" } })).length).toBe(
          a.filter((t) => t.metadata?.source === "loop").length,
        );
      }
      // Most rows store their metadata as a change from the parent's.
      const kinds = ours
        .db!.prepare(
          "SELECT SUM(CAST(metadata AS TEXT) LIKE '%refinery_metadata_delta%') AS deltas, COUNT(*) AS n FROM checkpoints",
        )
        .get() as { deltas: number; n: number };
      expect(kinds.deltas).toBeGreaterThan(kinds.n / 2);
      const w = writeRows(ours.db!);
      expect(w.some((r) => r.channel === "__interrupt__")).toBe(true);
      expect(w.some((r) => r.channel === "__error__")).toBe(true);
      expect(w).toEqual(writeRows(theirs.db!));
    } finally {
      ours.close();
      theirs.close();
    }
  });

  it("creates the writes table WITHOUT ROWID in a new file (no second copy of its keys)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "saver-"));
    dirs.push(dir);
    const opened = openSqliteCheckpointer(join(dir, "new.db"));
    try {
      await exercise(opened.saver);
      const schema = (name: string) =>
        (
          opened.db!.prepare("SELECT sql FROM sqlite_schema WHERE name = ?").get(name) as
            { sql: string } | undefined
        )?.sql;
      expect(schema("writes")).toMatch(/WITHOUT ROWID\s*$/);
      expect(schema("sqlite_autoindex_writes_1")).toBeUndefined();
      // The checkpoints table stays as the library creates it.
      expect(schema("checkpoints")).not.toMatch(/WITHOUT ROWID/);
      expect(writeRows(opened.db!).length).toBeGreaterThan(3);
    } finally {
      opened.close();
    }
  });

  it("keeping only the latest checkpoint (prune) stores it whole, metadata included", async () => {
    const dir = mkdtempSync(join(tmpdir(), "saver-"));
    dirs.push(dir);
    const opened = openSqliteCheckpointer(join(dir, "prune.db"));
    const saver = opened.saver as PreparedSqliteSaver;
    try {
      await exercise(saver);
      const config = { configurable: { thread_id: "a" } };
      const before = await saver.getTuple(config);
      const stored = opened
        .db!.prepare(
          "SELECT CAST(metadata AS TEXT) AS m FROM checkpoints WHERE thread_id = 'a' ORDER BY checkpoint_id DESC LIMIT 1",
        )
        .get() as { m: string };
      expect(stored.m).toContain("refinery_metadata_delta");
      await saver.keyframeLatest("a");
      opened
        .db!.prepare(
          "DELETE FROM checkpoints WHERE thread_id = 'a' AND checkpoint_id < (SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = 'a')",
        )
        .run();
      const after = await saver.getTuple(config);
      expect(after?.metadata).toEqual(before?.metadata);
      expect(after?.checkpoint).toEqual(before?.checkpoint);
      expect(JSON.stringify(after?.metadata)).toBe(JSON.stringify(before?.metadata));
    } finally {
      opened.close();
    }
  });

  it("opens files the library wrote (the layout before deltas) and continues their threads", async () => {
    const dir = mkdtempSync(join(tmpdir(), "saver-"));
    dirs.push(dir);
    const file = join(dir, "db.sqlite");
    const old = openSqliteCheckpointer(file);
    const library = new SqliteSaver(old.db!);
    const c = { configurable: { thread_id: "c" } };
    await graph(library).invoke({ log: ["start"] }, c);
    const before = await tuples(library, "c");
    // The library's rowid table, which this file keeps.
    expect(
      (
        old.db!.prepare("SELECT sql FROM sqlite_schema WHERE name = 'writes'").get() as {
          sql: string;
        }
      ).sql,
    ).not.toMatch(/WITHOUT ROWID/);
    old.close();
    const opened = openSqliteCheckpointer(file);
    try {
      expect(await tuples(opened.saver, "c")).toEqual(before);
      const resumed = await graph(opened.saver).invoke(new Command({ resume: "later" }), c);
      expect(resumed.log).toEqual(["start", "draft", "review:later"]);
      // Reopened: the thread reads the same, old rows and new ones together.
      const again = openSqliteCheckpointer(file, { check: false });
      try {
        expect(await tuples(again.saver, "c")).toEqual(await tuples(opened.saver, "c"));
      } finally {
        again.close();
      }
    } finally {
      opened.close();
    }
  });

  it("stores each value once: a thread's checkpoints grow with the text produced, not with the steps", async () => {
    const dir = mkdtempSync(join(tmpdir(), "saver-"));
    dirs.push(dir);
    const opened = openSqliteCheckpointer(join(dir, "db.sqlite"));
    const Notes = Annotation.Root({
      notes: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
      n: Annotation<number>({ reducer: (_a, b) => b, default: () => 0 }),
    });
    const steps = 40;
    const size = 1000;
    const g = new StateGraph(Notes)
      .addNode("note", (s) => ({ notes: [noise(size)], n: s.n + 1 }))
      .addEdge(START, "note")
      .addConditionalEdges("note", (s) => (s.n < steps ? "note" : END))
      .compile({ checkpointer: opened.saver });
    try {
      const config = { configurable: { thread_id: "t" }, recursionLimit: 100 };
      const out = await g.invoke({}, config);
      expect(out.notes).toHaveLength(steps);
      // Whole checkpoints would hold 1 + 2 + ... + 40 notes (820 KB); each note once is 40 KB.
      const stored = checkpointBytes(opened.db!, "t");
      expect(stored).toBeGreaterThan(steps * size);
      expect(stored).toBeLessThan(steps * size * 1.5);
      // Every checkpoint of the history reads whole, also past the keyframe interval.
      const history = [];
      for await (const t of opened.saver.list(config)) history.push(t);
      expect(history.length).toBeGreaterThan(steps);
      for (const t of history) {
        const n = t.checkpoint.channel_values.n as number | undefined;
        const notes = t.checkpoint.channel_values.notes as string[] | undefined;
        expect(notes?.length ?? 0).toBe(n ?? 0);
        expect(notes ?? []).toEqual(out.notes.slice(0, n ?? 0));
      }
      // Read by a fresh saver (nothing remembered), the state is the same.
      const fresh = openSqliteCheckpointer(join(dir, "db.sqlite"), { check: false });
      try {
        expect((await fresh.saver.getTuple(config))?.checkpoint).toEqual(
          (await opened.saver.getTuple(config))?.checkpoint,
        );
      } finally {
        fresh.close();
      }
    } finally {
      opened.close();
    }
  });

  it("a fork from an earlier checkpoint keeps both branches' values apart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "saver-"));
    dirs.push(dir);
    const opened = openSqliteCheckpointer(join(dir, "db.sqlite"));
    const g = graph(opened.saver);
    try {
      const a = { configurable: { thread_id: "a" } };
      await g.invoke({ log: ["start"] }, a);
      await g.invoke(new Command({ resume: "yes" }), a);
      const history = [];
      for await (const t of opened.saver.list(a)) history.push(t);
      // Edit the state after `draft` (its channel versions are reused by the fork: LangGraph
      // numbers them on from that checkpoint), then run the fork to its interrupt and resume.
      const fork = history.find((t) => t.metadata?.step === 1);
      expect(fork?.checkpoint.channel_values.log).toEqual(["start", "draft"]);
      const edited = await g.updateState(fork!.config, { log: ["edited"] });
      await g.invoke(null, edited);
      const forked = await g.invoke(new Command({ resume: "no" }), edited);
      expect(forked.log).toEqual(["start", "draft", "edited", "review:no"]);
      expect((await g.getState(a)).values.log).toEqual(["start", "draft", "edited", "review:no"]);
      // Both branches read as they were written, by this saver and by a fresh one.
      const fresh = openSqliteCheckpointer(join(dir, "db.sqlite"), { check: false });
      try {
        const logs = async (saver: BaseCheckpointSaver) => {
          const out = [];
          for await (const t of saver.list(a)) out.push(t.checkpoint.channel_values.log);
          return out;
        };
        const mine = await logs(opened.saver);
        expect(mine).toContainEqual(["start", "draft", "review:yes"]);
        expect(mine).toContainEqual(["start", "draft", "edited", "review:no"]);
        expect(await logs(fresh.saver)).toEqual(mine);
      } finally {
        fresh.close();
      }
    } finally {
      opened.close();
    }
  });
});

describe("PreparedSqliteSaver group commit", () => {
  const checkpoint = (id: string) => ({ ...emptyCheckpoint(), id });
  const config = (thread_id: string) => ({ configurable: { thread_id, checkpoint_ns: "" } });
  const count = (file: string) => {
    const other = new Database(file, { readonly: true });
    try {
      return (other.prepare("SELECT COUNT(*) AS n FROM checkpoints").get() as { n: number }).n;
    } finally {
      other.close();
    }
  };

  function open() {
    const dir = mkdtempSync(join(tmpdir(), "saver-"));
    dirs.push(dir);
    const file = join(dir, "db.sqlite");
    const opened = openSqliteCheckpointer(file);
    return { file, opened, saver: opened.saver as PreparedSqliteSaver };
  }

  it("each put resolves once its row is committed, visible to another connection", async () => {
    const { file, opened, saver } = open();
    try {
      const puts = Array.from({ length: 50 }, (_, i) =>
        saver.put(config(`t${i}`), checkpoint(`c${i}`), { source: "input", step: -1, parents: {} }),
      );
      expect(count(file)).toBe(0); // queued for this turn of the event loop
      const configs = await Promise.all(puts);
      expect(configs[7]).toEqual({
        configurable: { thread_id: "t7", checkpoint_ns: "", checkpoint_id: "c7" },
      });
      expect(count(file)).toBe(50);
    } finally {
      opened.close();
    }
  });

  it("reads through the saver see writes that are still queued", async () => {
    const { opened, saver } = open();
    try {
      const put = saver.put(config("t"), checkpoint("c1"), {
        source: "input",
        step: -1,
        parents: {},
      });
      // Serialization is async: once it is done the write waits in the queue.
      await new Promise((r) => queueMicrotask(() => r(undefined)));
      await Promise.resolve();
      const tuple = await saver.getTuple(config("t"));
      expect(tuple?.checkpoint.id).toBe("c1");
      const listed = [];
      for await (const t of saver.list(config("t"))) listed.push(t.checkpoint.id);
      expect(listed).toEqual(["c1"]);
      await put;
    } finally {
      opened.close();
    }
  });

  it("a failing write rejects alone; the writes batched with it are committed", async () => {
    const { file, opened, saver } = open();
    try {
      const good = saver.put(config("a"), checkpoint("c1"), {
        source: "input",
        step: -1,
        parents: {},
      });
      // task_id is NOT NULL in the writes table (and "__error__" writes are not OR IGNOREd).
      const bad = saver.putWrites(
        { configurable: { thread_id: "a", checkpoint_ns: "", checkpoint_id: "c1" } },
        [["__error__", 1]],
        null as unknown as string,
      );
      const alsoGood = saver.put(config("b"), checkpoint("c2"), {
        source: "input",
        step: -1,
        parents: {},
      });
      await expect(bad).rejects.toThrow(/NOT NULL/);
      await expect(good).resolves.toBeDefined();
      await expect(alsoGood).resolves.toBeDefined();
      expect(count(file)).toBe(2);
    } finally {
      opened.close();
    }
  });

  it("close commits what is still queued", async () => {
    const { file, opened, saver } = open();
    const put = saver.put(config("t"), checkpoint("c1"), {
      source: "input",
      step: -1,
      parents: {},
    });
    await Promise.resolve();
    await Promise.resolve();
    opened.close();
    await expect(put).resolves.toBeDefined();
    expect(count(file)).toBe(1);
  });
});

describe("PreparedSqliteSaver and a run another worker took over", () => {
  it("refuses the checkpoint of a stale attempt, writes others in the same commit, and fences nothing but runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "saver-"));
    dirs.push(dir);
    const file = join(dir, "db.sqlite");
    const opened = openSqliteCheckpointer(file, { runMetadata: true });
    const saver = opened.saver as PreparedSqliteSaver;
    // The server's runs table, as far as the fence reads it.
    opened.db!.exec(
      "CREATE TABLE refinery_runs (run_id TEXT PRIMARY KEY, attempt INTEGER, status TEXT);" +
        "INSERT INTO refinery_runs VALUES ('run-1', 2, 'running'), ('run-2', 1, 'running');",
    );
    const asRun = (thread_id: string, run_id: string, run_attempt: number) => ({
      configurable: { thread_id, checkpoint_ns: "" },
      metadata: { run_id, run_attempt },
    });
    const meta = { source: "loop" as const, step: 0, parents: {} };
    try {
      // run-1 was taken over (attempt 2): attempt 1 wakes and writes, in the same turn as run-2.
      const stale = saver.put(asRun("t1", "run-1", 1), { ...emptyCheckpoint(), id: "c1" }, meta);
      const live = saver.put(asRun("t2", "run-2", 1), { ...emptyCheckpoint(), id: "c2" }, meta);
      const plain = saver.put(
        { configurable: { thread_id: "t3", checkpoint_ns: "" } },
        { ...emptyCheckpoint(), id: "c3" },
        meta,
      );
      const refused = await stale.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isStaleRunError(refused)).toBe(true);
      await expect(live).resolves.toBeDefined();
      await expect(plain).resolves.toBeDefined();
      const rows = new Database(file, { readonly: true });
      try {
        expect(rows.prepare("SELECT thread_id FROM checkpoints ORDER BY thread_id").all()).toEqual([
          { thread_id: "t2" },
          { thread_id: "t3" },
        ]);
      } finally {
        rows.close();
      }
      // The attempt that holds the run writes.
      await saver.put(asRun("t1", "run-1", 2), { ...emptyCheckpoint(), id: "c1b" }, meta);
    } finally {
      opened.close();
    }
  });
});
