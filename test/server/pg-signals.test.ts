// Without Redis, processes sharing Postgres signal through LISTEN/NOTIFY (server/signals/
// postgres.ts): real api and worker processes on a Postgres schema of this file's own (dropped
// after): the start-up log names the signalling, and a cancel sent to the api process stops the
// run executing in the worker, its finished steps kept. With Redis configured but down (every
// signal dropped), the cancel still reaches the worker: through the database
// (server/signals/cancel-requests.ts).
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
import { PostgresSignals } from "../../server/signals/postgres.ts";
import { FIXTURE_CONFIG } from "../support/server.ts";
import { TEST_POSTGRES_URL } from "../support/test-backend.ts";

const SCHEMA = `refinery_pgsig_${process.pid}_${randomBytes(3).toString("hex")}`;
const LOST_SCHEMA = `${SCHEMA}_lost`;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "refinery-pg-signals-"));
});
afterAll(async () => {
  await killChildServers();
  rmSync(dir, { recursive: true, force: true });
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  for (const schema of [SCHEMA, LOST_SCHEMA])
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
});

describe("PostgresSignals", () => {
  it("carry a wake with its thread's id, or none, between instances of one schema", async () => {
    const schema = `refinery_sig_${randomBytes(4).toString("hex")}`;
    const log = () => {};
    const a = new PostgresSignals({ url: TEST_POSTGRES_URL, schema, log });
    const b = new PostgresSignals({ url: TEST_POSTGRES_URL, schema, log });
    try {
      await Promise.all([a.start(), b.start()]);
      const got: (string | undefined)[] = [];
      const heard = new Promise<void>((resolve) => {
        b.onWake((threadId) => {
          got.push(threadId);
          if (got.length === 2) resolve();
        });
      });
      a.wake("thread-7");
      a.wake();
      await heard;
      // Two NOTIFYs may go out on two pooled connections: in either order.
      expect(new Set(got)).toEqual(new Set(["thread-7", undefined]));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
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
      const t0 = performance.now();
      await api.client.runs.cancel(thread.thread_id, run.run_id, true, "interrupt");
      // Measured, not asserted (timings flake under load): the cancel call returns once the
      // worker has stopped the run and written its status (it gives up after 15 s).
      console.info(`cancel through LISTEN/NOTIFY: ${Math.round(performance.now() - t0)} ms`);
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

describe("api and worker processes whose signals are lost (Redis down)", () => {
  it("a cancel sent to the api process still stops the run in the worker, read from the database", async () => {
    const countFile = join(dir, "lost-counts.txt");
    const env = {
      REFINERY_DATABASE_URL: TEST_POSTGRES_URL,
      REFINERY_DATABASE_SCHEMA: LOST_SCHEMA,
      // Nothing listens there: every wake and cancel signal is dropped (workers poll for runs).
      REFINERY_REDIS_URL: "redis://127.0.0.1:1",
      COUNT_FILE: countFile,
      REFINERY_RUN_THREADS: "0",
      LOG_LEVEL: "info",
    };
    const worker = await startChildServer(env, undefined, FIXTURE_CONFIG, ["--role", "worker"]);
    const api = await startChildServer(env, undefined, FIXTURE_CONFIG, ["--role", "api"]);
    try {
      const thread = await api.client.threads.create();
      // Steps of 4 s: without the cancel the run would end "success" before the canceller gives
      // up waiting (15 s), so an interrupted run means the cancel reached the worker.
      const run = await api.client.runs.create(thread.thread_id, "slow", {
        input: { topic: "l", delayMs: 4000 },
      });
      await waitFor(
        "step one to finish in the worker",
        () => (readCounts(countFile).includes("one l") ? true : undefined),
        60_000,
      );
      const t0 = performance.now();
      await api.client.runs.cancel(thread.thread_id, run.run_id, true, "interrupt");
      console.info(
        `cancel through the database (signals lost): ${Math.round(performance.now() - t0)} ms`,
      );
      expect((await api.client.runs.get(thread.thread_id, run.run_id)).status).toBe("interrupted");
      expect(worker.output()).toMatch(/run cancelled through the database/);
      const state = await api.client.threads.getState<{ log: string[] }>(thread.thread_id);
      expect(state.values.log).toEqual(["one"]);
      expect(readCounts(countFile)).not.toContain("three l");
    } finally {
      expect((await worker.stop("SIGTERM")).code, worker.output()).toBe(0);
      expect((await api.stop("SIGTERM")).code, api.output()).toBe(0);
    }
  }, 120_000);
});
