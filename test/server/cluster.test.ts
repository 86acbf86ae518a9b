// A cluster of three real server processes on loopback ports sharing one Postgres (a schema of
// its own, dropped after) and one Redis (a key prefix of its own, deleted after), with the
// official SDK spread across them: runs, streams joined on a process other than the one
// executing, cancels from a third, approvals answered anywhere and the multitask strategies stay
// exact; a SIGKILLed process's runs finish exactly once on the others; and a rolling restart
// (SIGTERM one at a time, a replacement started) under client load fails no request.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  killChildServers,
  readCounts,
  startChildServer,
  waitFor,
  type ChildServer,
} from "../support/child-server.ts";
import { TEST_POSTGRES_URL } from "../support/test-backend.ts";
import { statusOf, valuesOf } from "../support/wait.ts";

const REDIS_URL = process.env.REFINERY_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const NODES = ["one", "two", "three"];
/** Between taking a process out of the clients' pool and its SIGTERM in the rolling restart. */
const DEREGISTRATION_MS = 500;
const suffix = `${process.pid}_${randomBytes(3).toString("hex")}`;
const SCHEMA = `refinery_cluster_${suffix}`;
const PREFIX = `refinery-cluster-${suffix}`;

interface StepValues {
  topic: string;
  log: string[];
}

let dir: string;
let countFile: string;
let env: Record<string, string>;
let db: pg.Client;
/** The live processes clients may use, in start order. */
const procs: ChildServer[] = [];

const start = () => startChildServer(env);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "refinery-cluster-"));
  countFile = join(dir, "counts.txt");
  writeFileSync(countFile, "");
  env = {
    REFINERY_DATABASE_URL: TEST_POSTGRES_URL,
    REFINERY_DATABASE_SCHEMA: SCHEMA,
    REFINERY_DB: join(dir, "unused.db"),
    REFINERY_REDIS_URL: REDIS_URL,
    REFINERY_REDIS_PREFIX: PREFIX,
    COUNT_FILE: countFile,
    REFINERY_RUN_THREADS: "0",
    REFINERY_RUN_LEASE_MS: "1500",
  };
  db = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await db.connect();
  // Started at once: the migrations take the advisory lock in turn.
  procs.push(...(await Promise.all([start(), start(), start()])));
}, 60_000);

afterAll(async () => {
  await killChildServers();
  await db?.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await db?.end();
  const { Redis } = await import("ioredis");
  const r = new Redis(REDIS_URL);
  const keys = await r.keys(`${PREFIX}:*`);
  if (keys.length) await r.del(...keys);
  r.disconnect();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

interface RunRow {
  run_id: string;
  thread_id: string;
  status: string;
  attempt: number;
  lease_owner: string | null;
}

async function runRows(): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(
    `SELECT run_id, thread_id, status, attempt, lease_owner FROM "${SCHEMA}".refinery_runs`,
  );
  return rows;
}

const pidOf = (owner: string | null) => Number(owner?.split(":").at(-2));

/** The process executing `runId` once it runs. */
async function executorOf(runId: string): Promise<ChildServer> {
  const pid = await waitFor(`run ${runId} to be claimed`, async () => {
    const row = (await runRows()).find((r) => r.run_id === runId);
    return row?.status === "running" ? pidOf(row.lease_owner) : undefined;
  });
  const p = procs.find((s) => s.pid === pid);
  if (!p) throw new Error(`run ${runId} is leased to pid ${pid}, which is no process of the test`);
  return p;
}

/** Processes other than `exclude`, in order. */
const others = (...exclude: ChildServer[]) => procs.filter((p) => !exclude.includes(p));

/** The steps executed for `topic`, in order. */
const stepsOf = (topic: string) =>
  readCounts(countFile)
    .filter((l) => l.endsWith(` ${topic}`))
    .map((l) => l.split(" ")[0]!);

/** Every executed step "node topic" of the given topics, in order. */
const executed = (...topics: string[]) =>
  readCounts(countFile).filter((l) => topics.some((t) => l.endsWith(` ${t}`)));

/** A slow run created through `client`, resolved once its first step is checkpointed. */
async function startSlowRun(client: Client, threadId: string, topic: string, delayMs = 600) {
  const run = await client.runs.create(threadId, "slow", { input: { topic, delayMs } });
  await waitFor(`the first step of ${topic}`, async () => {
    const state = await client.threads.getState<StepValues>(threadId);
    return state.values.topic === topic && state.values.log.at(-1) === "one" ? true : undefined;
  });
  return run;
}

describe("three processes sharing one Postgres and Redis", () => {
  it("runs created on one process are joined on another and finish once", async () => {
    const runs = [];
    for (let i = 0; i < 6; i++) {
      const thread = await procs[i % 3]!.client.threads.create();
      const run = await procs[(i + 1) % 3]!.client.runs.create(thread.thread_id, "slow", {
        input: { topic: `spread${i}`, delayMs: 50 },
      });
      runs.push({ thread: thread.thread_id, run: run.run_id, topic: `spread${i}` });
    }
    for (const [i, r] of runs.entries()) {
      const out = await valuesOf<StepValues>(procs[(i + 2) % 3]!.client.runs.join(r.thread, r.run));
      expect(out.log, r.topic).toEqual(NODES);
      expect(stepsOf(r.topic)).toEqual(NODES);
    }
  });

  it("a stream joined on a process other than the executing one gets every event, and a cancel from a third stops the run there", async () => {
    const creator = procs[0]!;
    const thread = await creator.client.threads.create();
    const run = await creator.client.runs.create(thread.thread_id, "slow", {
      input: { topic: "joined", delayMs: 300 },
      streamMode: ["values", "updates"],
    });
    const executor = await executorOf(run.run_id);
    const joiner = others(executor)[0]!;
    const events: { event: string; data: unknown }[] = [];
    for await (const c of joiner.client.runs.joinStream(thread.thread_id, run.run_id, {
      streamMode: ["values", "updates"],
    }))
      events.push(c);
    expect(events.filter((c) => c.event === "updates")).toHaveLength(3);
    expect(events.filter((c) => c.event === "values").at(-1)?.data).toMatchObject({
      log: NODES,
    });

    const t2 = await creator.client.threads.create();
    const slow = await startSlowRun(creator.client, t2.thread_id, "cancelled", 1500);
    const ran = await executorOf(slow.run_id);
    const canceller = others(ran, creator)[0] ?? others(ran)[0]!;
    await canceller.client.runs.cancel(t2.thread_id, slow.run_id, true, "interrupt");
    expect((await creator.client.runs.get(t2.thread_id, slow.run_id)).status).toBe("interrupted");
    const state = await others(ran)[0]!.client.threads.getState<StepValues>(t2.thread_id);
    expect(state.values.log).toEqual(["one"]);
    expect(stepsOf("cancelled")).toEqual(["one"]);
  });

  it("an approval asked on one process is answered on each of the others", async () => {
    const pairs: [ChildServer, ChildServer][] = [
      [procs[0]!, procs[1]!],
      [procs[1]!, procs[2]!],
      [procs[2]!, procs[0]!],
    ];
    for (const [asker, answerer] of pairs) {
      const thread = await asker.client.threads.create();
      await asker.client.runs.wait(thread.thread_id, "approval", { input: { topic: "a" } });
      expect((await answerer.client.threads.get(thread.thread_id)).status).toBe("interrupted");
      const out = await valuesOf<StepValues>(
        answerer.client.runs.wait(thread.thread_id, "approval", { command: { resume: "yes" } }),
      );
      expect(out.log).toEqual(["draft:a", "review:yes", "publish:yes"]);
      expect((await asker.client.threads.get(thread.thread_id)).status).toBe("idle");
    }
  });

  it('multitask "reject", "interrupt", "rollback" and "enqueue" stay exact across processes', async () => {
    const [a, b, c] = procs as [ChildServer, ChildServer, ChildServer];

    // reject: a second run sent to another process is refused while the first runs.
    const tr = (await a.client.threads.create()).thread_id;
    const first = await startSlowRun(a.client, tr, "mt-rej-a", 300);
    expect(
      await statusOf(
        b.client.runs.create(tr, "slow", {
          input: { topic: "mt-rej-b" },
          multitaskStrategy: "reject",
        }),
      ),
    ).toBe(422);
    await c.client.runs.join(tr, first.run_id);
    expect(stepsOf("mt-rej-b")).toEqual([]);

    // interrupt: the first keeps its finished step, the second runs whole.
    const ti = (await a.client.threads.create()).thread_id;
    const int1 = await startSlowRun(a.client, ti, "mt-int-a");
    const intOut = await valuesOf<StepValues>(
      b.client.runs.wait(ti, "slow", {
        input: { topic: "mt-int-b", delayMs: 0 },
        multitaskStrategy: "interrupt",
      }),
    );
    expect((await c.client.runs.get(ti, int1.run_id)).status).toBe("interrupted");
    expect(intOut.log).toEqual(["one", "one", "two", "three"]);
    expect(stepsOf("mt-int-a")).toEqual(["one"]);
    expect(stepsOf("mt-int-b")).toEqual(NODES);

    // rollback: the first run and its checkpoints are gone.
    const tb = (await a.client.threads.create()).thread_id;
    await a.client.runs.wait(tb, "slow", { input: { topic: "mt-rb-0", delayMs: 0 } });
    const before = await c.client.threads.getHistory<StepValues>(tb, { limit: 100 });
    const rb1 = await startSlowRun(a.client, tb, "mt-rb-a");
    const rbOut = await valuesOf<StepValues>(
      b.client.runs.wait(tb, "slow", {
        input: { topic: "mt-rb-b", delayMs: 0 },
        multitaskStrategy: "rollback",
      }),
    );
    expect(await statusOf(c.client.runs.get(tb, rb1.run_id))).toBe(404);
    expect(rbOut.log).toEqual([...NODES, ...NODES]);
    const after = await c.client.threads.getHistory<StepValues>(tb, { limit: 100 });
    expect(after.filter((h) => h.values.topic === "mt-rb-a")).toEqual([]);
    expect(after.slice(after.length - before.length)).toEqual(before);

    // enqueue: runs queued on different processes run one after another, in creation order.
    const tq = (await a.client.threads.create()).thread_id;
    const topics = ["mt-q1", "mt-q2", "mt-q3", "mt-q4"];
    const queued = [];
    for (const [i, topic] of topics.entries())
      queued.push(
        await procs[i % 3]!.client.runs.create(tq, "slow", {
          input: { topic, delayMs: 20 },
          multitaskStrategy: "enqueue",
        }),
      );
    await c.client.runs.join(tq, queued.at(-1)!.run_id);
    expect(executed(...topics).map((l) => l.split(" ")[1])).toEqual(
      topics.flatMap((t) => [t, t, t]),
    );
    for (const run of queued)
      expect((await b.client.runs.get(tq, run.run_id)).status).toBe("success");
  });
});

describe("SIGKILL of a process with runs in flight", () => {
  it("its runs finish exactly once on the others, no checkpointed step runs again, and streams on the survivors get the rest", async () => {
    const runs: { thread: string; run: string; topic: string }[] = [];
    for (let i = 0; i < 9; i++) {
      const client = procs[i % 3]!.client;
      const thread = await client.threads.create();
      const topic = `kill${i}`;
      const run = await client.runs.create(thread.thread_id, "slow", {
        input: { topic, delayMs: 500 },
        streamMode: ["values", "updates"],
      });
      runs.push({ thread: thread.thread_id, run: run.run_id, topic });
    }
    const mine = (rows: RunRow[], pid: number) =>
      rows.filter((r) => r.status === "running" && pidOf(r.lease_owner) === pid);
    // The victim: a process executing runs, once some step is done.
    const victim = await waitFor("a process with runs in flight", async () => {
      const rows = await runRows();
      if (readCounts(countFile).filter((l) => l.includes(" kill")).length < 1) return undefined;
      return procs.find((p) => mine(rows, p.pid).length > 0);
    });
    const survivors = others(victim);
    // Streams joined on the survivors before the kill, each from the start.
    const streams = runs.map(async (r, i) => {
      const events: { event: string; data: unknown }[] = [];
      for await (const c of survivors[i % 2]!.client.runs.joinStream(r.thread, r.run, {
        streamMode: ["values", "updates"],
      }))
        events.push(c);
      return events;
    });
    // Let the joins attach before the kill.
    await new Promise((r) => setTimeout(r, 200));
    // Its runs in flight, read just before the kill: once it is dead the survivors may take them
    // over within milliseconds (its pid is gone on this host), before a read after the kill.
    // Their checkpointed steps too: read after the kill, a survivor's first step would count.
    const rowsAtKill = await runRows();
    const inFlight = rowsAtKill.filter(
      (r) => r.status === "running" && pidOf(r.lease_owner) === victim.pid,
    );
    const checkpointed = new Map<string, string[]>();
    for (const r of inFlight) {
      const state = await survivors[0]!.client.threads.getState<StepValues>(r.thread_id);
      checkpointed.set(r.run_id, state.values.log ?? []);
    }
    process.kill(victim.pid, "SIGKILL");
    await victim.exited;
    procs.splice(procs.indexOf(victim), 1);
    const linesAtKill = readCounts(countFile).length;
    expect(inFlight.length).toBeGreaterThan(0);

    const streamed = await Promise.all(streams);
    for (const [i, r] of runs.entries()) {
      const out = await valuesOf<StepValues>(survivors[0]!.client.runs.join(r.thread, r.run));
      expect(out.log, r.topic).toEqual(NODES);
      expect(streamed[i]!.filter((c) => c.event === "values").at(-1)?.data, r.topic).toMatchObject({
        log: NODES,
      });
      expect(
        streamed[i]!.some((c) => c.event === "error"),
        r.topic,
      ).toBe(false);
    }
    const after = new Map((await runRows()).map((r) => [r.run_id, r]));
    const lines = readCounts(countFile);
    for (const r of runs) {
      const row = after.get(r.run)!;
      const wasInFlight = inFlight.some((f) => f.run_id === r.run);
      expect(row.status, r.topic).toBe("success");
      expect(row.attempt, r.topic).toBe(wasInFlight ? 2 : 1);
      for (const node of NODES) {
        const n = lines.filter((l) => l === `${node} ${r.topic}`).length;
        expect(n, `${node} ${r.topic}`).toBeGreaterThanOrEqual(1);
        expect(n, `${node} ${r.topic}`).toBeLessThanOrEqual(wasInFlight ? 2 : 1);
      }
    }
    for (const f of inFlight) {
      const topic = runs.find((r) => r.run === f.run_id)!.topic;
      for (const node of checkpointed.get(f.run_id)!) {
        const again = lines.slice(linesAtKill).filter((l) => l === `${node} ${topic}`);
        expect(again, `${node} ${topic} re-run after the kill`).toEqual([]);
      }
    }
    // Back to three for the rolling restart.
    procs.push(await start());
  }, 60_000);
});

describe("a rolling restart under client load", () => {
  it("SIGTERM one process at a time, a replacement started: no client request fails", async () => {
    /** Processes taking new requests (a load balancer's pool: a stopping one is taken out first). */
    const failures: string[] = [];
    // Clients as deployed: the SDK's own retries (connection refused only), and the network
    // error behind a failure kept for the message.
    const clientOf = (p: ChildServer) =>
      new Client({
        apiUrl: p.url,
        apiKey: null,
        callerOptions: {
          fetch: (...args: Parameters<typeof fetch>) =>
            fetch(...args).catch((err: Error) => {
              const cause = err.cause as { code?: string; message?: string } | undefined;
              failures.push(`${String(args[0])}: ${cause?.code ?? ""} ${cause?.message ?? ""}`);
              throw err;
            }),
        },
      });
    const pool = procs.map((p) => ({ p, client: clientOf(p) }));
    const earlier = new Set((await runRows()).map((r) => r.run_id));
    let requests = 0;
    let stop = false;
    const pick = (n: number) => pool[n % pool.length]!.client;
    const remove = (p: ChildServer) =>
      pool.splice(
        pool.findIndex((e) => e.p === p),
        1,
      );
    const loop = async (id: number) => {
      for (let n = 0; !stop; n++) {
        const topic = `roll${id}-${n}`;
        try {
          const thread = await pick(n + id).threads.create();
          requests++;
          const out = await valuesOf<StepValues>(
            pick(n + id + 1).runs.wait(thread.thread_id, "slow", {
              input: { topic, delayMs: 100 },
            }),
          );
          requests++;
          if (out.log?.join() !== NODES.join()) failures.push(`${topic}: ${JSON.stringify(out)}`);
        } catch (err) {
          const chain: string[] = [];
          for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause)
            chain.push(`${(e as Error).message} ${(e as { code?: string }).code ?? ""}`);
          failures.push(`${topic}: ${chain.join(" <- ")}`);
        }
      }
    };
    const clients = [0, 1, 2].map(loop);
    try {
      for (const old of [...procs]) {
        // Out of the balancer's pool first, and the stop after a deregistration delay (a
        // request routed there just before has connected by then), as load balancers do.
        remove(old);
        await new Promise((r) => setTimeout(r, DEREGISTRATION_MS));
        const exit = await old.stop("SIGTERM");
        expect(exit.code, old.output()).toBe(0);
        procs.splice(procs.indexOf(old), 1);
        const fresh = await start();
        procs.push(fresh);
        pool.push({ p: fresh, client: clientOf(fresh) });
      }
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(10);
    const rolled = (await runRows()).filter((r) => !earlier.has(r.run_id));
    expect(rolled.filter((r) => r.status !== "success" || r.attempt > 2)).toEqual([]);
  }, 90_000);
});
