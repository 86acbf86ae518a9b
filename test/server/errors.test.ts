// Errors over the real server: every mistake a client can make gets a precise 4xx with a JSON
// body naming what was wrong (never a 5xx, never a stack trace), the official SDK surfaces it
// as `HTTP <status>: <body>`, and the failed request changes nothing (threads, runs, state).
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => s?.close());

interface ErrorBody {
  error: string;
  message: string;
  field?: string;
}

/** Checks the shape every error response must have, and returns its parsed body. */
function errorBody(status: number, text: string): ErrorBody {
  expect(status).toBeGreaterThanOrEqual(400);
  expect(status).toBeLessThan(500);
  const body = JSON.parse(text) as ErrorBody;
  expect(typeof body.error).toBe("string");
  expect(typeof body.message).toBe("string");
  expect(body.message.length).toBeGreaterThan(0);
  // No stack trace or source path leaks to the client.
  expect(text).not.toMatch(/\n\s+at |\bat .+\.(ts|js|mjs):\d+|node_modules/);
  return body;
}

/** The SDK error of a failing request: status, body, and that it reads `HTTP <status>: <body>`. */
async function sdkError(
  promise: Promise<unknown>,
): Promise<{ status: number; body: ErrorBody; text: string }> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  if (caught === undefined) throw new Error("expected the request to fail");
  const err = caught as Error & { status?: number; text?: string };
  if (typeof err.status !== "number" || typeof err.text !== "string") throw caught;
  expect(err.message).toBe(`HTTP ${err.status}: ${err.text}`);
  return { status: err.status, body: errorBody(err.status, err.text), text: err.text };
}

/** A raw request, for what the SDK cannot send (bad JSON, unknown fields, huge bodies). */
async function raw(
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = { "content-type": "application/json" },
): Promise<{ status: number; body: ErrorBody; text: string; type: string | null }> {
  const res = await fetch(`${s.url}${path}`, { method, body, headers });
  const text = await res.text();
  return {
    status: res.status,
    text,
    type: res.headers.get("content-type"),
    body: res.ok ? (JSON.parse(text || "null") as ErrorBody) : errorBody(res.status, text),
  };
}

/** What a failing request must not change: thread count, the thread, and its runs. */
async function snapshot(threadId?: string) {
  const count = await s.client.threads.count();
  if (!threadId) return { count };
  const [thread, runs, state] = await Promise.all([
    s.client.threads.get(threadId),
    s.client.runs.list(threadId),
    s.client.threads.getState(threadId),
  ]);
  return {
    count,
    thread,
    runs: runs.map((r) => [r.run_id, r.status]),
    checkpoint: state.checkpoint?.checkpoint_id ?? null,
  };
}

async function finishedThread(): Promise<string> {
  const t = await s.client.threads.create();
  await s.client.runs.wait(t.thread_id, "slow", { input: { topic: "done" } });
  return t.thread_id;
}

describe("malformed and oversized bodies", () => {
  it("malformed JSON is a 400 that says so, and creates nothing", async () => {
    const threadId = await finishedThread();
    const before = await snapshot(threadId);
    const bad = await raw("POST", "/threads", '{"metadata": {');
    expect(bad.status).toBe(400);
    expect(bad.type).toContain("application/json");
    expect(bad.body.message).toMatch(/JSON/);
    const badRun = await raw("POST", `/threads/${threadId}/runs`, '{"assistant_id": "slow",}');
    expect(badRun.status).toBe(400);
    expect(await snapshot(threadId)).toEqual(before);
  });

  it("a body that is not an object is a 422", async () => {
    const before = await snapshot();
    const arr = await raw("POST", "/threads", "[1, 2]");
    expect(arr.status).toBe(422);
    const str = await raw("POST", "/threads/search", '"all"');
    expect(str.status).toBe(422);
    expect(await snapshot()).toEqual(before);
  });

  it("a body over 1mb is a 413, through the SDK too", async () => {
    const before = await snapshot();
    const big = "x".repeat(1_100_000);
    const res = await raw("POST", "/threads", JSON.stringify({ metadata: { big } }));
    expect(res.status).toBe(413);
    expect(res.body.message).toMatch(/too large/i);
    const viaSdk = await sdkError(s.client.threads.create({ metadata: { big } }));
    expect(viaSdk.status).toBe(413);
    expect(await snapshot()).toEqual(before);
  });
});

describe("misspelt options are 422s naming the field and the closest valid name", () => {
  it("a refine option misspelt in a run's or an assistant's configurable, or in input.options", async () => {
    const before = await snapshot();
    const run = await sdkError(
      s.client.runs.wait(null, "refine", {
        input: { task: "What is 2 + 2?" },
        config: { configurable: { maxIteration: 2 } },
      }),
    );
    expect(run.status).toBe(422);
    expect(run.body.field).toBe("config.configurable.maxIteration");
    expect(run.body.message).toMatch(
      /unknown refine option "maxIteration".*did you mean "maxIterations"/,
    );
    const assistant = await sdkError(
      s.client.assistants.create({
        graphId: "refine",
        config: { configurable: { stratgy: "proactive" } },
      }),
    );
    expect(assistant.status).toBe(422);
    expect(assistant.body.field).toBe("config.configurable.stratgy");
    expect(assistant.body.message).toMatch(/did you mean "strategy"/);
    const input = await sdkError(
      s.client.runs.wait(null, "refine", {
        input: { task: "What is 2 + 2?", options: { maxIterations: 2, models: { critic: {} } } },
      }),
    );
    expect(input.status).toBe(422);
    expect(input.body.field).toBe("input.options.models.critic");
    expect(input.body.message).toMatch(/did you mean "critique"/);
    // LangGraph's and the server's own keys are not options, and pass.
    const ok = await s.client.runs.wait(null, "refine", {
      input: { task: "What is 2 + 2?" },
      config: { configurable: { maxIterations: 1, user_id: "u1", "x-request-id": "r1" } },
    });
    expect(ok).toMatchObject({ stopReason: expect.any(String) });
    expect(await snapshot()).toEqual(before);
  });

  it("a misspelt field of Refinery's own bodies names the closest one", async () => {
    const threadId = await finishedThread();
    const e = await raw(
      "POST",
      `/threads/${threadId}/feedback`,
      JSON.stringify({ text: "x", colour: 1 }),
    );
    expect(e.status).toBe(422);
    expect(e.text).toContain("colour");
  });
});

describe("bodies that used to be 500s", () => {
  it("JSON nested 10,000 deep is a 422 naming body, on every route, and creates nothing", async () => {
    const before = await snapshot();
    const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
    for (const [path, body] of [
      ["/threads", `{"metadata": {"x": ${deep(10_000)}}}`],
      ["/threads/search", `{"metadata": {"x": ${deep(10_000)}}}`],
      ["/runs/wait", `{"assistant_id": "slow", "input": {"x": ${deep(10_000)}}}`],
      ["/runs", `{"assistant_id": "slow", "input": {"x": ${deep(10_000)}}}`],
      ["/assistants", `{"graph_id": "slow", "config": {"configurable": {"x": ${deep(10_000)}}}}`],
    ] as const) {
      const res = await raw("POST", path, body);
      expect(res.status, path).toBe(422);
      expect(res.body.field).toBe("body");
      expect(res.body.message).toMatch(/deeper than 100 levels/);
    }
    // 100 levels are fine.
    expect((await raw("POST", "/threads/search", `{"metadata": {"x": ${deep(90)}}}`)).status).toBe(
      200,
    );
    expect(await snapshot()).toEqual(before);
  });

  it("a filter naming 5,000 fields and a 100 kB name search are 422s naming the field", async () => {
    const many = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]));
    for (const [path, body, field] of [
      ["/threads/search", { metadata: many }, "metadata"],
      ["/threads/count", { values: many }, "values"],
      ["/assistants/search", { metadata: many }, "metadata"],
      ["/assistants/search", { name: "%".repeat(100_000) }, "name"],
      ["/assistants/count", { name: "a".repeat(100_000) }, "name"],
    ] as const) {
      const res = await raw("POST", path, JSON.stringify(body));
      expect(res.status, `${path} ${field}`).toBe(422);
      expect(res.body.field).toBe(field);
    }
  });
});

describe("invalid fields are 422s naming the field", () => {
  it("stream_mode: 5 names stream_mode and creates no run", async () => {
    const threadId = await finishedThread();
    const before = await snapshot(threadId);
    const e = await sdkError(
      s.client.runs.create(threadId, "slow", { input: {}, streamMode: 5 as never }),
    );
    expect(e.status).toBe(422);
    expect(e.body.field).toBe("stream_mode");
    const unknownMode = await sdkError(
      s.client.runs.create(threadId, "slow", {
        input: {},
        streamMode: ["values", "nope" as never],
      }),
    );
    expect(unknownMode.status).toBe(422);
    expect(unknownMode.text).toContain("stream_mode");
    expect(unknownMode.body.message).toContain("values");
    expect(await snapshot(threadId)).toEqual(before);
  });

  it("limit: 'x' names limit (search, run list, history)", async () => {
    const threadId = await finishedThread();
    const search = await sdkError(s.client.threads.search({ limit: "x" as never }));
    expect(search.status).toBe(422);
    expect(search.body.field).toBe("limit");
    const assistants = await sdkError(s.client.assistants.search({ limit: -1 }));
    expect(assistants.status).toBe(422);
    expect(assistants.body.field).toBe("limit");
    const runs = await sdkError(s.client.runs.list(threadId, { limit: "x" as never }));
    expect(runs.status).toBe(422);
    expect(runs.body.field).toBe("limit");
    const history = await raw("GET", `/threads/${threadId}/history?limit=abc`);
    expect(history.status).toBe(422);
    expect(history.body.field).toBe("limit");
    const postHistory = await sdkError(s.client.threads.getHistory(threadId, { limit: 0 }));
    expect(postHistory.status).toBe(422);
    expect(postHistory.body.field).toBe("limit");
  });

  it("config.recursion_limit: -1 names config.recursion_limit and creates no run", async () => {
    const threadId = await finishedThread();
    const before = await snapshot(threadId);
    const e = await sdkError(
      s.client.runs.wait(threadId, "slow", {
        input: { topic: "r" },
        config: { recursion_limit: -1 },
      }),
    );
    expect(e.status).toBe(422);
    expect(e.body.field).toBe("config.recursion_limit");
    expect(await snapshot(threadId)).toEqual(before);
  });

  it("a recursion_limit above the server's cap (1000) is a 422 naming the field and the setting", async () => {
    const threadId = await finishedThread();
    const before = await snapshot(threadId);
    const e = await sdkError(
      s.client.runs.wait(threadId, "slow", {
        input: { topic: "r" },
        config: { recursion_limit: 10_000 },
      }),
    );
    expect(e.status).toBe(422);
    expect(e.body.field).toBe("config.recursion_limit");
    expect(e.body.message).toMatch(/cap of 1000.*REFINERY_MAX_RECURSION_LIMIT/);
    expect(await snapshot(threadId)).toEqual(before);
    const assistant = await sdkError(
      s.client.assistants.create({ graphId: "slow", config: { recursion_limit: 5000 } }),
    );
    expect(assistant.status).toBe(422);
    expect(assistant.body.field).toBe("config.recursion_limit");
    const ok = await s.client.runs.wait(threadId, "slow", {
      input: { topic: "r" },
      config: { recursion_limit: 1000 },
    });
    expect(ok).toMatchObject({ topic: "r" });
  });

  it("other wrong types and values name their field", async () => {
    const threadId = await finishedThread();
    const before = await snapshot(threadId);
    const cases: [() => Promise<unknown>, string][] = [
      [
        () => s.client.runs.create(threadId, "slow", { multitaskStrategy: "bogus" as never }),
        "multitask_strategy",
      ],
      [() => s.client.runs.create(threadId, "slow", { afterSeconds: -1 }), "after_seconds"],
      [
        () => s.client.runs.create(threadId, "slow", { webhook: "ftp://example.com/hook" }),
        "webhook",
      ],
      [
        () => s.client.runs.create(threadId, "slow", { interruptBefore: "one" as never }),
        "interrupt_before",
      ],
      [() => s.client.runs.create(threadId, "slow", { metadata: "m" as never }), "metadata"],
      [() => s.client.threads.create({ threadId: "not-a-uuid" }), "thread_id"],
      [() => s.client.threads.create({ ifExists: "overwrite" as never }), "if_exists"],
      [() => s.client.threads.search({ status: "sleeping" as never }), "status"],
      [() => s.client.threads.count({ status: "sleeping" as never }), "status"],
      [() => s.client.assistants.create({ graphId: "slow", assistantId: "nope" }), "assistant_id"],
      [() => s.client.assistants.setLatest("slow", 0), "version"],
    ];
    for (const [request, field] of cases) {
      const e = await sdkError(request()).catch((err: Error) => {
        throw new Error(`${field}: ${err.message}`);
      });
      expect(e.status, field).toBe(422);
      expect(e.body.field ?? e.body.message, field).toContain(field);
    }
    // (The SDK spreads thread metadata into an object, so send a bad one raw.)
    const meta = await raw("POST", "/threads", JSON.stringify({ metadata: "m" }));
    expect(meta.status).toBe(422);
    expect(meta.body.field).toBe("metadata");
    const cancel = await raw(
      "POST",
      `/threads/${threadId}/runs/${(await s.client.runs.list(threadId))[0]?.run_id}/cancel?action=explode`,
    );
    expect(cancel.status).toBe(422);
    expect(cancel.body.field).toBe("action");
    expect(await snapshot(threadId)).toEqual(before);
  });

  it("unknown fields of LangGraph protocol bodies are dropped, as the LangGraph server does (issue 22)", async () => {
    const threadId = await finishedThread();
    const run = await raw(
      "POST",
      `/threads/${threadId}/runs/wait`,
      JSON.stringify({ assistant_id: "slow", input: {}, stream_mdoe: "values", colour: 1 }),
    );
    expect(run.status).toBe(200);
    const thread = await raw("POST", "/threads", JSON.stringify({ metdata: { a: 1 } }));
    expect(thread.status).toBe(200);
    expect(thread.body).not.toHaveProperty("metdata");
    const search = await raw("POST", "/threads/search", JSON.stringify({ limt: 1 }));
    expect(search.status).toBe(200);
    const assistant = await raw(
      "POST",
      "/assistants",
      JSON.stringify({ graph_id: "slow", colour: "blue" }),
    );
    expect(assistant.status).toBe(200);
    expect(assistant.body).not.toHaveProperty("colour");
  });

  it("a refused stateless or if_not_exists run leaves no thread behind", async () => {
    const before = await snapshot();
    const badConfig = { configurable: { maxIterations: 0 } };
    const stateless = await sdkError(
      s.client.runs.wait(null, "refine", { input: { task: "x" }, config: badConfig }),
    );
    expect(stateless.status).toBe(422);
    expect(stateless.body.field).toBe("config.configurable.maxIterations");
    const resume = await sdkError(
      s.client.runs.create(null, "approval", { command: { resume: 1 } }),
    );
    expect(resume.status).toBe(409);
    const id = randomUUID();
    const created = await sdkError(
      s.client.runs.create(id, "refine", {
        input: { task: "x" },
        config: badConfig,
        ifNotExists: "create",
      }),
    );
    expect(created.status).toBe(422);
    const resumeNew = await sdkError(
      s.client.runs.create(id, "approval", { command: { resume: 1 }, ifNotExists: "create" }),
    );
    expect(resumeNew.status).toBe(409);
    expect((await sdkError(s.client.threads.get(id))).status).toBe(404);
    expect(await snapshot()).toEqual(before);
  });

  it("a missing assistant_id is a 422 naming assistant_id", async () => {
    const threadId = await finishedThread();
    const res = await raw("POST", `/threads/${threadId}/runs`, JSON.stringify({ input: {} }));
    expect(res.status).toBe(422);
    expect(res.body.field).toBe("assistant_id");
  });
});

describe("unknown resources", () => {
  it("an unknown assistant is a 404 'Assistant not found' and creates no run", async () => {
    const threadId = await finishedThread();
    const before = await snapshot(threadId);
    for (const id of ["no-such-graph", randomUUID()]) {
      const e = await sdkError(s.client.runs.create(threadId, id, { input: {} }));
      expect(e.status).toBe(404);
      expect(e.body.message).toContain("Assistant not found");
      expect(e.body.field).toBe("assistant_id");
    }
    const stateless = await sdkError(s.client.runs.wait(null, "no-such-graph", { input: {} }));
    expect(stateless.status).toBe(404);
    expect(await snapshot(threadId)).toEqual(before);
  });

  it("an unknown thread is a 404 'Thread not found' everywhere, and nothing is created", async () => {
    const before = await snapshot();
    const id = randomUUID();
    const requests: (() => Promise<unknown>)[] = [
      () => s.client.threads.get(id),
      () => s.client.threads.update(id, { metadata: { a: 1 } }),
      () => s.client.threads.delete(id),
      () => s.client.threads.copy(id),
      () => s.client.threads.getState(id),
      () => s.client.threads.getHistory(id),
      () => s.client.threads.updateState(id, { values: { topic: "x" } }),
      () => s.client.runs.create(id, "slow", { input: {} }),
      () => s.client.runs.wait(id, "slow", { input: {} }),
      () => s.client.runs.list(id),
      () => s.client.runs.get(id, randomUUID()),
    ];
    for (const request of requests) {
      const e = await sdkError(request());
      expect(e.status).toBe(404);
      expect(e.body.message).toContain("Thread not found");
    }
    expect(await snapshot()).toEqual(before);
  });

  it("a thread id that is not a UUID is a 422 naming thread_id", async () => {
    const before = await snapshot();
    const requests: (() => Promise<unknown>)[] = [
      () => s.client.threads.get("not-a-uuid"),
      () => s.client.threads.getState("not-a-uuid"),
      () => s.client.threads.updateState("not-a-uuid", { values: {} }),
      () => s.client.runs.list("not-a-uuid"),
      () => s.client.runs.create("not-a-uuid", "slow", { input: {} }),
    ];
    for (const request of requests) {
      const e = await sdkError(request());
      expect(e.status).toBe(422);
      expect(e.body.field).toBe("thread_id");
    }
    expect(await snapshot()).toEqual(before);
  });

  it("an unknown run is a 404 'Run not found' for get, join, cancel and delete", async () => {
    const threadId = await finishedThread();
    const before = await snapshot(threadId);
    const runId = randomUUID();
    const requests: (() => Promise<unknown>)[] = [
      () => s.client.runs.get(threadId, runId),
      () => s.client.runs.join(threadId, runId),
      () => s.client.runs.cancel(threadId, runId),
      () => s.client.runs.delete(threadId, runId),
      () => s.client.runs.get(threadId, "not-a-run"),
    ];
    for (const request of requests) {
      const e = await sdkError(request());
      expect(e.status).toBe(404);
      expect(e.body.message).toContain("Run not found");
    }
    expect(await snapshot(threadId)).toEqual(before);
    // A run of another thread is not found through this one.
    const other = await finishedThread();
    const [otherRun] = await s.client.runs.list(other);
    const cross = await sdkError(s.client.runs.get(threadId, otherRun?.run_id ?? ""));
    expect(cross.status).toBe(404);
  });

  it("an unknown checkpoint is a 404", async () => {
    const threadId = await finishedThread();
    const e = await sdkError(s.client.threads.getState(threadId, randomUUID()));
    expect(e.status).toBe(404);
    expect(e.body.field).toBe("checkpoint_id");
  });

  it("a run from a checkpoint the thread does not have is a 404 and creates no run", async () => {
    const threadId = await finishedThread();
    const other = await finishedThread();
    const foreign = (await s.client.threads.getState(other)).checkpoint.checkpoint_id ?? "";
    const before = await snapshot(threadId);
    for (const checkpointId of [randomUUID(), foreign]) {
      const e = await sdkError(s.client.runs.wait(threadId, "slow", { input: null, checkpointId }));
      expect(e.status).toBe(404);
      expect(e.body.field).toBe("checkpoint_id");
      expect(e.body.message).toContain("Checkpoint not found");
    }
    const byObject = await sdkError(
      s.client.runs.create(threadId, "slow", {
        input: null,
        checkpoint: { checkpoint_id: randomUUID(), checkpoint_ns: "" } as never,
      }),
    );
    expect(byObject.status).toBe(404);
    expect(byObject.body.field).toBe("checkpoint.checkpoint_id");
    expect(await snapshot(threadId)).toEqual(before);
  });

  it("interrupt_before/after naming a node the graph lacks is a 422, not a silent no-op", async () => {
    const threadId = await finishedThread();
    const before = await snapshot(threadId);
    const e = await sdkError(
      s.client.runs.wait(threadId, "slow", { input: {}, interruptBefore: ["one", "tow"] }),
    );
    expect(e.status).toBe(422);
    expect(e.body.field).toBe("interrupt_before[1]");
    expect(e.body.message).toContain('"tow"');
    expect(e.body.message).toContain("two");
    const after = await sdkError(
      s.client.runs.create(threadId, "approval", { input: {}, interruptAfter: ["nope"] }),
    );
    expect(after.status).toBe(422);
    expect(after.body.field).toBe("interrupt_after[0]");
    expect(await snapshot(threadId)).toEqual(before);
  });

  it("a thread created for an unknown graph is a 422 naming it", async () => {
    const before = await snapshot();
    const e = await sdkError(s.client.threads.create({ graphId: "nope" }));
    expect(e.status).toBe(422);
    expect(e.body.field).toBe("metadata.graph_id");
    expect(e.body.message).toContain("slow");
    expect(await snapshot()).toEqual(before);
  });

  it("a path parameter that is not valid percent-encoding is a 400", async () => {
    const threadId = await finishedThread();
    const res = await raw("GET", `/threads/${threadId}/state/%E0%A4%A`);
    expect(res.status).toBe(400);
    expect(res.body.message).toContain("decode");
  });

  it("an unknown route is a 404 JSON naming it", async () => {
    const get = await raw("GET", "/nope");
    expect(get.status).toBe(404);
    expect(get.type).toContain("application/json");
    expect(get.body.message).toContain("/nope");
    const post = await raw("POST", `/threads/${randomUUID()}/frobnicate`, "{}");
    expect(post.status).toBe(404);
    const put = await raw("PUT", "/threads", "{}");
    expect(put.status).toBe(404);
    expect(put.body.error).toBe("not_found");
  });
});

describe("conflicts", () => {
  it("resuming a thread that is not interrupted is a 409 and changes nothing", async () => {
    const fresh = await s.client.threads.create();
    const done = await finishedThread();
    for (const threadId of [fresh.thread_id, done]) {
      const before = await snapshot(threadId);
      const e = await sdkError(
        s.client.runs.wait(threadId, "approval", { command: { resume: "yes" } }),
      );
      expect(e.status).toBe(409);
      expect(e.body.field).toBe("command.resume");
      expect(e.body.message).toContain("not interrupted");
      const bg = await sdkError(
        s.client.runs.create(threadId, "approval", { command: { resume: "yes" } }),
      );
      expect(bg.status).toBe(409);
      expect(await snapshot(threadId)).toEqual(before);
    }
  });

  it("updateState on a busy thread is a 409 and the run is unaffected", async () => {
    const t = await s.client.threads.create();
    const run = await s.client.runs.create(t.thread_id, "slow", {
      input: { topic: "busy", delayMs: 150 },
    });
    const e = await sdkError(
      s.client.threads.updateState(t.thread_id, { values: { topic: "hijacked" } }),
    );
    expect(e.status).toBe(409);
    expect(e.body.message).toContain("busy");
    const out = (await s.client.runs.join(t.thread_id, run.run_id)) as {
      topic: string;
      log: string[];
    };
    expect(out).toMatchObject({ topic: "busy", log: ["one", "two", "three"] });
    // No checkpoint was written by the refused update.
    const history = await s.client.threads.getHistory(t.thread_id, { limit: 100 });
    expect(history.every((h) => (h.values as { topic: string }).topic !== "hijacked")).toBe(true);
  });

  it("a second run on a busy thread (default multitask) is a 422 and creates no run", async () => {
    const t = await s.client.threads.create();
    const first = await s.client.runs.create(t.thread_id, "slow", {
      input: { topic: "first", delayMs: 150 },
    });
    const e = await sdkError(
      s.client.runs.create(t.thread_id, "slow", { input: { topic: "second" } }),
    );
    expect(e.status).toBe(422);
    expect(e.body.field).toBe("multitask_strategy");
    const wait = await sdkError(
      s.client.runs.wait(t.thread_id, "slow", { input: { topic: "second" } }),
    );
    expect(wait.status).toBe(422);
    expect((await s.client.runs.list(t.thread_id)).map((r) => r.run_id)).toEqual([first.run_id]);
    await s.client.runs.join(t.thread_id, first.run_id);
    expect((await s.client.threads.get(t.thread_id)).values).toMatchObject({ topic: "first" });
    expect(await s.client.runs.list(t.thread_id)).toHaveLength(1);
  });

  it("deleting a run in flight is a 409; cancelling a finished run is accepted and changes nothing (a 409 with wait)", async () => {
    const t = await s.client.threads.create();
    const run = await s.client.runs.create(t.thread_id, "slow", {
      input: { topic: "d", delayMs: 100 },
    });
    const del = await sdkError(s.client.runs.delete(t.thread_id, run.run_id));
    expect(del.status).toBe(409);
    await s.client.runs.join(t.thread_id, run.run_id);
    // As the LangGraph server answers it (issue 22).
    await s.client.runs.cancel(t.thread_id, run.run_id);
    const waited = await sdkError(s.client.runs.cancel(t.thread_id, run.run_id, true));
    expect(waited.status).toBe(409);
    expect((await s.client.runs.get(t.thread_id, run.run_id)).status).toBe("success");
  });
});

describe("the SDK does not retry 4xx", () => {
  it("a join with a bad cancel_on_disconnect or stream_mode is a 422 naming it", async () => {
    const thread = await s.client.threads.create();
    await s.client.runs.wait(thread.thread_id, "slow", { input: { topic: "q" } });
    const [r] = await s.client.runs.list(thread.thread_id);
    const base = `${s.url}/threads/${thread.thread_id}/runs/${r!.run_id}/stream`;
    for (const [query, field] of [
      ["cancel_on_disconnect=maybe", "cancel_on_disconnect"],
      ["stream_mode=tokens", "stream_mode"],
    ]) {
      const res = await fetch(`${base}?${query}`);
      expect(res.status, query).toBe(422);
      const body = (await res.json()) as { field: string; message: string };
      expect(body.field, query).toBe(field);
    }
  });

  it("a client with retries sends a 4xx request once", async () => {
    const { Client } = await import("@langchain/langgraph-sdk");
    let calls = 0;
    const client = new Client({
      apiUrl: s.url,
      callerOptions: { maxRetries: 3 },
      onRequest: (_url, init) => {
        calls++;
        return init;
      },
    });
    const started = Date.now();
    const e = await sdkError(client.threads.get("not-a-uuid"));
    expect(e.status).toBe(422);
    expect(calls).toBe(1);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe("refine input is checked when the run is created", () => {
  it.each([
    [{}, /input\.task.*task is required/],
    [{ task: 5 }, /input\.task/],
    [{ task: "   " }, /input\.task.*must not be empty/],
    [{ task: "x", options: { maxIterations: 0 } }, /input\.options\.maxIterations/],
  ])("%j -> 422 naming the field, no run created", async (input, message) => {
    const thread = await s.client.threads.create();
    const res = await fetch(`${s.url}/threads/${thread.thread_id}/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ assistant_id: "refine", input }),
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { message: string; field: string };
    expect(`${body.field} ${body.message}`).toMatch(message);
    expect(await s.client.runs.list(thread.thread_id)).toEqual([]);
    expect((await s.client.threads.get(thread.thread_id)).status).toBe("idle");
  });
});

describe("one error body on every path, in the shape LangGraph clients read", () => {
  /** Every error body: `detail` first (the LangGraph server's key and wording), then ours. */
  const shaped = (text: string) => {
    const body = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(body)[0]).toBe("detail");
    expect(typeof body.detail).toBe("string");
    expect(typeof body.error).toBe("string");
    expect(typeof body.message).toBe("string");
    expect(typeof body.retryable).toBe("boolean");
    return body;
  };

  it("a missing resource reads as against the reference: detail is its sentence", async () => {
    const assistant = await sdkError(s.client.assistants.get(randomUUID()));
    expect(assistant.status).toBe(404);
    expect(shaped(assistant.text).detail).toBe("Assistant not found");
    // The SDK's message leads with the status and the reference's sentence.
    expect(`HTTP ${assistant.status}: ${assistant.text}`).toMatch(
      /^HTTP 404: \{"detail":"Assistant not found"/,
    );
    const thread = await sdkError(s.client.threads.get(randomUUID()));
    expect(shaped(thread.text)).toMatchObject({
      detail: "Thread not found",
      error: "not_found",
      field: "thread_id",
    });
    const run = await sdkError(s.client.runs.get(randomUUID(), randomUUID()));
    expect(shaped(run.text).detail).toBe("Thread not found");
  });

  it("validation errors keep field and fix as keys, and message as one line", async () => {
    const e = await sdkError(
      s.client.assistants.create({
        graphId: "refine",
        config: { configurable: { stratgy: "proactive" } },
      }),
    );
    const body = shaped(e.text);
    expect(body.field).toBe("config.configurable.stratgy");
    expect(typeof body.fix).toBe("string");
    expect(body.message).toContain(String(body.detail));
    expect(body.message).toContain(String(body.fix));
  });

  it("malformed JSON, an oversized body, a bad path parameter and a missing route: same shape", async () => {
    const malformed = await raw("POST", "/threads", '{"metadata": {');
    expect(malformed.status).toBe(400);
    expect(shaped(malformed.text)).toMatchObject({ error: "bad_request", field: "body" });
    const big = await raw("POST", "/threads", JSON.stringify({ x: "y".repeat(1_100_000) }));
    expect(big.status).toBe(413);
    expect(shaped(big.text)).toMatchObject({ error: "payload_too_large", field: "body" });
    const badParam = await raw("GET", "/threads/%E0%A4%A");
    expect(badParam.status).toBe(400);
    shaped(badParam.text);
    const route = await raw("GET", "/no/such/route");
    expect(route.status).toBe(404);
    expect(shaped(route.text).detail).toBe("No route GET /no/such/route");
  });
});
