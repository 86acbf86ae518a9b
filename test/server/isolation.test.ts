// The isolation matrix: two tenants on one server, and every operation of /openapi.json tried
// by tenant B against tenant A's objects, through the official SDK (with defaultHeaders) where it
// has the call and plain HTTP otherwise. B must not read, change, stream or even detect A's
// objects: where A's object is refused, B gets exactly what a missing one gets. Run twice: with
// the built-in API keys, and with a LangGraph auth module (JWTs verified with jose, owner
// filters) as written for the LangGraph server.
import { randomUUID } from "node:crypto";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AUTH_CONFIG,
  bearer,
  JWT_CONFIG,
  jwtFor,
  keyHeaders,
  keysEnv,
  sdkClient,
} from "../support/auth.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

interface Outcome {
  status: number;
  body: string;
}

/** What a call answered: an SDK error's status and body, or a response's. */
async function outcomeOf(call: () => Promise<unknown>): Promise<Outcome> {
  try {
    const value = await call();
    if (value instanceof Response) return { status: value.status, body: await value.text() };
    return { status: 200, body: JSON.stringify(value ?? null) };
  } catch (err) {
    const e = err as { status?: number; text?: string; message?: string };
    if (typeof e.status !== "number") throw err;
    return { status: e.status, body: e.text ?? e.message ?? "" };
  }
}

/** Drains an SDK stream (its errors surface as for any call). */
async function drain(stream: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

interface Setup {
  name: string;
  start(): Promise<{ server: TestServer; a: Record<string, string>; b: Record<string, string> }>;
  /** The metadata key that says who owns a row, and A's value of it. */
  owner: { key: string; a: string };
}

const SETUPS: Setup[] = [
  {
    name: "built-in API keys (tenants acme and beta)",
    owner: { key: "tenant_id", a: "acme" },
    async start() {
      const server = await startTestServer({
        configPath: AUTH_CONFIG,
        env: {
          REFINERY_API_KEYS: keysEnv(["acme", "beta"]),
          REFINERY_RATE_LIMIT: "0",
          REFINERY_DEV: "1",
        },
      });
      return { server, a: keyHeaders("acme"), b: keyHeaders("beta") };
    },
  },
  {
    name: "a LangGraph auth module with JWTs and owner filters (users alice and bob)",
    owner: { key: "owner", a: "alice" },
    async start() {
      const server = await startTestServer({
        configPath: JWT_CONFIG,
        env: { REFINERY_RATE_LIMIT: "0", REFINERY_DEV: "1" },
      });
      return {
        server,
        a: bearer(await jwtFor("alice")),
        b: bearer(await jwtFor("bob")),
      };
    },
  },
];

for (const setup of SETUPS) {
  describe(`isolation matrix: ${setup.name}`, () => {
    let server: TestServer;
    let A: Client;
    let B: Client;
    let headersA: Record<string, string>;
    let headersB: Record<string, string>;
    // A's objects
    const a = {} as {
      assistant: string;
      assistantVersion: number;
      threadDone: string;
      runDone: string;
      checkpoint: string;
      threadPaused: string;
      threadBusy: string;
      runBusy: string;
      statelessRun: string;
      lessonShared: string;
      lessonOwn: string;
      evalJob: string;
      doneMetadata: Record<string, unknown>;
      doneHistory: number;
      cron: string;
      threadCron: string;
    };

    const http = (who: "A" | "B", method: string, path: string, body?: unknown) =>
      fetch(`${server.url}${path}`, {
        method,
        headers: {
          "content-type": "application/json",
          ...(who === "A" ? headersA : headersB),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });

    beforeAll(async () => {
      const started = await setup.start();
      server = started.server;
      headersA = started.a;
      headersB = started.b;
      A = sdkClient(server.url, headersA);
      B = sdkClient(server.url, headersB);

      const assistant = await A.assistants.create({
        graphId: "slow",
        name: "A's assistant",
        config: { configurable: { marker: "a-assistant" } },
      });
      a.assistant = assistant.assistant_id;
      a.assistantVersion = assistant.version;
      const done = await A.threads.create({ metadata: { marker: "a-thread" } });
      a.threadDone = done.thread_id;
      await A.runs.wait(done.thread_id, "slow", { input: { topic: "a-secret-topic" } });
      a.runDone = (await A.runs.list(done.thread_id))[0]!.run_id;
      a.checkpoint = (await A.threads.getHistory(done.thread_id))[0]!.checkpoint.checkpoint_id!;
      a.doneMetadata = (await A.threads.get(done.thread_id)).metadata as Record<string, unknown>;
      a.doneHistory = (await A.threads.getHistory(done.thread_id, { limit: 100 })).length;
      const paused = await A.threads.create();
      a.threadPaused = paused.thread_id;
      await A.runs.wait(paused.thread_id, "approval", { input: { topic: "a-approval" } });
      const busy = await A.threads.create();
      a.threadBusy = busy.thread_id;
      a.runBusy = (
        await A.runs.create(busy.thread_id, "slow", { input: { delayMs: 60_000 } })
      ).run_id;
      const stateless = await A.runs.create(null, "slow", { input: { topic: "a-stateless" } });
      a.statelessRun = stateless.run_id;
      await A.runs.join(stateless.thread_id, stateless.run_id).catch(() => undefined);
      const shared = await http("A", "POST", "/assistants/refine/lessons", {
        text: "A's private lesson about widgets",
      });
      a.lessonShared = ((await shared.json()) as { id: string }).id;
      const own = await http("A", "POST", `/assistants/${a.assistant}/lessons`, {
        text: "A's lesson on its own assistant",
      });
      a.lessonOwn = ((await own.json()) as { id: string }).id;
      await http("A", "POST", `/threads/${a.threadDone}/runs/${a.runDone}/feedback`, {
        score: 1,
        comment: "a-rating",
      });
      const job = await http("A", "POST", "/eval", {
        items: [{ id: "a-1", task: "What is 2 + 3?", reference: 5 }],
        strategies: ["vanilla"],
        seed: 1,
      });
      expect(job.status).toBe(202);
      a.evalJob = ((await job.json()) as { eval_id: string }).eval_id;
      a.cron = (
        await A.crons.create("slow", {
          schedule: "0 3 * * *",
          input: { topic: "a-cron-topic" },
          metadata: { marker: "a-cron" },
        })
      ).cron_id;
      a.threadCron = (
        await A.crons.createForThread(a.threadDone, "slow", { schedule: "0 4 * * *" })
      ).cron_id;
      await A.store.putItem(["notes"], "a-item", { marker: "a-store-secret" });
      await A.store.putItem(["a-only-ns"], "k", { marker: "a-store-secret" });
    });

    afterAll(async () => {
      await A?.runs.cancel(a.threadBusy, a.runBusy, true).catch(() => undefined);
      await server?.close();
    });

    /**
     * B's attempt on A's object must answer exactly as the same attempt on a missing object
     * (the ids in the texts aside).
     */
    async function asIfMissing(
      attempt: (ids: typeof a) => Promise<unknown>,
      status = 404,
    ): Promise<void> {
      const missing = {
        ...a,
        assistant: randomUUID(),
        threadDone: randomUUID(),
        runDone: randomUUID(),
        threadPaused: randomUUID(),
        threadBusy: randomUUID(),
        runBusy: randomUUID(),
        statelessRun: randomUUID(),
        lessonShared: randomUUID(),
        lessonOwn: randomUUID(),
        evalJob: randomUUID(),
        cron: randomUUID(),
        threadCron: randomUUID(),
      };
      const onA = await outcomeOf(() => attempt(a));
      const onMissing = await outcomeOf(() => attempt(missing));
      const normal = (o: Outcome, ids: typeof a) => ({
        status: o.status,
        body: Object.values(ids).reduce<string>(
          (text, id) => (typeof id === "string" ? text.split(id).join("<id>") : text),
          o.body,
        ),
      });
      expect(onA.status).toBe(status);
      expect(normal(onA, a)).toEqual(normal(onMissing, missing));
    }

    /** Text of A's that must never reach B. */
    const A_MARKERS = [
      "a-assistant",
      "a-thread",
      "a-secret-topic",
      "a-approval",
      "A's private",
      "a-store-secret",
      "a-only-ns",
      "a-cron",
    ];
    const noneOfA = (text: string) => {
      for (const m of [...A_MARKERS, a.assistant, a.threadDone, a.runDone, a.threadPaused])
        expect(text).not.toContain(m);
    };

    /** Every operation of /openapi.json, keyed "METHOD path", with B's attempt. */
    const CASES: Record<string, () => Promise<void>> = {
      // Meta: public, or an admin's only.
      "GET /ok": async () => expect((await http("B", "GET", "/ok")).status).toBe(200),
      "GET /info": async () => noneOfA(await (await http("B", "GET", "/info")).text()),
      "GET /metrics": async () => expect((await http("B", "GET", "/metrics")).status).toBe(403),

      // Assistants
      "POST /assistants": async () => {
        const claim = await outcomeOf(() =>
          B.assistants.create({
            graphId: "slow",
            assistantId: a.assistant,
            ifExists: "do_nothing",
          }),
        );
        expect(claim.status).toBe(409);
        noneOfA(claim.body.split(a.assistant).join("<id>"));
        const own = await B.assistants.create({ graphId: "slow", name: "B's" });
        expect(own.metadata?.[setup.owner.key]).not.toBe(setup.owner.a);
      },
      "POST /assistants/search": async () => {
        noneOfA(JSON.stringify(await B.assistants.search({ limit: 1000 })));
        expect(
          await B.assistants.search({ metadata: { [setup.owner.key]: setup.owner.a } }),
        ).toEqual([]);
      },
      "POST /assistants/count": async () => {
        const count = await B.assistants.count({});
        expect(count).toBe((await B.assistants.search({ limit: 1000 })).length);
        expect(await B.assistants.count({ metadata: { marker: "a-assistant" } })).toBe(0);
      },
      "GET /assistants/{assistant_id}": () => asIfMissing((ids) => B.assistants.get(ids.assistant)),
      "PATCH /assistants/{assistant_id}": () =>
        asIfMissing((ids) => B.assistants.update(ids.assistant, { name: "taken" })),
      "DELETE /assistants/{assistant_id}": () =>
        asIfMissing((ids) => B.assistants.delete(ids.assistant)),
      "GET /assistants/{assistant_id}/graph": () =>
        asIfMissing((ids) => B.assistants.getGraph(ids.assistant)),
      "GET /assistants/{assistant_id}/schemas": () =>
        asIfMissing((ids) => B.assistants.getSchemas(ids.assistant)),
      "GET /assistants/{assistant_id}/subgraphs": () =>
        asIfMissing((ids) => B.assistants.getSubgraphs(ids.assistant)),
      "POST /assistants/{assistant_id}/versions": () =>
        asIfMissing((ids) => B.assistants.getVersions(ids.assistant)),
      "POST /assistants/{assistant_id}/latest": () =>
        asIfMissing((ids) => B.assistants.setLatest(ids.assistant, 1)),

      // Threads
      "POST /threads": async () => {
        const claim = await outcomeOf(() =>
          B.threads.create({ threadId: a.threadDone, ifExists: "do_nothing" }),
        );
        expect(claim.status).toBe(409);
        noneOfA(claim.body.split(a.threadDone).join("<id>"));
        const own = await B.threads.create({ metadata: { [setup.owner.key]: setup.owner.a } });
        expect(own.metadata?.[setup.owner.key]).not.toBe(setup.owner.a);
      },
      "POST /threads/search": async () => {
        noneOfA(JSON.stringify(await B.threads.search({ limit: 1000 })));
        expect(await B.threads.search({ ids: [a.threadDone, a.threadPaused] })).toEqual([]);
        expect(await B.threads.search({ metadata: { [setup.owner.key]: setup.owner.a } })).toEqual(
          [],
        );
      },
      "POST /threads/count": async () => {
        expect(await B.threads.count({ metadata: { marker: "a-thread" } })).toBe(0);
        expect(await B.threads.count({ status: "interrupted" })).toBe(0);
      },
      "GET /threads/{thread_id}": () => asIfMissing((ids) => B.threads.get(ids.threadDone)),
      "PATCH /threads/{thread_id}": () =>
        asIfMissing((ids) => B.threads.update(ids.threadDone, { metadata: { taken: true } })),
      "DELETE /threads/{thread_id}": () => asIfMissing((ids) => B.threads.delete(ids.threadDone)),
      "POST /threads/{thread_id}/copy": () => asIfMissing((ids) => B.threads.copy(ids.threadDone)),
      "GET /threads/{thread_id}/state": () =>
        asIfMissing((ids) => B.threads.getState(ids.threadDone)),
      "POST /threads/{thread_id}/state": () =>
        asIfMissing((ids) =>
          B.threads.updateState(ids.threadDone, { values: { topic: "taken" }, asNode: "three" }),
        ),
      "GET /threads/{thread_id}/state/{checkpoint_id}": () =>
        asIfMissing((ids) => B.threads.getState(ids.threadDone, a.checkpoint)),
      "POST /threads/{thread_id}/state/checkpoint": () =>
        asIfMissing((ids) =>
          B.threads.getState(ids.threadDone, {
            thread_id: ids.threadDone,
            checkpoint_id: a.checkpoint,
            checkpoint_ns: "",
            checkpoint_map: null,
          }),
        ),
      "GET /threads/{thread_id}/stream": () =>
        asIfMissing((ids) => http("B", "GET", `/threads/${ids.threadDone}/stream`)),
      "GET /threads/{thread_id}/history": () =>
        asIfMissing((ids) => http("B", "GET", `/threads/${ids.threadDone}/history`)),
      "POST /threads/{thread_id}/history": () =>
        asIfMissing((ids) => B.threads.getHistory(ids.threadDone)),

      // Runs
      "POST /threads/{thread_id}/runs": async () => {
        await asIfMissing((ids) => B.runs.create(ids.threadDone, "slow", { input: {} }));
        // if_not_exists "create" makes a missing thread; a taken id cannot be made, and says no
        // more than "not found" (ids are random UUIDs: knowing one is the only way to ask).
        const taken = await outcomeOf(() =>
          B.runs.create(a.threadDone, "slow", { input: {}, ifNotExists: "create" }),
        );
        expect(taken.status).toBe(404);
        noneOfA(taken.body.split(a.threadDone).join("<id>"));
        // A's assistant cannot be run by B, even on B's own thread.
        const mine = await B.threads.create();
        await asIfMissing((ids) => B.runs.create(mine.thread_id, ids.assistant, { input: {} }));
      },
      "POST /threads/{thread_id}/runs/stream": () =>
        asIfMissing((ids) => drain(B.runs.stream(ids.threadDone, "slow", { input: {} }))),
      "POST /threads/{thread_id}/runs/wait": () =>
        asIfMissing((ids) =>
          B.runs.wait(ids.threadPaused, "approval", { command: { resume: "taken" } }),
        ),
      "GET /threads/{thread_id}/runs": () => asIfMissing((ids) => B.runs.list(ids.threadDone)),
      "GET /threads/{thread_id}/runs/{run_id}": async () => {
        await asIfMissing((ids) => B.runs.get(ids.threadDone, ids.runDone));
        // Nor through a thread of B's own.
        const mine = await B.threads.create();
        await asIfMissing((ids) => B.runs.get(mine.thread_id, ids.runDone));
      },
      "DELETE /threads/{thread_id}/runs/{run_id}": () =>
        asIfMissing((ids) => B.runs.delete(ids.threadDone, ids.runDone)),
      "GET /threads/{thread_id}/runs/{run_id}/join": () =>
        asIfMissing((ids) => B.runs.join(ids.threadBusy, ids.runBusy)),
      "GET /threads/{thread_id}/runs/{run_id}/stream": () =>
        asIfMissing((ids) => drain(B.runs.joinStream(ids.threadBusy, ids.runBusy))),
      "POST /threads/{thread_id}/runs/{run_id}/cancel": () =>
        asIfMissing((ids) => B.runs.cancel(ids.threadBusy, ids.runBusy, true)),
      "POST /runs": () => asIfMissing((ids) => B.runs.create(null, ids.assistant, { input: {} })),
      "POST /runs/stream": () =>
        asIfMissing((ids) => drain(B.runs.stream(null, ids.assistant, { input: {} }))),
      "POST /runs/wait": () =>
        asIfMissing((ids) => B.runs.wait(null, ids.assistant, { input: {} })),
      "GET /runs/{run_id}/stream": () =>
        asIfMissing((ids) => http("B", "GET", `/runs/${ids.statelessRun}/stream`)),
      "POST /runs/batch": () =>
        asIfMissing((ids) => B.runs.createBatch([{ assistantId: ids.assistant, input: {} }])),
      "POST /runs/cancel": async () => {
        await asIfMissing((ids) =>
          B.runs.cancelMany({ threadId: ids.threadBusy, runIds: [ids.runBusy] }),
        );
        // By status: B's runs only (A's busy run is still running afterwards).
        await B.runs.cancelMany({ status: "all", action: "rollback" });
      },
      // Crons: B can neither see, change nor delete A's, nor make one on A's thread or assistant.
      "POST /runs/crons": async () => {
        await asIfMissing((ids) =>
          B.crons.create(ids.assistant, { schedule: "0 3 * * *", input: {} }),
        );
        const own = await B.crons.create("slow", {
          schedule: "0 5 * * *",
          metadata: { [setup.owner.key]: setup.owner.a },
        });
        expect(own.metadata?.[setup.owner.key]).not.toBe(setup.owner.a);
        await B.crons.delete(own.cron_id);
      },
      "POST /threads/{thread_id}/runs/crons": () =>
        asIfMissing((ids) =>
          B.crons.createForThread(ids.threadDone, "slow", { schedule: "0 3 * * *" }),
        ),
      "PATCH /runs/crons/{cron_id}": () =>
        asIfMissing((ids) => B.crons.update(ids.cron, { enabled: false, schedule: "* * * * *" })),
      "DELETE /runs/crons/{cron_id}": async () => {
        await asIfMissing((ids) => B.crons.delete(ids.cron));
        await asIfMissing((ids) => B.crons.delete(ids.threadCron));
      },
      "POST /runs/crons/search": async () => {
        noneOfA(JSON.stringify(await B.crons.search({ limit: 1000 })));
        expect(await B.crons.search({ threadId: a.threadDone })).toEqual([]);
        expect(await B.crons.search({ metadata: { [setup.owner.key]: setup.owner.a } })).toEqual(
          [],
        );
      },
      "POST /runs/crons/count": async () => {
        expect(await B.crons.count({ metadata: { marker: "a-cron" } })).toBe(0);
        expect(await B.crons.count({ threadId: a.threadDone })).toBe(0);
      },
      "POST /threads/prune": async () => {
        const threads = [a.threadDone, a.threadPaused, a.threadBusy];
        expect(await B.threads.prune(threads, { strategy: "keep_latest" })).toEqual({
          pruned_count: 0,
        });
        expect(await B.threads.prune(threads)).toEqual({ pruned_count: 0 });
      },
      // The dev server's reset: admins only (B is not one).
      "POST /internal/truncate": async () => {
        const res = await http("B", "POST", "/internal/truncate", {
          runs: true,
          threads: true,
          assistants: true,
          checkpointer: true,
          store: true,
        });
        expect(res.status).toBe(403);
      },

      // Human in the loop
      "GET /approvals": async () => {
        const list = (await (await http("B", "GET", "/approvals")).json()) as unknown[];
        noneOfA(JSON.stringify(list));
      },
      "POST /threads/{thread_id}/approval": () =>
        asIfMissing((ids) =>
          http("B", "POST", `/threads/${ids.threadPaused}/approval`, { action: "approve" }),
        ),
      "POST /threads/{thread_id}/feedback": () =>
        asIfMissing((ids) =>
          http("B", "POST", `/threads/${ids.threadPaused}/feedback`, { text: "taken" }),
        ),

      // Lessons: the system assistant is shared, its lessons are not.
      "GET /assistants/{assistant_id}/lessons": async () => {
        await asIfMissing((ids) => http("B", "GET", `/assistants/${ids.assistant}/lessons`));
        noneOfA(await (await http("B", "GET", "/assistants/refine/lessons")).text());
      },
      "POST /assistants/{assistant_id}/lessons": () =>
        asIfMissing((ids) =>
          http("B", "POST", `/assistants/${ids.assistant}/lessons`, { text: "taken" }),
        ),
      "POST /assistants/{assistant_id}/lessons/search": async () => {
        await asIfMissing((ids) =>
          http("B", "POST", `/assistants/${ids.assistant}/lessons/search`, { task: "widgets" }),
        );
        const found = await http("B", "POST", "/assistants/refine/lessons/search", {
          task: "private lesson about widgets",
        });
        noneOfA(await found.text());
      },
      "GET /assistants/{assistant_id}/lessons/{lesson_id}": () =>
        asIfMissing((ids) => http("B", "GET", `/assistants/refine/lessons/${ids.lessonShared}`)),
      "PATCH /assistants/{assistant_id}/lessons/{lesson_id}": () =>
        asIfMissing((ids) =>
          http("B", "PATCH", `/assistants/refine/lessons/${ids.lessonShared}`, { pinned: true }),
        ),
      "DELETE /assistants/{assistant_id}/lessons/{lesson_id}": () =>
        asIfMissing((ids) => http("B", "DELETE", `/assistants/refine/lessons/${ids.lessonShared}`)),

      // Ratings and export
      "POST /threads/{thread_id}/runs/{run_id}/feedback": () =>
        asIfMissing((ids) =>
          http("B", "POST", `/threads/${ids.threadDone}/runs/${ids.runDone}/feedback`, {
            score: 0,
          }),
        ),
      "GET /threads/{thread_id}/runs/{run_id}/feedback": () =>
        asIfMissing((ids) =>
          http("B", "GET", `/threads/${ids.threadDone}/runs/${ids.runDone}/feedback`),
        ),
      "GET /export": async () => {
        for (const format of ["sft", "dpo", "pasr"])
          noneOfA(await (await http("B", "GET", `/export?format=${format}&verdict=any`)).text());
      },

      // Evaluations
      "POST /eval": async () => {
        const own = await http("B", "POST", "/eval", {
          items: [{ id: "b-1", task: "What is 1 + 1?", reference: 2 }],
          strategies: ["vanilla"],
          seed: 2,
        });
        expect(own.status).toBe(202);
        await own.text();
      },
      "GET /eval": async () => {
        const list = await (await http("B", "GET", "/eval")).text();
        expect(list).not.toContain(a.evalJob);
      },
      "GET /eval/{id}": () => asIfMissing((ids) => http("B", "GET", `/eval/${ids.evalJob}`)),
      "POST /eval/{id}/cancel": () =>
        asIfMissing((ids) => http("B", "POST", `/eval/${ids.evalJob}/cancel`)),
      "GET /eval/{id}/chart.svg": () =>
        asIfMissing((ids) => http("B", "GET", `/eval/${ids.evalJob}/chart.svg`)),

      // Store: B's calls reach only B's own items (a tenant prefix with keys, the auth module's
      // namespace rewrite with JWTs); the same namespace and key are B's own item.
      "PUT /store/items": async () => {
        await B.store.putItem(["notes"], "a-item", { marker: "b-wrote" });
        expect((await B.store.getItem(["notes"], "a-item"))?.value).toEqual({ marker: "b-wrote" });
        expect((await A.store.getItem(["notes"], "a-item"))?.value).toEqual({
          marker: "a-store-secret",
        });
      },
      "GET /store/items": async () => {
        expect(await B.store.getItem(["a-only-ns"], "k")).toBeNull();
        const raw = await http("B", "GET", "/store/items?namespace=a-only-ns&key=k");
        expect(raw.status).toBe(200);
        expect(await raw.text()).toBe("null");
      },
      "DELETE /store/items": async () => {
        await B.store.deleteItem(["a-only-ns"], "k");
        expect(await A.store.getItem(["a-only-ns"], "k")).not.toBeNull();
      },
      "POST /store/items/search": async () => {
        noneOfA(JSON.stringify(await B.store.searchItems([], { limit: 1000 })));
        expect((await B.store.searchItems(["a-only-ns"])).items).toEqual([]);
      },
      "POST /store/namespaces": async () => {
        noneOfA(JSON.stringify(await B.store.listNamespaces({ limit: 1000 })));
        expect((await B.store.listNamespaces({ prefix: ["a-only-ns"] })).namespaces).toEqual([]);
      },

      // Generative UI bundles belong to the server's project, not to a tenant: A and B get the
      // same answer (no UI on this server: 404), and nothing of A's is named in it.
      "POST /ui/{graph_id}": async () => {
        const forB = await http("B", "POST", "/ui/slow", { name: "Greeting" });
        const forA = await http("A", "POST", "/ui/slow", { name: "Greeting" });
        expect([forB.status, forA.status]).toEqual([404, 404]);
        const body = await forB.text();
        expect(body).toBe(await forA.text());
        noneOfA(body);
      },
      "GET /ui/{graph_id}/{file}": async () => {
        const forB = await http("B", "GET", "/ui/slow/entrypoint.js");
        expect(forB.status).toBe(404);
        noneOfA(await forB.text());
      },

      // Declarative graphs change the server for everyone: admins only.
      "POST /graphs": async () => {
        const res = await http("B", "POST", "/graphs", { id: "taken", kind: "refine" });
        expect(res.status).toBe(403);
      },
      "GET /graphs": async () => expect((await http("B", "GET", "/graphs")).status).toBe(200),
      "GET /graphs/{graph_id}": async () =>
        expect((await http("B", "GET", "/graphs/none-such")).status).toBe(404),
      "PUT /graphs/{graph_id}": async () =>
        expect((await http("B", "PUT", "/graphs/taken", { kind: "refine" })).status).toBe(403),
      "DELETE /graphs/{graph_id}": async () =>
        expect((await http("B", "DELETE", "/graphs/taken")).status).toBe(403),
    };

    it("has a case for every operation in /openapi.json", async () => {
      const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
        paths: Record<string, Record<string, unknown>>;
      };
      const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
        Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
      );
      expect(operations.length).toBeGreaterThan(50);
      expect(operations.filter((op) => !(op in CASES))).toEqual([]);
    });

    for (const [operation, attempt] of Object.entries(CASES)) {
      it(`B cannot reach A's objects: ${operation}`, attempt);
    }

    it("afterwards, A's objects are exactly as A left them", async () => {
      const assistant = await A.assistants.get(a.assistant);
      expect(assistant.version).toBe(a.assistantVersion);
      expect(assistant.name).toBe("A's assistant");
      expect((await A.threads.get(a.threadDone)).metadata).toEqual(a.doneMetadata);
      expect((await A.runs.list(a.threadDone)).map((r) => r.run_id)).toEqual([a.runDone]);
      expect(await A.threads.getHistory(a.threadDone, { limit: 100 })).toHaveLength(a.doneHistory);
      expect((await A.threads.getState(a.threadDone)).values).toMatchObject({
        topic: "a-secret-topic",
      });
      expect((await A.threads.get(a.threadPaused)).status).toBe("interrupted");
      expect((await A.runs.get(a.threadBusy, a.runBusy)).status).toBe("running");
      const lessons = (await (await http("A", "GET", "/assistants/refine/lessons")).json()) as {
        id: string;
        pinned?: boolean;
      }[];
      expect(lessons.find((l) => l.id === a.lessonShared)?.pinned).not.toBe(true);
      expect((await http("A", "GET", `/eval/${a.evalJob}`)).status).toBe(200);
      expect((await A.store.getItem(["notes"], "a-item"))?.value).toEqual({
        marker: "a-store-secret",
      });
      const crons = await A.crons.search({ limit: 100 });
      expect(crons.map((c) => c.cron_id).sort()).toEqual([a.cron, a.threadCron].sort());
      expect(crons.every((c) => c.enabled && c.schedule.startsWith("0 "))).toBe(true);
      expect((await A.store.getItem(["a-only-ns"], "k"))?.value).toEqual({
        marker: "a-store-secret",
      });
    });
  });
}
