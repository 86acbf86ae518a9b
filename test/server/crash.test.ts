// Crash recovery of the server process: background runs in flight and queued when the process
// is SIGKILLed (twice) finish exactly once after restarts on the same SQLite file, and steps
// that were checkpointed before a crash are never executed again; a run in flight at every kill
// fails after its last attempt instead of being re-queued at every start.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@langchain/langgraph-sdk";
import { silentLogger } from "../../server/log.ts";
import { startServer } from "../../server/start.ts";
import {
  killChildServers,
  readCounts,
  startChildServer,
  waitFor,
  type ChildServer,
} from "../support/child-server.ts";
import { roleOf, startOpenAIStub } from "../support/openai-stub.ts";
import { FIXTURE_CONFIG, startTestServer } from "../support/server.ts";
import {
  databaseEnv,
  openTestBackend,
  queryTestDatabase,
  TEST_BACKEND,
} from "../support/test-backend.ts";

const NODES = ["one", "two", "three"] as const;

type RunError = { error: string; message: string } | null;
const DELAY_MS = 400;
const REFINE_INPUT = { task: "What is 17 * 23 + 4?" };
const REFINE_CONFIG = {
  configurable: {
    verifiers: [{ kind: "answer_match", expected: 395 }],
    models: { default: { provider: "simulated", simulated: { seed: 7, latencyMs: 150 } } },
  },
};

interface Planned {
  graph: "slow" | "refine";
  /** Unique per run: the slow graph writes "<node> <topic>" to COUNT_FILE. */
  topic: string;
  threadId: string;
  runId: string;
  /** Nodes this run executes (slow runs). */
  nodes: string[];
  /** Final `log` of the thread when this run is the thread's last (slow runs). */
  log?: string[];
  /** Entries of the thread's log written before this run. */
  prefix: number;
}

interface KillSnapshot {
  /** COUNT_FILE lines written before the kill (the child is dead, so this is exact). */
  linesBefore: number;
  status: Map<string, { status: string; attempt: number }>;
  /** Per slow run topic: nodes whose writes were durably checkpointed when the process died. */
  checkpointed: Map<string, string[]>;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "refinery-crash-"));
});
afterAll(async () => {
  await killChildServers();
  rmSync(dir, { recursive: true, force: true });
});

/** Reads the run table and the slow threads' latest checkpoints from the dead server's database. */
async function snapshot(dbPath: string, countFile: string, plan: Planned[]): Promise<KillSnapshot> {
  const rows = await queryTestDatabase<{ run_id: string; status: string; attempt: number }>(
    dbPath,
    "SELECT run_id, status, attempt FROM refinery_runs",
  );
  const status = new Map(rows.map((r) => [r.run_id, r]));
  const backend = await openTestBackend(dbPath);
  try {
    const checkpointed = new Map<string, string[]>();
    for (const p of plan.filter((x) => x.graph === "slow")) {
      const tuple = await backend.saver.getTuple({
        configurable: { thread_id: p.threadId, checkpoint_ns: "" },
      });
      const values = tuple?.checkpoint.channel_values as { topic?: string; log?: string[] };
      if (values?.topic !== p.topic) continue; // this run's input is not checkpointed yet
      const pending = (tuple?.pendingWrites ?? [])
        .filter(([, channel]) => channel === "log")
        .map(([, , value]) => value as string);
      const nodes = [...(values.log ?? []).slice(p.prefix), ...pending];
      checkpointed.set(
        p.topic,
        nodes.filter((n) => (NODES as readonly string[]).includes(n)),
      );
    }
    return { linesBefore: readCounts(countFile).length, status, checkpointed };
  } finally {
    await backend.close();
  }
}

describe("crash recovery (SIGKILL of the server process)", () => {
  it("finishes every in-flight and queued run exactly once, without re-running checkpointed steps", async () => {
    const dbPath = join(dir, "refinery.db");
    const countFile = join(dir, "counts.txt");
    // Three workers for ten runs: some runs are certainly still queued when the kill comes.
    const env = { ...databaseEnv(dbPath), COUNT_FILE: countFile, REFINERY_WORKERS: "3" };
    let server: ChildServer = await startChildServer(env);
    const client = () => server.client;

    const plan: Planned[] = [];
    const add = (p: Omit<Planned, "nodes" | "log" | "prefix"> & Partial<Planned>) =>
      plan.push({ nodes: [...NODES], log: [...NODES], prefix: 0, ...p });
    const slow = async (topic: string) => {
      const thread = await client().threads.create();
      const run = await client().runs.create(thread.thread_id, "slow", {
        input: { topic, delayMs: DELAY_MS },
      });
      add({ graph: "slow", topic, threadId: thread.thread_id, runId: run.run_id });
      return thread.thread_id;
    };
    const refine = async (topic: string) => {
      const thread = await client().threads.create();
      const run = await client().runs.create(thread.thread_id, "refine", {
        input: REFINE_INPUT,
        config: REFINE_CONFIG,
      });
      add({ graph: "refine", topic, threadId: thread.thread_id, runId: run.run_id, nodes: [] });
    };

    // A run forked from a past checkpoint (after step one) of a finished thread: after a crash
    // it must continue its own branch, not replay from the checkpoint it was created with.
    const forked = (await client().threads.create()).thread_id;
    await client().runs.wait(forked, "slow", { input: { topic: "f", delayMs: 0 } });
    const forkedLines = readCounts(countFile).length;
    expect(forkedLines).toBe(3);
    const history = await client().threads.getHistory(forked);
    const afterOne = history.find((h) => h.next.join() === "two")?.checkpoint.checkpoint_id;
    expect(afterOne).toBeTypeOf("string");
    const fork = await client().runs.create(forked, "slow", {
      checkpointId: afterOne!,
      command: { update: { topic: "f2", delayMs: DELAY_MS } },
    });
    add({
      graph: "slow",
      topic: "f2",
      threadId: forked,
      runId: fork.run_id,
      nodes: ["two", "three"],
      prefix: 1,
    });

    const first = await slow("s0");
    await refine("r0");
    await slow("s1");
    await refine("r1");
    for (const t of ["s2", "s3", "s4", "s5"]) await slow(t);
    // A second run on s0's thread, queued behind the first; its input is applied exactly once.
    const again = await client().runs.create(first, "slow", {
      input: { topic: "s0b", delayMs: DELAY_MS, log: ["again"] },
      multitaskStrategy: "enqueue",
    });
    add({
      graph: "slow",
      topic: "s0b",
      threadId: first,
      runId: again.run_id,
      log: [...NODES, "again", ...NODES],
      prefix: 4,
    });
    const slowRuns = plan.filter((p) => p.graph === "slow");

    // Kill 1 once steps are done; kill 2 in the middle of the recovery.
    const kills: KillSnapshot[] = [];
    for (const more of [2, 4]) {
      const from = kills.at(-1)?.linesBefore ?? forkedLines;
      await waitFor(`${more} more steps in ${countFile}`, () =>
        readCounts(countFile).length >= from + more ? true : undefined,
      );
      // The first kill must find a step checkpointed, not only executed: a node counts itself
      // before its checkpoint commits, and under load a kill can land in between.
      if (kills.length === 0) {
        await waitFor("a checkpointed step", async () => {
          const now = await snapshot(dbPath, countFile, plan);
          return [...now.checkpointed.values()].flat().length > 0 ? true : undefined;
        });
      }
      const exit = await server.stop("SIGKILL");
      expect(exit.signal).toBe("SIGKILL");
      kills.push(await snapshot(dbPath, countFile, plan));
      server = await startChildServer(env);
    }

    // At the first kill some runs were mid-way (with checkpointed steps) and some were queued.
    const atFirst = [...kills[0]!.status.values()];
    expect(atFirst.filter((r) => r.status === "running").length).toBeGreaterThan(0);
    expect(atFirst.filter((r) => r.status === "pending").length).toBeGreaterThan(0);
    expect(kills[0]!.status.get(again.run_id)?.status).toBe("pending");
    expect([...kills[0]!.checkpointed.values()].flat().length).toBeGreaterThan(0);

    // Every run finishes, with the right result.
    const signal = AbortSignal.timeout(90_000);
    const results = await Promise.all(
      plan.map((p) => client().runs.join(p.threadId, p.runId, { signal })),
    );
    const reference = (await client().runs.wait(
      (await client().threads.create()).thread_id,
      "refine",
      { input: REFINE_INPUT, config: REFINE_CONFIG, signal },
    )) as unknown as RefineOut;
    for (const [i, p] of plan.entries()) {
      const run = await client().runs.get(p.threadId, p.runId);
      expect(run.status, `${p.topic} status`).toBe("success");
      if (p.graph === "slow") {
        if (p.topic !== "s0") expect(results[i], p.topic).toMatchObject({ log: p.log });
      } else {
        expect(summary(results[i] as unknown as RefineOut), p.topic).toEqual(summary(reference));
      }
    }
    const s0 = await client().threads.getState<{ log: string[] }>(first);
    expect(s0.values.log).toEqual([...NODES, "again", ...NODES]);
    for (const p of plan) {
      expect((await client().threads.get(p.threadId)).status, `${p.topic} thread`).toBe("idle");
    }
    expect(await client().threads.search({ status: "busy" })).toEqual([]);

    // Executions per node: at least once; a checkpointed step never again after the crash; only
    // a step in flight at a kill may run twice.
    const lines = readCounts(countFile);
    const times = (node: string, topic: string, from = 0) =>
      lines.slice(from).filter((l) => l === `${node} ${topic}`).length;
    let inFlight = 0;
    for (const p of slowRuns) {
      const killsInFlight = kills.filter((k) => k.status.get(p.runId)?.status === "running").length;
      inFlight += killsInFlight;
      for (const node of p.nodes) {
        const n = times(node, p.topic);
        expect(n, `${node} ${p.topic}`).toBeGreaterThanOrEqual(1);
        expect(n, `${node} ${p.topic}`).toBeLessThanOrEqual(1 + killsInFlight);
      }
      for (const k of kills) {
        for (const node of k.checkpointed.get(p.topic) ?? []) {
          expect(times(node, p.topic, k.linesBefore), `${node} ${p.topic} re-run`).toBe(0);
        }
      }
    }
    // The fork's source run ran before any crash, once; nothing replayed it.
    expect(lines.filter((l) => l.endsWith(" f"))).toEqual(["one f", "two f", "three f"]);
    const steps = slowRuns.reduce((n, p) => n + p.nodes.length, forkedLines);
    expect(lines.length).toBeLessThanOrEqual(steps + inFlight);

    // Each run was claimed once, plus once more per crash that caught it running.
    expect((await server.stop("SIGTERM")).code).toBe(0);
    const final = await queryTestDatabase<{ run_id: string; status: string; attempt: number }>(
      dbPath,
      "SELECT run_id, status, attempt FROM refinery_runs",
    );
    const rows = new Map(final.map((r) => [r.run_id, { status: r.status, attempt: r.attempt }]));
    for (const p of plan) {
      const caught = kills.filter((k) => k.status.get(p.runId)?.status === "running").length;
      expect(rows.get(p.runId), p.topic).toEqual({ status: "success", attempt: 1 + caught });
    }
  }, 120_000);
});

describe("crash between recording a run's outcome and its thread's", () => {
  it("repairs threads left busy with no run in flight at the next start", async () => {
    const s = await startTestServer();
    try {
      const done = (await s.client.threads.create()).thread_id;
      await s.client.runs.wait(done, "slow", { input: { topic: "done" } });
      const failed = (await s.client.threads.create()).thread_id;
      await s.client.runs.wait(failed, "failing", { input: {}, raiseError: false });
      const temp = (await s.client.threads.create()).thread_id;
      await s.client.runs.wait(temp, "slow", { input: { topic: "temp" } });
      await s.running.close();

      // What a SIGKILL right after the run's status was written leaves in the database (the
      // window is microseconds wide, so it is written here rather than hit by timing).
      // On Postgres the values and kwargs may be packed (bytes SQL cannot edit): the kwargs is
      // then rewritten whole, as JSONB.
      await queryTestDatabase(
        s.dbPath,
        TEST_BACKEND === "postgres"
          ? `UPDATE refinery_threads SET status = 'busy', "values" = NULL, values_packed = NULL WHERE thread_id IN (?, ?, ?)`
          : `UPDATE refinery_threads SET status = 'busy', "values" = NULL WHERE thread_id IN (?, ?, ?)`,
        [done, failed, temp],
      );
      await queryTestDatabase(
        s.dbPath,
        TEST_BACKEND === "postgres"
          ? `UPDATE refinery_runs SET kwargs_packed = NULL, kwargs = CASE WHEN kwargs_packed IS NULL
               THEN jsonb_set(kwargs, '{temporary}', 'true')
               ELSE '{"temporary": true, "config": {"configurable": {}}, "stream_mode": ["values"]}' END
             WHERE thread_id = ?`
          : "UPDATE refinery_runs SET kwargs = json_set(kwargs, '$.temporary', json('true')) WHERE thread_id = ?",
        [temp],
      );

      const running = await startServer({
        env: databaseEnv(s.dbPath),
        configPath: FIXTURE_CONFIG,
        port: 0,
        host: "127.0.0.1",
        log: silentLogger,
      });
      try {
        const client = new Client({ apiUrl: running.url, callerOptions: { maxRetries: 0 } });
        const repaired = await client.threads.get<{ log: string[] }>(done);
        expect(repaired.status).toBe("idle");
        expect(repaired.values.log).toEqual([...NODES]);
        expect((await client.threads.get(failed)).status).toBe("error");
        // A stateless run's thread is deleted when it ends, as it would have been.
        await expect(client.threads.get(temp)).rejects.toThrow(/404|not found/i);
        expect(await client.threads.search({ status: "busy" })).toEqual([]);
      } finally {
        await running.close();
      }
    } finally {
      await s.close();
    }
  });
});

describe("a run in flight at every SIGKILL of the server", () => {
  it("is failed at the start after its last attempt, not re-queued forever", async () => {
    const file = join(dir, "kill-count.txt");
    // A step that never ends, in the server thread (no run thread to start: restarts are faster).
    const env = {
      ...databaseEnv(join(dir, "killed.db")),
      COUNT_FILE: file,
      REFINERY_RUN_THREADS: "0",
    };
    let server: ChildServer = await startChildServer(env);
    const started = (times: number) =>
      waitFor(`step "wait" started ${times} times`, () =>
        readCounts(file).filter((l) => l === "wait kill-1").length >= times ? true : undefined,
      );
    const thread = await server.client.threads.create();
    const run = await server.client.runs.create(thread.thread_id, "hang", {
      input: { topic: "kill-1" },
    });
    for (let attempt = 1; attempt <= 3; attempt++) {
      await started(attempt);
      await server.stop("SIGKILL");
      server = await startChildServer(env);
    }
    const record = await waitFor("the run to fail", async () => {
      const r = await server.client.runs.get(thread.thread_id, run.run_id);
      return r.status === "error" ? (r as typeof r & { error: RunError }) : undefined;
    });
    expect(record.error?.error).toBe("RunThreadLost");
    expect(record.error?.message).toMatch(/attempt 3 of 3; it is not started again/);
    expect((await server.client.threads.get(thread.thread_id)).status).toBe("error");
    // It never started a fourth time, and the server runs other graphs.
    const values = await server.client.runs.wait(null, "slow", {
      input: { topic: "after-kills", delayMs: 0 },
    });
    expect(values).toMatchObject({ log: ["one", "two", "three"] });
    expect(readCounts(file).filter((l) => l.endsWith(" kill-1"))).toEqual([
      "one kill-1",
      "wait kill-1",
      "wait kill-1",
      "wait kill-1",
    ]);
    await server.stop("SIGTERM");
  }, 180_000);
});

interface RefineOut {
  answer: string | null;
  stopReason: string | null;
  iteration: number;
  drafts: { text: string }[];
  critiques: unknown[];
  verdicts: unknown[];
}

/** What must not change when a run is interrupted by crashes: the same seeded outcome. */
function summary(o: RefineOut) {
  return {
    answer: o.answer,
    stopReason: o.stopReason,
    iteration: o.iteration,
    drafts: o.drafts.map((d) => d.text),
    critiques: o.critiques.length,
    verdicts: o.verdicts.length,
  };
}

describe("a model attempt cut by a SIGKILL", () => {
  // On either backend: the journal is in the SQLite file or the Postgres schema.
  it("is counted in the thread's usage when the step runs again after the restart", async () => {
    // The critique's first attempt never gets an answer: the server dies while waiting for it.
    let critiques = 0;
    const stub = await startOpenAIStub();
    stub.setHandler((body) => {
      const role = roleOf(body);
      if (role === "generate")
        return {
          content: "17 * 23 = 391, plus 4 is 395.\nAnswer: 395",
          usage: { prompt_tokens: 40, completion_tokens: 12 },
        };
      if (role === "critique" && ++critiques === 1) return { delayMs: 60_000 };
      return {
        content: '{"verdict":"pass","score":0.95,"issues":[]}',
        usage: { prompt_tokens: 60, completion_tokens: 9 },
      };
    });
    const env = {
      ...databaseEnv(join(dir, "cut-attempt.db")),
      REFINERY_RUN_THREADS: "0",
      OPENAI_API_KEY: "test-key",
      OPENAI_BASE_URL: stub.url,
    };
    let server: ChildServer = await startChildServer(env);
    try {
      const thread = await server.client.threads.create();
      const run = await server.client.runs.create(thread.thread_id, "refine", {
        input: REFINE_INPUT,
        config: { configurable: { verifiers: [{ kind: "answer_match", expected: 395 }] } },
      });
      await waitFor("the critique call to be in flight", () =>
        critiques === 1 ? true : undefined,
      );
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
    } finally {
      await server.stop("SIGKILL");
      await stub.close();
    }
  }, 60_000);
});
