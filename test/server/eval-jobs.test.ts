// Evaluation jobs over the real server: they run in an eval thread (not the HTTP thread) and
// report progress; GET /eval lists the caller's, POST /eval/{id}/cancel stops one with its records
// so far, and a thread that cannot stop (an item keeping the CPU busy) is terminated and replaced
// while the server keeps answering; oversized jobs and too many running jobs are refused before
// anything starts; a job of another partition (tenant, with API keys) is a 404; the oldest finished jobs are dropped past
// the number of jobs or records kept. The model is a provider module whose calls are slow, or
// spin the CPU (test/fixtures/eval-provider.ts).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processSettingsFromEnv } from "../../core/config.ts";
import { openEngine } from "../../graphs/engine.ts";
import { engineRunner, type ItemRecord } from "../../graphs/eval/index.ts";
import { InlineEvalTarget } from "../../server/eval-inline.ts";
import { EvalJobs, type EvalJobInfo, type EvalJobView } from "../../server/eval-jobs.ts";
import { silentLogger } from "../../server/log.ts";
import { startServer } from "../../server/start.ts";
import { SlowModel } from "../fixtures/eval-provider.ts";
import { keyHeaders, keysEnv, type Role } from "../support/auth.ts";
import { scriptedProvider } from "../support/scripted-model.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { eventually } from "../support/wait.ts";

const PROVIDER = `${join(import.meta.dirname, "../fixtures/eval-provider.ts")}#evalProvider`;

/** Items the provider answers right (42), each `task` prefixed. */
const items = (n: number, prefix = "") =>
  Array.from({ length: n }, (_, i) => ({
    id: `q${i}`,
    task: `${prefix}Question ${i}: what is 6 * 7?`,
    reference: 42,
  }));

/** Tenants (partitions) of the server with API keys; a key per role of each. */
const TENANTS = ["main", "pg", "spin", "flood", "cap", "cap-2", "a", "b"];

/** A caller: a tenant's member by default ("main"); none on a server without auth. */
type Caller = string | { tenant: string; role: Role };
const as = (caller?: Caller): Record<string, string> =>
  caller === undefined
    ? {}
    : typeof caller === "string"
      ? keyHeaders(caller)
      : keyHeaders(caller.tenant, caller.role);

/** The /eval API as `fallback` (or the caller passed to each call) sees it. */
function client(server: TestServer, fallback?: Caller) {
  const call = async (method: string, path: string, body?: unknown, partition?: Caller) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { "content-type": "application/json", ...as(partition ?? fallback) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = res.headers.get("content-type")?.startsWith("application/json");
    return { status: res.status, headers: res.headers, body: json ? JSON.parse(text) : text };
  };
  return {
    start: (body: unknown, partition?: Caller) => call("POST", "/eval", body, partition),
    get: (id: string, partition?: Caller) => call("GET", `/eval/${id}`, undefined, partition),
    list: (query = "", partition?: Caller) => call("GET", `/eval${query}`, undefined, partition),
    cancel: (id: string, partition?: Caller) =>
      call("POST", `/eval/${id}/cancel`, undefined, partition),
    chart: (id: string, partition?: Caller) =>
      call("GET", `/eval/${id}/chart.svg`, undefined, partition),
    /** Polls the job until `until` holds. */
    waitFor: (id: string, until: (job: EvalJobView) => boolean, what: string, partition?: Caller) =>
      eventually(
        async () => {
          const job = (await call("GET", `/eval/${id}`, undefined, partition)).body as EvalJobView;
          return until(job) ? job : undefined;
        },
        what,
        60_000,
        50,
      ),
  };
}

const pairs = (records: ItemRecord[]) => records.map((r) => `${r.strategy}/${r.item_id}`);

// Eval threads start on the first job (a few seconds on a loaded machine): generous timeouts.
describe("eval jobs in an eval thread", { timeout: 90_000 }, () => {
  let server: TestServer;
  let api: ReturnType<typeof client>;
  // A webhook verifier's endpoint on loopback, which only this server's environment allows.
  let hook: Server;
  let hookPort: number;
  let hookCalls = 0;
  beforeAll(async () => {
    hook = createServer((req, res) => {
      hookCalls++;
      req.resume();
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ pass: true }));
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    hookPort = (hook.address() as AddressInfo).port;
    server = await startTestServer({
      env: {
        REFINERY_PROVIDER_MODULE: PROVIDER,
        SLOW_MODEL_MS: "40",
        REFINERY_API_KEYS: keysEnv(TENANTS),
        REFINERY_RATE_LIMIT: "0",
        REFINERY_OUTBOUND_ALLOW: `127.0.0.1:${hookPort}`,
      },
    });
    api = client(server, "main");
  });
  afterAll(async () => {
    await server?.close();
    await new Promise((r) => hook?.close(r));
  });

  it("runs off the HTTP thread with progress; list, get and cancel keep its records so far", async () => {
    const started = await api.start({ items: items(200), strategies: ["vanilla"], concurrency: 1 });
    expect(started.status).toBe(202);
    const id = (started.body as EvalJobView).eval_id;
    expect(started.headers.get("location")).toBe(`/eval/${id}`);
    expect(started.body).toMatchObject({
      status: "running",
      size: 200,
      runs_in: "eval_thread",
      owner: { partition: "main", identity: "member@main" },
    });

    const running = await api.waitFor(id, (j) => j.progress.done >= 3, "progress");
    expect(running.status).toBe("running");
    expect(running.progress.total).toBe(200);
    // Not the thread that serves HTTP (the test's own thread here).
    expect(running.worker_thread_id).toEqual(expect.any(Number));
    expect(running.worker_thread_id).not.toBe(threadId);
    expect((await fetch(`${server.url}/ok`)).status).toBe(200);

    const listed = await api.list();
    expect(listed.status).toBe(200);
    const mine = (listed.body as EvalJobInfo[]).find((j) => j.eval_id === id);
    expect(mine).toMatchObject({ status: "running" });
    expect(mine).not.toHaveProperty("records");

    const cancelled = await api.cancel(id);
    expect(cancelled.status).toBe(200);
    const job = cancelled.body as EvalJobView;
    expect(job.status).toBe("cancelled");
    expect(job.records.length).toBeGreaterThanOrEqual(3);
    expect(job.records.length).toBeLessThan(200);
    expect(new Set(pairs(job.records)).size).toBe(job.records.length);
    // Stopped in its thread: an interrupted summary of the records so far.
    expect(job.summary).toMatchObject({ status: "interrupted" });
    const again = await api.get(id);
    expect(again.body).toMatchObject({ status: "cancelled", records: job.records });
    const twice = await api.cancel(id);
    expect(twice.status).toBe(409);
    expect(twice.body).toMatchObject({ error: "conflict", field: "eval_id" });
  });

  it("pages the caller's jobs newest first without records, and a job's records", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await api.start({ items: items(2), strategies: ["vanilla"], seed: i + 1 }, "pg");
      expect(res.status).toBe(202);
      ids.push((res.body as EvalJobView).eval_id);
      await api.waitFor(ids[i] as string, (j) => j.status !== "running", "job end", "pg");
    }
    const first = await api.list("?limit=2", "pg");
    expect((first.body as EvalJobInfo[]).map((j) => j.eval_id)).toEqual([ids[2], ids[1]]);
    const next = await api.list("?limit=2&offset=2", "pg");
    expect((next.body as EvalJobInfo[]).map((j) => j.eval_id)).toEqual([ids[0]]);
    for (const job of first.body as EvalJobInfo[]) {
      expect(job).toMatchObject({ status: "succeeded", owner: { partition: "pg" } });
      expect(job).not.toHaveProperty("records");
    }
    const bad = await api.list("?limit=0", "pg");
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({ field: "limit" });

    // A job's records come in pages; records_limit=0 reads its progress alone.
    const whole = (await api.get(ids[0] as string, "pg")).body as EvalJobView;
    expect(whole).toMatchObject({ records_total: 2 });
    expect(whole.records).toHaveLength(2);
    const second = await api.get(`${ids[0]}?records_offset=1&records_limit=1`, "pg");
    expect((second.body as EvalJobView).records).toEqual(whole.records.slice(1));
    const none = await api.get(`${ids[0]}?records_limit=0`, "pg");
    expect(none.body).toMatchObject({ records: [], records_total: 2, status: "succeeded" });
    const tooMany = await api.get(`${ids[0]}?records_limit=5001`, "pg");
    expect(tooMany.status).toBe(422);
    expect(tooMany.body).toMatchObject({ field: "records_limit" });
  });

  it("an item that keeps the CPU busy does not hold up the server; cancel terminates and replaces its thread, and the thread's other job resumes", async () => {
    // A slow job first, on the same (only) eval thread.
    const other = await api.start({ items: items(30), strategies: ["vanilla"], concurrency: 1 });
    expect(other.status).toBe(202);
    const otherId = (other.body as EvalJobView).eval_id;
    await api.waitFor(otherId, (j) => j.progress.done >= 2, "the other job's progress");

    // Its first item is quick; the second spins the CPU for a minute as soon as it starts.
    const [quick, spin] = [items(1)[0], { ...items(2, "SPIN:60000 ")[1] }];
    const busy = await api.start(
      { items: [quick, spin], strategies: ["vanilla"], concurrency: 1 },
      "spin",
    );
    expect(busy.status).toBe(202);
    const busyId = (busy.body as EvalJobView).eval_id;
    const busyThread = (busy.body as EvalJobView).worker_thread_id;
    await api.waitFor(busyId, (j) => j.progress.done >= 1, "the quick item", "spin");

    // The eval thread spins for a minute; HTTP is answered meanwhile.
    const ok = await fetch(`${server.url}/ok`, { signal: AbortSignal.timeout(20_000) });
    expect(ok.status).toBe(200);
    expect((await api.get(busyId, "spin")).body).toMatchObject({ status: "running" });

    const cancelling = Date.now();
    const cancelled = await api.cancel(busyId, "spin");
    // Well before the minute of spinning ends (the thread gets 1 s to stop).
    expect(Date.now() - cancelling).toBeLessThan(30_000);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({
      status: "cancelled",
      error: { error: "cancelled", message: expect.stringMatching(/grace period/) },
    });

    // The other job lost its thread and resumes on a new one from its records: all 30, once.
    const resumed = await api.waitFor(otherId, (j) => j.status !== "running", "the other job");
    expect(resumed).toMatchObject({ status: "succeeded", attempts: 2 });
    expect(resumed.worker_thread_id).not.toBe(busyThread);
    expect(resumed.records).toHaveLength(30);
    expect(new Set(pairs(resumed.records)).size).toBe(30);
    expect(resumed.summary).toMatchObject({ status: "complete", items: 30 });
  });

  it("applies the server's outbound policy in the eval thread: an allowed verifier endpoint is called, another refused", async () => {
    const withHook = (port: number) => ({
      items: items(2).map((item) => ({
        ...item,
        verifiers: [{ kind: "webhook", url: `http://127.0.0.1:${port}/verify` }],
      })),
      strategies: ["vanilla"],
      seed: 2,
    });
    const res = await api.start(withHook(hookPort));
    expect(res.status).toBe(202);
    const job = await api.waitFor(
      (res.body as EvalJobView).eval_id,
      (j) => j.status !== "running",
      "the job",
    );
    expect(job.status).toBe("succeeded");
    expect(hookCalls).toBeGreaterThan(0);
    // Another loopback port is not in REFINERY_OUTBOUND_ALLOW: refused before anything runs.
    const refused = await api.start(withHook(hookPort === 1 ? 2 : 1));
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ field: "items[0]: verifiers[0].url" });
  });

  it("refuses a job larger than REFINERY_EVAL_MAX_RUNS with a 422 naming the field; nothing starts", async () => {
    const before = ((await api.list("?limit=100", "flood")).body as EvalJobInfo[]).length;
    // The reproduction: 5,000 items × 3 strategies × 100 replicates = 1.5 million graph runs.
    const flood = await api.start(
      {
        items: items(5000).map(({ task, reference }) => ({ task, reference })),
        seed: 1,
        replicates: 100,
      },
      "flood",
    );
    expect(flood.status).toBe(422);
    expect(flood.body).toMatchObject({
      error: "invalid_input",
      field: "items",
      message: expect.stringMatching(/1500000 graph runs.*REFINERY_EVAL_MAX_RUNS.*at most 66 item/),
    });
    const limited = await api.start(
      { items: items(5000), seed: 1, replicates: 100, limit: 1000 },
      "flood",
    );
    expect(limited.status).toBe(422);
    expect(limited.body).toMatchObject({ field: "limit" });
    expect(((await api.list("?limit=100", "flood")).body as EvalJobInfo[]).length).toBe(before);
  });

  it("refuses more running jobs per partition than REFINERY_EVAL_MAX_JOBS with 429 and Retry-After", async () => {
    const slow = { items: items(200), strategies: ["vanilla"], concurrency: 1 };
    const a = await api.start(slow, "cap");
    const b = await api.start(slow, "cap");
    expect([a.status, b.status]).toEqual([202, 202]);
    const refused = await api.start(slow, "cap");
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(refused.body).toMatchObject({
      error: "rate_limited",
      retryable: true,
      message: expect.stringMatching(/REFINERY_EVAL_MAX_JOBS/),
    });
    // Per partition: another caller is not held up by these.
    const elsewhere = await api.start({ items: items(1), strategies: ["vanilla"] }, "cap-2");
    expect(elsewhere.status).toBe(202);
    // A slot frees up when one ends.
    await api.cancel((a.body as EvalJobView).eval_id, "cap");
    const third = await api.start(slow, "cap");
    expect(third.status).toBe(202);
    await api.cancel((b.body as EvalJobView).eval_id, "cap");
    await api.cancel((third.body as EvalJobView).eval_id, "cap");
  });

  it("shows a job only to its own partition (another gets the 404 of a missing job); viewers cannot start or cancel", async () => {
    const res = await api.start({ items: items(2), strategies: ["vanilla"], seed: 5 }, "a");
    expect(res.status).toBe(202);
    const id = (res.body as EvalJobView).eval_id;
    expect(res.body).toMatchObject({ owner: { partition: "a", identity: "member@a" } });
    const job = await api.waitFor(id, (j) => j.status !== "running", "job end", "a");
    expect(job.status).toBe("succeeded");
    expect((await api.chart(id, "a")).status).toBe(200);

    const missing = "00000000-0000-4000-8000-000000000000";
    const unknown = await api.get(missing, "b");
    for (const partition of ["b", { tenant: "b", role: "admin" as const }]) {
      const seen = await api.get(id, partition);
      expect(seen.status).toBe(404);
      expect(JSON.stringify(seen.body).replaceAll(id, missing)).toBe(JSON.stringify(unknown.body));
      expect((await api.chart(id, partition)).status).toBe(404);
      expect((await api.cancel(id, partition)).status).toBe(404);
      const listed = (await api.list("?limit=100", partition)).body as EvalJobInfo[];
      expect(listed.map((j) => j.eval_id)).not.toContain(id);
    }

    // A viewer of the same tenant reads the job, but running or stopping graphs is not for it.
    const viewer = { tenant: "a", role: "viewer" as const };
    expect((await api.get(id, viewer)).status).toBe(200);
    const refused = await api.start({ items: items(1), seed: 1 }, viewer);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: "forbidden" });
    expect((await api.cancel(id, viewer)).status).toBe(403);
    // And without a key nothing is served.
    const anonymous = await fetch(`${server.url}/eval`);
    expect(anonymous.status).toBe(401);
  });
});

describe("eval jobs with an injected provider", () => {
  it("run in the server thread, and cancel still stops them with their records", async () => {
    // A provider object cannot cross threads: jobs run where the graphs do, in this thread.
    const server = await startTestServer({ provider: scriptedProvider(new SlowModel(40)) });
    try {
      const api = client(server);
      const started = await api.start({
        items: items(200),
        strategies: ["vanilla"],
        concurrency: 2,
      });
      expect(started.status).toBe(202);
      const id = (started.body as EvalJobView).eval_id;
      const running = await api.waitFor(id, (j) => j.progress.done >= 2, "progress");
      expect(running).toMatchObject({
        runs_in: "server_thread",
        worker_thread_id: threadId,
        // Without auth, everyone shares the partition "".
        owner: { partition: "", identity: null },
      });
      const cancelled = await api.cancel(id);
      expect(cancelled.body).toMatchObject({ status: "cancelled" });
      const job = cancelled.body as EvalJobView;
      expect(job.records.length).toBeGreaterThanOrEqual(2);
      expect(job.records.length).toBeLessThan(200);
    } finally {
      await server.close();
    }
  });
});

describe("finished jobs kept", () => {
  it("drops the oldest finished jobs past the jobs or the records kept", async () => {
    const engine = openEngine({ settings: processSettingsFromEnv({}), memory: true });
    const jobs = new EvalJobs({
      target: new InlineEvalTarget(async () => engineRunner(engine)),
      log: silentLogger,
      maxRuns: 100,
      maxJobs: 5,
      keep: { jobs: 3, records: 5 },
    });
    try {
      const owner = { partition: "", identity: null };
      const run = async (n: number) => {
        const { eval_id } = await jobs.create(owner, {
          items: items(n),
          name: "kept",
          strategies: ["vanilla"],
          concurrency: 2,
          seed: 1,
          replicates: 1,
        });
        await eventually(
          async () => ((await jobs.get("", eval_id)).status === "running" ? undefined : true),
          "job end",
          30_000,
        );
        return eval_id;
      };
      const [a, b] = [await run(2), await run(2)];
      const ids = async () =>
        (await jobs.list("", { limit: 100, offset: 0 })).map((j) => j.eval_id);
      expect(await ids()).toEqual([b, a]);
      // 6 records > 5 kept: the oldest job goes.
      const c = await run(2);
      expect(await ids()).toEqual([c, b]);
      const d = await run(1);
      expect(await ids()).toEqual([d, c, b]);
      // 4 jobs > 3 kept: the oldest goes.
      const e = await run(1);
      expect(await ids()).toEqual([e, d, c]);
    } finally {
      await jobs.close();
      engine.close();
    }
  });
});

describe("eval settings", () => {
  it("a bad REFINERY_EVAL_MAX_RUNS or REFINERY_EVAL_THREADS stops start-up naming it", async () => {
    for (const [name, value] of [
      ["REFINERY_EVAL_MAX_RUNS", "many"],
      ["REFINERY_EVAL_MAX_JOBS", "0"],
      ["REFINERY_EVAL_THREADS", "-1"],
    ] as const) {
      await expect(
        startServer({ env: { REFINERY_DB: ":memory:", [name]: value }, port: 0 }),
      ).rejects.toMatchObject({ code: "invalid_config", field: name });
    }
  });
});
