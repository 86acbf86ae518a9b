// Run webhooks are delivered from a durable outbox in the database (server/webhook-outbox.ts),
// through real server processes on the test backend (SQLite file, or Postgres schema): a call
// whose target is down when the run ends survives a SIGKILL of the server and arrives once after
// the restart; with two processes sharing the database, every run's call arrives exactly once.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { killChildServers, startChildServer, waitFor } from "../support/child-server.ts";
import { countWebhookOutbox, databaseEnv } from "../support/test-backend.ts";

/** A webhook target on loopback: records every call; answers `answer` (503: it is down). */
let target: Server;
let hook = "";
let answer = 200;
const calls: { runId: string; status: number; body: Record<string, unknown> }[] = [];

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "refinery-webhook-outbox-"));
  target = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      const parsed = JSON.parse(body) as Record<string, unknown>;
      calls.push({ runId: String(parsed.run_id), status: answer, body: parsed });
      res.writeHead(answer).end();
    });
  });
  await new Promise<void>((r) => target.listen(0, "127.0.0.1", r));
  hook = `http://127.0.0.1:${(target.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  await killChildServers();
  target.closeAllConnections();
  await new Promise((r) => target.close(r));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  calls.length = 0;
  answer = 200;
});

const serverEnv = (dbPath: string) => ({
  ...databaseEnv(dbPath),
  REFINERY_OUTBOUND_ALLOW: "127.0.0.1",
  REFINERY_RUN_THREADS: "0",
  // A killed holder's duty lapses after this (the webhooks duty's lease is at least it).
  REFINERY_RUN_LEASE_MS: "1500",
});

const delivered = (runId: string) => calls.filter((c) => c.runId === runId && c.status === 200);

describe("run webhooks from the database outbox", () => {
  it("a call whose target is down survives a SIGKILL of the server and arrives once after the restart", async () => {
    const dbPath = join(dir, "restart.db");
    const first = await startChildServer(serverEnv(dbPath));
    answer = 503;
    const thread = await first.client.threads.create();
    const run = await first.client.runs.create(thread.thread_id, "slow", {
      input: { topic: "hook", delayMs: 0 },
      webhook: hook,
    });
    await first.client.runs.join(thread.thread_id, run.run_id);
    // The first attempt failed (the target answered 503): the call waits for its retry.
    await waitFor("the first, failed attempt", () =>
      calls.some((c) => c.runId === run.run_id) ? true : undefined,
    );
    await first.stop("SIGKILL");
    expect(delivered(run.run_id)).toEqual([]);
    expect(await countWebhookOutbox(dbPath)).toBe(1);

    answer = 200;
    const second = await startChildServer(serverEnv(dbPath));
    await waitFor("the call delivered after the restart", () =>
      delivered(run.run_id).length > 0 ? true : undefined,
    );
    // Settled: nothing is left to deliver, so it cannot arrive again.
    await waitFor("an empty outbox", async () =>
      (await countWebhookOutbox(dbPath)) === 0 ? true : undefined,
    );
    expect(delivered(run.run_id)).toHaveLength(1);
    expect(delivered(run.run_id)[0]!.body).toMatchObject({
      run_id: run.run_id,
      thread_id: thread.thread_id,
      status: "success",
      values: { topic: "hook", log: ["one", "two", "three"] },
      error: null,
    });
    await second.stop("SIGTERM");
  });

  it("with two processes sharing the database, each run's call arrives exactly once", async () => {
    const dbPath = join(dir, "two.db");
    const a = await startChildServer(serverEnv(dbPath));
    const b = await startChildServer(serverEnv(dbPath));
    const runIds: string[] = [];
    for (let i = 0; i < 8; i++) {
      const client = (i % 2 ? b : a).client;
      const thread = await client.threads.create();
      const run = await client.runs.create(thread.thread_id, "slow", {
        input: { topic: `t${i}`, delayMs: 50 },
        webhook: hook,
      });
      runIds.push(run.run_id);
    }
    await waitFor(
      "every call delivered",
      () => (runIds.every((id) => delivered(id).length > 0) ? true : undefined),
      60_000,
    );
    await waitFor("an empty outbox", async () =>
      (await countWebhookOutbox(dbPath)) === 0 ? true : undefined,
    );
    for (const id of runIds) expect(delivered(id)).toHaveLength(1);
    expect(calls).toHaveLength(runIds.length);
    await Promise.all([a.stop("SIGTERM"), b.stop("SIGTERM")]);
  });
});
