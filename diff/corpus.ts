// The corpus of the differential harness: every case runs against both servers (each on its own
// fresh server state, so ids differ but the sequence is the same) and records steps, compared
// after normalisation. `route` groups the table; a case may touch more routes while setting up.
import WebSocket from "ws";
import type { Json, Step, Target } from "./target.ts";

export interface Case {
  route: string;
  name: string;
  run(t: Target): Promise<void>;
}

const cases: Case[] = [];
const add = (route: string, name: string, run: (t: Target) => Promise<void>) =>
  cases.push({ route, name, run });

const A1 = "00000000-0000-4000-8000-00000000000a";
const T1 = "00000000-0000-4000-8000-0000000000a1";
const MISSING = "00000000-0000-4000-8000-0000000000ff";

/** A fresh thread; returns its id. */
async function thread(t: Target, body: unknown = {}): Promise<string> {
  const res = await t.http("setup: create thread", "POST", "/threads", body);
  t.steps.pop();
  return res.json.thread_id as string;
}
/** A thread with one finished echo run. */
async function ranThread(t: Target, graph = "echo", input: unknown = { topic: "x" }) {
  const id = await thread(t);
  await t.http("setup: run", "POST", `/threads/${id}/runs/wait`, { assistant_id: graph, input });
  t.steps.pop();
  return id;
}
/** A thread interrupted by the approval graph. */
async function interrupted(t: Target): Promise<string> {
  return ranThread(t, "approval", { topic: "t" });
}
async function assistant(t: Target, body: unknown = { graph_id: "echo" }): Promise<string> {
  const res = await t.http("setup: create assistant", "POST", "/assistants", body);
  t.steps.pop();
  return res.json.assistant_id as string;
}

// ---- meta
add("GET /ok", "ok", async (t) => void (await t.http("ok", "GET", "/ok")));
add("GET /info", "info", async (t) => void (await t.http("info", "GET", "/info")));

// ---- assistants
for (const [name, body] of [
  ["graph_id only", { graph_id: "echo" }],
  [
    "every field",
    { graph_id: "echo", config: { tags: ["a"] }, metadata: { a: 1 }, name: "n", description: "d" },
  ],
  [
    "nulls",
    {
      graph_id: "echo",
      config: null,
      metadata: null,
      name: null,
      description: null,
      context: null,
    },
  ],
  ["empty config and metadata", { graph_id: "echo", config: {}, metadata: {}, context: {} }],
  ["unknown field", { graph_id: "echo", colour: "blue" }],
  ["fixed id", { graph_id: "echo", assistant_id: A1 }],
  ["missing graph_id", {}],
  ["unknown graph", { graph_id: "nope" }],
  ["graph_id null", { graph_id: null }],
] as const) {
  add(
    "POST /assistants",
    name,
    async (t) => void (await t.http("create", "POST", "/assistants", body)),
  );
}
for (const ifExists of ["raise", "do_nothing"]) {
  add("POST /assistants", `twice, if_exists ${ifExists}`, async (t) => {
    await t.http("first", "POST", "/assistants", { graph_id: "echo", assistant_id: A1 });
    await t.http("second", "POST", "/assistants", {
      graph_id: "echo",
      assistant_id: A1,
      if_exists: ifExists,
      name: "other",
    });
  });
}
add("POST /assistants", "sdk create", async (t) => {
  await t.sdk("create", (c) => c.assistants.create({ graphId: "echo", metadata: { k: "v" } }));
});
for (const [name, body] of [
  ["empty", {}],
  ["graph_id", { graph_id: "echo" }],
  ["limit and offset", { limit: 2, offset: 1 }],
  ["nulls", { metadata: null, graph_id: null, limit: null, offset: null }],
  ["metadata", { metadata: { created_by: "system" } }],
  ["sort asc", { sort_by: "graph_id", sort_order: "asc" }],
  ["select", { select: ["assistant_id", "graph_id"] }],
  ["name", { name: "echo" }],
  ["unknown field", { colour: "blue" }],
  ["limit 0", { limit: 0 }],
] as const) {
  add("POST /assistants/search", name, async (t) => {
    await t.http("search", "POST", "/assistants/search", body, {
      unordered: !("sort_by" in body),
    });
  });
}
add("POST /assistants/search", "sdk search", async (t) => {
  await t.sdk("search", (c) => c.assistants.search({ graphId: "echo" }));
});
for (const [name, body] of [
  ["empty", {}],
  ["graph_id", { graph_id: "approval" }],
  ["metadata", { metadata: { created_by: "system" } }],
] as const) {
  add("POST /assistants/count", name, async (t) => {
    await t.http("count", "POST", "/assistants/count", body);
  });
}
add("GET /assistants/{assistant_id}", "created", async (t) => {
  const id = await assistant(t);
  await t.http("get", "GET", `/assistants/${id}`);
  await t.sdk("sdk get", (c) => c.assistants.get(id));
});
add("GET /assistants/{assistant_id}", "missing", async (t) => {
  await t.http("get", "GET", `/assistants/${MISSING}`);
});
add("GET /assistants/{assistant_id}", "graph id as assistant id", async (t) => {
  await t.http("get", "GET", `/assistants/echo`);
});
for (const [name, body] of [
  ["metadata", { metadata: { b: 2 } }],
  ["empty", {}],
  ["graph_id", { graph_id: "approval" }],
  ["config", { config: { tags: ["z"] } }],
  ["name", { name: "renamed" }],
] as const) {
  add("PATCH /assistants/{assistant_id}", name, async (t) => {
    const id = await assistant(t, { graph_id: "echo", metadata: { a: 1 } });
    await t.http("patch", "PATCH", `/assistants/${id}`, body);
    await t.http("get", "GET", `/assistants/${id}`);
  });
}
add("PATCH /assistants/{assistant_id}", "missing", async (t) => {
  await t.http("patch", "PATCH", `/assistants/${MISSING}`, { metadata: {} });
});
add("DELETE /assistants/{assistant_id}", "created and missing", async (t) => {
  const id = await assistant(t);
  await t.http("delete", "DELETE", `/assistants/${id}`);
  await t.http("get after", "GET", `/assistants/${id}`);
  await t.http("delete again", "DELETE", `/assistants/${id}`);
});
add("DELETE /assistants/{assistant_id}", "delete_threads", async (t) => {
  const id = await assistant(t);
  const mine = await thread(t);
  await t.http("run", "POST", `/threads/${mine}/runs/wait`, { assistant_id: id, input: {} });
  const other = await ranThread(t);
  await t.http("delete", "DELETE", `/assistants/${id}?delete_threads=true`);
  await t.http("its thread", "GET", `/threads/${mine}`);
  await t.http("another thread", "GET", `/threads/${other}`);
  await t.sdk("sdk delete", async (c) => {
    const a = await c.assistants.create({ graphId: "echo" });
    return c.assistants.delete(a.assistant_id, { deleteThreads: true });
  });
});
for (const sub of ["graph", "schemas", "subgraphs"]) {
  add(`GET /assistants/{assistant_id}/${sub}`, "echo", async (t) => {
    const id = await assistant(t);
    await t.http(sub, "GET", `/assistants/${id}/${sub}`);
  });
  add(`GET /assistants/{assistant_id}/${sub}`, "missing", async (t) => {
    await t.http(sub, "GET", `/assistants/${MISSING}/${sub}`);
  });
}
// Schemas of graphs declaring their state each another way (Annotation, zod, StateSchema).
for (const graph of ["chat", "typed", "zod_state", "zod_v3", "state_schema"]) {
  add("GET /assistants/{assistant_id}/schemas", graph, async (t) => {
    await t.http("schemas", "GET", `/assistants/${graph}/schemas`);
  });
}
add("GET /assistants/{assistant_id}/graph", "xray", async (t) => {
  const id = await assistant(t, { graph_id: "approval" });
  await t.http("graph", "GET", `/assistants/${id}/graph?xray=true`);
});
add("POST /assistants/{assistant_id}/versions", "after a patch", async (t) => {
  const id = await assistant(t);
  await t.http("patch", "PATCH", `/assistants/${id}`, { metadata: { v: 2 } });
  await t.http("versions", "POST", `/assistants/${id}/versions`, {});
  await t.http("versions limited", "POST", `/assistants/${id}/versions`, { limit: 1 });
  await t.http("versions by metadata", "POST", `/assistants/${id}/versions`, {
    metadata: { v: 2 },
  });
});
add("POST /assistants/{assistant_id}/latest", "set version", async (t) => {
  const id = await assistant(t);
  await t.http("patch", "PATCH", `/assistants/${id}`, { metadata: { v: 2 } });
  await t.http("latest 1", "POST", `/assistants/${id}/latest`, { version: 1 });
  await t.http("latest 9", "POST", `/assistants/${id}/latest`, { version: 9 });
  await t.http("latest missing", "POST", `/assistants/${id}/latest`, {});
});

// ---- threads
for (const [name, body] of [
  ["empty", {}],
  ["metadata", { metadata: { a: 1 } }],
  ["nulls", { metadata: null, thread_id: null, if_exists: null }],
  ["fixed id", { thread_id: T1 }],
  ["unknown field", { colour: "blue" }],
  ["graph_id in metadata", { metadata: { graph_id: "echo" } }],
  ["ttl", { ttl: { strategy: "delete", ttl: 60 } }],
] as const) {
  add("POST /threads", name, async (t) => void (await t.http("create", "POST", "/threads", body)));
}
add("POST /threads", "no body", async (t) => void (await t.http("create", "POST", "/threads")));
for (const ifExists of ["raise", "do_nothing"]) {
  add("POST /threads", `twice, if_exists ${ifExists}`, async (t) => {
    await t.http("first", "POST", "/threads", { thread_id: T1, metadata: { n: 1 } });
    await t.http("second", "POST", "/threads", {
      thread_id: T1,
      if_exists: ifExists,
      metadata: { n: 2 },
    });
  });
}
add("POST /threads", "sdk create", async (t) => {
  await t.sdk("create", (c) => c.threads.create({ metadata: { k: "v" }, graphId: "echo" }));
});
const searchBodies = [
  ["empty", {}],
  ["status idle", { status: "idle" }],
  ["status interrupted", { status: "interrupted" }],
  ["metadata", { metadata: { n: 1 } }],
  ["limit and offset", { limit: 1, offset: 1 }],
  ["sort", { sort_by: "created_at", sort_order: "asc" }],
  ["select", { select: ["thread_id", "status"] }],
  ["nulls", { metadata: null, status: null, values: null, limit: null, offset: null }],
  ["values", { values: { topic: "x" } }],
  ["unknown field", { colour: "blue" }],
] as const;
for (const [name, body] of searchBodies) {
  add("POST /threads/search", name, async (t) => {
    await thread(t, { metadata: { n: 1 } });
    await ranThread(t);
    await interrupted(t);
    await t.http("search", "POST", "/threads/search", body, {
      unordered: !("sort_by" in body),
    });
  });
}
add("POST /threads/search", "ids", async (t) => {
  const id = await thread(t);
  await thread(t);
  await t.http("search", "POST", "/threads/search", { ids: [id] });
});
add("POST /threads/search", "CORS: headers a browser app may read", async (t) => {
  await thread(t);
  await t.http(
    "search",
    "POST",
    "/threads/search",
    {},
    {
      headers: { origin: "http://localhost:3000" },
    },
  );
});
add("POST /threads/search", "sdk search", async (t) => {
  await thread(t, { metadata: { n: 1 } });
  await t.sdk("search", (c) => c.threads.search({ metadata: { n: 1 }, limit: 5 }));
});
for (const [name, body] of [
  ["empty", {}],
  ["status", { status: "idle" }],
  ["metadata", { metadata: { n: 1 } }],
] as const) {
  add("POST /threads/count", name, async (t) => {
    await thread(t, { metadata: { n: 1 } });
    await ranThread(t);
    await t.http("count", "POST", "/threads/count", body);
  });
}
add("GET /threads/{thread_id}", "fresh, after a run, interrupted, missing", async (t) => {
  await t.http("fresh", "GET", `/threads/${await thread(t)}`);
  await t.http("ran", "GET", `/threads/${await ranThread(t)}`);
  await t.http("interrupted", "GET", `/threads/${await interrupted(t)}`);
  await t.http("missing", "GET", `/threads/${MISSING}`);
  const id = await ranThread(t);
  await t.sdk("sdk get", (c) => c.threads.get(id));
});
for (const [name, body] of [
  ["metadata", { metadata: { b: 2 } }],
  ["empty", {}],
  ["metadata null", { metadata: null }],
] as const) {
  add("PATCH /threads/{thread_id}", name, async (t) => {
    const id = await thread(t, { metadata: { a: 1 } });
    await t.http("patch", "PATCH", `/threads/${id}`, body);
  });
}
add("PATCH /threads/{thread_id}", "missing", async (t) => {
  await t.http("patch", "PATCH", `/threads/${MISSING}`, { metadata: {} });
});
add("DELETE /threads/{thread_id}", "created and missing", async (t) => {
  const id = await ranThread(t);
  await t.http("delete", "DELETE", `/threads/${id}`);
  await t.http("get after", "GET", `/threads/${id}`);
  await t.http("delete again", "DELETE", `/threads/${id}`);
});
add("POST /threads/{thread_id}/copy", "after a run, missing", async (t) => {
  const id = await ranThread(t);
  const copy = await t.http("copy", "POST", `/threads/${id}/copy`);
  await t.http("copy state", "GET", `/threads/${copy.json?.thread_id}/state`);
  await t.http("missing", "POST", `/threads/${MISSING}/copy`);
});
add("GET /threads/{thread_id}/state", "fresh, after a run, interrupted, missing", async (t) => {
  await t.http("fresh", "GET", `/threads/${await thread(t)}/state`);
  await t.http("ran", "GET", `/threads/${await ranThread(t)}/state`);
  await t.http("interrupted", "GET", `/threads/${await interrupted(t)}/state`);
  await t.http("subgraphs", "GET", `/threads/${await interrupted(t)}/state?subgraphs=true`);
  await t.http("missing", "GET", `/threads/${MISSING}/state`);
  const id = await interrupted(t);
  await t.sdk("sdk getState", (c) => c.threads.getState(id));
});
for (const [name, body] of [
  ["values", { values: { topic: "y" } }],
  ["as_node", { values: { topic: "y" }, as_node: "second" }],
  ["values null", { values: null }],
  ["empty", {}],
  ["unknown node", { values: { topic: "y" }, as_node: "nope" }],
  ["checkpoint", "checkpoint"],
] as const) {
  add("POST /threads/{thread_id}/state", name, async (t) => {
    const id = await ranThread(t);
    let payload: unknown = body;
    if (body === "checkpoint") {
      const state = await t.http("state", "GET", `/threads/${id}/state`);
      payload = { values: { topic: "z" }, checkpoint: state.json.checkpoint };
    }
    await t.http("update", "POST", `/threads/${id}/state`, payload);
    await t.http("state after", "GET", `/threads/${id}/state`);
  });
}
add("POST /threads/{thread_id}/state", "fresh thread without a graph", async (t) => {
  await t.http("update", "POST", `/threads/${await thread(t)}/state`, { values: { topic: "y" } });
});
add("POST /threads/{thread_id}/state", "sdk updateState", async (t) => {
  const id = await ranThread(t);
  await t.sdk("update", (c) => c.threads.updateState(id, { values: { topic: "w" } }));
});
add("GET /threads/{thread_id}/state/{checkpoint_id}", "existing and missing", async (t) => {
  const id = await ranThread(t);
  const state = await t.http("state", "GET", `/threads/${id}/state`);
  await t.http("at", "GET", `/threads/${id}/state/${state.json.checkpoint.checkpoint_id}`);
  await t.http("missing", "GET", `/threads/${id}/state/${MISSING}`);
});
add("POST /threads/{thread_id}/state/checkpoint", "existing, missing", async (t) => {
  const id = await ranThread(t);
  const state = await t.http("state", "GET", `/threads/${id}/state`);
  await t.http("at", "POST", `/threads/${id}/state/checkpoint`, {
    checkpoint: state.json.checkpoint,
  });
  await t.http("missing", "POST", `/threads/${id}/state/checkpoint`, {
    checkpoint: { checkpoint_id: MISSING },
  });
  await t.http("empty", "POST", `/threads/${id}/state/checkpoint`, {});
});
add("GET /threads/{thread_id}/history", "after a run", async (t) => {
  const id = await ranThread(t);
  await t.http("all", "GET", `/threads/${id}/history`);
  await t.http("limit", "GET", `/threads/${id}/history?limit=2`);
  await t.http("fresh", "GET", `/threads/${await thread(t)}/history`);
  await t.http("missing", "GET", `/threads/${MISSING}/history`);
});
for (const [name, body] of [
  ["empty", {}],
  ["limit", { limit: 2 }],
  ["metadata", { metadata: { source: "loop" } }],
  ["nulls", { limit: null, before: null, metadata: null, checkpoint: null }],
  ["before", "before"],
] as const) {
  add("POST /threads/{thread_id}/history", name, async (t) => {
    const id = await ranThread(t);
    let payload: unknown = body;
    if (body === "before") {
      const state = await t.http("state", "GET", `/threads/${id}/state`);
      payload = { before: state.json.checkpoint, limit: 2 };
    }
    await t.http("history", "POST", `/threads/${id}/history`, payload);
  });
}
add("POST /threads/{thread_id}/history", "sdk getHistory", async (t) => {
  const id = await ranThread(t);
  await t.sdk("history", (c) => c.threads.getHistory(id, { limit: 3 }));
});

// ---- runs on a thread
const runBodies = [
  ["input", { assistant_id: "echo", input: { topic: "a" } }],
  ["input empty", { assistant_id: "echo", input: {} }],
  ["input null", { assistant_id: "echo", input: null }],
  ["no input", { assistant_id: "echo" }],
  [
    "every optional null",
    {
      assistant_id: "echo",
      input: { topic: "a" },
      config: null,
      context: null,
      metadata: null,
      checkpoint: null,
      checkpoint_id: null,
      interrupt_before: null,
      interrupt_after: null,
      webhook: null,
      multitask_strategy: null,
      stream_mode: null,
      on_disconnect: null,
    },
  ],
  [
    "config and metadata",
    {
      assistant_id: "echo",
      input: { topic: "a" },
      config: { tags: ["x"], recursion_limit: 10 },
      metadata: { m: 1 },
    },
  ],
  ["context", { assistant_id: "echo", input: { topic: "a" }, context: { user: "u" } }],
  ["unknown field", { assistant_id: "echo", input: { topic: "a" }, colour: "blue" }],
  ["missing assistant_id", { input: { topic: "a" } }],
  ["unknown assistant", { assistant_id: MISSING, input: { topic: "a" } }],
  [
    "interrupt_before",
    { assistant_id: "echo", input: { topic: "a" }, interrupt_before: ["second"] },
  ],
  ["interrupt_after *", { assistant_id: "echo", input: { topic: "a" }, interrupt_after: "*" }],
  [
    "input and command",
    { assistant_id: "approval", input: { topic: "a" }, command: { resume: "yes" } },
  ],
  ["after_seconds", { assistant_id: "echo", input: { topic: "a" }, after_seconds: 0 }],
  ["durability", { assistant_id: "echo", input: { topic: "a" }, durability: "exit" }],
  ["if_not_exists create", "if_not_exists"],
] as const;
for (const [name, body] of runBodies) {
  add("POST /threads/{thread_id}/runs/wait", name, async (t) => {
    const id = body === "if_not_exists" ? MISSING : await thread(t);
    const payload =
      body === "if_not_exists"
        ? { assistant_id: "echo", input: { topic: "a" }, if_not_exists: "create" }
        : body;
    await t.http("wait", "POST", `/threads/${id}/runs/wait`, payload);
    await t.http("state", "GET", `/threads/${id}/state`);
  });
}
add("POST /threads/{thread_id}/runs/wait", "missing thread", async (t) => {
  await t.http("wait", "POST", `/threads/${MISSING}/runs/wait`, {
    assistant_id: "echo",
    input: {},
  });
});
add("POST /threads/{thread_id}/runs/wait", "failing node", async (t) => {
  const id = await thread(t);
  await t.http("wait", "POST", `/threads/${id}/runs/wait`, {
    assistant_id: "echo",
    input: { topic: 5 },
    config: { recursion_limit: 1 },
  });
});
add("POST /threads/{thread_id}/runs/wait", "sdk wait", async (t) => {
  const id = await thread(t);
  await t.sdk("wait", (c) => c.runs.wait(id, "echo", { input: { topic: "s" } }));
});
add("POST /threads/{thread_id}/runs", "background, join, get, list, delete", async (t) => {
  const id = await thread(t);
  const run = await t.http("create", "POST", `/threads/${id}/runs`, {
    assistant_id: "echo",
    input: { topic: "b" },
  });
  const runId = run.json?.run_id as string;
  await t.http("join", "GET", `/threads/${id}/runs/${runId}/join`);
  await t.http("get", "GET", `/threads/${id}/runs/${runId}`);
  await t.http("list", "GET", `/threads/${id}/runs`);
  await t.http("list limited", "GET", `/threads/${id}/runs?limit=1&offset=0&status=success`);
  await t.http("join stream", "GET", `/threads/${id}/runs/${runId}/stream`);
  await t.http("cancel finished", "POST", `/threads/${id}/runs/${runId}/cancel`);
  await t.http("delete", "DELETE", `/threads/${id}/runs/${runId}`);
  await t.http("get deleted", "GET", `/threads/${id}/runs/${runId}`);
  await t.http("get missing", "GET", `/threads/${id}/runs/${MISSING}`);
  await t.http("join missing", "GET", `/threads/${id}/runs/${MISSING}/join`);
});
add("POST /threads/{thread_id}/runs", "sdk create and join", async (t) => {
  const id = await thread(t);
  const run = await t.sdk("create", (c) => c.runs.create(id, "echo", { input: { topic: "c" } }));
  await t.sdk("join", (c) => c.runs.join(id, run!.run_id));
  await t.sdk("get", (c) => c.runs.get(id, run!.run_id));
  await t.sdk("list", (c) => c.runs.list(id));
});
for (const strategy of ["reject", "enqueue", "interrupt", "rollback"]) {
  add("POST /threads/{thread_id}/runs", `multitask ${strategy}`, async (t) => {
    const id = await thread(t);
    const first = await t.http("first", "POST", `/threads/${id}/runs`, {
      assistant_id: "slow",
      input: { topic: "1", delayMs: 400 },
    });
    await new Promise((r) => setTimeout(r, 150));
    const second = await t.http("second", "POST", `/threads/${id}/runs`, {
      assistant_id: "slow",
      input: { topic: "2", delayMs: 10 },
      multitask_strategy: strategy,
    });
    await t.http("join first", "GET", `/threads/${id}/runs/${first.json.run_id}/join`);
    if (second.json?.run_id) {
      await t.http("join second", "GET", `/threads/${id}/runs/${second.json.run_id}/join`);
    }
    await t.http("first after", "GET", `/threads/${id}/runs/${first.json.run_id}`);
    await t.http("state", "GET", `/threads/${id}/state`);
  });
}
for (const action of ["interrupt", "rollback"]) {
  add("POST /threads/{thread_id}/runs/{run_id}/cancel", `running, action ${action}`, async (t) => {
    const id = await thread(t);
    const run = await t.http("create", "POST", `/threads/${id}/runs`, {
      assistant_id: "slow",
      input: { topic: "1", delayMs: 400 },
    });
    await new Promise((r) => setTimeout(r, 150));
    await t.http(
      "cancel",
      "POST",
      `/threads/${id}/runs/${run.json.run_id}/cancel?wait=1&action=${action}`,
    );
    await t.http("get", "GET", `/threads/${id}/runs/${run.json.run_id}`);
    await t.http("thread", "GET", `/threads/${id}`);
  });
}

// ---- streams
const modes = [
  "values",
  "updates",
  "debug",
  "messages",
  "messages-tuple",
  "custom",
  "tasks",
  "checkpoints",
  "events",
];
for (const mode of modes) {
  for (const graph of mode.startsWith("messages") || mode === "events"
    ? ["chat"]
    : ["echo", "custom"]) {
    if (mode === "custom" && graph === "echo") continue;
    add("POST /threads/{thread_id}/runs/stream", `${mode} on ${graph}`, async (t) => {
      const id = await thread(t);
      const input =
        graph === "chat" ? { messages: [{ role: "user", content: "hi" }] } : { topic: "s" };
      await t.http("stream", "POST", `/threads/${id}/runs/stream`, {
        assistant_id: graph,
        input,
        stream_mode: mode,
      });
    });
  }
}
for (const combo of [
  ["values", "updates"],
  ["updates", "custom"],
  ["values", "messages-tuple"],
  ["values", "messages-tuple", "custom", "updates"],
  modes,
  [],
]) {
  add("POST /threads/{thread_id}/runs/stream", `modes [${combo.join(", ")}] on chat`, async (t) => {
    const id = await thread(t);
    await t.http("stream", "POST", `/threads/${id}/runs/stream`, {
      assistant_id: "chat",
      input: { messages: [{ role: "user", content: "hi" }] },
      stream_mode: combo,
    });
  });
}
add("POST /threads/{thread_id}/runs/stream", "no stream_mode, stream_subgraphs", async (t) => {
  const id = await thread(t);
  await t.http("stream", "POST", `/threads/${id}/runs/stream`, {
    assistant_id: "echo",
    input: { topic: "s" },
    stream_subgraphs: true,
  });
});
add("POST /threads/{thread_id}/runs/stream", "interrupted", async (t) => {
  const id = await thread(t);
  await t.http("stream", "POST", `/threads/${id}/runs/stream`, {
    assistant_id: "approval",
    input: { topic: "s" },
    stream_mode: ["values", "updates"],
  });
});
add("POST /threads/{thread_id}/runs/stream", "failing run", async (t) => {
  const id = await thread(t);
  await t.http("stream", "POST", `/threads/${id}/runs/stream`, {
    assistant_id: "echo",
    input: { topic: "s" },
    config: { recursion_limit: 1 },
  });
});
add("POST /threads/{thread_id}/runs/stream", "invalid body", async (t) => {
  const id = await thread(t);
  await t.http("stream", "POST", `/threads/${id}/runs/stream`, {
    assistant_id: "echo",
    stream_mode: "nope",
  });
});
add("POST /threads/{thread_id}/runs/stream", "sdk stream", async (t) => {
  const id = await thread(t);
  await t.sdkStream("stream", (c) =>
    c.runs.stream(id, "echo", { input: { topic: "s" }, streamMode: ["values", "updates"] }),
  );
});
add("POST /threads/{thread_id}/runs/stream", "sdk stream messages-tuple", async (t) => {
  const id = await thread(t);
  await t.sdkStream("stream", (c) =>
    c.runs.stream(id, "chat", {
      input: { messages: [{ role: "user", content: "hi" }] },
      streamMode: ["messages-tuple"],
    }),
  );
});
add("POST /threads/{thread_id}/runs/stream", "sdk stream messages, events, values", async (t) => {
  const id = await thread(t);
  await t.sdkStream("stream", (c) =>
    c.runs.stream(id, "chat", {
      input: { messages: [{ role: "user", content: "hi" }] },
      streamMode: ["messages", "events", "values"],
    }),
  );
});
add("POST /threads/{thread_id}/runs/stream", "modes [updates, messages] on chat", async (t) => {
  const id = await thread(t);
  await t.http("stream", "POST", `/threads/${id}/runs/stream`, {
    assistant_id: "chat",
    input: { messages: [{ role: "user", content: "hi" }] },
    stream_mode: ["updates", "messages"],
  });
});
add("POST /threads/{thread_id}/runs/stream", "sdk stream resumable, join stream", async (t) => {
  const id = await thread(t);
  let runId = "";
  await t.sdkStream("stream", async function* (c) {
    for await (const chunk of c.runs.stream(id, "echo", {
      input: { topic: "r" },
      streamMode: ["values"],
      streamResumable: true,
      onRunCreated: ({ run_id }) => void (runId = run_id),
    })) {
      yield chunk;
    }
  });
  await t.sdkStream(
    "joinStream",
    (c) =>
      c.runs.joinStream(id, runId, { streamMode: ["values"] }) as AsyncIterable<{
        event: string;
        data: unknown;
      }>,
  );
});

// ---- interrupts and resumes
const resumes = [
  ["resume string", { command: { resume: "yes" } }],
  ["resume object", { command: { resume: { approved: true } } }],
  ["resume null", { command: { resume: null } }],
  ["input null and command", { input: null, command: { resume: "yes" } }],
  ["command with update", { command: { update: { topic: "u" }, resume: "yes" } }],
  ["command goto", { command: { goto: "publish" } }],
  ["command goto list", { command: { goto: ["publish"] } }],
  ["command goto send", { command: { goto: { node: "publish", input: { topic: "g" } } } }],
  ["command update only", { command: { update: { topic: "u" } } }],
  ["command update list", { command: { update: [["topic", "u"]] } }],
  ["empty command", { command: {} }],
  ["resume map by interrupt id", "map"],
  ["input (no command)", { input: { topic: "again" } }],
  ["no input, no command", {}],
] as const;
for (const [name, extra] of resumes) {
  add("POST /threads/{thread_id}/runs/wait", `resume: ${name}`, async (t) => {
    const id = await interrupted(t);
    let payload: Record<string, unknown> = extra as Record<string, unknown>;
    if (extra === "map") {
      const state = await t.http("state", "GET", `/threads/${id}/state`);
      const interruptId = state.json.tasks?.[0]?.interrupts?.[0]?.id as string;
      payload = { command: { resume: { [interruptId]: "yes" } } };
    }
    await t.http("resume", "POST", `/threads/${id}/runs/wait`, {
      assistant_id: "approval",
      ...payload,
    });
    await t.http("state", "GET", `/threads/${id}/state`);
  });
}
add("POST /threads/{thread_id}/runs/stream", "resume as useStream sends it", async (t) => {
  const id = await interrupted(t);
  await t.http("resume", "POST", `/threads/${id}/runs/stream`, {
    assistant_id: "approval",
    command: { resume: "yes" },
    stream_mode: ["values", "messages-tuple", "updates", "custom"],
    stream_subgraphs: true,
    stream_resumable: true,
    on_disconnect: "continue",
    config: { configurable: {} },
    metadata: {},
  });
});
add("POST /threads/{thread_id}/runs/stream", "sdk resume with Command", async (t) => {
  const id = await interrupted(t);
  await t.sdkStream("resume", (c) =>
    c.runs.stream(id, "approval", {
      command: { resume: { approved: true } },
      streamMode: ["values"],
    }),
  );
});
add(
  "POST /threads/{thread_id}/runs/stream",
  "resume a thread that is not interrupted",
  async (t) => {
    const id = await ranThread(t);
    await t.http("resume", "POST", `/threads/${id}/runs/stream`, {
      assistant_id: "echo",
      command: { resume: "yes" },
      stream_mode: ["values"],
    });
  },
);

// ---- stateless runs
add("POST /runs/wait", "input", async (t) => {
  await t.http("wait", "POST", "/runs/wait", { assistant_id: "echo", input: { topic: "l" } });
});
add("POST /runs/wait", "on_completion keep", async (t) => {
  await t.http("wait", "POST", "/runs/wait", {
    assistant_id: "echo",
    input: { topic: "l" },
    on_completion: "keep",
  });
  await t.http("threads", "POST", "/threads/search", {});
});
add("POST /runs/wait", "missing assistant_id", async (t) => {
  await t.http("wait", "POST", "/runs/wait", { input: { topic: "l" } });
});
add("POST /runs/wait", "sdk wait", async (t) => {
  await t.sdk("wait", (c) => c.runs.wait(null, "echo", { input: { topic: "l" } }));
});
add("POST /runs/stream", "values and updates", async (t) => {
  await t.http("stream", "POST", "/runs/stream", {
    assistant_id: "echo",
    input: { topic: "l" },
    stream_mode: ["values", "updates"],
  });
});
add("POST /runs/stream", "sdk stream", async (t) => {
  await t.sdkStream("stream", (c) =>
    c.runs.stream(null, "echo", { input: { topic: "l" }, streamMode: "updates" }),
  );
});
add("POST /runs", "background", async (t) => {
  await t.http("create", "POST", "/runs", { assistant_id: "echo", input: { topic: "l" } });
});

// ---- bulk operations
add("POST /runs/batch", "two runs, kept and joined", async (t) => {
  const res = await t.http("batch", "POST", "/runs/batch", [
    { assistant_id: "echo", input: { topic: "b1" }, on_completion: "keep", metadata: { n: 1 } },
    { assistant_id: "echo", input: { topic: "b2" }, on_completion: "keep" },
  ]);
  for (const [i, run] of ((res.json ?? []) as Json[]).entries()) {
    await t.http(`join ${i}`, "GET", `/threads/${run.thread_id}/runs/${run.run_id}/join`);
  }
});
for (const [name, body] of [
  ["empty list", []],
  ["an item without assistant_id", [{ assistant_id: "echo" }, { input: { topic: "x" } }]],
  ["not a list", { assistant_id: "echo" }],
] as const) {
  add("POST /runs/batch", name, async (t) => {
    await t.http("batch", "POST", "/runs/batch", body);
    await t.http("threads", "POST", "/threads/search", {});
  });
}
add("GET /runs/{run_id}/stream", "join stream of a finished stateless run", async (t) => {
  const res = await t.http("create", "POST", "/runs", {
    assistant_id: "echo",
    input: { topic: "j" },
    on_completion: "keep",
  });
  await t.http("join", "GET", `/threads/${res.json.thread_id}/runs/${res.json.run_id}/join`);
  await t.http("join stream", "GET", `/runs/${res.json.run_id}/stream`);
});
add("GET /runs/{run_id}/stream", "join stream of an unknown run", async (t) => {
  await t.http("join stream", "GET", `/runs/${MISSING}/stream`);
});
// Refinery-only (LangGraph Platform's bulk operations; the reference, `langgraph dev`, has none).
// The other Refinery-only operations of /openapi.json are not replayed: the reference has nothing
// to compare them with (GET /metrics, /eval…, /approvals, POST /threads/{id}/approval,
// /threads/{id}/feedback, run feedback, /assistants/{id}/lessons…, GET /export, /graphs…).
add("POST /runs/cancel", "by thread and run ids", async (t) => {
  const id = await thread(t);
  const run = await t.http("create", "POST", `/threads/${id}/runs`, {
    assistant_id: "slow",
    input: { topic: "c", delayMs: 300 },
  });
  await t.http("cancel", "POST", "/runs/cancel", { thread_id: id, run_ids: [run.json.run_id] });
  await t.http("join", "GET", `/threads/${id}/runs/${run.json.run_id}/join`);
  await t.http("get", "GET", `/threads/${id}/runs/${run.json.run_id}`);
});
add("POST /runs/cancel", "neither ids nor status", async (t) => {
  await t.http("cancel", "POST", "/runs/cancel", {});
});
add("POST /threads/prune", "delete", async (t) => {
  const id = await ranThread(t);
  await t.http("prune", "POST", "/threads/prune", { thread_ids: [id] });
  await t.http("get", "GET", `/threads/${id}`);
});
add("POST /threads/prune", "keep_latest", async (t) => {
  const id = await ranThread(t);
  await t.http("prune", "POST", "/threads/prune", { thread_ids: [id], strategy: "keep_latest" });
  await t.http("history", "POST", `/threads/${id}/history`, {});
});

// ---- store
/** Items in two nested namespaces and one other. */
async function storeItems(t: Target): Promise<void> {
  for (const [namespace, key, value] of [
    [["users", "alice"], "prefs", { theme: "dark", size: 3 }],
    [["users", "alice"], "profile", { name: "Alice", size: 5 }],
    [["users", "bob"], "prefs", { theme: "light", size: 1 }],
    [["docs"], "readme", { text: "hello" }],
  ] as const) {
    await t.http("setup: put", "PUT", "/store/items", { namespace, key, value });
    t.steps.pop();
  }
}
for (const [name, query] of [
  ["missing item", "namespace=users.alice&key=nope"],
  ["nested", "namespace=users.alice&key=prefs"],
  ["refresh_ttl true", "namespace=users.alice&key=prefs&refresh_ttl=true"],
  ["refresh_ttl false", "namespace=users.alice&key=prefs&refresh_ttl=false"],
  ["prefix only", "namespace=users&key=prefs"],
  ["no namespace", "key=prefs"],
  ["empty namespace", "namespace=&key=prefs"],
  ["no key", "namespace=users.alice"],
  ["unknown parameter", "namespace=users.alice&key=prefs&colour=blue"],
  ["refresh_ttl not a flag", "namespace=users.alice&key=prefs&refresh_ttl=maybe"],
] as const) {
  add("GET /store/items", name, async (t) => {
    await storeItems(t);
    await t.http("get", "GET", `/store/items?${query}`);
  });
}
for (const [name, body] of [
  ["existing", { namespace: ["users", "alice"], key: "prefs" }],
  ["missing item", { namespace: ["users", "alice"], key: "nope" }],
  ["empty namespace", { namespace: [], key: "prefs" }],
  ["missing key", { namespace: ["users", "alice"] }],
  ["unknown field", { namespace: ["users", "alice"], key: "prefs", colour: "blue" }],
] as const) {
  add("DELETE /store/items", name, async (t) => {
    await storeItems(t);
    await t.http("delete", "DELETE", "/store/items", body);
    await t.http("get", "GET", "/store/items?namespace=users.alice&key=prefs");
  });
}
add("DELETE /store/items", "sdk delete", async (t) => {
  await storeItems(t);
  await t.sdk("delete", (c) => c.store.deleteItem(["users", "alice"], "prefs"));
  await t.sdk("delete missing", (c) => c.store.deleteItem(["users", "alice"], "nope"));
  await t.sdk("get", (c) => c.store.getItem(["users", "alice"], "prefs"));
});
for (const [name, body] of [
  ["empty", {}],
  ["prefix", { namespace_prefix: ["users"] }],
  ["nested prefix", { namespace_prefix: ["users", "alice"] }],
  ["empty prefix", { namespace_prefix: [] }],
  ["unknown prefix", { namespace_prefix: ["nobody"] }],
  ["filter", { namespace_prefix: ["users"], filter: { theme: "dark" } }],
  ["filter operator", { filter: { size: { $gt: 2 } } }],
  ["filter no match", { filter: { theme: "blue" } }],
  ["limit and offset", { namespace_prefix: ["users"], limit: 1, offset: 1 }],
  ["offset past the end", { offset: 10 }],
  ["limit 0", { limit: 0 }],
  ["query", { namespace_prefix: ["docs"], query: "hello" }],
  ["refresh_ttl", { namespace_prefix: ["docs"], refresh_ttl: true }],
  ["nulls", { namespace_prefix: null, filter: null, limit: null, offset: null, query: null }],
  ["unknown field", { namespace_prefix: ["users"], colour: "blue" }],
  ["limit a string", { limit: "2" }],
  ["namespace_prefix a string", { namespace_prefix: "users" }],
  ["filter an array", { filter: ["theme"] }],
] as const) {
  add("POST /store/items/search", name, async (t) => {
    await storeItems(t);
    await t.http("search", "POST", "/store/items/search", body);
  });
}
add("POST /store/items/search", "sdk search", async (t) => {
  await storeItems(t);
  await t.sdk("search", (c) => c.store.searchItems(["users"], { filter: { theme: "dark" } }));
  await t.sdk("search paged", (c) => c.store.searchItems(["users"], { limit: 1, offset: 1 }));
  await t.sdk("search all", (c) => c.store.searchItems([]));
});
for (const [name, body] of [
  ["empty", {}],
  ["prefix", { prefix: ["users"] }],
  ["empty prefix", { prefix: [] }],
  ["suffix", { suffix: ["alice"] }],
  ["max_depth", { max_depth: 1 }],
  ["limit and offset", { limit: 1, offset: 1 }],
  ["nulls", { prefix: null, suffix: null, max_depth: null, limit: null, offset: null }],
  ["unknown field", { colour: "blue" }],
  ["max_depth a string", { max_depth: "1" }],
  ["prefix a string", { prefix: "users" }],
] as const) {
  add("POST /store/namespaces", name, async (t) => {
    await storeItems(t);
    await t.http("namespaces", "POST", "/store/namespaces", body);
  });
}
add("POST /store/namespaces", "sdk list", async (t) => {
  await storeItems(t);
  await t.sdk("list", (c) => c.store.listNamespaces());
  await t.sdk("list prefix depth", (c) =>
    c.store.listNamespaces({ prefix: ["users"], maxDepth: 1 }),
  );
  await t.sdk("list suffix", (c) => c.store.listNamespaces({ suffix: ["prefs"] }));
});

// Puts last: the reference's in-memory store keeps listing a namespace after its last item is
// deleted (reset cannot empty it), so the namespaces these cases create would show up in every
// later listing; the cases above only use the namespaces storeItems() recreates.
for (const [name, body] of [
  ["simple", { namespace: ["users", "alice"], key: "prefs", value: { theme: "dark" } }],
  ["nested namespace", { namespace: ["a", "b", "c", "d"], key: "k", value: { n: 1 } }],
  ["empty namespace", { namespace: [], key: "k", value: {} }],
  ["index false", { namespace: ["docs"], key: "k", value: { t: "x" }, index: false }],
  ["index fields", { namespace: ["docs"], key: "k", value: { t: "x" }, index: ["t"] }],
  ["ttl", { namespace: ["docs"], key: "k", value: { t: "x" }, ttl: 5 }],
  ["ttl null and index null", { namespace: ["docs"], key: "k", value: {}, ttl: null, index: null }],
  ["unknown field", { namespace: ["docs"], key: "k", value: {}, colour: "blue" }],
  ["missing key", { namespace: ["docs"], value: {} }],
  ["missing value", { namespace: ["docs"], key: "k" }],
  ["value a string", { namespace: ["docs"], key: "k", value: "text" }],
  ["key a number", { namespace: ["docs"], key: 7, value: {} }],
  ["namespace a string", { namespace: "docs", key: "k", value: {} }],
  ["label with a period", { namespace: ["a.b"], key: "k", value: {} }],
  ["empty label", { namespace: [""], key: "k", value: {} }],
  ["ttl a string", { namespace: ["docs"], key: "k", value: {}, ttl: "5" }],
] as const) {
  add("PUT /store/items", name, async (t) => {
    await t.http("put", "PUT", "/store/items", body);
    const ns = Array.isArray(body.namespace) ? body.namespace.join(".") : String(body.namespace);
    await t.http("get", "GET", `/store/items?namespace=${encodeURIComponent(ns)}&key=k`);
  });
}
add("PUT /store/items", "twice", async (t) => {
  await t.http("first", "PUT", "/store/items", { namespace: ["d"], key: "k", value: { v: 1 } });
  await t.http("second", "PUT", "/store/items", { namespace: ["d"], key: "k", value: { v: 2 } });
  await t.http("get", "GET", "/store/items?namespace=d&key=k");
});
add("PUT /store/items", "sdk put and get", async (t) => {
  await t.sdk("put", (c) => c.store.putItem(["users", "alice"], "k", { a: 1 }));
  await t.sdk("put ttl", (c) =>
    c.store.putItem(["users"], "t", { a: 2 }, { ttl: 10, index: false }),
  );
  await t.sdk("get", (c) => c.store.getItem(["users", "alice"], "k"));
  await t.sdk("get refresh", (c) => c.store.getItem(["users"], "t", { refreshTtl: true }));
  await t.sdk("get missing", (c) => c.store.getItem(["users", "alice"], "nope"));
  await t.sdk("put empty namespace", (c) => c.store.putItem([], "k", { a: 1 }));
});

// ---- subgraphs (issue 17): the `nested` graph (outline → review[prep → approve[ask]] → publish,
// `ask` calls interrupt()).
/** A thread stopped at the interrupt inside nested's subgraph; returns its id. */
async function nestedInterrupted(t: Target): Promise<string> {
  return ranThread(t, "nested", { topic: "n" });
}
for (const [name, query] of [
  ["nested", ""],
  ["nested, recurse", "?recurse=true"],
  ["nested, namespace", "/review"],
  ["nested, nested namespace with recurse", "/review%7Capprove?recurse=true"],
  ["nested, nested namespace without recurse", "/review%7Capprove"],
  ["nested, unknown namespace", "/nope"],
] as const) {
  add("GET /assistants/{assistant_id}/subgraphs", name, async (t) => {
    await t.http("subgraphs", "GET", `/assistants/nested/subgraphs${query}`);
  });
}
add("GET /assistants/{assistant_id}/subgraphs", "sdk getSubgraphs", async (t) => {
  await t.sdk("recurse", (c) => c.assistants.getSubgraphs("nested", { recurse: true }));
  await t.sdk("namespace", (c) => c.assistants.getSubgraphs("nested", { namespace: "review" }));
});
add(
  "GET /threads/{thread_id}/state",
  "subgraph interrupt, with and without subgraphs",
  async (t) => {
    const id = await nestedInterrupted(t);
    await t.http("run", "GET", `/threads/${id}/runs`);
    await t.http("state", "GET", `/threads/${id}/state`);
    await t.http("subgraphs", "GET", `/threads/${id}/state?subgraphs=true`);
    await t.http("thread", "GET", `/threads/${id}`);
  },
);
add("POST /threads/{thread_id}/state/checkpoint", "a subgraph's checkpoint_ns", async (t) => {
  const id = await nestedInterrupted(t);
  const state = await t.http("state", "GET", `/threads/${id}/state`);
  const checkpoint = state.json.tasks?.[0]?.checkpoint as Record<string, unknown>;
  await t.http("subgraph state", "POST", `/threads/${id}/state/checkpoint`, { checkpoint });
  await t.http("subgraph state, subgraphs", "POST", `/threads/${id}/state/checkpoint`, {
    checkpoint,
    subgraphs: true,
  });
  await t.http("subgraph history", "POST", `/threads/${id}/history`, { checkpoint, limit: 5 });
  await t.sdk("sdk getState", (c) => c.threads.getState(id, checkpoint as never));
});
for (const modify of [false, true]) {
  add(
    "POST /threads/{thread_id}/runs/wait",
    `resume a subgraph interrupt, ${modify ? "after updating the subgraph's state" : "no state change"}`,
    async (t) => {
      const id = await nestedInterrupted(t);
      if (modify) {
        const state = await t.http("state", "GET", `/threads/${id}/state?subgraphs=true`);
        const inner = state.json.tasks?.[0]?.state?.tasks?.[0]?.state?.checkpoint;
        await t.http("update subgraph", "POST", `/threads/${id}/state`, {
          values: { topic: "edited" },
          checkpoint: inner,
        });
        await t.http("state after update", "GET", `/threads/${id}/state?subgraphs=true`);
      }
      await t.http("resume", "POST", `/threads/${id}/runs/wait`, {
        assistant_id: "nested",
        command: { resume: "yes" },
      });
      await t.http("state", "GET", `/threads/${id}/state`);
      await t.http("history", "POST", `/threads/${id}/history`, { limit: 3 });
    },
  );
}
add("POST /threads/{thread_id}/runs/wait", "nested, interrupt_before a subgraph", async (t) => {
  const id = await thread(t);
  await t.http("run", "POST", `/threads/${id}/runs/wait`, {
    assistant_id: "nested",
    input: { topic: "i" },
    interrupt_before: ["review"],
  });
  await t.http("state", "GET", `/threads/${id}/state?subgraphs=true`);
  await t.http("continue", "POST", `/threads/${id}/runs/wait`, {
    assistant_id: "nested",
    input: null,
  });
});
for (const field of ["interrupt_before", "interrupt_after"]) {
  add("POST /threads/{thread_id}/runs/wait", `nested, ${field} a subgraph's node`, async (t) => {
    const id = await thread(t);
    await t.http("run", "POST", `/threads/${id}/runs/wait`, {
      assistant_id: "nested",
      input: { topic: "i" },
      [field]: ["prep"],
    });
  });
}
add("POST /threads/{thread_id}/runs/stream", "nested, stream_subgraphs, then resume", async (t) => {
  const id = await thread(t);
  await t.http("stream", "POST", `/threads/${id}/runs/stream`, {
    assistant_id: "nested",
    input: { topic: "s" },
    stream_mode: ["values", "updates", "custom"],
    stream_subgraphs: true,
  });
  await t.http("resume", "POST", `/threads/${id}/runs/stream`, {
    assistant_id: "nested",
    command: { resume: "ok" },
    stream_mode: ["updates"],
    stream_subgraphs: true,
  });
});
add("POST /threads/{thread_id}/runs/stream", "nested, without stream_subgraphs", async (t) => {
  const id = await thread(t);
  await t.sdkStream("stream", (c) =>
    c.runs.stream(id, "nested", { input: { topic: "s" }, streamMode: ["values", "updates"] }),
  );
});
// ---- end subgraphs

// ---- issue 17 (h4): supersteps, thread.config, runtime context, /wait and /join at an interrupt
add("POST /threads", "supersteps", async (t) => {
  const res = await t.http("create", "POST", "/threads", {
    metadata: { graph_id: "echo" },
    supersteps: [
      { updates: [{ values: { topic: "s", log: "seeded" }, as_node: "first" }] },
      { updates: [{ values: { log: "again" }, as_node: "second" }] },
    ],
  });
  const id = res.json.thread_id as string;
  await t.http("state", "GET", `/threads/${id}/state`);
  await t.http("history", "POST", `/threads/${id}/history`, {});
  await t.http("run on", "POST", `/threads/${id}/runs/wait`, { assistant_id: "echo", input: null });
});
add("POST /threads", "supersteps with a command", async (t) => {
  const res = await t.http("create", "POST", "/threads", {
    metadata: { graph_id: "echo" },
    supersteps: [
      { updates: [{ command: { update: { topic: "c" }, goto: "second" }, as_node: "first" }] },
    ],
  });
  await t.http("state", "GET", `/threads/${res.json.thread_id as string}/state`);
});
add("POST /threads", "sdk supersteps", async (t) => {
  await t.sdk("create", async (c) => {
    const created = await c.threads.create({
      graphId: "echo",
      supersteps: [{ updates: [{ values: { topic: "sdk" }, asNode: "first" }] }],
    });
    return c.threads.getState(created.thread_id);
  });
});
add("GET /threads/{thread_id}", "config after runs", async (t) => {
  const id = await thread(t);
  await t.http("run", "POST", `/threads/${id}/runs/wait`, {
    assistant_id: "echo",
    input: { topic: "a" },
    config: { configurable: { pref: "short" }, tags: ["t1"] },
  });
  await t.http("get", "GET", `/threads/${id}`);
  await t.http("run again", "POST", `/threads/${id}/runs/wait`, {
    assistant_id: "echo",
    input: { topic: "b" },
    config: { configurable: { other: 1 } },
  });
  await t.http("get again", "GET", `/threads/${id}`);
});
for (const [name, body] of [
  ["context", { assistant_id: "ctx", input: {}, context: { tone: "formal" } }],
  ["context with limit", { assistant_id: "ctx", input: {}, context: { tone: "casual", limit: 2 } }],
  ["context refused by the schema", { assistant_id: "ctx", input: {}, context: { tone: "rude" } }],
] as const) {
  add(
    "POST /runs/wait",
    name,
    async (t) => void (await t.http("wait", "POST", "/runs/wait", body)),
  );
}
add("POST /runs/wait", "context merged over the assistant's", async (t) => {
  const id = await assistant(t, { graph_id: "ctx", context: { tone: "casual", limit: 3 } });
  await t.http("defaults", "POST", "/runs/wait", { assistant_id: id, input: {} });
  await t.http("merged", "POST", "/runs/wait", {
    assistant_id: id,
    input: {},
    context: { tone: "formal" },
  });
  await t.sdk("sdk merged", (c) => c.runs.wait(null, id, { input: {}, context: { limit: 7 } }));
});
add("GET /threads/{thread_id}/runs/{run_id}/join", "a run stopped at an interrupt", async (t) => {
  const id = await thread(t);
  await t.http("wait", "POST", `/threads/${id}/runs/wait`, {
    assistant_id: "approval",
    input: { topic: "i" },
  });
  const runs = await t.http("list", "GET", `/threads/${id}/runs`);
  const runId = (runs.json as unknown as { run_id: string }[])[0]!.run_id;
  await t.http("join", "GET", `/threads/${id}/runs/${runId}/join`);
  await t.sdk("sdk join", (c) => c.runs.join(id, runId));
});
// ---- custom routes (langgraph.json http.app: diff/app.ts) and generative UI (ui: diff/ui.jsx)
add("custom routes", "the app's own GET route", async (t) => {
  await t.http("hello", "GET", "/custom/hello?q=1");
});
add("custom routes", "the app's own POST route", async (t) => {
  await t.http("echo", "POST", "/custom/echo", { a: [1, "x"], b: null });
});
add("custom routes", "a middleware changes the body of POST /threads", async (t) => {
  const created = await t.http(
    "create",
    "POST",
    "/threads",
    { metadata: { team: "blue" } },
    { headers: { "x-rewrite": "1" } },
  );
  await t.http("get", "GET", `/threads/${created.json.thread_id}`);
});
/** The HTML names this server's host: the same for both once the host is replaced. */
function hostless(t: Target): void {
  const step = t.steps.at(-1)!;
  if (typeof step.body === "string")
    step.body = step.body.replaceAll(new URL(t.url).host, "<host>");
}
add("POST /ui/{graph_id}", "a component's HTML", async (t) => {
  await t.http(
    "ui",
    "POST",
    "/ui/echo",
    { name: "Greeting" },
    { headers: { accept: "text/html" } },
  );
  hostless(t);
});
add("POST /ui/{graph_id}", "through the SDK's UI client", async (t) => {
  const ui = (
    t.client as unknown as { "~ui": { getComponent(a: string, b: string): Promise<string> } }
  )["~ui"];
  const html = await t.sdk("getComponent", () => ui.getComponent("echo", "Other"));
  const step = t.steps.at(-1)!;
  if (typeof html === "string") step.result = html.replaceAll(new URL(t.url).host, "<host>");
});
add("POST /ui/{graph_id}", "a graph without UI", async (t) => {
  await t.http("ui", "POST", "/ui/approval", { name: "Greeting" });
});
add("POST /ui/{graph_id}", "no name", async (t) => {
  await t.http("ui", "POST", "/ui/echo", {});
});
add("GET /ui/{graph_id}/{file}", "the bundle's script", async (t) => {
  await t.http("script", "GET", "/ui/echo/entrypoint.js");
  // Two bundlers' output: what a client relies on is that it is served, as JavaScript.
  const step = t.steps.at(-1)!;
  step.body =
    typeof step.body === "string" && step.body.includes("__LGUI_echo") ? "<bundle>" : step.body;
});
add("GET /ui/{graph_id}/{file}", "a file the bundle does not have", async (t) => {
  await t.http("file", "GET", "/ui/echo/nope.js");
});

// ---- thread protocol (issue 18): POST /threads/{id}/commands and the SSE event stream
// /threads/{id}/stream/events, raw and through the SDK's ThreadStream. The event stream never
// ends by itself: it is read until the run's terminal lifecycle event, then left.
const TERMINAL = new Set(["completed", "failed", "interrupted"]);
type ProtocolEv = {
  method: string;
  seq: number;
  params: { namespace: string[]; data: Record<string, unknown> };
};
/** Protocol events with their wall-clock timestamps replaced (they are numbers). */
const untimed = (e: ProtocolEv) => ({
  ...e,
  params: { ...e.params, timestamp: "<ts>" },
});
async function protocolStream(
  t: Target,
  label: string,
  threadId: string,
  filter: Record<string, unknown>,
  terminals = 1,
): Promise<ProtocolEv[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 15_000);
  const events: ProtocolEv[] = [];
  const res = await fetch(`${t.url}/threads/${threadId}/stream/events`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify(filter),
    signal: abort.signal,
  });
  const step: Step = {
    label,
    status: res.status,
    headers: { "content-type": (res.headers.get("content-type") ?? "").split(";")[0]!.trim() },
  };
  try {
    if (res.ok && res.body) {
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let seen = 0;
      while (seen < terminals) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split("\n").find((l) => l.startsWith("data: "));
          if (!data) continue;
          const e = JSON.parse(data.slice(6)) as ProtocolEv;
          events.push(e);
          const root = e.params.namespace.length === 0;
          if (root && e.method === "lifecycle" && TERMINAL.has(String(e.params.data.event)))
            seen += 1;
        }
      }
      step.events = events.map((e) => ({ event: e.method, data: untimed(e) }));
    } else step.body = await res.text();
  } catch {
    step.events = events.map((e) => ({ event: e.method, data: untimed(e) }));
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  t.steps.push(step);
  return events;
}
const command = (t: Target, label: string, threadId: string, method: string, params?: unknown) =>
  t.http(label, "POST", `/threads/${threadId}/commands`, {
    id: 1,
    method,
    ...(params === undefined ? {} : { params }),
  });
const ALL_CHANNELS = ["values", "updates", "lifecycle", "input", "custom", "messages"];

add("POST /threads/{thread_id}/commands", "run.start on echo, then its events", async (t) => {
  const id = await thread(t);
  await command(t, "start", id, "run.start", { assistant_id: "echo", input: { topic: "p" } });
  await protocolStream(t, "events", id, { channels: ALL_CHANNELS });
  await command(t, "state", id, "state.get");
  await command(t, "state keys", id, "state.get", { keys: ["log"] });
});
add("POST /threads/{thread_id}/commands", "run.start on a new thread id", async (t) => {
  const id = "00000000-0000-4000-8000-0000000000b1";
  await command(t, "start", id, "run.start", { assistant_id: "echo", input: { topic: "n" } });
  await protocolStream(t, "events", id, { channels: ["values", "lifecycle"] });
  await command(t, "state", id, "state.get");
});
add("POST /threads/{thread_id}/commands", "interrupt, input.respond, resumed", async (t) => {
  const id = await thread(t);
  await command(t, "start", id, "run.start", { assistant_id: "approval", input: { topic: "a" } });
  const first = await protocolStream(t, "until interrupted", id, { channels: ALL_CHANNELS });
  const request = first.find((e) => e.method === "input.requested");
  const interruptId = String(request?.params.data.interrupt_id ?? "none");
  await command(t, "respond", id, "input.respond", {
    interrupt_id: interruptId,
    response: { approved: true },
  });
  const since = first.at(-1)?.seq ?? 0;
  await protocolStream(t, "resumed", id, { channels: ALL_CHANNELS, since });
  await t.http("state", "GET", `/threads/${id}/state`);
});
add("POST /threads/{thread_id}/commands", "messages and custom events", async (t) => {
  const a = await thread(t);
  await command(t, "start chat", a, "run.start", {
    assistant_id: "chat",
    input: { messages: [{ role: "user", content: "hi" }] },
  });
  await protocolStream(t, "chat events", a, { channels: ["messages", "lifecycle"] });
  const b = await thread(t);
  await command(t, "start custom", b, "run.start", {
    assistant_id: "custom",
    input: { topic: "c" },
  });
  await protocolStream(t, "custom events", b, { channels: ["custom", "lifecycle"] });
});
add("POST /threads/{thread_id}/commands", "failing run", async (t) => {
  const id = await thread(t);
  await command(t, "start", id, "run.start", { assistant_id: "echo", input: { topic: 5 } });
  await protocolStream(t, "events", id, { channels: ["lifecycle", "values"] });
});
add("POST /threads/{thread_id}/commands", "invalid commands", async (t) => {
  const id = await ranThread(t);
  await command(t, "unknown method", id, "state.fork");
  await command(t, "run.start without assistant", id, "run.start", { input: {} });
  await command(t, "respond while not interrupted", id, "input.respond", {
    interrupt_id: "x",
    response: 1,
  });
  await command(t, "respond without interrupt_id", id, "input.respond", { response: 1 });
  await t.http("no id", "POST", `/threads/${id}/commands`, { method: "state.get" });
  await t.http("negative id", "POST", `/threads/${id}/commands`, { id: -1, method: "state.get" });
  await t.http("no method", "POST", `/threads/${id}/commands`, { id: 1 });
  await command(t, "state of a missing thread", MISSING, "state.get");
});
add("POST /threads/{thread_id}/stream/events", "invalid filters", async (t) => {
  const id = await ranThread(t);
  for (const [label, body] of [
    ["no channels", {}],
    ["unknown field", { channels: ["values"], colour: "blue" }],
    ["negative since", { channels: ["values"], since: -1 }],
    ["depth not integer", { channels: ["values"], depth: 1.5 }],
  ] as const)
    await t.http(label, "POST", `/threads/${id}/stream/events`, body);
});
add("POST /threads/{thread_id}/stream/events", "replay of a finished run, since", async (t) => {
  const id = await thread(t);
  await command(t, "start", id, "run.start", { assistant_id: "echo", input: { topic: "r" } });
  const all = await protocolStream(t, "all", id, { channels: ["values", "lifecycle"] });
  await protocolStream(t, "again", id, { channels: ["values", "lifecycle"] });
  const since = all.find((e) => e.method === "values")?.seq ?? 0;
  await protocolStream(t, "since first values", id, { channels: ["values", "lifecycle"], since });
});
for (const transport of ["sse", "websocket"] as const) {
  add("ThreadStream (SDK)", `run.start and input.respond over ${transport}`, async (t) => {
    await t.sdk("thread stream", async (client) => {
      const stream = // A thread id per transport: the reference keeps a thread's protocol record (bound to
        // the transport that first used it) for the life of the process.
        client.threads.stream(
          `00000000-0000-4000-8000-0000000000${transport === "sse" ? "b2" : "b3"}`,
          {
            assistantId: "approval",
            ...(transport === "websocket"
              ? {
                  transport: "websocket" as const,
                  webSocketFactory: (url: string) =>
                    new WebSocket(url) as unknown as globalThis.WebSocket,
                }
              : {}),
          },
        );
      const events: ProtocolEv[] = [];
      stream.onEvent((e) => events.push(e as unknown as ProtocolEv));
      try {
        await stream.run.start({ input: { topic: "sdk" } });
        for (let i = 0; i < 300 && !stream.interrupted; i++)
          await new Promise((r) => setTimeout(r, 20));
        const interrupts = stream.interrupts.map((i) => i.payload);
        await stream.input.respond({
          interrupt_id: stream.interrupts[0]?.interruptId ?? "none",
          namespace: [],
          response: "yes",
        });
        for (let i = 0; i < 300; i++) {
          const last = events
            .filter((e) => e.method === "lifecycle" && e.params.namespace.length === 0)
            .at(-1);
          if (last?.params.data.event === "completed") break;
          await new Promise((r) => setTimeout(r, 20));
        }
        // Grouped by channel, in order within each: how a transport interleaves channels depends
        // on delivery timing (over WebSocket the reference's order of an interrupt and the values
        // around it varied from run to run under load), while each channel's order is the protocol.
        const byChannel = (a: ProtocolEv, b: ProtocolEv) => a.method.localeCompare(b.method);
        return {
          interrupts,
          events: [...events].sort(byChannel).map((e) => ({
            method: e.method,
            data: e.method === "values" ? e.params.data : e.params.data.event,
          })),
        };
      } finally {
        await stream.close();
      }
    });
  });
}

// ---- dev server: POST /internal/truncate. Last: the reference keeps a store namespace whose
// items were all deleted (the harness's reset deletes items one by one), which would show in the
// store cases' namespace lists and search order.
for (const [name, flags] of [
  ["threads and runs", { threads: true, runs: true }],
  ["runs", { runs: true }],
  ["checkpointer", { checkpointer: true }],
  ["assistants", { assistants: true }],
  ["store", { store: true }],
  ["everything", { runs: true, threads: true, assistants: true, checkpointer: true, store: true }],
  ["no flags", {}],
  ["unknown flag", { colour: true }],
] as const) {
  add("POST /internal/truncate", name, async (t) => {
    const id = await ranThread(t);
    await assistant(t);
    await t.http("setup: put", "PUT", "/store/items", {
      namespace: ["t"],
      key: "k",
      value: { v: 1 },
    });
    t.steps.pop();
    await t.http("truncate", "POST", "/internal/truncate", flags);
    await t.http("threads", "POST", "/threads/search", {});
    await t.http("runs", "GET", `/threads/${id}/runs`);
    await t.http("state", "GET", `/threads/${id}/state`);
    await t.http("assistants", "POST", "/assistants/search", {}, { unordered: true });
    await t.http("item", "GET", "/store/items?namespace=t&key=k");
  });
}

export const CORPUS: readonly Case[] = cases;
