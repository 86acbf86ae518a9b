// A node's own failure is the run's failure, even when it looks like the database going away: a
// socket error of the node's own HTTP call (ECONNRESET), its own database client's connection
// cut ("Connection terminated unexpectedly", SQLSTATE 57P01). Only failures of Refinery's own
// storage connections continue a run from its last checkpoint (test/server/pg-outage.test.ts);
// a node error must not re-run the node (repeating its side effects) and end as "the run could
// not finish in 3 attempts". Real server (graphs in the server thread, then in a run thread), SDK
// client; SQLite in the default run, Postgres in the Postgres run.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

const CASES = [
  { graph: "socket_reset", node: "call_api", error: "Error", message: "read ECONNRESET" },
  {
    graph: "own_db_cut",
    node: "query_own_db",
    error: "Error",
    message: "Connection terminated unexpectedly",
  },
  {
    graph: "own_db_shutdown",
    node: "query_own_db",
    error: "Error",
    message: "terminating connection due to administrator command",
  },
];

describe.each([
  { mode: "graphs in the server thread", threads: "0" },
  { mode: "graphs in a run thread", threads: "1" },
])("a node's own network or database error, $mode", ({ threads }) => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startTestServer({
      configPath: join(import.meta.dirname, "../fixtures/node-errors.langgraph.json"),
      env: { REFINERY_RUN_THREADS: threads },
    });
  }, 60_000);
  afterAll(async () => s?.close());

  it.each(CASES)(
    "$graph fails the run once, with the node's error",
    async ({ graph, node, error, message }) => {
      const countFile = join(s.dir, `${graph}.count`);
      writeFileSync(countFile, "");
      const thread = await s.client.threads.create();
      const run = await s.client.runs.create(thread.thread_id, graph, { input: { countFile } });
      const answer = (await s.client.runs.join(thread.thread_id, run.run_id)) as {
        __error__?: { error: string; message: string };
      };
      // Named as the LangGraph server names a node's error: by its name, not its code.
      expect(answer.__error__).toEqual({ error, message });
      const ended = await s.client.runs.get(thread.thread_id, run.run_id);
      expect(ended.status).toBe("error");
      // The node ran once: no re-run after the error.
      expect(readFileSync(countFile, "utf8")).toBe(`${node}\n`);
      const state = await s.client.threads.getState(thread.thread_id);
      expect(state.values).toMatchObject({ log: ["before"] });
      expect((await s.client.threads.get(thread.thread_id)).status).toBe("error");
    },
    60_000,
  );
});
