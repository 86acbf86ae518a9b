// PreparedSqliteSaver (core/checkpointer.ts) reuses prepared statements for put/putWrites; what it
// writes must be exactly what the library's SqliteSaver writes and reads back.
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
import { emptyCheckpoint } from "@langchain/langgraph-checkpoint";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { openSqliteCheckpointer, PreparedSqliteSaver } from "../../core/checkpointer.ts";

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

/** Every row, without the time-based ids, in a stable order. */
function rows(saver: SqliteSaver) {
  const db = saver.db;
  const ids = new Map<string, number>();
  const id = (v: unknown) => {
    if (typeof v !== "string") return v;
    if (!ids.has(v)) ids.set(v, ids.size);
    return `#${ids.get(v)}`;
  };
  const checkpoints = (
    db.prepare("SELECT * FROM checkpoints ORDER BY thread_id, checkpoint_id").all() as Record<
      string,
      unknown
    >[]
  ).map((r) => {
    const cp = JSON.parse(String(r.checkpoint)) as Record<string, unknown>;
    return {
      thread_id: r.thread_id,
      checkpoint_ns: r.checkpoint_ns,
      checkpoint_id: id(r.checkpoint_id),
      parent: id(r.parent_checkpoint_id),
      type: r.type,
      values: cp.channel_values,
      metadata: JSON.parse(String(r.metadata)),
    };
  });
  const writes = (
    db
      .prepare("SELECT * FROM writes ORDER BY thread_id, checkpoint_id, channel, idx")
      .all() as Record<string, unknown>[]
  ).map((r) => ({
    thread_id: r.thread_id,
    checkpoint_id: id(r.checkpoint_id),
    idx: r.idx,
    channel: r.channel,
    type: r.type,
    value: r.channel === "__error__" || r.channel === "__interrupt__" ? "…" : String(r.value),
  }));
  return { checkpoints, writes };
}

describe("PreparedSqliteSaver", () => {
  it("writes the same rows as the library's SqliteSaver", async () => {
    const dir = mkdtempSync(join(tmpdir(), "saver-"));
    dirs.push(dir);
    const ours = openSqliteCheckpointer(join(dir, "ours.db"));
    const theirs = openSqliteCheckpointer(join(dir, "theirs.db"));
    expect(ours.saver).toBeInstanceOf(PreparedSqliteSaver);
    const library = new SqliteSaver(theirs.db!);
    try {
      await exercise(ours.saver);
      await exercise(library);
      const a = rows(ours.saver as SqliteSaver);
      const b = rows(library);
      expect(a.checkpoints.length).toBeGreaterThan(5);
      expect(a.writes.some((w) => w.channel === "__interrupt__")).toBe(true);
      expect(a.writes.some((w) => w.channel === "__error__")).toBe(true);
      expect(a).toEqual(b);
    } finally {
      ours.close();
      theirs.close();
    }
  });

  it("what it writes, the library reads back identically, and the graph resumes from it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "saver-"));
    dirs.push(dir);
    const opened = openSqliteCheckpointer(join(dir, "db.sqlite"));
    try {
      await exercise(opened.saver);
      const library = new SqliteSaver(opened.db!);
      for (const thread_id of ["a", "b"]) {
        const config = { configurable: { thread_id } };
        const mine = [];
        for await (const t of opened.saver.list(config)) mine.push(t);
        const read = [];
        for await (const t of library.list(config)) read.push(t);
        expect(read).toEqual(mine);
        expect(await library.getTuple(config)).toEqual(await opened.saver.getTuple(config));
      }
      // A pending interrupt written by ours is resumed by a graph on the library's saver.
      const g = graph(library);
      const c = { configurable: { thread_id: "c" } };
      await graph(opened.saver).invoke({ log: ["start"] }, c);
      const resumed = await g.invoke(new Command({ resume: "later" }), c);
      expect(resumed.log).toEqual(["start", "draft", "review:later"]);
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
