// The model attempt journal on Postgres (core/storage/postgres/attempt-journal.ts): the same
// rules as the SQLite journal (test/models/attempt-journal.test.ts) in a schema of this file's
// own (dropped after). The scenario it exists for (a SIGKILL while a model call is in flight, the
// cut attempt counted after the restart) is crash.test.ts's, which the Postgres run of `npm test`
// runs on Postgres.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AttemptJournal } from "../../core/models/attempt-journal.ts";
import { createPostgresAttemptJournal } from "../../core/storage/postgres/attempt-journal.ts";
import { migrate } from "../../core/storage/postgres/migrations.ts";
import { TEST_POSTGRES_URL } from "../support/test-backend.ts";

const SCHEMA = `refinery_pgjournal_${process.pid}_${randomBytes(3).toString("hex")}`;
let pool: pg.Pool;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: TEST_POSTGRES_URL, max: 3 });
  await migrate(pool, SCHEMA);
});
afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await pool.end();
});

const count = async (thread: string) =>
  Number(
    (
      await pool.query<{ n: string }>(
        `SELECT COUNT(*) AS n FROM "${SCHEMA}".refinery_model_attempts WHERE thread_id = $1`,
        [thread],
      )
    ).rows[0]!.n,
  );

describe("the attempt journal in Postgres", () => {
  it("carries earlier executions' attempts of the same step once, and drops committed steps' rows", async () => {
    const journal: AttemptJournal = createPostgresAttemptJournal(pool, SCHEMA);
    const step = { threadId: "t", parentId: "c1", taskId: "task-a" };
    // An execution that was cut: one attempt answered (tokens known), one cut mid-reply.
    const first = { ...step, exec: "e1" };
    const a = await journal.start(first, "critique", true);
    expect(a.carried).toBeUndefined();
    await journal.end(a.row, { promptTokens: 10, completionTokens: 5, totalTokens: 15 }, "t");
    await journal.start(first, "critique", false);
    // A row of an earlier step (parent c0), already in a checkpoint; another thread's row.
    await journal.start(
      { threadId: "t", parentId: "c0", taskId: "task-0", exec: "e0" },
      "g",
      false,
    );
    await journal.start({ threadId: "u", parentId: "x", taskId: "task-u", exec: "eu" }, "g", false);

    // The step runs again: its new execution carries both attempts, not its own.
    const again = await journal.start({ ...step, exec: "e2" }, "critique", true);
    expect(again.carried).toEqual({
      promptTokens: 10,
      completionTokens: 5,
      totalTokens: 15,
      calls: 2,
    });
    expect(await count("t")).toBe(3); // c0's row dropped, e2's row added
    expect(await count("u")).toBe(1);
    // The execution's own retry does not carry; another task or the next step carries nothing.
    expect((await journal.start({ ...step, exec: "e2" }, "critique", false)).carried).toBe(
      undefined,
    );
    expect(
      (await journal.start({ ...step, taskId: "task-b", exec: "e3" }, "critique", true)).carried,
    ).toBeUndefined();
    const next = await journal.start(
      { threadId: "t", parentId: "c2", taskId: "task-c", exec: "e4" },
      "revise",
      true,
    );
    expect(next.carried).toBeUndefined();
    expect(await count("t")).toBe(1); // only the new step's row is left
    await journal.clear("u");
    await journal.clear("t");
    expect(await count("u")).toBe(0);
    expect(await count("t")).toBe(0);
  });
});
