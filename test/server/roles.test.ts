// Process roles (`npm start -- --role`): an api process serves the API and executes nothing; a
// worker process executes the runs the api processes queue and serves only /ok, /info and
// /metrics. Real processes sharing one database file, the official SDK client.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURE_CONFIG } from "../support/server.ts";
import { databaseEnv, queryTestDatabase, TEST_BACKEND } from "../support/test-backend.ts";
import { killChildServers, startChildServer, waitFor } from "../support/child-server.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "refinery-roles-"));
});
afterAll(async () => {
  await killChildServers();
  rmSync(dir, { recursive: true, force: true });
});

const metric = (text: string, name: string) =>
  Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1]);

describe("--role api and --role worker", () => {
  it("the api process queues runs and executes none; the worker executes them and serves only /ok, /info and /metrics", async () => {
    const dbPath = join(dir, "refinery.db");
    const env = { ...databaseEnv(dbPath), REFINERY_RUN_THREADS: "0" };
    const api = await startChildServer(env, undefined, FIXTURE_CONFIG, ["--role", "api"]);
    const thread = await api.client.threads.create();
    const first = await api.client.runs.create(thread.thread_id, "slow", {
      input: { topic: "queued" },
    });
    // No worker yet: the run waits in the queue.
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metric(metrics, "refinery_runs_pending")).toBe(1);
    expect((await api.client.runs.get(thread.thread_id, first.run_id)).status).toBe("pending");

    const worker = await startChildServer(env, undefined, FIXTURE_CONFIG, ["--role", "worker"]);
    const second = await api.client.runs.create(thread.thread_id, "slow", {
      input: { topic: "next" },
      multitaskStrategy: "enqueue",
    });
    for (const run of [first, second]) {
      await waitFor(`run ${run.run_id} to succeed`, async () =>
        (await api.client.runs.get(thread.thread_id, run.run_id)).status === "success"
          ? true
          : undefined,
      );
    }
    const state = await api.client.threads.getState<{ log: string[] }>(thread.thread_id);
    expect(state.values.log).toEqual(["one", "two", "three", "one", "two", "three"]);
    const owners = await queryTestDatabase<{ lease_owner: string | null }>(
      dbPath,
      "SELECT DISTINCT lease_owner FROM refinery_runs",
    );
    // Each run was claimed by the worker (its lease names the worker's pid).
    expect(owners.map((o) => Number(o.lease_owner?.split(":").at(-2)))).toEqual([worker.pid]);

    expect(await (await fetch(`${worker.url}/ok`)).json()).toEqual({
      ok: true,
      database: { kind: TEST_BACKEND, ok: true },
    });
    const workerMetrics = await (await fetch(`${worker.url}/metrics`)).text();
    expect(metric(workerMetrics, 'refinery_runs_finished_total\\{status="success"\\}')).toBe(2);
    const refused = await fetch(`${worker.url}/threads/${thread.thread_id}`);
    expect(refused.status).toBe(404);
    expect(await refused.json()).toMatchObject({
      error: "not_found",
      detail: `No route GET /threads/${thread.thread_id}: this process runs with --role worker and serves only /ok, /info and /metrics`,
      fix: "send API requests to a process started with --role api (or without --role)",
    });
    expect((await worker.stop("SIGTERM")).code, worker.output()).toBe(0);
    expect((await api.stop("SIGTERM")).code, api.output()).toBe(0);
  }, 90_000);
});
