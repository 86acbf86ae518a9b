// Signals across processes through the real Redis (REFINERY_TEST_REDIS_URL, default
// redis://127.0.0.1:6379), each test under its own key prefix: a run queued in an api process
// wakes workers elsewhere, and a cancel reaches the process executing the run, which stops it at
// once with its finished steps kept. Redis unreachable: a warning, and nothing breaks.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../../server/log.ts";
import { RedisSignals } from "../../server/signals/redis.ts";
import {
  killChildServers,
  readCounts,
  startChildServer,
  waitFor,
} from "../support/child-server.ts";
import { FIXTURE_CONFIG } from "../support/server.ts";
import { databaseEnv } from "../support/test-backend.ts";

const REDIS_URL = process.env.REFINERY_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const prefixes: string[] = [];
const prefix = () => {
  const p = `refinery-test-${randomBytes(4).toString("hex")}`;
  prefixes.push(p);
  return p;
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "refinery-signals-"));
});
afterAll(async () => {
  await killChildServers();
  rmSync(dir, { recursive: true, force: true });
  // The run events the tests' processes mirrored to Redis.
  const { Redis } = await import("ioredis");
  const r = new Redis(REDIS_URL);
  for (const p of prefixes) {
    const keys = await r.keys(`${p}:*`);
    if (keys.length) await r.del(...keys);
  }
  r.disconnect();
});

function recorder(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { lines, log: (level, message) => void lines.push(`${level} ${message}`) };
}

describe("RedisSignals", () => {
  it("carries wakes and cancels between instances of one prefix, and nothing across prefixes", async () => {
    const p = prefix();
    const { log } = recorder();
    const a = new RedisSignals({ url: REDIS_URL, prefix: p, log });
    const b = new RedisSignals({ url: REDIS_URL, prefix: p, log });
    const other = new RedisSignals({ url: REDIS_URL, prefix: prefix(), log });
    try {
      await Promise.all([a.start(), b.start(), other.start()]);
      const got: string[] = [];
      const heard = new Promise<void>((resolve) => {
        b.onWake((threadId) => got.push(`wake ${threadId ?? "any"}`));
        b.onCancel((runId, action) => {
          got.push(`${runId} ${action}`);
          resolve();
        });
      });
      other.onWake(() => got.push("other wake"));
      other.onCancel(() => got.push("other cancel"));
      // SUBSCRIBE is sent on connect; wait for the subscriptions to be registered server-side.
      await waitFor("subscriptions", async () => ((await subscribed(p)) ? true : undefined));
      a.wake();
      a.wake("thread-7");
      a.cancel("run-1", "rollback");
      await heard;
      expect(got).toEqual(["wake any", "wake thread-7", "run-1 rollback"]);
    } finally {
      await Promise.all([a.close(), b.close(), other.close()]);
    }
  });

  it("with Redis unreachable, starts anyway, warns once and drops signals", async () => {
    const { log, lines } = recorder();
    const s = new RedisSignals({ url: "redis://127.0.0.1:1", prefix: prefix(), log });
    try {
      await s.start();
      s.wake();
      s.cancel("r", "interrupt");
      const warnings = lines.filter((l) => l.startsWith("warn Redis unreachable"));
      expect(warnings).toHaveLength(1);
    } finally {
      await s.close();
    }
  });
});

/** True once some client subscribes to the prefix's cancel channel. */
async function subscribed(p: string): Promise<boolean> {
  const { Redis } = await import("ioredis");
  const r = new Redis(REDIS_URL);
  try {
    const counts = (await r.call("PUBSUB", "NUMSUB", `${p}:cancel`)) as [string, number];
    return Number(counts[1]) >= 2;
  } finally {
    r.disconnect();
  }
}

describe("api and worker processes signalling through Redis", () => {
  it("a cancel sent to the api process stops the run executing in the worker; its finished steps are kept", async () => {
    const dbPath = join(dir, "cancel.db");
    const countFile = join(dir, "cancel-counts.txt");
    const env = {
      ...databaseEnv(dbPath),
      COUNT_FILE: countFile,
      REFINERY_RUN_THREADS: "0",
      REFINERY_REDIS_URL: REDIS_URL,
      REFINERY_REDIS_PREFIX: prefix(),
    };
    const worker = await startChildServer(env, undefined, FIXTURE_CONFIG, ["--role", "worker"]);
    const api = await startChildServer(env, undefined, FIXTURE_CONFIG, ["--role", "api"]);
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
    expect(readCounts(countFile).filter((l) => l.endsWith(" c"))).not.toContain("three c");
    expect(worker.output()).not.toMatch(/Redis unreachable/);
    expect((await worker.stop("SIGTERM")).code, worker.output()).toBe(0);
    expect((await api.stop("SIGTERM")).code, api.output()).toBe(0);
  }, 90_000);

  it("wait, stream and join-stream (with Last-Event-ID) on the api process follow a run executing in the worker", async () => {
    const p = prefix();
    const env = {
      ...databaseEnv(join(dir, "events.db")),
      REFINERY_RUN_THREADS: "0",
      REFINERY_REDIS_URL: REDIS_URL,
      REFINERY_REDIS_PREFIX: p,
    };
    const worker = await startChildServer(env, undefined, FIXTURE_CONFIG, ["--role", "worker"]);
    const api = await startChildServer(env, undefined, FIXTURE_CONFIG, ["--role", "api"]);
    try {
      const t1 = await api.client.threads.create();
      const waited = (await api.client.runs.wait(t1.thread_id, "slow", {
        input: { topic: "w", delayMs: 50 },
      })) as { log?: string[] };
      expect(waited.log).toEqual(["one", "two", "three"]);

      const t2 = await api.client.threads.create();
      const streamed: { event: string; data: unknown }[] = [];
      for await (const c of api.client.runs.stream(t2.thread_id, "slow", {
        input: { topic: "s", delayMs: 50 },
        streamMode: ["values", "updates"],
      }))
        streamed.push(c);
      expect(streamed[0]?.event).toBe("metadata");
      expect(streamed.filter((c) => c.event === "updates")).toHaveLength(3);
      expect(streamed.filter((c) => c.event === "values").at(-1)?.data).toMatchObject({
        log: ["one", "two", "three"],
      });

      // Joined twice while it runs in the worker: from the start, and after its 3rd event.
      const t3 = await api.client.threads.create();
      const run = await api.client.runs.create(t3.thread_id, "slow", {
        input: { topic: "j", delayMs: 400 },
        streamMode: ["values", "updates"],
      });
      const ids = async (lastEventId?: string) => {
        const out: string[] = [];
        for await (const c of api.client.runs.joinStream(t3.thread_id, run.run_id, {
          streamMode: ["values", "updates"],
          ...(lastEventId ? { lastEventId } : {}),
        }))
          out.push((c as { id?: string }).id ?? "");
        return out;
      };
      const [all, after] = await Promise.all([ids(), ids("1-3")]);
      expect(all.length).toBeGreaterThan(5);
      expect(all.every((id) => /^1-\d+$/.test(id))).toBe(true);
      expect(after).toEqual(all.filter((id) => Number(id.split("-")[1]) > 3));
      const again = await api.client.runs.get(t3.thread_id, run.run_id);
      expect(again.status).toBe("success");
      expect(worker.output()).not.toMatch(/Redis unreachable/);
    } finally {
      await worker.stop("SIGTERM");
      await api.stop("SIGTERM");
    }
  }, 90_000);

  it("with Redis unreachable, both processes warn and runs still finish: workers poll, wait reads the database", async () => {
    const env = {
      ...databaseEnv(join(dir, "down.db")),
      REFINERY_RUN_THREADS: "0",
      REFINERY_REDIS_URL: "redis://127.0.0.1:1",
      REFINERY_REDIS_PREFIX: prefix(),
      LOG_LEVEL: "warn",
    };
    const worker = await startChildServer(env, undefined, FIXTURE_CONFIG, ["--role", "worker"]);
    const api = await startChildServer(env, undefined, FIXTURE_CONFIG, ["--role", "api"]);
    try {
      const thread = await api.client.threads.create();
      const out = (await api.client.runs.wait(thread.thread_id, "slow", {
        input: { topic: "d", delayMs: 50 },
      })) as { log?: string[] };
      expect(out.log).toEqual(["one", "two", "three"]);
      for (const s of [worker, api]) expect(s.output()).toMatch(/Redis unreachable/);
    } finally {
      expect((await worker.stop("SIGTERM")).code, worker.output()).toBe(0);
      expect((await api.stop("SIGTERM")).code, api.output()).toBe(0);
    }
  }, 90_000);
});
