// POST /eval and GET /eval/:id through the real server on an ephemeral port: the evaluation runs
// in the background on the server's refine graph; progress, results and chart come back over HTTP.
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EvalSummary, ItemRecord } from "../../graphs/eval/index.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { SMALL_ITEMS } from "./fixtures.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

interface Job {
  eval_id: string;
  status: string;
  progress: { total: number; done: number };
  summary?: EvalSummary;
  records: ItemRecord[];
}

const post = (body: unknown) =>
  fetch(`${server.url}/eval`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

async function waitForJob(id: string): Promise<Job> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const job = (await (await fetch(`${server.url}/eval/${id}`)).json()) as Job;
    if (job.status !== "running") return job;
    if (Date.now() > deadline) throw new Error(`evaluation ${id} still running`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("POST /eval", () => {
  it("runs in the background and reports results computed from its records", async () => {
    const res = await post({
      items: SMALL_ITEMS,
      name: "small",
      strategies: ["vanilla", "self-refine"],
      seed: 7,
      concurrency: 2,
    });
    expect(res.status).toBe(202);
    const started = (await res.json()) as Job;
    expect(started.status).toBe("running");
    expect(res.headers.get("location")).toBe(`/eval/${started.eval_id}`);

    const job = await waitForJob(started.eval_id);
    expect(job.status).toBe("succeeded");
    expect(job.progress).toMatchObject({ total: 16, done: 16 });
    expect(job.records).toHaveLength(16);
    const summary = job.summary as EvalSummary;
    expect(summary).toMatchObject({ label: "simulated", simulated: true, items: 8 });
    for (const s of summary.strategies) {
      const mine = job.records.filter((r) => r.strategy === s.strategy);
      expect(s.correct).toBe(mine.filter((r) => r.final_correct).length);
      expect(s.tokens.total).toBe(mine.reduce((n, r) => n + r.tokens.total, 0));
      expect(s.harmed).toBe(mine.filter((r) => r.first_correct && !r.final_correct).length);
    }

    // Evaluation threads are scratch: none is left in the server's checkpoint store.
    const db = new Database(server.dbPath, { readonly: true });
    try {
      const left = db
        .prepare("select count(*) as n from checkpoints where thread_id like 'eval-%'")
        .get() as { n: number };
      expect(left.n).toBe(0);
    } finally {
      db.close();
    }

    const chart = await fetch(`${server.url}/eval/${started.eval_id}/chart.svg`);
    expect(chart.status).toBe(200);
    expect(chart.headers.get("content-type")).toMatch(/image\/svg\+xml/);
    expect(await chart.text()).toMatch(/SIMULATED/);
  });

  it("rejects bad items with a 422 naming the item and field", async () => {
    const res = await post({ items: [{ task: "What is 1 + 1?", reference: 2 }, { task: "x" }] });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { field: string; message: string };
    expect(body.field).toBe("items[1]: reference");
    const bad = await post({
      items: [{ task: "x", reference: 1, verifiers: [{ kind: "regex", mustMatch: ["("] }] }],
    });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { field: string }).field).toMatch(/^items\[0\]: verifiers\[0\]/);
    const strategies = await post({ items: [{ task: "x", reference: 1 }], strategies: ["magic"] });
    expect(strategies.status).toBe(422);
  });

  it("replicates: seeds seed..seed+N-1, pooled from all their records; refused without the simulated model", async () => {
    const res = await post({
      items: SMALL_ITEMS,
      strategies: ["self-refine", "proactive"],
      seed: 3,
      replicates: 2,
    });
    expect(res.status).toBe(202);
    const job = await waitForJob(((await res.json()) as Job).eval_id);
    expect(job.status).toBe("succeeded");
    expect(job.progress).toMatchObject({ total: 32, done: 32 });
    expect(job.records).toHaveLength(32);
    const summary = job.summary as EvalSummary & { seeds: number[] };
    expect(summary).toMatchObject({ simulated: true, items: 8, seeds: [3, 4] });
    for (const s of summary.strategies) {
      const mine = job.records.filter((r) => r.strategy === s.strategy);
      expect(s.items).toBe(16);
      expect(s.correct).toBe(mine.filter((r) => r.final_correct).length);
      expect(s.tokens.total).toBe(mine.reduce((n, r) => n + r.tokens.total, 0));
    }
    // The two replicates are distinct configurations (their seeds), not one run twice.
    expect(new Set(job.records.map((r) => r.config)).size).toBe(4);

    const refused = await post({ items: SMALL_ITEMS, replicates: 2 });
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({
      field: "replicates",
      message: expect.stringMatching(/simulated model/),
    });
    const range = await post({ items: SMALL_ITEMS, seed: 1, replicates: 0 });
    expect(range.status).toBe(422);
    expect(((await range.json()) as { field: string }).field).toBe("replicates");
  });

  it("404s an unknown evaluation", async () => {
    const res = await fetch(`${server.url}/eval/no-such-id`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toBe("not_found");
  });
});
