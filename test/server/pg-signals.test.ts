// Without Redis, processes sharing Postgres signal through LISTEN/NOTIFY (server/signals/
// postgres.ts): real api and worker processes on a Postgres schema of this file's own (dropped
// after): the start-up log names the signalling, and a cancel sent to the api process stops the
// run executing in the worker, its finished steps kept.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  killChildServers,
  readCounts,
  startChildServer,
  waitFor,
} from "../support/child-server.ts";
import { FIXTURE_CONFIG } from "../support/server.ts";
import { TEST_POSTGRES_URL } from "../support/test-backend.ts";

const SCHEMA = `refinery_pgsig_${process.pid}_${randomBytes(3).toString("hex")}`;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "refinery-pg-signals-"));
});
afterAll(async () => {
  await killChildServers();
  rmSync(dir, { recursive: true, force: true });
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await admin.end();
});

describe("api and worker processes on Postgres without Redis", () => {
  it("log LISTEN/NOTIFY signalling, and a cancel sent to the api process stops the run in the worker", async () => {
    const countFile = join(dir, "counts.txt");
    const env = {
      REFINERY_DATABASE_URL: TEST_POSTGRES_URL,
      REFINERY_DATABASE_SCHEMA: SCHEMA,
      COUNT_FILE: countFile,
      REFINERY_RUN_THREADS: "0",
      LOG_LEVEL: "info",
    };
    // The worker first: it migrates the schema, so the two do not race on it.
    const worker = await startChildServer(env, undefined, FIXTURE_CONFIG, ["--role", "worker"]);
    const api = await startChildServer(env, undefined, FIXTURE_CONFIG, ["--role", "api"]);
    try {
      for (const p of [worker, api])
        expect(p.output()).toMatch(/signalling through Postgres LISTEN\/NOTIFY/);
      const thread = await api.client.threads.create();
      const run = await api.client.runs.create(thread.thread_id, "slow", {
        input: { topic: "c", delayMs: 1500 },
      });
      await waitFor("step one to finish in the worker", () =>
        readCounts(countFile).includes("one c") ? true : undefined,
      );
      await api.client.runs.cancel(thread.thread_id, run.run_id, true, "interrupt");
      expect((await api.client.runs.get(thread.thread_id, run.run_id)).status).toBe("interrupted");
      const state = await api.client.threads.getState<{ log: string[] }>(thread.thread_id);
      expect(state.values.log).toEqual(["one"]);
      expect(readCounts(countFile)).not.toContain("three c");
    } finally {
      expect((await worker.stop("SIGTERM")).code, worker.output()).toBe(0);
      expect((await api.stop("SIGTERM")).code, api.output()).toBe(0);
    }
  }, 90_000);
});
