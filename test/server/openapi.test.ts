// /openapi.json's responses against the real server: every operation is called (through the
// official SDK where it has the call, plain HTTP otherwise) on its success path and on the error
// paths a request can trigger; every response seen is recorded and checked against the document:
// its status must be declared for that operation, a JSON body must validate (ajv, JSON Schema
// 2020-12) against the schema declared for that status, SSE and other media must be declared as
// such, and a 202/204 without a body must be declared without content. The document itself:
// every $ref resolves, every response has a content schema unless it has no body. One server
// with API keys (so 401/403 are real), a scripted model for the refine graph, one eval thread.
import { randomUUID } from "node:crypto";
import { overrideFetchImplementation } from "@langchain/langgraph-sdk";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyOf, keysEnv, sdkClient } from "../support/auth.ts";
import { scriptedProvider, ScriptedChatModel } from "../support/scripted-model.ts";
import { join } from "node:path";
import { startTestServer, type TestServer } from "../support/server.ts";

const PLATFORM_APP = join(import.meta.dirname, "../fixtures/platform-app/langgraph.json");

interface Response_ {
  description: string;
  content?: Record<string, { schema?: Record<string, unknown> }>;
}
interface Operation {
  responses: Record<string, Response_>;
  parameters?: { name: string; in: string }[];
  requestBody?: unknown;
}
interface OpenApi {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
}

/** A response the server gave: which request, its status, media type and body text. */
interface Seen {
  method: string;
  path: string;
  status: number;
  type: string;
  body: Promise<string> | undefined;
}

const seen: Seen[] = [];
const realFetch = globalThis.fetch;
/** fetch that records every response (SSE bodies are left to their reader). */
const recording = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const res = await realFetch(input, init);
  const url = new URL(input instanceof Request ? input.url : String(input));
  const method = (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
  const type = res.headers.get("content-type") ?? "";
  seen.push({
    method,
    path: url.pathname,
    status: res.status,
    type,
    body: type.startsWith("text/event-stream") ? undefined : res.clone().text(),
  });
  return res;
};

const PASS = '{"verdict":"pass","score":0.95,"issues":[]}';
const ADMIN = { "x-api-key": keyOf("acme", "admin") };
let s: TestServer;
let sdk: ReturnType<typeof sdkClient>;

beforeAll(async () => {
  s = await startTestServer({
    provider: scriptedProvider(
      new ScriptedChatModel({
        generate: () => "2 + 2 = 4\nAnswer: 4",
        critique: () => PASS,
        revise: () => "2 + 2 = 4\nAnswer: 4",
      }),
    ),
    env: {
      REFINERY_API_KEYS: keysEnv(["acme"]),
      // Declared (429 on every operation behind auth), never reached here.
      REFINERY_RATE_LIMIT: "1000000",
      REFINERY_TENANT_MAX_RUNS: "50",
      REFINERY_EVAL_MAX_JOBS: "1",
      // The dev routes (POST /internal/truncate) are documented and served.
      REFINERY_DEV: "1",
    },
  });
  overrideFetchImplementation(recording);
  sdk = sdkClient(s.url, ADMIN);
});
afterAll(async () => {
  overrideFetchImplementation(realFetch);
  await s?.close();
});

/** A request through the recording fetch; the body is JSON unless it is a string. */
async function http(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = ADMIN,
): Promise<{ status: number; json: unknown; text: string }> {
  const res = await recording(`${s.url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  const json = res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : undefined;
  return { status: res.status, json, text };
}

async function expectStatus(
  status: number,
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
): Promise<{ status: number; json: unknown; text: string }> {
  const res = await http(method, path, body, headers);
  expect(res.status, `${method} ${path}: ${res.text.slice(0, 300)}`).toBe(status);
  return res;
}

async function drain(stream: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

async function until<T>(f: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Exercises every operation: success and the error paths a request can trigger. */
async function exerciseEveryOperation(): Promise<void> {
  const missing = randomUUID();

  // Meta, and what auth adds: 401 without a key, 403 for a role that may not.
  await expectStatus(200, "GET", "/ok");
  await expectStatus(200, "GET", "/info");
  await expectStatus(200, "GET", "/metrics");
  await expectStatus(401, "GET", `/threads/${missing}`, undefined, {});
  await expectStatus(403, "POST", "/threads", {}, { "x-api-key": keyOf("acme", "viewer") });
  await expectStatus(403, "GET", "/metrics", undefined, { "x-api-key": keyOf("acme", "member") });
  await expectStatus(400, "POST", "/threads", "{not json");
  await expectStatus(413, "POST", "/threads", { metadata: { big: "x".repeat(1_100_000) } });

  // Assistants.
  const assistant = await sdk.assistants.create({ graphId: "slow", name: "openapi" });
  const aid = assistant.assistant_id;
  await expectStatus(409, "POST", "/assistants", { graph_id: "slow", assistant_id: aid });
  await expectStatus(422, "POST", "/assistants", { graph_id: "none-such" });
  await sdk.assistants.search({ graphId: "slow", limit: 5 });
  await expectStatus(200, "POST", "/assistants/search", { select: ["assistant_id", "name"] });
  await sdk.assistants.count({ graphId: "slow" });
  await sdk.assistants.get(aid);
  await expectStatus(404, "GET", `/assistants/${missing}`);
  await sdk.assistants.update(aid, { metadata: { v: 2 } });
  await expectStatus(409, "PATCH", "/assistants/slow", { metadata: { x: 1 } });
  await expectStatus(422, "PATCH", `/assistants/${aid}`, { name: 5 });
  await sdk.assistants.getGraph(aid);
  await sdk.assistants.getSchemas(aid);
  await sdk.assistants.getSubgraphs(aid);
  await sdk.assistants.getSubgraphs(aid, { namespace: "one", recurse: true });
  await expectStatus(422, "GET", `/assistants/${aid}/subgraphs?recurse=maybe`);
  await sdk.assistants.getVersions(aid);
  await sdk.assistants.setLatest(aid, 1);
  await expectStatus(404, "POST", `/assistants/${aid}/latest`, { version: 99 });
  await expectStatus(422, "POST", `/assistants/${aid}/latest`, { version: "one" });
  await expectStatus(409, "POST", "/assistants/slow/latest", { version: 1 });
  const doomed = await sdk.assistants.create({ graphId: "slow" });
  await sdk.assistants.delete(doomed.assistant_id);
  await expectStatus(404, "DELETE", `/assistants/${doomed.assistant_id}`);
  await expectStatus(409, "DELETE", "/assistants/slow");

  // Threads, state and history.
  const thread = await sdk.threads.create({ graphId: "slow" });
  const tid = thread.thread_id;
  await expectStatus(409, "POST", "/threads", { thread_id: tid });
  await expectStatus(422, "POST", "/threads", { thread_id: "not-a-uuid" });
  await sdk.threads.search({ limit: 5 });
  await expectStatus(200, "POST", "/threads/search", { select: ["thread_id", "status"] });
  await sdk.threads.count({});
  await expectStatus(422, "POST", "/threads/count", { status: "sleeping" });
  await sdk.threads.get(tid);
  await expectStatus(404, "GET", `/threads/${missing}`);
  await sdk.threads.update(tid, { metadata: { v: 2 } });
  await expectStatus(404, "PATCH", `/threads/${missing}`, { metadata: {} });
  await expectStatus(200, "GET", `/threads/${tid}/state`); // no checkpoint yet: the empty state
  await sdk.runs.wait(tid, "slow", { input: { topic: "first" } });
  const state = await sdk.threads.getState(tid);
  const checkpointId = state.checkpoint.checkpoint_id!;
  await sdk.threads.getState(tid, checkpointId);
  await expectStatus(404, "GET", `/threads/${tid}/state/${missing}`);
  await expectStatus(200, "POST", `/threads/${tid}/state/checkpoint`, {
    checkpoint: { checkpoint_id: checkpointId },
  });
  await expectStatus(422, "POST", `/threads/${tid}/state/checkpoint`, { checkpoint: 5 });
  await expectStatus(200, "GET", `/threads/${tid}/history?limit=2`);
  await expectStatus(422, "GET", `/threads/${tid}/history?limit=0`);
  await sdk.threads.getHistory(tid, { limit: 3 });
  await expectStatus(422, "POST", `/threads/${tid}/history`, { limit: "3" });
  await sdk.threads.updateState(tid, { values: { topic: "edited" } });
  await expectStatus(422, "POST", `/threads/${tid}/state`, { values: { topic: "x" }, as_node: 5 });
  // The thread protocol (ThreadStream): a command, and an event stream (SSE, open until aborted).
  await expectStatus(200, "POST", `/threads/${tid}/commands`, { id: 1, method: "state.get" });
  await expectStatus(404, "POST", `/threads/${missing}/commands`, { id: 1, method: "state.get" });
  await expectStatus(422, "POST", `/threads/${tid}/commands`, { id: "one", method: "state.get" });
  const events = new AbortController();
  const sse = await recording(`${s.url}/threads/${tid}/stream/events`, {
    method: "POST",
    headers: { "content-type": "application/json", ...ADMIN },
    body: JSON.stringify({ channels: ["values"] }),
    signal: events.signal,
  });
  expect(sse.status).toBe(200);
  events.abort();
  await expectStatus(422, "POST", `/threads/${tid}/stream/events`, { channels: ["bogus"] });
  const copy = await sdk.threads.copy(tid);
  await expectStatus(404, "POST", `/threads/${missing}/copy`);
  await sdk.threads.delete(copy.thread_id);
  await expectStatus(404, "DELETE", `/threads/${copy.thread_id}`);

  // Runs on a thread.
  const [done] = await sdk.runs.list(tid);
  const rid = done!.run_id;
  await sdk.runs.get(tid, rid);
  await expectStatus(404, "GET", `/threads/${tid}/runs/${missing}`);
  await expectStatus(422, "GET", `/threads/${tid}/runs?limit=many`);
  await expectStatus(404, "GET", `/threads/${missing}/runs`);
  await sdk.runs.join(tid, rid);
  await expectStatus(404, "GET", `/threads/${tid}/runs/${missing}/join`);
  await drain(sdk.runs.joinStream(tid, rid));
  await expectStatus(422, "GET", `/threads/${tid}/runs/${rid}/stream?stream_mode=bogus`);
  // The thread's stream stays open until the client leaves.
  const leave = new AbortController();
  const threadStream = await recording(`${s.url}/threads/${tid}/stream`, {
    headers: ADMIN,
    signal: leave.signal,
  });
  expect(threadStream.status).toBe(200);
  leave.abort();
  await expectStatus(422, "GET", `/threads/${tid}/stream?stream_mode=values`);
  await expectStatus(404, "GET", `/threads/${missing}/stream`);
  await drain(sdk.runs.stream(tid, "slow", { input: { topic: "streamed" } }));
  await expectStatus(404, "POST", `/threads/${missing}/runs/stream`, { assistant_id: "slow" });
  await expectStatus(409, "POST", `/threads/${tid}/runs/wait`, {
    assistant_id: "slow",
    command: { resume: "yes" },
  });
  await expectStatus(422, "POST", `/threads/${tid}/runs/wait`, {
    assistant_id: "slow",
    input: 1,
    config: 1,
  });
  // A slow run in flight: the busy thread's conflicts, then cancels with and without wait.
  const busy = await sdk.runs.create(tid, "slow", { input: { topic: "busy", delayMs: 400 } });
  await expectStatus(409, "POST", `/threads/${tid}/state`, { values: { topic: "no" } });
  await expectStatus(422, "POST", `/threads/${tid}/runs`, { assistant_id: "slow" }); // reject
  await expectStatus(409, "DELETE", `/threads/${tid}/runs/${busy.run_id}`);
  await expectStatus(422, "POST", `/threads/${tid}/runs/${busy.run_id}/cancel?action=explode`);
  await expectStatus(204, "POST", `/threads/${tid}/runs/${busy.run_id}/cancel?wait=true`);
  await expectStatus(409, "POST", `/threads/${tid}/runs/${busy.run_id}/cancel?wait=1`);
  await expectStatus(202, "POST", `/threads/${tid}/runs/${busy.run_id}/cancel`);
  await expectStatus(404, "POST", `/threads/${tid}/runs/${missing}/cancel`);
  const again = await sdk.runs.create(tid, "slow", { input: { topic: "again", delayMs: 400 } });
  await expectStatus(202, "POST", `/threads/${tid}/runs/${again.run_id}/cancel`);
  await sdk.runs.join(tid, again.run_id);
  await sdk.runs.delete(tid, busy.run_id);
  await expectStatus(404, "DELETE", `/threads/${tid}/runs/${busy.run_id}`);

  // Stateless runs.
  const stateless = await sdk.runs.create(null, "slow", { input: { topic: "stateless" } });
  await expectStatus(404, "POST", "/runs", { assistant_id: missing });
  await expectStatus(409, "POST", "/runs", { assistant_id: "slow", command: { resume: 1 } });
  await expectStatus(422, "POST", "/runs", { assistant_id: "slow", stream_mode: "nope" });
  await sdk.runs.wait(null, "slow", { input: { topic: "waited" } });
  await expectStatus(404, "POST", "/runs/wait", { assistant_id: "none-such" });
  await drain(sdk.runs.stream(null, "slow", { input: { topic: "streamed" } }));
  await expectStatus(422, "POST", "/runs/stream", { assistant_id: "slow", config: 1 });
  await until(async () =>
    (await http("GET", `/runs/${stateless.run_id}/stream`)).status === 200 ? true : undefined,
  );
  await expectStatus(404, "GET", `/runs/${missing}/stream`);
  await expectStatus(422, "GET", `/runs/${stateless.run_id}/stream?cancel_on_disconnect=maybe`);

  // Crons (made, changed, listed, deleted; none fires here: the schedules are hours away).
  const cron = await sdk.crons.create("slow", { schedule: "0 3 * * *", input: { topic: "c" } });
  await expectStatus(422, "POST", "/runs/crons", { assistant_id: "slow", schedule: "61 * * * *" });
  await expectStatus(404, "POST", "/runs/crons", { assistant_id: missing, schedule: "0 3 * * *" });
  const threadCron = await sdk.crons.createForThread(tid, "slow", { schedule: "0 4 * * *" });
  await expectStatus(404, "POST", `/threads/${missing}/runs/crons`, {
    assistant_id: "slow",
    schedule: "0 4 * * *",
  });
  await expectStatus(422, "POST", `/threads/${tid}/runs/crons`, {
    assistant_id: "slow",
    schedule: "0 0 1 1 * 0 2032",
  });
  await sdk.crons.update(cron.cron_id, { enabled: false });
  await expectStatus(404, "PATCH", `/runs/crons/${missing}`, { enabled: true });
  await expectStatus(422, "PATCH", `/runs/crons/${cron.cron_id}`, { timezone: "Nowhere/Land" });
  await sdk.crons.search({ assistantId: "slow" });
  await expectStatus(200, "POST", "/runs/crons/search", { select: ["cron_id", "schedule"] });
  await expectStatus(422, "POST", "/runs/crons/search", { limit: 0 });
  await sdk.crons.count({ assistantId: "slow" });
  await expectStatus(422, "POST", "/runs/crons/count", { thread_id: "not-a-uuid" });
  await sdk.crons.delete(threadCron.cron_id);
  await sdk.crons.delete(cron.cron_id);
  await expectStatus(404, "DELETE", `/runs/crons/${cron.cron_id}`);
  await expectStatus(422, "DELETE", "/runs/crons/not-a-uuid");

  // Bulk: a batch of stateless runs, cancelling many runs, pruning threads; the dev truncate.
  const batch = await sdk.runs.createBatch([
    { assistantId: "slow", input: { topic: "b1" } },
    { assistantId: "slow", input: { topic: "b2" } },
  ]);
  expect(batch).toHaveLength(2);
  await expectStatus(422, "POST", "/runs/batch", [{ assistant_id: "slow" }, { config: 1 }]);
  await expectStatus(404, "POST", "/runs/batch", [{ assistant_id: missing }]);
  const bulk = await sdk.threads.create();
  const bulkRun = await sdk.runs.create(bulk.thread_id, "slow", {
    input: { topic: "bulk", delayMs: 400 },
  });
  await sdk.runs.cancelMany({ threadId: bulk.thread_id, runIds: [bulkRun.run_id] });
  await sdk.runs.cancelMany({ status: "all", action: "interrupt" });
  await expectStatus(404, "POST", "/runs/cancel", {
    thread_id: bulk.thread_id,
    run_ids: [missing],
  });
  await expectStatus(422, "POST", "/runs/cancel", { status: "all", run_ids: [missing] });
  await expectStatus(422, "POST", "/runs/cancel?action=explode", { status: "all" });
  await sdk.runs.join(bulk.thread_id, bulkRun.run_id);
  await sdk.threads.prune([bulk.thread_id], { strategy: "keep_latest" });
  await sdk.threads.prune([bulk.thread_id, missing]);
  await expectStatus(422, "POST", "/threads/prune", { thread_ids: [bulk.thread_id], strategy: 1 });
  await expectStatus(200, "POST", "/internal/truncate", {});
  await expectStatus(422, "POST", "/internal/truncate", { runs: "yes" });
  await expectStatus(
    403,
    "POST",
    "/internal/truncate",
    {},
    { "x-api-key": keyOf("acme", "member") },
  );

  // Human approval on the refine graph, live feedback, ratings.
  const paused = await sdk.threads.create();
  await sdk.runs.wait(paused.thread_id, "refine", {
    input: { task: "What is 2 + 2?" },
    config: {
      configurable: {
        approval: { mode: "final" },
        verifiers: [{ kind: "answer_match", expected: 4 }],
        retry: { retries: 0 },
      },
    },
  });
  const approvals = await expectStatus(200, "GET", "/approvals");
  expect(approvals.json).toEqual(
    expect.arrayContaining([expect.objectContaining({ thread_id: paused.thread_id })]),
  );
  await expectStatus(200, "POST", `/threads/${paused.thread_id}/feedback`, { text: "be brief" });
  await expectStatus(422, "POST", `/threads/${paused.thread_id}/feedback`, { text: "" });
  await expectStatus(404, "POST", `/threads/${missing}/feedback`, { text: "hi" });
  await expectStatus(422, "POST", `/threads/${paused.thread_id}/approval`, { action: "maybe" });
  const resumed = await expectStatus(200, "POST", `/threads/${paused.thread_id}/approval`, {
    action: "approve",
  });
  await expectStatus(409, "POST", `/threads/${paused.thread_id}/approval`, { action: "approve" });
  await expectStatus(404, "POST", `/threads/${missing}/approval`, { action: "approve" });
  const run = resumed.json as { run_id: string };
  await sdk.runs.join(paused.thread_id, run.run_id);
  const ratings = `/threads/${paused.thread_id}/runs/${run.run_id}/feedback`;
  await expectStatus(201, "POST", ratings, { key: "quality", score: 1 });
  await expectStatus(422, "POST", ratings, { key: "quality", score: 7 });
  await expectStatus(404, "POST", `/threads/${paused.thread_id}/runs/${missing}/feedback`, {
    score: 1,
  });
  await expectStatus(200, "GET", ratings);
  await expectStatus(404, "GET", `/threads/${missing}/runs/${run.run_id}/feedback`);

  // Lessons.
  const lessons = `/assistants/${aid}/lessons`;
  const lesson = await expectStatus(201, "POST", lessons, { text: "Show the arithmetic." });
  await expectStatus(200, "POST", lessons, { text: "Show the arithmetic." }); // merged
  await expectStatus(422, "POST", lessons, { text: "" });
  await expectStatus(404, "POST", `/assistants/${missing}/lessons`, { text: "x" });
  await expectStatus(200, "GET", lessons);
  await expectStatus(422, "GET", `${lessons}?limit=0`);
  await expectStatus(200, "POST", `${lessons}/search`, { task: "What is 3 + 3? arithmetic" });
  await expectStatus(422, "POST", `${lessons}/search`, {});
  const lid = (lesson.json as { id: string }).id;
  await expectStatus(200, "GET", `${lessons}/${lid}`);
  await expectStatus(404, "GET", `${lessons}/${missing}`);
  await expectStatus(200, "PATCH", `${lessons}/${lid}`, { pinned: true });
  await expectStatus(422, "PATCH", `${lessons}/${lid}`, {});
  await expectStatus(200, "DELETE", `${lessons}/${lid}`);
  await expectStatus(404, "DELETE", `${lessons}/${lid}`);

  // Store.
  const item = { namespace: ["oa", "notes"], key: "k", value: { n: 1 } };
  await expectStatus(204, "PUT", "/store/items", { ...item, ttl: 60 });
  await expectStatus(422, "PUT", "/store/items", { ...item, namespace: ["a.b"] });
  await expectStatus(200, "GET", "/store/items?namespace=oa.notes&key=k");
  await expectStatus(200, "GET", "/store/items?namespace=oa.notes&key=none");
  await expectStatus(422, "GET", "/store/items?namespace=oa.notes");
  await expectStatus(200, "POST", "/store/items/search", { namespace_prefix: ["oa"] });
  await expectStatus(422, "POST", "/store/items/search", { filter: { n: { $near: 1 } } });
  await expectStatus(200, "POST", "/store/namespaces", { prefix: ["oa"] });
  await expectStatus(422, "POST", "/store/namespaces", { max_depth: 0 });
  await expectStatus(204, "DELETE", "/store/items", { namespace: item.namespace, key: "k" });
  await expectStatus(422, "DELETE", "/store/items", { namespace: item.namespace });

  // Training-data export.
  await expectStatus(200, "GET", "/export?format=sft");
  await expectStatus(422, "GET", "/export?format=csv");
  await expectStatus(404, "GET", `/export?format=sft&assistant_id=${missing}`);

  // Declarative graphs (admin).
  const spec = {
    start: "write",
    nodes: { write: { kind: "generate", prompt: { system: "Answer." } } },
    edges: [{ from: "write", to: "END" }],
  };
  await expectStatus(201, "POST", "/graphs", { id: "oa-graph", ...spec });
  await expectStatus(200, "POST", "/graphs", { id: "oa-graph", ...spec });
  await expectStatus(409, "POST", "/graphs", { id: "slow", ...spec });
  await expectStatus(422, "POST", "/graphs", { id: "oa-bad", ...spec, start: "nowhere" });
  await expectStatus(201, "PUT", "/graphs/oa-graph", { ...spec, description: "v2" });
  await expectStatus(200, "GET", "/graphs");
  await expectStatus(200, "GET", "/graphs/oa-graph");
  await expectStatus(422, "GET", "/graphs/oa-graph?version=zero");
  await expectStatus(404, "GET", "/graphs/none-such");
  await expectStatus(204, "DELETE", "/graphs/oa-graph");
  await expectStatus(404, "DELETE", "/graphs/oa-graph");

  // Evaluation jobs: one running at most (REFINERY_EVAL_MAX_JOBS=1), offline simulated model.
  const items = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      id: `q${i}`,
      task: `What is ${i} + 1?`,
      reference: i + 1,
    }));
  const big = await expectStatus(202, "POST", "/eval", {
    items: items(5000),
    strategies: ["vanilla", "self-refine"],
    seed: 1,
    concurrency: 1,
  });
  const bigId = (big.json as { eval_id: string }).eval_id;
  await expectStatus(429, "POST", "/eval", { items: items(1), seed: 1 });
  await expectStatus(422, "POST", "/eval", { items: [] });
  await expectStatus(200, "POST", `/eval/${bigId}/cancel`);
  await expectStatus(409, "POST", `/eval/${bigId}/cancel`);
  await expectStatus(404, "POST", `/eval/${missing}/cancel`);
  const small = await expectStatus(202, "POST", "/eval", {
    items: items(2),
    strategies: ["vanilla"],
    seed: 1,
  });
  const smallId = (small.json as { eval_id: string }).eval_id;
  const chart = await http("GET", `/eval/${smallId}/chart.svg`);
  expect([200, 409]).toContain(chart.status); // 409 while it runs
  await expectStatus(200, "GET", "/eval");
  await expectStatus(422, "GET", "/eval?limit=0");
  await until(async () => {
    const job = await expectStatus(200, "GET", `/eval/${smallId}?records_limit=10`);
    return (job.json as { status: string }).status === "running" ? undefined : true;
  });
  await expectStatus(422, "GET", `/eval/${smallId}?records_limit=-1`);
  await expectStatus(404, "GET", `/eval/${missing}`);
  await expectStatus(200, "GET", `/eval/${smallId}/chart.svg`);
  await expectStatus(404, "GET", `/eval/${missing}/chart.svg`);

  // Generative UI: none on this server (404; credentials asked for), and a project that has one.
  await expectStatus(404, "POST", "/ui/slow", { name: "Greeting" });
  await expectStatus(401, "POST", "/ui/slow", { name: "Greeting" }, {});
  await expectStatus(404, "GET", "/ui/slow/entrypoint.js", undefined, {});
  const withUi = await startTestServer({ configPath: PLATFORM_APP });
  try {
    const at = async (status: number, method: string, path: string, body?: unknown) => {
      const res = await recording(`${withUi.url}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        ...(body === undefined
          ? {}
          : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      });
      expect(res.status, `${method} ${path}`).toBe(status);
      await res.text();
    };
    await at(200, "POST", "/ui/echo", { name: "Greeting" });
    await at(422, "POST", "/ui/echo", {});
    await at(400, "POST", "/ui/echo", "{not json");
    await at(413, "POST", "/ui/echo", { name: "x".repeat(1_100_000) });
    await at(404, "POST", "/ui/none-such", { name: "Greeting" });
    await at(200, "GET", "/ui/echo/entrypoint.js");
    await at(200, "GET", "/ui/echo/entrypoint.css");
    await at(404, "GET", "/ui/echo/other.js");
  } finally {
    await withUi.close();
  }
}

let doc: OpenApi;

describe("/openapi.json responses", () => {
  beforeAll(async () => {
    doc = (await (await realFetch(`${s.url}/openapi.json`)).json()) as OpenApi;
    await exerciseEveryOperation();
  }, 60_000);

  it("is OpenAPI 3.1 whose every $ref resolves and every response with a body has a schema", () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    const refs = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object") {
        for (const [k, child] of Object.entries(v)) {
          if (k === "$ref" && typeof child === "string") refs.add(child);
          else walk(child);
        }
      }
    };
    walk(doc);
    expect(refs.size).toBeGreaterThan(10);
    for (const ref of refs) {
      expect(ref, ref).toMatch(/^#\//);
      const target = ref
        .slice(2)
        .split("/")
        .reduce<unknown>(
          (node, part) =>
            (node as Record<string, unknown> | undefined)?.[
              part.replace(/~1/g, "/").replace(/~0/g, "~")
            ],
          doc,
        );
      expect(target, `${ref} resolves`).toBeTypeOf("object");
    }
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method.toUpperCase()} ${path}`;
        const statuses = Object.keys(op.responses);
        expect(
          statuses.every((st) => /^[1-5]\d\d$/.test(st)),
          where,
        ).toBe(true);
        expect(
          statuses.some((st) => st.startsWith("2")),
          where,
        ).toBe(true);
        for (const [status, response] of Object.entries(op.responses)) {
          expect(response.description, `${where} ${status}`).toBeTruthy();
          if (status === "204" || (status === "202" && path.endsWith("/runs/{run_id}/cancel"))) {
            expect(response.content, `${where} ${status} has no body`).toBeUndefined();
            continue;
          }
          const media = Object.entries(response.content ?? {});
          expect(media.length, `${where} ${status} has content`).toBeGreaterThan(0);
          for (const [type, m] of media)
            expect(m.schema, `${where} ${status} ${type}`).toBeDefined();
          if (Number(status) >= 400)
            expect(response.content?.["application/json"]?.schema).toEqual({
              $ref: "#/components/schemas/Error",
            });
        }
        // An id in the path can name nothing; a body can be invalid, malformed or too large.
        if (path.includes("{")) expect(statuses, where).toContain("404");
        if (op.requestBody)
          expect(statuses, where).toEqual(expect.arrayContaining(["400", "413", "422"]));
        // Behind API keys: credentials are checked everywhere but the public paths.
        if (!["/ok", "/info", "/ui/{graph_id}/{file}"].includes(path))
          expect(statuses, where).toEqual(expect.arrayContaining(["401", "403", "429"]));
      }
    }
  });

  it("declares every status the server answered, and every JSON body validates against its schema", async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema({ $id: "openapi.json", components: doc.components });
    const validators = new Map<string, ReturnType<typeof ajv.compile>>();
    const validatorFor = (schema: Record<string, unknown>) => {
      // Refs are "#/components/...": resolved against the document registered above.
      const key = JSON.stringify(schema);
      let v = validators.get(key);
      if (!v) {
        const rebased = JSON.parse(key.replaceAll('"#/components/', '"openapi.json#/components/'));
        v = ajv.compile(rebased);
        validators.set(key, v);
      }
      return v;
    };
    const templates = Object.keys(doc.paths).map((template) => ({
      template,
      params: (template.match(/\{/g) ?? []).length,
      re: new RegExp(`^${template.replace(/\{\w+\}/g, "[^/]+").replace(/\./g, "\\.")}$`),
    }));
    const operationOf = (method: string, path: string) => {
      const match = templates
        .filter((t) => t.re.test(path) && doc.paths[t.template]?.[method.toLowerCase()])
        .sort((a, b) => a.params - b.params)[0];
      return match && `${method} ${match.template}`;
    };

    const problems: string[] = [];
    const successes = new Set<string>();
    expect(seen.length).toBeGreaterThan(150);
    for (const r of seen) {
      if (r.path === "/openapi.json") continue;
      const op = operationOf(r.method, r.path);
      if (!op) {
        problems.push(`${r.method} ${r.path}: no operation in the document`);
        continue;
      }
      const [method, template] = op.split(" ") as [string, string];
      const declared = doc.paths[template]![method.toLowerCase()]!.responses[String(r.status)];
      if (!declared) {
        problems.push(`${op}: answered ${r.status}, not declared`);
        continue;
      }
      if (r.status < 300) successes.add(op);
      const text = r.body ? await r.body : "";
      const mediaType = r.type.split(";")[0]!.trim();
      if (text.trim() === "" && !r.type.startsWith("text/event-stream")) {
        if (declared.content) problems.push(`${op} ${r.status}: empty body, but content declared`);
        continue;
      }
      const media = declared.content?.[mediaType];
      if (!media?.schema) {
        problems.push(`${op} ${r.status}: ${mediaType} not declared`);
        continue;
      }
      if (mediaType !== "application/json") continue;
      const validate = validatorFor(media.schema);
      if (!validate(JSON.parse(text))) {
        problems.push(
          `${op} ${r.status}: ${ajv.errorsText(validate.errors)} in ${text.trim().slice(0, 300)}`,
        );
      }
    }
    expect(problems).toEqual([]);
    // Every operation was called and answered with success at least once.
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(operations.filter((op) => !successes.has(op))).toEqual([]);
  });
});
