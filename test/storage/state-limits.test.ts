// State limits of PreparedSqliteSaver (core/checkpointer.ts): a run whose state outgrows one
// checkpoint's limit, or a thread whose checkpoints outgrow the thread's, fails with StateTooLarge
// and nothing past the limit is written; a thread's total survives other connections' writes.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Annotation, END, START, StateGraph, type BaseCheckpointSaver } from "@langchain/langgraph";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import {
  DEFAULT_STATE_LIMITS,
  openSqliteCheckpointer,
  stateLimitsFromEnv,
  type StateLimits,
} from "../../core/checkpointer.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const State = Annotation.Root({
  s: Annotation<string>({ reducer: (_a, b) => b, default: () => "" }),
  steps: Annotation<number>({ reducer: (_a, b) => b, default: () => 0 }),
});

/** Doubles `s` on every step, `rounds` times (or until a limit stops it). */
function doubling(saver: BaseCheckpointSaver, rounds: number) {
  return new StateGraph(State)
    .addNode("double", (st) => ({ s: st.s + st.s, steps: st.steps + 1 }))
    .addEdge(START, "double")
    .addConditionalEdges("double", (st) => (st.steps < rounds ? "double" : END))
    .compile({ checkpointer: saver });
}

function open(limits: StateLimits, name = "db.sqlite") {
  const dir = mkdtempSync(join(tmpdir(), "limits-"));
  dirs.push(dir);
  const file = join(dir, name);
  return { file, ...openSqliteCheckpointer(file, { limits }) };
}

/** The largest checkpoint row and the thread's total (checkpoints and writes), read apart. */
function stored(file: string, threadId: string) {
  const db = new Database(file, { readonly: true });
  try {
    return db
      .prepare(
        `SELECT MAX(length(checkpoint) + length(metadata)) AS largest,
                SUM(length(checkpoint) + length(metadata))
                + (SELECT COALESCE(SUM(length(value)), 0) FROM writes WHERE thread_id = ?) AS total
           FROM checkpoints WHERE thread_id = ?`,
      )
      .get(threadId, threadId) as { largest: number; total: number };
  } finally {
    db.close();
  }
}

const run = { durability: "sync", recursionLimit: 200 } as const;

describe("state limits", () => {
  it("fails a run whose state passes the checkpoint limit, writing nothing past it", async () => {
    const limit = 64 * 1024;
    const { file, saver, close } = open({ maxCheckpointBytes: limit, maxThreadBytes: 0 });
    try {
      const config = { configurable: { thread_id: "t" }, ...run };
      const error = await doubling(saver, 40)
        .invoke({ s: "x".repeat(85) }, config)
        .then(
          () => undefined,
          (e: Error) => e,
        );
      expect(error?.name).toBe("StateTooLarge");
      expect(error?.message).toContain(`REFINERY_MAX_CHECKPOINT_BYTES=${limit}`);
      // The limit is on the whole state, not on the (compressed) delta rows that store it.
      expect(stored(file, "t").largest).toBeLessThanOrEqual(limit);
      // The thread keeps its last checkpoint under the limit.
      const last = await saver.getTuple({ configurable: { thread_id: "t" } });
      const s = (last?.checkpoint.channel_values as { s: string }).s;
      expect(s.length).toBeGreaterThan(limit / 8);
      expect(s.length).toBeLessThan(limit);
    } finally {
      close();
    }
  });

  it("fails a run once its thread holds the thread limit, whichever connection wrote before", async () => {
    const limit = 256 * 1024;
    const limits = { maxCheckpointBytes: 0, maxThreadBytes: limit };
    const first = open(limits);
    try {
      // 20 steps of a ~5 KB state (a checkpoint and a write each): ~200 KB, under the limit.
      // Text that does not compress, so the stored bytes are the state's.
      const config = { configurable: { thread_id: "t" }, ...run };
      const big = randomBytes(3_750).toString("base64");
      const steady = new StateGraph(State)
        .addNode("keep", (st) => ({ s: st.s, steps: st.steps + 1 }))
        .addEdge(START, "keep")
        .addConditionalEdges("keep", (st) => (st.steps % 20 !== 0 ? "keep" : END));
      await steady.compile({ checkpointer: first.saver }).invoke({ s: big }, config);
      const before = stored(first.file, "t").total;
      expect(before).toBeGreaterThan(150_000);
      expect(before).toBeLessThan(limit);

      // A second connection (a run thread, say) continues the thread: it sums what is stored.
      const other = openSqliteCheckpointer(first.file, { check: false, limits });
      try {
        const error = await steady
          .compile({ checkpointer: other.saver })
          .invoke({ steps: 1 }, { ...config, recursionLimit: 200 })
          .then(
            () => undefined,
            (e: Error) => e,
          );
        expect(error?.name).toBe("StateTooLarge");
        expect(error?.message).toContain(`REFINERY_MAX_THREAD_BYTES=${limit}`);
        // The run's last writes may still be queued when it fails; reading its state (as the
        // server does next) commits them.
        await other.saver.getTuple(config);
        const after = stored(first.file, "t").total;
        expect(after).toBeLessThanOrEqual(limit);
        expect(after).toBeGreaterThan(before);

        // The first connection's own count is stale now: it must not write past the limit either.
        const again = await steady
          .compile({ checkpointer: first.saver })
          .invoke({ steps: 1 }, config)
          .then(
            () => undefined,
            (e: Error) => e,
          );
        expect(again?.name).toBe("StateTooLarge");
        expect(stored(first.file, "t").total).toBeLessThanOrEqual(limit);
        // Other threads are not affected.
        await steady
          .compile({ checkpointer: first.saver })
          .invoke({ s: big }, { configurable: { thread_id: "u" }, ...run });
      } finally {
        other.close();
      }
    } finally {
      first.close();
    }
  });

  it("refuses a state update over the limit, and a deleted thread starts from zero", async () => {
    const { saver, file, close } = open({ maxCheckpointBytes: 32 * 1024, maxThreadBytes: 0 });
    try {
      const graph = doubling(saver, 1);
      const config = { configurable: { thread_id: "t" } };
      await graph.invoke({ s: "z" }, { ...config, ...run });
      await expect(graph.updateState(config, { s: "z".repeat(64 * 1024) })).rejects.toThrow(
        /REFINERY_MAX_CHECKPOINT_BYTES=32768/,
      );
      await graph.updateState(config, { s: "small" });
      expect(((await graph.getState(config)).values as { s: string }).s).toBe("small");
      await saver.deleteThread("t");
      await graph.invoke({ s: "z" }, { ...config, ...run });
      expect(statSync(file).size).toBeLessThan(1024 * 1024);
    } finally {
      close();
    }
  });

  it("reads its limits from the environment, 0 switching one off, and names a bad value", () => {
    expect(stateLimitsFromEnv({})).toEqual(DEFAULT_STATE_LIMITS);
    expect(
      stateLimitsFromEnv({ REFINERY_MAX_CHECKPOINT_BYTES: "1000", REFINERY_MAX_THREAD_BYTES: "0" }),
    ).toEqual({ maxCheckpointBytes: 1000, maxThreadBytes: 0 });
    expect(() => stateLimitsFromEnv({ REFINERY_MAX_THREAD_BYTES: "8mb" })).toThrow(
      /the most bytes of state one thread holds \(0: no limit\) must be an integer/,
    );
  });
});
