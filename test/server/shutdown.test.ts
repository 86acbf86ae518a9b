// Graceful shutdown: on SIGTERM the server takes no new runs, pauses the runs still in flight
// after the grace period at their last checkpoint and exits 0; the next start finishes them
// without re-running finished steps. Also RunningServer.close() in-process.
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../server/log.ts";
import { startServer } from "../../server/start.ts";
import {
  killChildServers,
  readCounts,
  startChildServer,
  waitFor,
} from "../support/child-server.ts";
import { FIXTURE_CONFIG, startTestServer } from "../support/server.ts";
import { databaseEnv, queryTestDatabase } from "../support/test-backend.ts";

const NODES = ["one", "two", "three"];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "refinery-shutdown-"));
});
afterAll(async () => {
  await killChildServers();
  rmSync(dir, { recursive: true, force: true });
});

interface Planned {
  topic: string;
  threadId: string;
  runId: string;
}

/** Three slow runs on their own threads and a fourth queued behind the first. */
async function createRuns(client: Client, delayMs: number): Promise<Planned[]> {
  const plan: Planned[] = [];
  for (const topic of ["a0", "a1", "a2"]) {
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, "slow", { input: { topic, delayMs } });
    plan.push({ topic, threadId: thread.thread_id, runId: run.run_id });
  }
  const queued = await client.runs.create(plan[0]!.threadId, "slow", {
    input: { topic: "a0b", delayMs, log: ["again"] },
    multitaskStrategy: "enqueue",
  });
  plan.push({ topic: "a0b", threadId: plan[0]!.threadId, runId: queued.run_id });
  return plan;
}

/** Waits for all runs, then checks results, statuses and idle threads. */
async function expectAllDone(client: Client, plan: Planned[]): Promise<void> {
  const signal = AbortSignal.timeout(60_000);
  await Promise.all(plan.map((p) => client.runs.join(p.threadId, p.runId, { signal })));
  for (const p of plan) {
    expect((await client.runs.get(p.threadId, p.runId)).status, p.topic).toBe("success");
    const state = await client.threads.getState<{ log: string[] }>(p.threadId);
    const log = p.threadId === plan[0]!.threadId ? [...NODES, "again", ...NODES] : NODES;
    expect(state.values.log, p.topic).toEqual(log);
    expect((await client.threads.get(p.threadId)).status, p.topic).toBe("idle");
  }
  expect(await client.threads.search({ status: "busy" })).toEqual([]);
}

/** Each node ran exactly once per run, across both processes. */
function expectExactlyOnce(countFile: string, plan: Planned[]): void {
  const lines = readCounts(countFile);
  const expected = plan.flatMap((p) => NODES.map((n) => `${n} ${p.topic}`)).sort();
  expect([...lines].sort()).toEqual(expected);
}

/** A second server on the same database, as startTestServer would start it. */
async function restartInProcess(dbPath: string) {
  const running = await startServer({
    env: databaseEnv(dbPath),
    configPath: FIXTURE_CONFIG,
    port: 0,
    host: "127.0.0.1",
    log: silentLogger,
    pollMs: 200,
  });
  const client = new Client({
    apiUrl: running.url,
    apiKey: null,
    callerOptions: { maxRetries: 0 },
  });
  return { running, client };
}

async function runRows(dbPath: string): Promise<Map<string, { status: string; attempt: number }>> {
  const rows = await queryTestDatabase<{ run_id: string; status: string; attempt: number }>(
    dbPath,
    "SELECT run_id, status, attempt FROM refinery_runs",
  );
  return new Map(rows.map((r) => [r.run_id, { status: r.status, attempt: r.attempt }]));
}

/** POSTs `body` to `url` on a connection of its own (none kept alive); resolves the status. */
function postOnNewConnection(url: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", agent: false, headers: { "content-type": "application/json" } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

describe("graceful shutdown of the server process (SIGTERM)", () => {
  it("stops taking runs, pauses in-flight runs at their checkpoint, exits 0; a restart finishes them", async () => {
    const dbPath = join(dir, "sigterm.db");
    const countFile = join(dir, "sigterm-counts.txt");
    // Steps of 1 s and a grace of 300 ms: runs caught mid-step cannot finish in time.
    const env = {
      ...databaseEnv(dbPath),
      COUNT_FILE: countFile,
      REFINERY_SHUTDOWN_GRACE_MS: "300",
    };
    const first = await startChildServer(env);
    const plan = await createRuns(first.client, 1000);
    const started = plan.slice(0, 3);
    // A client joined on a run that will be paused. Plain fetch rather than the SDK, to know the
    // request is in: the headers come with the first keep-alive newline.
    const waiting = plan[1]!;
    const joining = fetch(`${first.url}/threads/${waiting.threadId}/runs/${waiting.runId}/join`);
    await waitFor("the first step of each run", () =>
      started.every((p) => readCounts(countFile).includes(`one ${p.topic}`)) ? true : undefined,
    );
    const joinResponse = await joining;
    expect(joinResponse.status).toBe(200);
    const joined = joinResponse.text().then(
      (body) => ({ body }),
      (error: unknown) => ({ error: String(error) }),
    );
    const t0 = Date.now();
    const exited = first.stop("SIGTERM");
    await waitFor("the stopping message", () =>
      first.output().includes("SIGTERM: stopping") ? true : undefined,
    );
    // While stopping (the grace period has not run out) no new connection, so no new run, is
    // taken. (A request already on a kept-alive connection is answered: test/server/cluster.)
    const thread = plan[1]!.threadId;
    await expect(
      postOnNewConnection(`${first.url}/threads/${thread}/runs`, {
        assistant_id: "slow",
        input: { topic: "late", delayMs: 0 },
        multitask_strategy: "enqueue",
      }),
    ).rejects.toMatchObject({ code: "ECONNREFUSED" });
    const exit = await exited;
    expect(exit, first.output()).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(15_000);
    await expect(first.client.threads.create()).rejects.toThrow();

    // Paused, not lost, not left running; the queued run is still queued.
    const rows = await runRows(dbPath);
    expect([...rows.values()].filter((r) => r.status === "running")).toEqual([]);
    expect(rows.size).toBe(plan.length);
    for (const p of started) expect(["pending", "success"]).toContain(rows.get(p.runId)?.status);
    expect(started.filter((p) => rows.get(p.runId)?.status === "pending").length).toBeGreaterThan(
      0,
    );
    expect(rows.get(plan[3]!.runId)).toEqual({ status: "pending", attempt: 0 });
    // A client waiting on a paused run is not told it finished: its request fails (it can join
    // again after the restart).
    if (rows.get(waiting.runId)?.status === "pending") {
      expect(await joined).toHaveProperty("error");
    }
    const before = readCounts(countFile);

    const second = await startChildServer(env);
    await expectAllDone(second.client, plan);
    expectExactlyOnce(countFile, plan);
    // Steps finished before the shutdown did not run again.
    const after = readCounts(countFile).slice(before.length);
    for (const line of before) expect(after).not.toContain(line);
    expect((await second.stop("SIGTERM")).code).toBe(0);
    const final = await runRows(dbPath);
    for (const p of started) {
      const paused = rows.get(p.runId)?.status === "pending";
      expect(final.get(p.runId), p.topic).toEqual({ status: "success", attempt: paused ? 2 : 1 });
    }
  }, 120_000);
});

describe("RunningServer.close() in-process", () => {
  it("lets in-flight runs finish within the grace period, keeps queued ones, and leaves no busy thread after a restart", async () => {
    const countFile = join(dir, "in-process-counts.txt");
    process.env.COUNT_FILE = countFile; // the fixture graph runs in this process
    const s = await startTestServer({ concurrency: 4 });
    try {
      const plan = await createRuns(s.client, 300);
      await waitFor("the first step of a run", () =>
        readCounts(countFile).length > 0 ? true : undefined,
      );
      // A generous grace period: the three running runs finish; the queued one never starts.
      await s.running.close(20_000);
      const rows = await runRows(s.dbPath);
      for (const p of plan.slice(0, 3)) {
        expect(rows.get(p.runId), p.topic).toEqual({ status: "success", attempt: 1 });
      }
      expect(rows.get(plan[3]!.runId)).toEqual({ status: "pending", attempt: 0 });
      await expect(s.client.threads.create()).rejects.toThrow();

      const again = await restartInProcess(s.dbPath);
      try {
        await expectAllDone(again.client, plan);
        expectExactlyOnce(countFile, plan);
      } finally {
        await again.running.close(2_000);
      }
    } finally {
      delete process.env.COUNT_FILE;
      await s.close();
    }
  }, 60_000);

  it("pauses runs that outlive the grace period; nothing is left running or busy after a restart", async () => {
    const countFile = join(dir, "in-process-pause-counts.txt");
    process.env.COUNT_FILE = countFile;
    const s = await startTestServer({ concurrency: 4 });
    try {
      const plan = await createRuns(s.client, 800);
      await waitFor("the first step of each run", () =>
        readCounts(countFile).length >= 3 ? true : undefined,
      );
      await s.running.close(50);
      const rows = await runRows(s.dbPath);
      expect([...rows.values()].filter((r) => r.status === "running")).toEqual([]);
      expect(rows.get(plan[3]!.runId)).toEqual({ status: "pending", attempt: 0 });

      const again = await restartInProcess(s.dbPath);
      try {
        await expectAllDone(again.client, plan);
        expectExactlyOnce(countFile, plan);
      } finally {
        await again.running.close(2_000);
      }
    } finally {
      delete process.env.COUNT_FILE;
      await s.close();
    }
  }, 60_000);
});
