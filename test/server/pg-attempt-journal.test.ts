// The model attempt journal on Postgres (core/storage/postgres/attempt-journal.ts): the same
// rules as the SQLite journal (test/models/attempt-journal.test.ts) in a schema of this file's
// own (dropped after), and the scenario it exists for: a server process on Postgres killed with
// SIGKILL while a model call is in flight; after the restart the cut attempt is counted in the
// thread's usage.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AttemptJournal } from "../../core/models/attempt-journal.ts";
import { createPostgresAttemptJournal } from "../../core/storage/postgres/attempt-journal.ts";
import { migrate } from "../../core/storage/postgres/migrations.ts";
import {
  killChildServers,
  startChildServer,
  waitFor,
  type ChildServer,
} from "../support/child-server.ts";
import { roleOf, startOpenAIStub } from "../support/openai-stub.ts";
import { TEST_POSTGRES_URL } from "../support/test-backend.ts";

const SCHEMA = `refinery_pgjournal_${process.pid}_${randomBytes(3).toString("hex")}`;
let pool: pg.Pool;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: TEST_POSTGRES_URL, max: 3 });
  await migrate(pool, SCHEMA);
});
afterAll(async () => {
  await killChildServers();
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

describe("a model attempt cut by a SIGKILL, on Postgres", () => {
  it("is counted in the thread's usage when the step runs again after the restart", async () => {
    let critiques = 0;
    const stub = await startOpenAIStub();
    stub.setHandler((body) => {
      const role = roleOf(body);
      if (role === "generate")
        return {
          content: "17 * 23 = 391, plus 4 is 395.\nAnswer: 395",
          usage: { prompt_tokens: 40, completion_tokens: 12 },
        };
      // The critique's first attempt never gets an answer: the server dies while waiting for it.
      if (role === "critique" && ++critiques === 1) return { delayMs: 60_000 };
      return {
        content: '{"verdict":"pass","score":0.95,"issues":[]}',
        usage: { prompt_tokens: 60, completion_tokens: 9 },
      };
    });
    const env = {
      REFINERY_DATABASE_URL: TEST_POSTGRES_URL,
      REFINERY_DATABASE_SCHEMA: SCHEMA,
      // A short lease: the restarted process reclaims the killed one's run soon.
      REFINERY_RUN_LEASE_MS: "2000",
      REFINERY_RUN_THREADS: "0",
      OPENAI_API_KEY: "test-key",
      OPENAI_BASE_URL: stub.url,
    };
    let server: ChildServer = await startChildServer(env);
    try {
      const thread = await server.client.threads.create();
      const run = await server.client.runs.create(thread.thread_id, "refine", {
        input: { task: "What is 17 * 23 + 4?" },
        config: { configurable: { verifiers: [{ kind: "answer_match", expected: 395 }] } },
      });
      await waitFor("the critique call to be in flight", () =>
        critiques === 1 ? true : undefined,
      );
      expect(await count(thread.thread_id)).toBe(1); // the cut attempt's row, committed
      await server.stop("SIGKILL");
      server = await startChildServer(env);
      await server.client.runs.join(thread.thread_id, run.run_id);
      const state = await server.client.threads.getState<{
        answer: string;
        usage: { calls: number; byNode: Record<string, { calls: number }> };
      }>(thread.thread_id);
      expect(state.values.answer).toMatch(/395/);
      // Every request the endpoint received is counted: the cut critique attempt too.
      expect(stub.requests.map(roleOf)).toEqual(["generate", "critique", "critique"]);
      expect(state.values.usage.calls).toBe(3);
      expect(state.values.usage.byNode.critique?.calls).toBe(2);
      expect(state.values.usage.byNode.generate?.calls).toBe(1);
      // The run ended: its journal rows are gone.
      expect(await count(thread.thread_id)).toBe(0);
    } finally {
      await server.stop("SIGKILL");
      await stub.close();
    }
  }, 90_000);
});
