// Postgres going away under a running server (issue 19: "Postgres restarting mid-run → runs pause
// and continue, nothing lost, clients see a retryable error at most"). The server reaches
// Postgres through a TCP proxy on loopback that this test controls: `down()` cuts every
// connection and refuses new ones, as a restarting Postgres does, without touching the Postgres
// the other test files share. Runs on Postgres in the default run (a schema of its own).
import { readFileSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";
import { TEST_POSTGRES_URL } from "../support/test-backend.ts";

const SCHEMA = `refinery_outage_${process.pid}_${randomBytes(3).toString("hex")}`;

/** A loopback TCP proxy to Postgres that can be taken down (connections cut, new ones refused). */
interface Proxy {
  url: string;
  down(): void;
  up(): void;
  close(): Promise<void>;
}

async function startProxy(target: URL): Promise<Proxy> {
  const open = new Set<Socket>();
  let accepting = true;
  const server: Server = createServer((client) => {
    if (!accepting) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port || 5432), target.hostname);
    open.add(client);
    open.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on("error", end);
      s.on("close", end);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const url = new URL(target.href);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  return {
    url: url.href,
    down() {
      accepting = false;
      for (const s of open) s.destroy();
      open.clear();
    },
    up() {
      accepting = true;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.close(() => r());
      }),
  };
}

let proxy: Proxy;
let countFile: string;
let db: pg.Client;
const schemas: string[] = [];

beforeAll(async () => {
  proxy = await startProxy(new URL(TEST_POSTGRES_URL));
  db = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await db.connect();
}, 60_000);

afterAll(async () => {
  delete process.env.COUNT_FILE;
  await proxy?.close();
  for (const schema of schemas) await db?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db?.end();
}, 60_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The steps each "slow" run's nodes executed so far (COUNT_FILE): "<node> <topic>" lines. */
const lines = () => readFileSync(countFile, "utf8").trim().split("\n");

describe.each([
  ["in the server thread", "0"],
  ["in a run thread", "1"],
])("Postgres going away mid-run, graphs %s", (_, runThreads) => {
  let s: TestServer;
  const schema = `${SCHEMA}_${runThreads}`;

  beforeAll(async () => {
    schemas.push(schema);
    s = await startTestServer({
      env: {
        REFINERY_DATABASE_URL: proxy.url,
        REFINERY_DATABASE_SCHEMA: schema,
        REFINERY_RUN_THREADS: runThreads,
        // Longer than the test waits: runs paused here must come back without their lease lapsing.
        REFINERY_RUN_LEASE_MS: "60000",
      },
    });
    countFile = join(s.dir, "counts.txt");
    writeFileSync(countFile, "");
    process.env.COUNT_FILE = countFile;
    // The run thread (when there is one) is up before the database goes.
    const t = await s.client.threads.create();
    await s.client.runs.wait(t.thread_id, "slow", { input: { topic: "warm-up", delayMs: 0 } });
  }, 60_000);

  afterAll(async () => s?.close(), 60_000);

  /** One "slow" run per topic, each on a new thread, steps of `delayMs`. */
  async function slowRuns(topics: string[], delayMs: number) {
    const threads = await Promise.all(topics.map(() => s.client.threads.create()));
    const runs = await Promise.all(
      threads.map((t, i) =>
        s.client.runs.create(t.thread_id, "slow", { input: { topic: topics[i], delayMs } }),
      ),
    );
    return { threads, runs };
  }

  it("runs pause and continue once it is back: each finishes once, only the step in flight runs again, clients see a retryable error at most", async () => {
    const topics = ["o1", "o2", "o3", "o4"];
    const { threads, runs } = await slowRuns(topics, 400);
    // Clients waiting on each run across the outage.
    const joins = runs.map((r) =>
      s.client.runs.join(r.thread_id, r.run_id).then(
        (v) => ({ ok: true as const, v }),
        (e: unknown) => ({ ok: false as const, e }),
      ),
    );
    // Mid-run: every run has finished its first step (three steps of 400 ms).
    await until("the first steps", () => topics.every((t) => lines().includes(`one ${t}`)));
    proxy.down();
    const ok = await fetch(`${s.url}/ok`);
    const read = await fetch(`${s.url}/threads/${threads[0]!.thread_id}`);
    const write = await fetch(`${s.url}/threads`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    await sleep(3_000);
    proxy.up();

    // While it is away, /ok and requests that need it answer 503 with a retryable error.
    expect(ok.status).toBe(503);
    for (const res of [read, write]) {
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: "storage_error", retryable: true });
    }

    // Every run ends as a success soon after (well before its 60 s lease could lapse).
    const deadline = Date.now() + 15_000;
    let statuses: string[] = [];
    for (;;) {
      statuses = await Promise.all(
        runs.map(async (r) => {
          try {
            return (await s.client.runs.get(r.thread_id, r.run_id)).status;
          } catch {
            return "unreadable";
          }
        }),
      );
      if (statuses.every((x) => x === "success") || Date.now() > deadline) break;
      await sleep(200);
    }
    expect(statuses).toEqual(topics.map(() => "success"));
    for (const [i, t] of threads.entries()) {
      const state = await s.client.threads.getState(t.thread_id);
      expect(state.values).toMatchObject({ topic: topics[i], log: ["one", "two", "three"] });
    }
    // Clients that waited across the outage get the runs' real results, not an error.
    const joined = await Promise.all(joins);
    expect(joined.map((j) => (j.ok ? j.v : String(j.e)))).toEqual(
      topics.map((topic) => expect.objectContaining({ topic, log: ["one", "two", "three"] })),
    );
    // The runs were taken up again (a second attempt), not finished by their first.
    const { rows } = await db.query<{ attempt: number }>(
      `SELECT r.attempt FROM "${schema}".refinery_runs r WHERE r.run_id = ANY($1::text[])`,
      [runs.map((r) => r.run_id)],
    );
    expect(rows.map((r) => r.attempt)).toEqual(topics.map(() => 2));
    // Each step of each run executed once, but for the one step in flight when the database went
    // (its node may have run before its checkpoint could be written).
    for (const topic of topics) {
      const counts = ["one", "two", "three"].map(
        (node) => lines().filter((l) => l === `${node} ${topic}`).length,
      );
      expect(Math.min(...counts), topic).toBe(1);
      expect(
        counts.reduce((a, n) => a + n, 0),
        topic,
      ).toBeLessThanOrEqual(4);
    }
  }, 60_000);

  it("blips (every connection cut, Postgres back at once) fail no run: the step in flight runs again", async () => {
    const topics = ["b1", "b2", "b3", "b4"];
    const { runs } = await slowRuns(topics, 150);
    await until("the first steps", () => topics.every((t) => lines().includes(`one ${t}`)));
    // Cut while the runs write their checkpoints and run their steps; the next query finds it back.
    // Twice: each cut that meets a run uses one of its three attempts.
    for (let i = 0; i < 2; i++) {
      proxy.down();
      proxy.up();
      await sleep(60);
    }
    const results = await Promise.all(runs.map((r) => s.client.runs.join(r.thread_id, r.run_id)));
    expect(results).toEqual(
      topics.map((topic) => expect.objectContaining({ topic, log: ["one", "two", "three"] })),
    );
    for (const r of runs)
      expect((await s.client.runs.get(r.thread_id, r.run_id)).status).toBe("success");
  }, 60_000);

  it("a run the database cuts short more often than its attempt budget still finishes: those attempts do not count", async () => {
    const thread = await s.client.threads.create();
    const run = await s.client.runs.create(thread.thread_id, "slow", {
      input: { topic: "c1", delayMs: 300 },
    });
    const stored = async () =>
      (
        await db.query<{ status: string; attempt: number; lost_to_storage: number }>(
          `SELECT status, attempt, lost_to_storage FROM "${schema}".refinery_runs WHERE run_id = $1`,
          [run.run_id],
        )
      ).rows[0]!;
    // Four cuts, one more than the three attempts a run has: each while the run executes a step,
    // long enough that the step's checkpoint write meets the database away.
    for (let attempt = 1; attempt <= 4; attempt++) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const r = await stored();
        if (r.status === "running" && r.attempt === attempt) break;
        if (Date.now() > deadline || !["pending", "running"].includes(r.status))
          throw new Error(`attempt ${attempt} did not start: ${JSON.stringify(r)}`);
        await sleep(20);
      }
      await sleep(100);
      proxy.down();
      await sleep(600);
      proxy.up();
    }
    const result = await s.client.runs.join(thread.thread_id, run.run_id);
    expect(result).toMatchObject({ topic: "c1", log: ["one", "two", "three"] });
    expect(await stored()).toEqual({ status: "success", attempt: 5, lost_to_storage: 4 });
    // Not in the run as clients see it.
    expect(await s.client.runs.get(thread.thread_id, run.run_id)).not.toHaveProperty(
      "lost_to_storage",
    );
  }, 90_000);
});

describe("a run thread that starts while the database does not answer", () => {
  it("is started again once it answers; every run finishes", async () => {
    const schema = `${SCHEMA}_start`;
    schemas.push(schema);
    const logs: string[] = [];
    const detail: string[] = [];
    const s = await startTestServer({
      env: {
        REFINERY_DATABASE_URL: proxy.url,
        REFINERY_DATABASE_SCHEMA: schema,
        // One thread starts with the server, the second with the first run.
        REFINERY_RUN_THREADS: "2",
        // Longer than the test waits: a claim whose answer the cut lost (its run leased here,
        // executed by nobody) must be taken back without the lease lapsing.
        REFINERY_RUN_LEASE_MS: "60000",
      },
      log: (level, msg, fields) => {
        logs.push(msg);
        detail.push(`${level} ${msg} ${JSON.stringify(fields ?? {}).slice(0, 300)}`);
      },
    });
    countFile = join(s.dir, "counts.txt");
    writeFileSync(countFile, "");
    process.env.COUNT_FILE = countFile;
    const threadGauge = async () => {
      const text = await (await fetch(`${s.url}/metrics`)).text();
      return Number(/^refinery_run_threads (\d+)/m.exec(text)?.[1]);
    };
    try {
      await s.running.runThreadsReady();
      const threads = await Promise.all([0, 1, 2, 3].map(() => s.client.threads.create()));
      const runs = await Promise.all(
        threads.map((t, i) =>
          s.client.runs.create(t.thread_id, "slow", { input: { topic: `s${i}`, delayMs: 300 } }),
        ),
      );
      // The first run started the second thread (a run starts once it is handed to a thread),
      // which is still loading its modules when the database goes: its start fails.
      await until("a run started", () => logs.includes("run started"));
      proxy.down();
      // A loaded machine can take seconds to load a thread's modules.
      await until(
        "the second thread's failed start",
        () => logs.some((m) => m.startsWith("a run thread could not start")),
        120_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; the server's log:\n${detail.join("\n")}`);
      });
      await sleep(2_000);
      proxy.up();
      const results = await Promise.all(runs.map((r) => s.client.runs.join(r.thread_id, r.run_id)));
      expect(results).toEqual(
        threads.map((_, i) =>
          expect.objectContaining({ topic: `s${i}`, log: ["one", "two", "three"] }),
        ),
      );
      // Both threads are alive again.
      const deadline = Date.now() + 10_000;
      while ((await threadGauge()) !== 2 && Date.now() < deadline) await sleep(100);
      expect(await threadGauge()).toBe(2);
    } finally {
      proxy.up();
      await s.close();
    }
  }, 180_000);
});
