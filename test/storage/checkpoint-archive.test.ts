// The checkpoint archive (core/checkpoint-archive.ts): once a run ends, the server moves a
// thread's checkpoints before the latest into one deflated segment. Everything that reads
// history must read the same as if nothing had moved: list (filters, limits, before), getTuple
// by id, LangGraph's getState and getStateHistory (task results come from pending writes), forks
// from archived checkpoints, subgraph namespaces, and the admin operations (copy, rollback,
// prune, delete), on a real SQLite file.
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
import type { CheckpointListOptions } from "@langchain/langgraph-checkpoint";
import { afterEach, describe, expect, it } from "vitest";
import { decodeSegment, encodeSegment } from "../../core/checkpoint-archive.ts";
import { openSqliteCheckpointer, type PreparedSqliteSaver } from "../../core/checkpointer.ts";
import { createSqliteCheckpointAdmin } from "../../core/storage/checkpoint-admin.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const Inner = Annotation.Root({
  notes: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
});
const State = Annotation.Root({
  log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  notes: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  answer: Annotation<string>,
});

function graph(saver: BaseCheckpointSaver) {
  // A subgraph with a checkpointer of its own namespace.
  const inner = new StateGraph(Inner)
    .addNode("jot", () => ({ notes: ["jot"] }))
    .addNode("check", () => ({ notes: [`check:${interrupt({ q: "inner?" }) as string}`] }))
    .addEdge(START, "jot")
    .addEdge("jot", "check")
    .addEdge("check", END)
    .compile();
  return new StateGraph(State)
    .addNode("draft", (s) => ({ log: [`draft${s.log.length}`], answer: String(s.log.length) }))
    .addNode("inner", inner)
    .addNode("review", () => {
      const decision = interrupt({ question: "ok?" }) as string;
      return { log: [`review:${decision}`] };
    })
    .addNode("fail", () => {
      throw new Error("boom");
    })
    .addEdge(START, "draft")
    .addEdge("draft", "inner")
    .addEdge("inner", "review")
    .addConditionalEdges("review", (s) => (s.log.includes("review:fail") ? "fail" : END))
    .compile({ checkpointer: saver });
}

/** Runs, resumes, a second run on the thread, a fork from its first run, and an error. */
async function scenario(saver: BaseCheckpointSaver, afterRun: (thread: string) => void) {
  const g = graph(saver);
  const a = { configurable: { thread_id: "a" } };
  const run = async (input: unknown, config: typeof a, thread = "a") => {
    try {
      await g.invoke(input as never, config);
    } finally {
      afterRun(thread);
    }
  };
  await run({ log: ["start"] }, a);
  await run(new Command({ resume: "inner-yes" }), a);
  await run(new Command({ resume: "yes" }), a);
  await run({ log: ["again"] }, a);
  await run(new Command({ resume: "inner-2" }), a);
  await run(new Command({ resume: "yes-2" }), a);
  // Fork from the first run's state after `draft` (archived by now when compacting).
  const history = [];
  for await (const s of g.getStateHistory(a)) history.push(s);
  const first = history.filter((s) => s.metadata?.step === 1).at(-1)!;
  expect(first.values.log).toEqual(["start", "draft1"]);
  const edited = await g.updateState(first.config, { log: ["edited"] });
  await run(null, edited as typeof a);
  await run(new Command({ resume: "inner-fork" }), a);
  await run(new Command({ resume: "fork" }), a);
  const b = { configurable: { thread_id: "b" } };
  await run({ log: ["start"] }, b, "b");
  await run(new Command({ resume: "inner-b" }), b, "b");
  await expect(run(new Command({ resume: "fail" }), b, "b")).rejects.toThrow("boom");
  return g;
}

/** Ids as ordinals of first appearance, so two files' histories compare. */
function normalizer(thread: string) {
  const ids = new Map<string, string>();
  const walk = (v: unknown): unknown => {
    if (v === thread) return "<thread>";
    if (typeof v === "string") {
      // Checkpoint, task and thread ids, and interrupt ids (hashes of them).
      if (/^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$/.test(v)) {
        if (!ids.has(v)) ids.set(v, `#${ids.size}`);
        return ids.get(v);
      }
      return v.replace(
        /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g,
        (m) => (walk(m) as string) ?? m,
      );
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (k === "ts" || k === "createdAt" || k === "created_at") continue;
        out[k] = walk(x);
      }
      return out;
    }
    return v;
  };
  return walk;
}

async function listAll(
  saver: BaseCheckpointSaver,
  config: Record<string, unknown>,
  options?: CheckpointListOptions,
) {
  const out = [];
  for await (const t of saver.list({ configurable: config }, options)) out.push(t);
  return out;
}

/** Everything a reader can see of a thread, with ids normalised. */
async function everything(saver: BaseCheckpointSaver, g: ReturnType<typeof graph>, thread: string) {
  const n = normalizer(thread);
  const all = await listAll(saver, { thread_id: thread });
  const root = await listAll(saver, { thread_id: thread, checkpoint_ns: "" });
  const views: Record<string, unknown> = { all, root };
  // Limits, before (from the middle of the history), metadata filters, one namespace.
  const middle = root[Math.floor(root.length / 2)]!.config;
  views.limit3 = await listAll(saver, { thread_id: thread }, { limit: 3 });
  views.before = await listAll(saver, { thread_id: thread, checkpoint_ns: "" }, { before: middle });
  views.beforeLimit = await listAll(
    saver,
    { thread_id: thread, checkpoint_ns: "" },
    { before: middle, limit: 2 },
  );
  views.loop = await listAll(saver, { thread_id: thread }, { filter: { source: "loop" } });
  views.loopLimit = await listAll(
    saver,
    { thread_id: thread },
    { filter: { source: "loop" }, limit: 2 },
  );
  views.step1 = await listAll(saver, { thread_id: thread }, { filter: { step: 1 } });
  const namespaces = [...new Set(all.map((t) => t.config.configurable?.checkpoint_ns as string))];
  views.namespaces = namespaces;
  views.byNamespace = await Promise.all(
    namespaces.map((ns) => listAll(saver, { thread_id: thread, checkpoint_ns: ns })),
  );
  // getTuple of every checkpoint by id, and of the latest.
  views.byId = await Promise.all(all.map((t) => saver.getTuple(t.config)));
  views.latest = await saver.getTuple({ configurable: { thread_id: thread } });
  // LangGraph's own readers: the state with its tasks, and the history.
  const config = { configurable: { thread_id: thread } };
  views.state = await g.getState(config, { subgraphs: true });
  const history = [];
  for await (const s of g.getStateHistory(config)) history.push(s);
  views.history = history;
  views.historyStates = await Promise.all(history.map((s) => g.getState(s.config)));
  return n(JSON.parse(JSON.stringify(views)));
}

function open(dir: string, name: string) {
  const opened = openSqliteCheckpointer(join(dir, name));
  return { ...opened, saver: opened.saver as PreparedSqliteSaver, db: opened.db! };
}

const count = (db: ReturnType<typeof open>["db"], sql: string, ...args: unknown[]) =>
  (db.prepare(sql).get(...args) as { n: number }).n;

describe("the checkpoint archive", () => {
  it("a thread compacted after every run reads exactly as one never compacted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "archive-"));
    dirs.push(dir);
    const plain = open(dir, "plain.db");
    const compacted = open(dir, "compacted.db");
    try {
      const g1 = await scenario(plain.saver, () => {});
      let moved = 0;
      const g2 = await scenario(compacted.saver, (t) => {
        moved += compacted.saver.compact(t);
      });
      expect(moved).toBeGreaterThan(20);
      // Only the latest checkpoint of each namespace stays a row; the rest are in segments.
      const live = compacted.db
        .prepare(
          "SELECT thread_id, checkpoint_ns, COUNT(*) AS n FROM checkpoints GROUP BY thread_id, checkpoint_ns",
        )
        .all() as { n: number }[];
      expect(live.every((r) => r.n === 1)).toBe(true);
      expect(
        count(compacted.db, "SELECT COUNT(*) AS n FROM refinery_checkpoint_archive"),
      ).toBeGreaterThan(5);
      for (const thread of ["a", "b"]) {
        const expected = await everything(plain.saver, g1, thread);
        expect(await everything(compacted.saver, g2, thread)).toEqual(expected);
        // A fresh connection (no state remembered in memory) reads the same.
        const fresh = open(dir, "compacted.db");
        try {
          expect(await everything(fresh.saver, graph(fresh.saver), thread)).toEqual(expected);
        } finally {
          fresh.close();
        }
      }
      // Thread a's history really holds the fork and both runs' interrupts.
      const a = await listAll(compacted.saver, { thread_id: "a", checkpoint_ns: "" });
      const logs = a.map((t) => t.checkpoint.channel_values.log);
      expect(logs.some((l) => (l as string[]).includes("review:yes"))).toBe(true);
      expect(logs.some((l) => (l as string[]).includes("edited"))).toBe(true);
      expect(a.some((t) => t.pendingWrites?.some(([, c]) => c === "__interrupt__"))).toBe(true);
    } finally {
      plain.close();
      compacted.close();
    }
  });

  it("copy, rollback, prune and delete see archived checkpoints; the thread limit counts them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "archive-"));
    dirs.push(dir);
    const db = open(dir, "db.sqlite");
    const admin = createSqliteCheckpointAdmin(db.db, db.saver);
    try {
      const g = await scenario(db.saver, (t) => {
        db.saver.compact(t);
      });
      const before = await everything(db.saver, g, "a");
      // Copy: the new thread reads the same history.
      await admin.copyThread("a", "copy");
      expect(await everything(db.saver, g, "copy")).toEqual(before);
      // Rollback to an archived checkpoint: everything after it goes, it becomes the latest.
      const root = await listAll(db.saver, { thread_id: "copy", checkpoint_ns: "" });
      const keep = root[Math.floor(root.length / 2)]!;
      const older = root.filter((t) => t.checkpoint.id <= keep.checkpoint.id).length;
      await admin.rollback("copy", keep.checkpoint.id);
      const after = await listAll(db.saver, { thread_id: "copy", checkpoint_ns: "" });
      expect(after.map((t) => t.checkpoint.id)).toEqual(
        root.filter((t) => t.checkpoint.id <= keep.checkpoint.id).map((t) => t.checkpoint.id),
      );
      expect(after).toHaveLength(older);
      const latest = await db.saver.getTuple({ configurable: { thread_id: "copy" } });
      expect(latest?.checkpoint.id).toBe(keep.checkpoint.id);
      expect(latest?.checkpoint.channel_values).toEqual(keep.checkpoint.channel_values);
      expect(
        count(
          db.db,
          "SELECT COUNT(*) AS n FROM checkpoints WHERE thread_id = 'copy' AND checkpoint_id = ?",
          keep.checkpoint.id,
        ),
      ).toBe(1);
      // The original thread is untouched by its copy's rollback.
      expect(await everything(db.saver, g, "a")).toEqual(before);
      // Prune: the latest state stays, the history goes, archive included.
      const state = (await g.getState({ configurable: { thread_id: "a" } })).values;
      await admin.keepLatest("a");
      expect((await g.getState({ configurable: { thread_id: "a" } })).values).toEqual(state);
      expect(
        count(db.db, "SELECT COUNT(*) AS n FROM refinery_checkpoint_archive WHERE thread_id = 'a'"),
      ).toBe(0);
      expect((await listAll(db.saver, { thread_id: "a", checkpoint_ns: "" })).length).toBe(1);
      // Delete: nothing of the thread is left anywhere.
      await admin.deleteThread("copy");
      await db.saver.deleteThread("b");
      for (const t of ["copy", "b"]) {
        expect(await db.saver.getTuple({ configurable: { thread_id: t } })).toBeUndefined();
        expect(
          count(
            db.db,
            "SELECT COUNT(*) AS n FROM refinery_checkpoint_archive WHERE thread_id = ?",
            t,
          ),
        ).toBe(0);
      }
    } finally {
      db.close();
    }
  });

  it("a thread limit counts archived bytes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "archive-"));
    dirs.push(dir);
    const file = join(dir, "db.sqlite");
    const first = open(dir, "db.sqlite");
    await scenario(first.saver, (t) => {
      first.saver.compact(t);
    });
    const archived = count(
      first.db,
      "SELECT SUM(length(data)) AS n FROM refinery_checkpoint_archive WHERE thread_id = 'a'",
    );
    first.close();
    expect(archived).toBeGreaterThan(0);
    // A limit just above the live rows but below live + archive refuses the next write.
    const live = (() => {
      const o = open(dir, "db.sqlite");
      try {
        return count(
          o.db,
          "SELECT SUM(length(checkpoint) + length(metadata)) AS n FROM checkpoints WHERE thread_id = 'a'",
        );
      } finally {
        o.close();
      }
    })();
    const limited = openSqliteCheckpointer(file, {
      limits: { maxCheckpointBytes: 0, maxThreadBytes: live + archived - 1 },
    });
    try {
      const g = graph(limited.saver);
      await expect(
        g.invoke({ log: ["more"] }, { configurable: { thread_id: "a" } }),
      ).rejects.toThrow(/thread/i);
    } finally {
      limited.close();
    }
  });

  it("a segment round-trips every field, null and binary values included", () => {
    const rows = [
      {
        id: "1f000000-0000-6000-8000-000000000001",
        parentId: null,
        type: "json",
        checkpoint: Buffer.from('{"v":4}'),
        metadata: null,
        writes: [],
      },
      {
        id: "1f000000-0000-6000-8000-000000000002",
        parentId: "1f000000-0000-6000-8000-000000000001",
        type: null,
        checkpoint: Buffer.from([0, 1, 2, 255, 254]),
        metadata: Buffer.from("{}"),
        writes: [
          {
            taskId: "t",
            idx: -3,
            channel: "__interrupt__",
            type: "json",
            value: Buffer.from("[]"),
          },
          { taskId: "t", idx: 0, channel: "x", type: null, value: null },
          { taskId: "ü", idx: 7, channel: "ß", type: "bytes", value: Buffer.from([0, 0, 9]) },
        ],
      },
    ];
    const back = decodeSegment(encodeSegment(rows));
    expect(
      back.map((r) => ({
        ...r,
        checkpoint: Buffer.from(r.checkpoint),
        metadata: r.metadata && Buffer.from(r.metadata),
        writes: r.writes.map((w) => ({ ...w, value: w.value && Buffer.from(w.value) })),
      })),
    ).toEqual(rows);
    expect(() => decodeSegment(Buffer.from([9, 1, 2]))).toThrow(/unknown format 9/);
  });
});
