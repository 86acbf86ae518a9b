// The example project (test/fixtures/langgraph-app) run the way a team runs it: `npm start --
// --config langgraph.json` in a child process (the real entry point, an ephemeral port, a temp
// SQLite file), driven only through the official SDK Client, RemoteGraph and, in headless
// Chromium, the React hook useStream. One server for the whole file; each client feature once:
// every graph export form (a Promise, a per-run factory, a builder, an agent exported as a
// Promise), getLogger() lines in the server's stdout, schemas of the zod-registry and the context
// graphs, subgraphs with an interrupt resumed by Command, runtime context, the store shared by
// clients and nodes, supersteps, mixed stream modes, time travel, runs.batch / cancelMany, crons
// and RemoteGraph.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RemoteGraph } from "@langchain/langgraph/remote";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  browserSuiteTitle,
  launchChromium,
  skipBrowser,
  type Browser,
  servePage,
  type PageSite,
} from "../support/chromium.ts";
import { killChildServers, startChildServer, type ChildServer } from "../support/child-server.ts";
import { databaseEnv } from "../support/test-backend.ts";

const PROJECT = join(import.meta.dirname, "../fixtures/langgraph-app/langgraph.json");
const PAGE = join(import.meta.dirname, "../fixtures/use-stream/app.js");

let dir: string;
let server: ChildServer;
let site: PageSite | undefined;
let siteUrl = "";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "refinery-project-"));
  if (!skipBrowser) {
    // The useStream page is served from a second origin, so the server must name it in CORS.
    site = await servePage(PAGE);
    siteUrl = site.url;
  }
  server = await startChildServer(
    {
      ...databaseEnv(join(dir, "refinery.db")),
      LOG_LEVEL: "info",
      REFINERY_RUN_THREADS: "1",
      ...(siteUrl ? { REFINERY_CORS_ORIGINS: siteUrl } : {}),
    },
    45_000,
    PROJECT,
  );
}, 60_000);

afterAll(async () => {
  await server?.stop("SIGTERM", 10_000);
  await killChildServers();
  await site?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The status and JSON body of an SDK call that must fail. */
async function failure(
  promise: Promise<unknown>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { status?: number; text?: string };
    if (typeof e.status !== "number" || typeof e.text !== "string") throw err;
    return { status: e.status, body: JSON.parse(e.text) as Record<string, unknown> };
  }
  throw new Error("expected the request to fail");
}

/** The JSON lines the server wrote to stdout. */
function logLines(): Record<string, unknown>[] {
  return server
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("a LangGraph project served by `npm start -- --config`", () => {
  it("runs every graph export form: Promise, per-run factory, builder, agent (a Promise too)", async () => {
    const c = server.client;
    expect(await c.runs.wait(null, "promised", { input: { topic: "t" } })).toMatchObject({
      path: ["greet:hello from app.env"],
    });
    // LANGGRAPH_CONFIG (from the env file) gives the factory's system assistant variant b; a
    // run's own configurable picks the node set of that run.
    expect(await c.runs.wait(null, "factory", { input: { topic: "t" } })).toMatchObject({
      path: ["variant_b:t"],
    });
    expect(
      await c.runs.wait(null, "factory", {
        input: { topic: "t" },
        config: { configurable: { variant: "c" } },
      }),
    ).toMatchObject({ path: ["variant_c:t"] });
    expect(await c.runs.wait(null, "builder", { input: {} })).toMatchObject({
      path: ["first", "second"],
    });
    expect(await c.runs.wait(null, "agent", { input: { topic: "t" } })).toMatchObject({
      path: ["agent:t"],
    });
    const graph = (await c.assistants.getGraph("agent")) as { nodes: { id: string }[] };
    expect(graph.nodes.map((n) => n.id)).toContain("model_request");
    // A real `createAgent` agent (langchain 1.x, a fake chat model's canned reply).
    const reply = (await c.runs.wait(null, "react_agent", {
      input: { messages: [{ role: "user", content: "hi" }] },
    })) as { messages: { type: string; content: string }[] };
    expect(reply.messages.map((m) => [m.type, m.content])).toEqual([
      ["human", "hi"],
      ["ai", "[fake model] the agent's reply"],
    ]);
    const agentGraph = (await c.assistants.getGraph("react_agent")) as { nodes: { id: string }[] };
    expect(agentGraph.nodes.map((n) => n.id)).toContain("model_request");
  });

  it("writes getLogger() lines to the server's stdout as structured log lines", async () => {
    expect(
      await server.client.runs.wait(null, "logged", { input: { topic: "logme" } }),
    ).toMatchObject({ path: ["work"] });
    expect(logLines()).toContainEqual(
      expect.objectContaining({
        level: "info",
        msg: "working on the topic",
        topic: "logme",
        logger: "graph",
      }),
    );
  });

  it("answers the schemas of the zod-registry graph and of the context graph", async () => {
    const memory = await server.client.assistants.getSchemas("memory");
    const props = (schema: unknown) =>
      Object.keys((schema as { properties?: object } | null)?.properties ?? {});
    expect(props(memory.state_schema)).toEqual(
      expect.arrayContaining(["user", "request", "delayMs", "style", "log"]),
    );
    expect(props(memory.input_schema)).toEqual(expect.arrayContaining(["user", "request"]));
    // the registry's jsonSchemaExtra reaches the field's schema, as on the LangGraph server
    expect(memory.state_schema).toMatchObject({
      properties: { log: { langgraph_nodes: ["recall", "respond"] } },
    });
    const ctx = await server.client.assistants.getSchemas("ctx");
    expect(props(ctx.context_schema)).toEqual(expect.arrayContaining(["tone", "limit"]));
    expect(ctx.context_schema).toMatchObject({ required: ["tone"] });
  });

  it("lists the subgraphs and resumes an interrupt inside one with Command", async () => {
    const c = server.client;
    const all = await c.assistants.getSubgraphs("review", { recurse: true });
    expect(Object.keys(all)).toEqual(["review", "review|approve"]);
    const thread = await c.threads.create();
    const stopped = (await c.runs.wait(thread.thread_id, "review", {
      input: { topic: "t" },
    })) as { __interrupt__?: { value: unknown }[] };
    expect(stopped.__interrupt__?.[0]?.value).toEqual({ question: "publish?", topic: "t" });
    expect((await c.threads.get(thread.thread_id)).status).toBe("interrupted");
    const state = await c.threads.getState(thread.thread_id, undefined, { subgraphs: true });
    expect(state.next).toEqual(["review"]);
    const done = await c.runs.wait(thread.thread_id, "review", { command: { resume: "yes" } });
    expect(done).toMatchObject({ log: ["outline:t", "prep:t", 'ask:"yes"', 'publish:"yes"'] });
    expect((await c.threads.get(thread.thread_id)).status).toBe("idle");
  });

  it("merges runtime context over the assistant's, and refuses a bad context with a 422", async () => {
    const c = server.client;
    const assistant = await c.assistants.create({
      graphId: "ctx",
      context: { tone: "casual", limit: 3 },
    });
    expect(
      await c.runs.wait(null, assistant.assistant_id, {
        input: {},
        context: { tone: "formal" },
      }),
    ).toEqual({ log: ["tone:formal limit:3"] });
    const thread = await c.threads.create();
    const bad = await failure(
      c.runs.create(thread.thread_id, "ctx", { input: {}, context: { tone: "rude" } }),
    );
    expect(bad.status).toBe(422);
    expect(bad.body.field).toBe("context.tone");
    expect(await c.runs.list(thread.thread_id)).toEqual([]);
  });

  it("shares the store between clients and graph nodes", async () => {
    const c = server.client;
    await c.store.putItem(["prefs", "alice"], "style", { style: "terse" });
    const out = await c.runs.wait(null, "memory", { input: { user: "alice", request: "hi" } });
    expect(out).toMatchObject({ style: "terse", log: ["recall:terse", "respond:hi"] });
    const item = await c.store.getItem(["history", "alice"], "last");
    expect(item?.value).toEqual({ request: "hi", style: "terse" });
  });

  it("creates a thread from supersteps and continues from there", async () => {
    const c = server.client;
    const thread = await c.threads.create({
      graphId: "builder",
      supersteps: [{ updates: [{ values: { topic: "seeded", path: "first" }, asNode: "first" }] }],
    });
    expect((await c.threads.getState(thread.thread_id)).next).toEqual(["second"]);
    expect(await c.runs.wait(thread.thread_id, "builder", { input: null })).toMatchObject({
      topic: "seeded",
      path: ["first", "second"],
    });
  });

  it("streams values, updates, messages-tuple and events mixed in one run", async () => {
    const thread = await server.client.threads.create();
    const seen = new Set<string>();
    let tokens = "";
    for await (const e of server.client.runs.stream(thread.thread_id, "chat", {
      input: { messages: [{ role: "user", content: "hi" }] },
      streamMode: ["values", "updates", "messages-tuple", "events"],
    })) {
      seen.add(e.event);
      if (e.event === "messages") {
        const [chunk] = e.data as [{ content: string; type: string }, unknown];
        if (chunk.type.startsWith("AIMessageChunk") || chunk.type === "ai") tokens += chunk.content;
      }
    }
    expect(seen).toEqual(new Set(["metadata", "values", "updates", "messages", "events"]));
    expect(tokens).toContain("hello there");
  });

  it("forks from an earlier checkpoint with updateState and continues from the fork", async () => {
    const c = server.client;
    const thread = await c.threads.create();
    await c.runs.wait(thread.thread_id, "builder", { input: { topic: "tt" } });
    const history = await c.threads.getHistory(thread.thread_id);
    const afterFirst = history.find((h) => h.next.length === 1 && h.next[0] === "second")!;
    expect(afterFirst.values).toMatchObject({ path: ["first"] });
    await c.threads.updateState(thread.thread_id, {
      values: { path: "edited" },
      checkpoint: afterFirst.checkpoint,
      asNode: "first",
    });
    expect((await c.threads.getState(thread.thread_id)).next).toEqual(["second"]);
    expect(await c.runs.wait(thread.thread_id, "builder", { input: null })).toMatchObject({
      path: ["first", "edited", "second"],
    });
  });

  it("creates runs in a batch and cancels them in bulk", async () => {
    const c = server.client;
    const runs = await c.runs.createBatch([
      { assistantId: "memory", input: { user: "bob", delayMs: 30_000 }, on_completion: "keep" },
      { assistantId: "memory", input: { user: "carol", delayMs: 30_000 }, on_completion: "keep" },
    ] as never);
    expect(runs).toHaveLength(2);
    for (const run of runs)
      await c.runs.cancelMany({ threadId: run.thread_id, runIds: [run.run_id] });
    for (const run of runs) {
      await c.runs.join(run.thread_id, run.run_id);
      expect((await c.runs.get(run.thread_id, run.run_id)).status).toBe("interrupted");
    }
  });

  it("creates and deletes a cron", async () => {
    const c = server.client;
    const cron = await c.crons.create("promised", {
      schedule: "0 3 1 1 *",
      input: { topic: "yearly" },
    });
    expect(cron).toMatchObject({ assistant_id: expect.any(String), schedule: "0 3 1 1 *" });
    expect((await c.crons.search({})).map((x) => x.cron_id)).toContain(cron.cron_id);
    await c.crons.delete(cron.cron_id);
    expect((await c.crons.search({})).map((x) => x.cron_id)).not.toContain(cron.cron_id);
  });

  it("invokes a graph through RemoteGraph, on a thread whose state the server keeps", async () => {
    const remote = new RemoteGraph({ graphId: "factory", client: server.client });
    const thread = await server.client.threads.create();
    const config = { configurable: { thread_id: thread.thread_id, variant: "r" } };
    expect(await remote.invoke({ topic: "remote" }, config)).toMatchObject({
      path: ["variant_r:remote"],
    });
    expect((await remote.getState(config)).values).toMatchObject({ topic: "remote" });
  });
});

describe.skipIf(skipBrowser)(browserSuiteTitle("the project's review graph in useStream"), () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => browser?.close());

  it("shows the subgraph's interrupt in the page and resumes it", async () => {
    const problems: string[] = [];
    const page = await browser.context.newPage();
    page.setDefaultTimeout(20_000);
    page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
    await page.goto(`${siteUrl}/?api=${encodeURIComponent(server.url)}&graph=review`);
    await page.waitForFunction("typeof window.submit === 'function'");
    await page.evaluate(`void window.submit({ topic: "ui" })`);
    await page.waitForFunction("document.getElementById('interrupt').textContent !== ''");
    const shown = await page.locator("#interrupt").textContent();
    expect(JSON.parse(shown!)).toEqual({ question: "publish?", topic: "ui" });
    await page.evaluate(`void window.submit(undefined, { command: { resume: "ok" } })`);
    await page.waitForFunction(
      "(JSON.parse(document.getElementById('values').textContent)?.log ?? []).length === 4",
    );
    const values = JSON.parse((await page.locator("#values").textContent())!) as {
      log: string[];
    };
    expect(values.log).toEqual(["outline:ui", "prep:ui", 'ask:"ok"', 'publish:"ok"']);
    expect(problems).toEqual([]);
    await page.close();
  });
});
