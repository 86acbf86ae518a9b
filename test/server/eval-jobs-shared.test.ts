// Evaluation jobs live in the database (storage `evalJobs`): a server restarted on the same
// SQLite file resumes a job it was running from its records (no item run twice); on Postgres, real
// server processes on a schema of this file's own (dropped after) share jobs: a job started on A
// is listed, read and paged on B (another tenant gets a 404), cancelled from B (the cancel reaches
// A through LISTEN/NOTIFY), and a job whose process was SIGKILLed is resumed by the other one. A job
// nobody runs that was started MAX_ATTEMPTS times ends interrupted (naming how to start it again),
// and one whose cancel was asked meanwhile ends cancelled.
// The model is the test provider with slow calls (test/fixtures/eval-provider.ts), in the server
// thread (REFINERY_EVAL_THREADS=0) to keep the processes light.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processSettingsFromEnv } from "../../core/config.ts";
import { openMemoryEvalJobStore } from "../../core/storage/sqlite/eval-jobs.ts";
import { openEngine } from "../../graphs/engine.ts";
import { engineRunner, type ItemRecord } from "../../graphs/eval/index.ts";
import { InlineEvalTarget } from "../../server/eval-inline.ts";
import {
  EvalJobs,
  MAX_ATTEMPTS,
  type EvalJobInfo,
  type EvalJobView,
} from "../../server/eval-jobs.ts";
import { silentLogger } from "../../server/log.ts";
import { SlowModel } from "../fixtures/eval-provider.ts";
import { keyHeaders, keysEnv } from "../support/auth.ts";
import { killChildServers, startChildServer, waitFor } from "../support/child-server.ts";
import { scriptedProvider } from "../support/scripted-model.ts";
import { startTestServer } from "../support/server.ts";
import { dropTestSchemas, TEST_POSTGRES_URL } from "../support/test-backend.ts";

const PROVIDER = `${join(import.meta.dirname, "../fixtures/eval-provider.ts")}#evalProvider`;
const SCHEMA = `refinery_evaljobs_${process.pid}_${randomBytes(3).toString("hex")}`;

const items = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    id: `q${i}`,
    task: `Question ${i}: what is 6 * 7?`,
    reference: 42,
  }));

async function call(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

/** Each item run once: no duplicate (strategy, item) pair. */
const pairs = (records: ItemRecord[]) => records.map((r) => `${r.strategy}/${r.item_id}`);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "refinery-eval-jobs-"));
});
afterAll(async () => {
  await killChildServers();
  rmSync(dir, { recursive: true, force: true });
  await dropTestSchemas();
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await admin.end();
});

describe("a server restarted on the same database", () => {
  it("resumes the job it was running from its records", async () => {
    const dbPath = join(dir, "restart.db");
    const open = () => startTestServer({ dbPath, provider: scriptedProvider(new SlowModel(60)) });
    const first = await open();
    let id: string;
    try {
      const started = await call(
        first.url,
        "POST",
        "/eval",
        {},
        {
          items: items(12),
          strategies: ["vanilla"],
          concurrency: 1,
        },
      );
      expect(started.status).toBe(202);
      id = (started.body as EvalJobView).eval_id;
      await waitFor(
        "a few records",
        async () => {
          const job = (await call(first.url, "GET", `/eval/${id}?records_limit=0`))
            .body as EvalJobInfo;
          return job.records_total >= 2 ? job : undefined;
        },
        60_000,
        50,
      );
    } finally {
      await first.close();
    }
    const second = await open();
    try {
      const done = await waitFor(
        "the resumed job to end",
        async () => {
          const job = (await call(second.url, "GET", `/eval/${id}`)).body as EvalJobView;
          return job.status === "running" ? undefined : job;
        },
        60_000,
        100,
      );
      expect(done).toMatchObject({ status: "succeeded", attempts: 2, records_total: 12 });
      expect(new Set(pairs(done.records)).size).toBe(12);
      expect(done.summary).toBeDefined();
    } finally {
      await second.close();
    }
  }, 120_000);
});

describe("jobs nobody runs any more", () => {
  it("end interrupted past the attempts, or cancelled when a cancel was asked meanwhile", async () => {
    const store = openMemoryEvalJobStore();
    const spec = {
      items: items(2),
      name: "orphan",
      strategies: ["vanilla" as const],
      concurrency: 1,
      seed: 1,
      replicates: 1,
    };
    const orphan = async (id: string, attempts: number) => {
      await store.create({
        eval_id: id,
        partition: "",
        identity: null,
        spec,
        size: 2,
        runs_in: "server_thread",
        progress: { total: 0, done: 0, skipped: 0, elapsed_ms: 0 },
        runner: "elsewhere:1:gone",
        lease_until: 0, // lapsed
      });
      for (let i = 1; i < attempts; i++)
        await store.claim(id, "elsewhere:1:gone", "elsewhere:1:gone", 0);
    };
    await orphan("worn-out", MAX_ATTEMPTS);
    await orphan("cancel-asked", 1);
    await store.requestCancel("cancel-asked");
    const engine = openEngine({ settings: processSettingsFromEnv({}), memory: true });
    const jobs = new EvalJobs({
      target: new InlineEvalTarget(async () => engineRunner(engine)),
      log: silentLogger,
      maxRuns: 100,
      maxJobs: 5,
      store,
    });
    try {
      jobs.start({});
      const ended = (id: string) =>
        waitFor(`${id} to end`, async () => {
          const job = await jobs.get("", id);
          return job.status === "running" ? undefined : job;
        });
      expect(await ended("worn-out")).toMatchObject({
        status: "interrupted",
        attempts: MAX_ATTEMPTS + 1,
        error: { error: "eval_process_lost" },
      });
      expect((await jobs.get("", "worn-out")).error?.message).toMatch(/POST \/eval/);
      expect(await ended("cancel-asked")).toMatchObject({ status: "cancelled" });
    } finally {
      await jobs.close();
      engine.close();
    }
  });
});

describe("server processes sharing Postgres", () => {
  it("share jobs: list, read and page on B; cancel from B; B resumes a job whose process was killed", async () => {
    const env = {
      REFINERY_DATABASE_URL: TEST_POSTGRES_URL,
      REFINERY_DATABASE_SCHEMA: SCHEMA,
      REFINERY_PROVIDER_MODULE: PROVIDER,
      SLOW_MODEL_MS: "100",
      REFINERY_EVAL_THREADS: "0",
      REFINERY_RUN_THREADS: "0",
      REFINERY_RUN_LEASE_MS: "1500",
      REFINERY_API_KEYS: keysEnv(["a", "b"]),
      REFINERY_RATE_LIMIT: "0",
    };
    // A first: it migrates the schema, so the two do not race on it.
    const a = await startChildServer(env);
    const b = await startChildServer(env);
    const asA = keyHeaders("a");
    try {
      const started = await call(a.url, "POST", "/eval", asA, {
        items: items(60),
        strategies: ["vanilla"],
        concurrency: 1,
      });
      expect(started.status, JSON.stringify(started.body)).toBe(202);
      const id = (started.body as EvalJobView).eval_id;
      const seen = await waitFor(
        "records on B",
        async () => {
          const job = (await call(b.url, "GET", `/eval/${id}?records_limit=0`, asA))
            .body as EvalJobInfo;
          return job.records_total >= 3 ? job : undefined;
        },
        60_000,
        50,
      );
      expect(seen).toMatchObject({ status: "running", owner: { partition: "a" } });
      const page = (await call(b.url, "GET", `/eval/${id}?records_offset=1&records_limit=2`, asA))
        .body as EvalJobView;
      expect(page.records).toHaveLength(2);
      const list = (await call(b.url, "GET", "/eval", asA)).body as EvalJobInfo[];
      expect(list.map((j) => j.eval_id)).toEqual([id]);
      // Another tenant: a 404 like a missing job, on either process; its list is empty.
      const asB = keyHeaders("b");
      expect((await call(b.url, "GET", `/eval/${id}`, asB)).status).toBe(404);
      expect((await call(b.url, "POST", `/eval/${id}/cancel`, asB)).status).toBe(404);
      expect((await call(a.url, "GET", "/eval", asB)).body).toEqual([]);

      const cancelled = await call(b.url, "POST", `/eval/${id}/cancel`, asA);
      expect(cancelled.status).toBe(200);
      const job = cancelled.body as EvalJobView;
      expect(job.status).toBe("cancelled");
      expect(job.records_total).toBeGreaterThanOrEqual(3);
      expect(job.records_total).toBeLessThan(60);
      expect((await call(a.url, "GET", `/eval/${id}`, asA)).body).toMatchObject({
        status: "cancelled",
        records_total: job.records_total,
      });

      // A job on A, then A is killed: B takes it over and finishes it from its records.
      const second = await call(a.url, "POST", "/eval", asA, {
        items: items(15),
        strategies: ["vanilla"],
        concurrency: 1,
      });
      expect(second.status).toBe(202);
      const id2 = (second.body as EvalJobView).eval_id;
      await waitFor(
        "records of the second job",
        async () => {
          const j = (await call(b.url, "GET", `/eval/${id2}?records_limit=0`, asA))
            .body as EvalJobInfo;
          return j.records_total >= 2 ? j : undefined;
        },
        60_000,
        50,
      );
      await a.stop("SIGKILL");
      const resumed = await waitFor(
        "B to finish the job",
        async () => {
          const j = (await call(b.url, "GET", `/eval/${id2}`, asA)).body as EvalJobView;
          return j.status === "running" ? undefined : j;
        },
        60_000,
        100,
      );
      expect(resumed).toMatchObject({ status: "succeeded", attempts: 2, records_total: 15 });
      expect(new Set(pairs(resumed.records)).size).toBe(15);
      expect(b.output()).toMatch(/evaluation resumes/);
    } finally {
      expect((await b.stop("SIGTERM")).code, b.output()).toBe(0);
      await a.stop("SIGKILL");
    }
  }, 180_000);
});
