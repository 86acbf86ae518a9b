// Operations over the real server: /openapi.json (OpenAPI 3.1, every served route, request
// schemas derived from the zod schemas), /docs, Prometheus /metrics after real runs, CORS,
// Content-Location on run-creating responses, and structured JSON logs with run and thread ids.
import { randomUUID } from "node:crypto";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../server/log.ts";
import { sample } from "../support/metrics.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
const lines: string[] = [];
beforeAll(async () => {
  s = await startTestServer({
    log: createLogger({ level: "debug", write: (line) => lines.push(line) }),
    // The one web origin allowed to use the API from a browser (none by default).
    env: { REFINERY_CORS_ORIGINS: "http://localhost:3000" },
  });
});
afterAll(async () => s?.close());

interface LogEntry {
  time: string;
  level: string;
  msg: string;
  [field: string]: unknown;
}
const entries = (): LogEntry[] => lines.map((l) => JSON.parse(l) as LogEntry);

/** Every endpoint of /work/shared/LANGGRAPH_API.md, as OpenAPI method + path. */
const CONTRACT: [string, string][] = [
  ["get", "/ok"],
  ["get", "/info"],
  ["post", "/assistants"],
  ["post", "/assistants/search"],
  ["post", "/assistants/count"],
  ["get", "/assistants/{assistant_id}"],
  ["patch", "/assistants/{assistant_id}"],
  ["delete", "/assistants/{assistant_id}"],
  ["get", "/assistants/{assistant_id}/graph"],
  ["get", "/assistants/{assistant_id}/schemas"],
  ["post", "/threads"],
  ["post", "/threads/search"],
  ["post", "/threads/count"],
  ["get", "/threads/{thread_id}"],
  ["patch", "/threads/{thread_id}"],
  ["delete", "/threads/{thread_id}"],
  ["post", "/threads/{thread_id}/copy"],
  ["get", "/threads/{thread_id}/state"],
  ["post", "/threads/{thread_id}/state"],
  ["get", "/threads/{thread_id}/state/{checkpoint_id}"],
  ["post", "/threads/{thread_id}/state/checkpoint"],
  ["get", "/threads/{thread_id}/history"],
  ["post", "/threads/{thread_id}/history"],
  ["post", "/threads/{thread_id}/runs"],
  ["post", "/threads/{thread_id}/runs/stream"],
  ["post", "/threads/{thread_id}/runs/wait"],
  ["get", "/threads/{thread_id}/runs"],
  ["get", "/threads/{thread_id}/runs/{run_id}"],
  ["delete", "/threads/{thread_id}/runs/{run_id}"],
  ["get", "/threads/{thread_id}/runs/{run_id}/join"],
  ["get", "/threads/{thread_id}/runs/{run_id}/stream"],
  ["post", "/threads/{thread_id}/runs/{run_id}/cancel"],
  ["post", "/runs"],
  ["post", "/runs/stream"],
  ["post", "/runs/wait"],
  ["post", "/runs/batch"],
  ["post", "/runs/cancel"],
  ["post", "/threads/prune"],
];

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** The routes the running Express app actually serves, as OpenAPI method + path. */
function servedRoutes(): [string, string][] {
  const app = s.running.server.listeners("request")[0] as unknown as { router: { stack: Layer[] } };
  const out: [string, string][] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const path of paths)
          for (const [method, on] of Object.entries(layer.route.methods))
            if (on && method !== "_all") out.push([method, path.replace(/:(\w+)/g, "{$1}")]);
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk(app.router.stack);
  return out;
}

interface OpenApi {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<
    string,
    Record<
      string,
      {
        summary?: string;
        parameters?: { name: string; in: string; required: boolean }[];
        requestBody?: { content: { "application/json": { schema: Record<string, unknown> } } };
        responses: Record<string, unknown>;
      }
    >
  >;
}

async function openApi(): Promise<OpenApi> {
  const res = await fetch(`${s.url}/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("application/json");
  return (await res.json()) as OpenApi;
}

async function metrics(): Promise<string> {
  const res = await fetch(`${s.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/plain");
  return res.text();
}

describe("/openapi.json", () => {
  it("is OpenAPI 3.1 with every endpoint of the contract and every route the server serves", async () => {
    const doc = await openApi();
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info.title).toBeTruthy();
    expect(doc.info.version).toBeTruthy();
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.keys(ops).map((m) => `${m} ${path}`),
      ),
    );
    const missing = CONTRACT.map(([m, p]) => `${m} ${p}`).filter((op) => !documented.has(op));
    expect(missing).toEqual([]);
    const undocumented = servedRoutes()
      .map(([m, p]) => `${m} ${p}`)
      // GET /threads/{id}/stream/events is the thread protocol's WebSocket upgrade (101), which
      // OpenAPI cannot describe; the POST operation of the same path documents it.
      .filter(
        (op) =>
          !documented.has(op) &&
          !["get /openapi.json", "get /docs", "get /threads/{thread_id}/stream/events"].includes(
            op,
          ),
      );
    // A new route must be added to OPS in server/routes/docs.ts (with its zod body schema).
    expect(undocumented, "served routes missing from server/routes/docs.ts").toEqual([]);
  });

  it("declares every path parameter and a response for every operation, no 401 or 429 without auth or limits", async () => {
    const doc = await openApi();
    for (const [path, ops] of Object.entries(doc.paths)) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(ops)) {
        expect(["get", "post", "put", "patch", "delete"]).toContain(method);
        expect(op.summary, `${method} ${path}`).toBeTruthy();
        expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(0);
        const params = (op.parameters ?? []).filter((p) => p.in === "path");
        expect(params.map((p) => p.name).sort(), `${method} ${path}`).toEqual([...names].sort());
        expect(params.every((p) => p.required)).toBe(true);
        // This server runs without auth and without rate limits: no 401, and 429 only where
        // a cap of its own answers it (REFINERY_EVAL_MAX_JOBS; 64 event streams per thread).
        expect(Object.keys(op.responses), `${method} ${path}`).not.toContain("401");
        if (
          !["post /eval", "post /threads/{thread_id}/stream/events"].includes(`${method} ${path}`)
        )
          expect(Object.keys(op.responses), `${method} ${path}`).not.toContain("429");
      }
    }
  });

  it("has request body schemas derived from the zod schemas, valid JSON Schema 2020-12", async () => {
    const doc = await openApi();
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const bodyOf = (method: string, path: string) => {
      const schema = doc.paths[path]?.[method]?.requestBody?.content["application/json"].schema;
      expect(schema, `${method} ${path}`).toBeDefined();
      return ajv.compile(schema ?? {});
    };
    // Every documented body compiles.
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops)) if (op.requestBody) bodyOf(method, path);

    const runCreate = doc.paths["/threads/{thread_id}/runs"]?.post?.requestBody?.content[
      "application/json"
    ].schema as { properties: Record<string, { anyOf?: { enum?: string[] }[] }> };
    const streamModes = JSON.stringify(runCreate.properties.stream_mode);
    for (const mode of ["values", "updates", "messages-tuple", "custom", "debug"])
      expect(streamModes).toContain(`"${mode}"`);
    expect(Object.keys(runCreate.properties)).toEqual(
      expect.arrayContaining(["assistant_id", "input", "command", "config", "multitask_strategy"]),
    );

    const run = bodyOf("post", "/threads/{thread_id}/runs");
    expect(run({ assistant_id: "slow", input: {}, stream_mode: ["values", "updates"] })).toBe(true);
    expect(run({ assistant_id: "slow", stream_mode: 5 })).toBe(false);
    expect(run({ assistant_id: "slow", stream_mode: "nope" })).toBe(false);
    // Unknown fields are dropped, as the LangGraph server does (issue 22).
    expect(run({ assistant_id: "slow", inptu: {} })).toBe(true);
    expect(run({ assistant_id: "slow", multitask_strategy: "enqueue" })).toBe(true);
    expect(run({ assistant_id: "slow", config: { recursion_limit: -1 } })).toBe(false);
    const thread = bodyOf("post", "/threads");
    expect(thread({ metadata: { a: 1 }, if_exists: "do_nothing" })).toBe(true);
    expect(thread({ thread_id: "not-a-uuid" })).toBe(false);
    expect(thread({ metdata: {} })).toBe(true);
    const search = bodyOf("post", "/threads/search");
    expect(search({ status: "idle", limit: 10 })).toBe(true);
    expect(search({ limit: "x" })).toBe(false);
  });
});

describe("/info", () => {
  it("has the LangGraph server's (JS) fields: version, langgraph_js_version, context, flags (issue 22)", async () => {
    const info = (await (await fetch(`${s.url}/info`)).json()) as Record<string, unknown>;
    expect(info).toMatchObject({
      version: expect.any(String),
      langgraph_js_version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      context: "js",
      flags: { assistants: true, crons: true },
    });
  });
});

describe("/docs", () => {
  it("is an HTML page listing every endpoint", async () => {
    const res = await fetch(`${s.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(html).toMatch(/^<!doctype html>/i);
    expect(html).toContain('href="/openapi.json"');
    for (const [method, path] of CONTRACT) {
      expect(html).toContain(`<code>${path}</code>`);
      expect(html).toContain(method.toUpperCase());
    }
  });
});

describe("/metrics", () => {
  it("counts finished runs by status, times them, and shows the pending queue", async () => {
    const before = await metrics();
    const base = (status: string) =>
      sample(before, "refinery_runs_finished_total", { status }) || 0;
    const t1 = await s.client.threads.create();
    await s.client.runs.wait(t1.thread_id, "slow", { input: { topic: "m" } });
    await s.client.runs.wait(t1.thread_id, "slow", { input: { topic: "m2" } });
    const t2 = await s.client.threads.create();
    await s.client.runs.wait(t2.thread_id, "failing", { input: {}, raiseError: false });
    const t3 = await s.client.threads.create();
    await s.client.runs.wait(t3.thread_id, "approval", { input: { topic: "a" } });

    const text = await metrics();
    expect(text).toContain("# TYPE refinery_runs_finished_total counter");
    expect(sample(text, "refinery_runs_finished_total", { status: "success" })).toBe(
      base("success") + 3,
    );
    expect(sample(text, "refinery_runs_finished_total", { status: "error" })).toBe(
      base("error") + 1,
    );
    expect(text).toContain("# TYPE refinery_run_duration_seconds histogram");
    const count = sample(text, "refinery_run_duration_seconds_count", { status: "success" });
    expect(count).toBeGreaterThanOrEqual(3);
    expect(
      sample(text, "refinery_run_duration_seconds_bucket", { status: "success", le: "+Inf" }),
    ).toBe(count);
    expect(sample(text, "refinery_run_duration_seconds_sum", { status: "error" })).toBeGreaterThan(
      0,
    );
    expect(text).toContain("# TYPE refinery_runs_pending gauge");
    expect(sample(text, "refinery_runs_pending")).toBe(0);
    expect(
      sample(text, "refinery_http_requests_total", { method: "POST", status: "200" }),
    ).toBeGreaterThan(0);

    // A delayed run waits in the queue and shows up as pending until it is cancelled.
    const t4 = await s.client.threads.create();
    const delayed = await s.client.runs.create(t4.thread_id, "slow", {
      input: {},
      afterSeconds: 600,
    });
    expect(sample(await metrics(), "refinery_runs_pending")).toBe(1);
    await s.client.runs.cancel(t4.thread_id, delayed.run_id, true);
    expect(sample(await metrics(), "refinery_runs_pending")).toBe(0);
  });

  it("counts LLM tokens by node after a refine run", async () => {
    const t = await s.client.threads.create();
    const out = (await s.client.runs.wait(t.thread_id, "refine", {
      input: { task: "What is 17 * 23 + 4?" },
      config: {
        configurable: {
          maxIterations: 2,
          verifiers: [{ kind: "answer_match", expected: 395 }],
          models: { default: { provider: "simulated", simulated: { seed: 11 } } },
        },
      },
    })) as unknown as {
      usage: { byNode: Record<string, { promptTokens: number; completionTokens: number }> };
    };
    const text = await metrics();
    expect(text).toContain("# TYPE refinery_llm_tokens_total counter");
    const nodes = Object.entries(out.usage.byNode).filter(([, u]) => u.completionTokens > 0);
    expect(nodes.map(([n]) => n)).toContain("generate");
    for (const [node, usage] of nodes) {
      // This is the only refine run on this server, so the counters equal its usage.
      expect(sample(text, "refinery_llm_tokens_total", { node, kind: "completion" })).toBe(
        usage.completionTokens,
      );
      expect(sample(text, "refinery_llm_tokens_total", { node, kind: "prompt" })).toBe(
        usage.promptTokens,
      );
    }
  });
});

describe("CORS and Content-Location", () => {
  it("answers a listed origin's preflight with 204 and the allowed methods and headers", async () => {
    const res = await fetch(`${s.url}/threads/${randomUUID()}/runs/stream`, {
      method: "OPTIONS",
      headers: {
        Origin: "http://localhost:3000",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-api-key",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");
    expect(res.headers.get("vary")).toContain("Origin");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    expect(res.headers.get("access-control-allow-methods")).toContain("DELETE");
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain(
      "content-type",
    );
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("x-api-key");
    expect(res.headers.get("access-control-expose-headers")).toContain("Content-Location");
  });

  it("run-creating responses carry Content-Location, exposed to browsers", async () => {
    const t = await s.client.threads.create();
    const post = (path: string, body: unknown) =>
      fetch(`${s.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", Origin: "http://localhost:3000" },
        body: JSON.stringify(body),
      });
    const bg = await post(`/threads/${t.thread_id}/runs`, { assistant_id: "slow", input: {} });
    const run = (await bg.json()) as { run_id: string };
    expect(bg.headers.get("content-location")).toBe(`/threads/${t.thread_id}/runs/${run.run_id}`);
    expect(bg.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");
    expect(bg.headers.get("access-control-expose-headers")).toContain("Content-Location");
    await s.client.runs.join(t.thread_id, run.run_id);

    const wait = await post(`/threads/${t.thread_id}/runs/wait`, {
      assistant_id: "slow",
      input: {},
    });
    await wait.text();
    const [latest] = await s.client.runs.list(t.thread_id, { limit: 1 });
    expect(wait.headers.get("content-location")).toBe(
      `/threads/${t.thread_id}/runs/${latest?.run_id}`,
    );

    const stream = await post(`/threads/${t.thread_id}/runs/stream`, {
      assistant_id: "slow",
      input: {},
    });
    await stream.text();
    expect(stream.headers.get("content-location")).toMatch(
      new RegExp(`^/threads/${t.thread_id}/runs/[0-9a-f-]{36}$`),
    );

    // Error responses carry CORS headers too, so browsers can read what was wrong.
    const refused = await post(`/threads/${t.thread_id}/runs`, { assistant_id: "nope" });
    expect(refused.status).toBe(404);
    expect(refused.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");
    await refused.text();

    const stateless = await post("/runs", { assistant_id: "slow", input: {} });
    const sr = (await stateless.json()) as { run_id: string };
    expect(stateless.headers.get("content-location")).toBe(`/runs/${sr.run_id}`);
  });

  it("gives an unlisted origin no CORS headers and refuses its writes before they run", async () => {
    const origin = "https://evil.example";
    const preflight = await fetch(`${s.url}/threads`, {
      method: "OPTIONS",
      headers: {
        Origin: origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
      },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    expect(preflight.headers.get("access-control-allow-methods")).toBeNull();
    const since = new Date().toISOString();
    const createdSince = async () =>
      (await s.client.threads.search({ sortBy: "created_at", sortOrder: "desc", limit: 5 })).filter(
        (t) => t.created_at >= since,
      );
    // A "simple" cross-site POST needs no preflight: the server itself must refuse it.
    for (const path of ["/threads", "/runs", "/threads/search"]) {
      const res = await fetch(`${s.url}${path}`, {
        method: "POST",
        headers: { "content-type": "text/plain", Origin: origin },
        body: "{}",
      });
      expect(res.status).toBe(403);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(((await res.json()) as { field?: string }).field).toBe("Origin");
    }
    expect(await createdSince()).toEqual([]);
    // The console's own requests are same-origin: allowed, with no CORS headers needed.
    const same = await fetch(`${s.url}/threads`, {
      method: "POST",
      headers: { "content-type": "application/json", Origin: s.url },
      body: "{}",
    });
    expect(same.status).toBe(200);
    expect(same.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("the SDK learns the run and thread ids from Content-Location (onRunCreated)", async () => {
    const t = await s.client.threads.create();
    const seen: { run_id: string; thread_id?: string }[] = [];
    await s.client.runs.create(t.thread_id, "slow", {
      input: {},
      onRunCreated: (meta) => seen.push(meta),
    });
    await s.client.runs.wait(t.thread_id, "slow", {
      input: {},
      multitaskStrategy: "enqueue",
      onRunCreated: (meta) => seen.push(meta),
    });
    const runs = await s.client.runs.list(t.thread_id);
    expect(seen.map((m) => m.thread_id)).toEqual([t.thread_id, t.thread_id]);
    expect(seen.map((m) => m.run_id).sort()).toEqual(runs.map((r) => r.run_id).sort());
  });
});

describe("structured logs", () => {
  it("are one JSON object per line, with run_id and thread_id on run start and finish", async () => {
    const t = await s.client.threads.create();
    const run = await s.client.runs.create(t.thread_id, "slow", { input: { topic: "log" } });
    await s.client.runs.join(t.thread_id, run.run_id);
    const failed = await s.client.threads.create();
    await s.client.runs.wait(failed.thread_id, "failing", { input: {}, raiseError: false });
    const [failedRun] = await s.client.runs.list(failed.thread_id);

    for (const line of lines) {
      expect(line.endsWith("\n")).toBe(true);
      expect(line.trimEnd()).not.toContain("\n");
    }
    const all = entries();
    for (const e of all) {
      expect(Number.isNaN(Date.parse(e.time))).toBe(false);
      expect(["debug", "info", "warn", "error"]).toContain(e.level);
      expect(typeof e.msg).toBe("string");
    }
    expect(all.find((e) => e.msg === "server listening")).toMatchObject({ url: s.url });

    const ofRun = all.filter((e) => e.run_id === run.run_id);
    const started = ofRun.find((e) => e.msg === "run started");
    const finished = ofRun.find((e) => e.msg === "run finished");
    expect(started).toMatchObject({ level: "info", thread_id: t.thread_id, attempt: 1 });
    expect(finished).toMatchObject({ level: "info", thread_id: t.thread_id, status: "success" });
    expect(typeof finished?.duration_ms).toBe("number");
    expect(ofRun.indexOf(started as LogEntry)).toBeLessThan(ofRun.indexOf(finished as LogEntry));

    const ofFailed = all.filter((e) => e.run_id === failedRun?.run_id);
    expect(ofFailed.find((e) => e.msg === "run finished")).toMatchObject({
      thread_id: failed.thread_id,
      status: "error",
    });
    const failure = ofFailed.find((e) => e.level === "warn" || e.level === "error");
    expect(JSON.stringify(failure)).toContain("boom: this node always fails");
  });
});
