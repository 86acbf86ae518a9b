// The journal of model attempts (core/models/attempt-journal.ts) in a real SQLite file: what an
// earlier execution of a step spent is carried once, never an execution's own attempts, and rows
// of steps checkpointed since (another parent checkpoint) are dropped, not counted.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import {
  attemptScope,
  clearAttemptJournal,
  createSqliteAttemptJournal,
  ATTEMPT_JOURNAL,
} from "../../core/models/attempt-journal.ts";
import { openSqliteCheckpointer } from "../../core/checkpointer.ts";

const dir = mkdtempSync(join(tmpdir(), "refinery-journal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("attempt journal", () => {
  it("carries earlier executions' attempts of the same step, and drops committed steps' rows", () => {
    const db = new Database(join(dir, "j.db"));
    const journal = createSqliteAttemptJournal(db);
    const step = { threadId: "t", parentId: "c1", taskId: "task-a" };
    // An execution that was cut: one attempt answered (tokens known), one cut mid-reply.
    const first = { ...step, exec: "e1" };
    journal.end(
      journal.begin(first, "critique"),
      { promptTokens: 10, completionTokens: 5, totalTokens: 15 },
      "t",
    );
    journal.begin(first, "critique");
    // A row of an earlier step (parent c0), already in a checkpoint.
    journal.begin({ threadId: "t", parentId: "c0", taskId: "task-0", exec: "e0" }, "generate");
    // Another thread's rows are not touched.
    journal.begin({ threadId: "u", parentId: "x", taskId: "task-u", exec: "eu" }, "generate");

    // The step runs again: its new execution carries both attempts, not its own.
    const second = { ...step, exec: "e2" };
    journal.begin(second, "critique");
    expect(journal.carried(second)).toEqual({
      promptTokens: 10,
      completionTokens: 5,
      totalTokens: 15,
      calls: 2,
    });
    const count = (thread: string) =>
      (
        db
          .prepare("SELECT COUNT(*) AS n FROM refinery_model_attempts WHERE thread_id = ?")
          .get(thread) as { n: number }
      ).n;
    expect(count("t")).toBe(3); // c0's row dropped
    expect(count("u")).toBe(1);
    // Another task from the same checkpoint, or the next step, carries nothing of it.
    expect(journal.carried({ ...step, taskId: "task-b", exec: "e3" })).toBeUndefined();
    expect(
      journal.carried({ threadId: "t", parentId: "c2", taskId: "task-c", exec: "e4" }),
    ).toBeUndefined();
    expect(count("t")).toBe(0);
    journal.clear("u");
    expect(count("u")).toBe(0);
    journal.begin({ ...step, exec: "e5" }, "critique");
    clearAttemptJournal(db, "t");
    expect(count("t")).toBe(0);
    db.close();
  });

  it("scopes a call to the step's thread, parent checkpoint and task, once per execution", () => {
    const db = new Database(":memory:");
    const journal = createSqliteAttemptJournal(db);
    const saver = { [ATTEMPT_JOURNAL]: () => journal };
    const pad = {};
    const config = {
      configurable: {
        thread_id: "t",
        checkpoint_ns: "critique:task-a",
        checkpoint_map: { "": "c1" },
        __pregel_task_id: "task-a",
        __pregel_scratchpad: pad,
        __pregel_checkpointer: saver,
      },
      metadata: { langgraph_node: "critique" },
    };
    const a = attemptScope(config);
    const b = attemptScope(config);
    expect(a).toMatchObject({ node: "critique", first: true, key: { parentId: "c1" } });
    expect(b).toMatchObject({ first: false });
    expect(b?.key.exec).toBe(a?.key.exec);
    // A new execution of the step (a new scratchpad) is a new one.
    const c = attemptScope({
      ...config,
      configurable: { ...config.configurable, __pregel_scratchpad: {} },
    });
    expect(c?.first).toBe(true);
    expect(c?.key.exec).not.toBe(a?.key.exec);
    // No journal without a saver that keeps one, and none for a subgraph's steps.
    expect(
      attemptScope({ configurable: { ...config.configurable, __pregel_checkpointer: {} } }),
    ).toBeUndefined();
    expect(
      attemptScope({
        configurable: { ...config.configurable, checkpoint_ns: "sub:1|critique:task-a" },
      }),
    ).toBeUndefined();
    db.close();
  });

  it("a run's clean-up deferred to the next checkpoint write is committed when the saver closes", () => {
    const file = join(dir, "close.db");
    const opened = openSqliteCheckpointer(file);
    const journal = (
      opened.saver as unknown as {
        [ATTEMPT_JOURNAL]: () => ReturnType<typeof createSqliteAttemptJournal>;
      }
    )[ATTEMPT_JOURNAL]();
    const row = journal.begin(
      { threadId: "t", parentId: "c1", taskId: "x", exec: "e1" },
      "critique",
    );
    journal.end(row, { promptTokens: 1, completionTokens: 1, totalTokens: 2 }, "t");
    // The run ended: every attempt is in a checkpoint. No checkpoint write follows.
    journal.clear("t");
    const rows = (db: Database.Database) =>
      (db.prepare("SELECT COUNT(*) AS n FROM refinery_model_attempts").get() as { n: number }).n;
    expect(rows(opened.db!)).toBe(1);
    opened.close();
    const db = new Database(file, { readonly: true });
    expect(rows(db)).toBe(0);
    db.close();
  });
});
