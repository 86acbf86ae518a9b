// Crons (client.crons.*) through the official SDK and a real server: a cron fires ordinary runs
// that complete (the refine graph on the offline simulated model), stops when deleted, is
// checked when made as its run would be, survives a restart (a cron due many times while the
// server was down fires once), and fires exactly once per tick when two whole servers share the
// database (many trials). The tests drive the scheduler's clock instead of waiting (a
// seconds schedule fires in real time in test/server/platform-project.test.ts).
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUTH_CONFIG, keyOf, keysEnv, sdkClient } from "../support/auth.ts";
import { FIXTURE_CONFIG, startTestServer, type TestServer } from "../support/server.ts";
import { databaseEnv } from "../support/test-backend.ts";

const MINUTE = 60_000;
/** Half past the minute: the next fire of "* * * * *" is 30 s away. */
const START = Date.parse("2031-03-04T05:06:30.000Z");

async function until<T>(f: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An SDK call's error status and text (the SDK throws them). */
async function failure(call: () => Promise<unknown>): Promise<{ status: number; body: string }> {
  try {
    await call();
  } catch (err) {
    const e = err as { status?: number; text?: string; message?: string };
    if (typeof e.status !== "number") throw err;
    return { status: e.status, body: e.text ?? e.message ?? "" };
  }
  throw new Error("expected the call to fail");
}

describe("crons on one server", () => {
  let now = START;
  let s: TestServer;
  let client: Client;

  beforeAll(async () => {
    s = await startTestServer({ cronClock: () => now, cronPollMs: 50 });
    client = s.client;
  });
  afterAll(async () => {
    await s?.close();
  });

  const threadsOf = (marker: string) => client.threads.search({ metadata: { marker }, limit: 100 });

  it("a stateless cron fires each minute as a run that completes, and stops when deleted", async () => {
    const marker = randomUUID();
    const cron = await client.crons.create("refine", {
      schedule: "* * * * *",
      input: { task: "What is 2 + 2?" },
      metadata: { marker },
      onRunCompleted: "keep",
    });
    expect(cron).toMatchObject({
      cron_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      thread_id: null,
      schedule: "* * * * *",
      timezone: null,
      end_time: null,
      enabled: true,
      on_run_completed: "keep",
      user_id: null,
      next_run_date: "2031-03-04T05:07:00.000Z",
      metadata: { marker },
      payload: { input: { task: "What is 2 + 2?" }, metadata: { marker } },
    });
    // Not due yet: nothing fires.
    await s.running.crons.tick();
    expect(await threadsOf(marker)).toEqual([]);

    now = Date.parse("2031-03-04T05:07:00.000Z");
    // A firing creates the thread, then its run: wait for both (a search can see the first alone).
    const [first, run] = await until(async () => {
      const found = await threadsOf(marker);
      if (found.length !== 1) return false;
      const runs = await client.runs.list(found[0]!.thread_id);
      return runs.length === 1 && ([found[0]!, runs[0]!] as const);
    });
    expect(run).toMatchObject({ assistant_id: cron.assistant_id, metadata: { marker } });
    await client.runs.join(first!.thread_id, run!.run_id);
    expect((await client.runs.get(first!.thread_id, run!.run_id)).status).toBe("success");
    const values = (await client.threads.getState(first!.thread_id)).values as {
      task?: string;
      best?: unknown;
    };
    expect(values.task).toBe("What is 2 + 2?");
    const [listed] = await client.crons.search({ metadata: { marker } });
    expect(listed?.next_run_date).toBe("2031-03-04T05:08:00.000Z");

    now = Date.parse("2031-03-04T05:08:00.000Z");
    await until(async () => (await threadsOf(marker)).length === 2);

    await client.crons.delete(cron.cron_id);
    expect(await client.crons.count({ metadata: { marker } })).toBe(0);
    now = Date.parse("2031-03-04T05:15:00.000Z");
    await s.running.crons.tick();
    await s.running.crons.tick();
    expect(await threadsOf(marker)).toHaveLength(2);
    expect((await failure(() => client.crons.delete(cron.cron_id))).status).toBe(404);
  });

  it("a stateless cron's thread is deleted after its run by default", async () => {
    const marker = randomUUID();
    const cron = await client.crons.create("slow", {
      schedule: "*/5 * * * *",
      input: { topic: "temporary" },
      metadata: { marker },
    });
    expect((cron as { on_run_completed?: string }).on_run_completed).toBe("delete");
    now = Date.parse(cron.next_run_date!);
    expect(await s.running.crons.tick()).toBe(1);
    // The run was made on a new thread, which goes once the run ends.
    await until(async () => (await threadsOf(marker)).length === 0);
    await client.crons.delete(cron.cron_id);
  });

  it("a thread's cron runs on that thread, and goes when the thread is deleted", async () => {
    const thread = await client.threads.create();
    const cron = await client.crons.createForThread(thread.thread_id, "slow", {
      schedule: "0 * * * *",
      input: { topic: "hourly" },
    });
    expect(cron).toMatchObject({ thread_id: thread.thread_id, on_run_completed: null });
    now = Date.parse(cron.next_run_date!);
    expect(await s.running.crons.tick()).toBe(1);
    const [run] = await until(async () => {
      const runs = await client.runs.list(thread.thread_id);
      return runs.length === 1 && runs;
    });
    await client.runs.join(thread.thread_id, run!.run_id);
    expect((await client.threads.getState(thread.thread_id)).values).toMatchObject({
      topic: "hourly",
    });
    expect(await client.crons.count({ threadId: thread.thread_id })).toBe(1);
    await client.threads.delete(thread.thread_id);
    expect(await client.crons.count({ threadId: thread.thread_id })).toBe(0);
  });

  it("refuses what it could not fire, naming the field and the fix, and stores nothing", async () => {
    const before = await client.crons.count();
    const bad = async (payload: Record<string, unknown>, status = 422) => {
      const res = await fetch(`${s.url}/runs/crons`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ assistant_id: "slow", schedule: "* * * * *", ...payload }),
      });
      const body = (await res.json()) as { error: string; field?: string; message: string };
      expect(res.status, body.message).toBe(status);
      return body;
    };
    const invalid = await bad({ schedule: "61 * * * *" });
    expect(invalid.field).toBe("schedule");
    expect(invalid.message).toMatch(/minute/);
    expect(invalid.message).toMatch(/Fix: give 5 fields/);
    const years = await bad({ schedule: "0 0 1 1 * 0 2032" });
    expect(years).toMatchObject({ field: "schedule" });
    expect(years.message).toMatch(/7 fields.*6 with the seconds last/);
    // croner's own complaint, with the schedule's field number (the seconds are the sixth).
    expect((await bad({ schedule: "* * * * * x" })).message).toMatch(/field 6 \(x\)/);
    expect((await bad({ schedule: "* * * * * 61" })).message).toMatch(/second: 61/);
    expect(await bad({ schedule: undefined })).toMatchObject({ field: "schedule" });
    expect(await bad({ schedule: "0 0 30 2 *" })).toMatchObject({ field: "schedule" });
    expect(await bad({ timezone: "Mars/Olympus" })).toMatchObject({ field: "timezone" });
    expect(await bad({ end_time: "yesterday" })).toMatchObject({ field: "end_time" });
    expect(await bad({ end_time: new Date(now - MINUTE).toISOString() })).toMatchObject({
      field: "end_time",
    });
    expect(await bad({ assistant_id: randomUUID() }, 404)).toMatchObject({
      field: "assistant_id",
    });
    expect(await bad({ assistant_id: "refine", input: { nothing: 1 } })).toMatchObject({
      field: "input.task",
    });
    expect(await bad({ stream_mode: "sideways" })).toMatchObject({ field: "stream_mode" });
    const onThread = await fetch(`${s.url}/threads/${randomUUID()}/runs/crons`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ assistant_id: "slow", schedule: "* * * * *" }),
    });
    expect(onThread.status).toBe(404);
    expect(await client.crons.count()).toBe(before);
  });

  it("reads the schedule in its time zone, updates it, and can switch it off", async () => {
    const cron = await client.crons.create("slow", {
      schedule: "0 9 * * *",
      timezone: "America/New_York",
      input: { topic: "morning" },
    });
    // 09:00 in New York on 4 March 2031 (EST, UTC-5).
    expect(cron).toMatchObject({
      timezone: "America/New_York",
      next_run_date: "2031-03-04T14:00:00.000Z",
    });
    // A sixth field is the seconds, last (as LangGraph's Python server reads it, with croniter).
    const everyTwenty = await client.crons.update(cron.cron_id, {
      schedule: "* * * * * */20",
      timezone: "UTC",
    });
    expect(everyTwenty.next_run_date).toBe(
      new Date(Math.floor(now / 20_000) * 20_000 + 20_000).toISOString(),
    );
    const quarterPast = await client.crons.update(cron.cron_id, { schedule: "15 * * * * 45" });
    expect(new Date(quarterPast.next_run_date!).getUTCMinutes()).toBe(15);
    expect(new Date(quarterPast.next_run_date!).getUTCSeconds()).toBe(45);
    const end = new Date(now + 10 * 24 * 3600_000).toISOString();
    const updated = await client.crons.update(cron.cron_id, {
      schedule: "30 * * * *",
      timezone: "UTC",
      endTime: end,
      input: { topic: "half past" },
      metadata: { team: "ops" },
    });
    expect(updated).toMatchObject({
      schedule: "30 * * * *",
      timezone: "UTC",
      end_time: end,
      payload: { input: { topic: "half past" } },
      metadata: { team: "ops" },
    });
    expect(Date.parse(updated.next_run_date!)).toBeGreaterThan(now);
    expect(new Date(updated.next_run_date!).getUTCMinutes()).toBe(30);
    const off = await client.crons.update(cron.cron_id, { enabled: false, endTime: null });
    expect(off).toMatchObject({ enabled: false, end_time: null });
    expect((await client.crons.search({ enabled: false })).map((c) => c.cron_id)).toContain(
      cron.cron_id,
    );
    now = Date.parse(off.next_run_date!) + MINUTE;
    expect(await s.running.crons.tick()).toBe(0);
    const bad = await failure(() => client.crons.update(cron.cron_id, { schedule: "every day" }));
    expect(bad.status).toBe(422);
    expect(bad.body).toMatch(/schedule/);
    expect((await failure(() => client.crons.update(randomUUID(), { enabled: true }))).status).toBe(
      404,
    );
    await client.crons.delete(cron.cron_id);
  });

  it("searches and counts by assistant, thread, metadata, with paging, sort and select", async () => {
    const marker = randomUUID();
    const made = [];
    for (let i = 0; i < 3; i++) {
      made.push(
        await client.crons.create("slow", {
          schedule: `${10 + i} 3 * * *`,
          metadata: { marker, i },
          enabled: i !== 2,
        }),
      );
    }
    expect(await client.crons.count({ metadata: { marker } })).toBe(3);
    expect(await client.crons.count({ assistantId: "slow", metadata: { marker } })).toBe(3);
    expect(await client.crons.count({ assistantId: "refine", metadata: { marker } })).toBe(0);
    const sorted = await client.crons.search({
      metadata: { marker },
      sortBy: "next_run_date",
      sortOrder: "asc",
    });
    expect(sorted.map((c) => c.cron_id)).toEqual(made.map((c) => c.cron_id));
    const page = await client.crons.search({
      metadata: { marker },
      sortBy: "next_run_date",
      sortOrder: "asc",
      limit: 1,
      offset: 1,
    });
    expect(page.map((c) => c.cron_id)).toEqual([made[1]!.cron_id]);
    expect(await client.crons.search({ metadata: { marker }, enabled: true })).toHaveLength(2);
    const picked = await client.crons.search({
      metadata: { marker },
      select: ["cron_id", "schedule"],
      limit: 1,
    });
    expect(Object.keys(picked[0]!).sort()).toEqual(["cron_id", "schedule"]);
    for (const c of made) await client.crons.delete(c.cron_id);
  });
});

describe("crons with API keys", () => {
  let now = START;
  let dir: string;
  let s: TestServer;
  const dbPath = () => join(dir, "tenants.db");
  const env = (tenants: string[]) => ({
    REFINERY_API_KEYS: keysEnv(tenants),
    REFINERY_RATE_LIMIT: "0",
    REFINERY_TENANT_MAX_CRONS: "2",
  });
  const as = (tenant: string, role: "viewer" | "member" = "member") =>
    sdkClient(s.url, { "x-api-key": keyOf(tenant, role) });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "refinery-crons-keys-"));
    s = await startTestServer({
      dbPath: dbPath(),
      configPath: AUTH_CONFIG,
      env: env(["acme", "beta"]),
      cronClock: () => now,
      cronPollMs: 3_600_000,
    });
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("each firing is a run of the cron's creator: their tenant, their identity in the config", async () => {
    const acme = as("acme");
    const cron = await acme.crons.create("whoami", {
      schedule: "* * * * *",
      input: {},
      metadata: { tenant_id: "beta" },
      onRunCompleted: "keep",
    });
    expect(cron).toMatchObject({ user_id: "member@acme", metadata: { tenant_id: "acme" } });
    now = Date.parse(cron.next_run_date!);
    expect(await s.running.crons.tick()).toBe(1);
    const [thread] = await until(async () => {
      const found = await acme.threads.search({ metadata: { assistant_id: cron.assistant_id } });
      return found.length === 1 && found;
    });
    expect(thread!.metadata).toMatchObject({ tenant_id: "acme" });
    const [run] = await acme.runs.list(thread!.thread_id);
    await acme.runs.join(thread!.thread_id, run!.run_id);
    const values = (await acme.threads.getState(thread!.thread_id)).values as {
      who: { user_id: string; user: Record<string, unknown> };
    };
    expect(values.who.user_id).toBe("member@acme");
    expect(values.who.user).toMatchObject({ identity: "member@acme", tenant: "acme" });
    // The tenant is the server's to set, on update too.
    const moved = await acme.crons.update(cron.cron_id, {
      metadata: { tenant_id: "beta", note: "mine" },
    });
    expect(moved.metadata).toEqual({ tenant_id: "acme", note: "mine" });
    // Another tenant sees neither the cron nor what it made.
    const beta = as("beta");
    expect(await beta.crons.count()).toBe(0);
    expect((await failure(() => beta.threads.get(thread!.thread_id))).status).toBe(404);
    await acme.crons.delete(cron.cron_id);
  });

  it("caps crons per tenant (REFINERY_TENANT_MAX_CRONS), and a viewer makes none", async () => {
    const acme = as("acme");
    const made = [
      await acme.crons.create("slow", { schedule: "0 1 * * *" }),
      await acme.crons.create("slow", { schedule: "0 2 * * *" }),
    ];
    const over = await failure(() => acme.crons.create("slow", { schedule: "0 3 * * *" }));
    expect(over.status).toBe(409);
    expect(over.body).toMatch(/REFINERY_TENANT_MAX_CRONS/);
    // The cap is per tenant: beta still has room.
    const beta = await as("beta").crons.create("slow", { schedule: "0 3 * * *" });
    expect(
      (await failure(() => as("acme", "viewer").crons.create("slow", { schedule: "0 3 * * *" })))
        .status,
    ).toBe(403);
    for (const c of made) await acme.crons.delete(c.cron_id);
    await as("beta").crons.delete(beta.cron_id);
  });

  it("a revoked key's crons make no more runs", async () => {
    const beta = as("beta");
    const cron = await beta.crons.create("slow", {
      schedule: "* * * * *",
      input: { topic: "revoked" },
      onRunCompleted: "keep",
    });
    await s.close();
    // beta's keys are gone from REFINERY_API_KEYS.
    s = await startTestServer({
      dbPath: dbPath(),
      configPath: AUTH_CONFIG,
      env: env(["acme"]),
      cronClock: () => now,
      cronPollMs: 3_600_000,
    });
    now = Date.parse(cron.next_run_date!);
    expect(await s.running.crons.tick()).toBe(0);
  });
});

describe("crons across restarts and processes", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "refinery-crons-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a cron due many times while the server was down fires once when it comes back", async () => {
    let now = START;
    const dbPath = join(dir, "restart.db");
    const first = await startTestServer({ dbPath, cronClock: () => now, cronPollMs: 3_600_000 });
    const marker = randomUUID();
    const cron = await first.client.crons.create("slow", {
      schedule: "* * * * *",
      input: { topic: "durable" },
      metadata: { marker },
      onRunCompleted: "keep",
    });
    await first.close();
    now = START + 10 * MINUTE; // ten firings missed
    const second = await startTestServer({ dbPath, cronClock: () => now, cronPollMs: 3_600_000 });
    try {
      expect(await second.running.crons.tick()).toBe(1);
      expect(await second.running.crons.tick()).toBe(0);
      const [after] = await second.client.crons.search({ metadata: { marker } });
      expect(after).toMatchObject({
        cron_id: cron.cron_id,
        next_run_date: "2031-03-04T05:17:00.000Z",
      });
      expect(await second.client.threads.search({ metadata: { marker } })).toHaveLength(1);
    } finally {
      await second.close();
    }
  });

  it("two servers on one database fire each cron exactly once per tick (40 trials)", async () => {
    const dbPath = join(dir, "shared.db");
    const clock = new SharedArrayBuffer(8);
    const time = new BigInt64Array(clock);
    Atomics.store(time, 0, BigInt(START));
    const entry = join(import.meta.dirname, "cron-server-worker.ts");
    const start = () =>
      new Worker(new URL("../../server/run-thread.mjs", import.meta.url), {
        workerData: { entry, env: databaseEnv(dbPath), config: FIXTURE_CONFIG, clock },
      });
    const next = (w: Worker) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const onError = (err: Error) => {
          w.off("message", onMessage);
          reject(err);
        };
        const onMessage = (m: Record<string, unknown>) => {
          w.off("error", onError);
          resolve(m);
        };
        w.once("message", onMessage);
        w.once("error", onError);
      });
    const workers: Worker[] = [];
    try {
      // Both load at once; they open the file one after the other (the first makes its tables).
      workers.push(start(), start());
      await Promise.all(workers.map(next));
      const ready = next(workers[0]!);
      workers[0]!.postMessage("open");
      const first = await ready;
      const readyToo = next(workers[1]!);
      workers[1]!.postMessage("open");
      await readyToo;
      const client = new Client({ apiUrl: String(first.url), callerOptions: { maxRetries: 0 } });
      const marker = randomUUID();
      const CRONS = 4;
      for (let i = 0; i < CRONS; i++) {
        await client.crons.create("slow", {
          schedule: "* * * * *",
          input: { topic: `race-${i}` },
          metadata: { marker },
          onRunCompleted: "keep",
        });
      }
      const TRIALS = 40;
      const won = [0, 0];
      for (let trial = 1; trial <= TRIALS; trial++) {
        Atomics.store(time, 0, BigInt(START + trial * MINUTE));
        const answers = workers.map((w) => next(w));
        for (const w of workers) w.postMessage("tick");
        const made = await Promise.all(answers);
        for (const m of made) expect(m.error).toBeUndefined();
        made.forEach((m, i) => (won[i]! += m.made as number));
        expect(
          made.reduce((n, m) => n + (m.made as number), 0),
          `trial ${trial}`,
        ).toBe(CRONS);
      }
      // Every firing made one run, on its own kept thread: no firing twice, none lost.
      const count = await client.threads.count({ metadata: { marker } });
      expect(count).toBe(CRONS * TRIALS);
      expect(won[0]! + won[1]!).toBe(CRONS * TRIALS);
    } finally {
      await Promise.all(
        workers.map(async (w) => {
          const closed = next(w).catch(() => undefined);
          w.postMessage("close");
          await closed;
          await w.terminate();
        }),
      );
    }
  }, 180_000); // on Postgres under load, ~64 s at load average 12
});
