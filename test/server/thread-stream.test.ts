// The thread protocol through the SDK's ThreadStream (client.threads.stream) against a real
// listening server, over SSE and WebSocket: a chat graph streams its reply (messages), its
// state (values, updates), stops at an interrupt (input.requested, lifecycle "interrupted"),
// and is resumed through the protocol (input.respond); a tool-calling graph streams its tool
// calls (tools) and named custom events (custom:<name>). Then authentication, tenant isolation,
// and validation of commands, filters and WebSocket messages.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import {
  Client,
  ProtocolWebSocketTransportAdapter,
  type ThreadStream,
} from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { keyHeaders, keysEnv, sdkClient } from "../support/auth.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { eventually } from "../support/wait.ts";

const CONFIG = join(import.meta.dirname, "../fixtures/thread-stream-app/langgraph.json");

interface Ev {
  method: string;
  seq: number;
  params: { namespace: string[]; node?: string; data: Record<string, unknown> };
}

/** Every event the thread sees (each once), in arrival order. */
function record(thread: ThreadStream): Ev[] {
  const events: Ev[] = [];
  thread.onEvent((e) => events.push(e as unknown as Ev));
  return events;
}

/** The run's own lifecycle (the root namespace; nodes that stream get one of their own). */
const lifecycles = (events: Ev[]) =>
  events
    .filter((e) => e.method === "lifecycle" && e.params.namespace.length === 0)
    .map((e) => e.params.data.event);

const wsFactory = (headers?: Record<string, string>) => (url: string) =>
  new WebSocket(url, headers ? { headers } : {}) as unknown as globalThis.WebSocket;

/** Runs the chat graph to its interrupt, answers it, and checks what the client saw. */
async function chatRoundTrip(thread: ThreadStream): Promise<void> {
  const events = record(thread);
  // The projections the React hooks read: opened before the run, filled by it.
  const values = thread.values;
  const messageHandles = thread.messages;
  // A channel no projection reads: subscribed explicitly (the client receives only those).
  const updates = await thread.subscribe(["updates"]);
  await thread.run.start({ input: { messages: [{ type: "human", content: "hi" }] } });
  await eventually(() => (thread.interrupted ? true : undefined), "the interrupt", 10_000);

  // Messages: the model's reply streamed as deltas, one message, finished.
  const messages = events.filter((e) => e.method === "messages").map((e) => e.params.data);
  expect(messages[0]).toMatchObject({ event: "message-start" });
  const deltas = messages
    .filter((m) => m.event === "content-block-delta")
    .map((m) => (m.delta as { type: string; text: string }).text);
  expect(deltas.length).toBeGreaterThan(1);
  expect(deltas.join("")).toBe("hello there");
  expect(messages.at(-1)).toMatchObject({ event: "message-finish" });
  // Updates name the node; values carry the state.
  expect(events.some((e) => e.method === "updates" && e.params.node === "reply")).toBe(true);
  let firstUpdate: unknown;
  for await (const u of updates) {
    firstUpdate = u;
    break;
  }
  expect(firstUpdate).toMatchObject({ method: "updates", params: { node: "reply" } });
  const snapshots = events.filter((e) => e.method === "values").map((e) => e.params.data);
  expect(snapshots.at(-1)?.messages).toHaveLength(2);
  // The interrupt: announced once, and the run ends "interrupted".
  expect(thread.interrupts).toHaveLength(1);
  expect(thread.interrupts[0]!.payload).toEqual({ question: "What is your name?" });
  expect(lifecycles(events)).toEqual(["running", "interrupted"]);
  // Sequence numbers: strictly increasing, event ids are their text.
  const seqs = events.map((e) => e.seq);
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  expect(new Set(seqs).size).toBe(seqs.length);

  // Resumed through the protocol.
  await thread.input.respond({
    interrupt_id: thread.interrupts[0]!.interruptId,
    namespace: [],
    response: "Ada",
  });
  await eventually(
    () => (lifecycles(events).at(-1) === "completed" ? true : undefined),
    "the resumed run to complete",
    10_000,
  );
  const last = events.filter((e) => e.method === "values").at(-1)!.params.data;
  expect((last.messages as { content: string }[]).at(-1)?.content).toBe("thanks, Ada");
  expect(last.answer).toBe("Ada");
  // The values projection saw intermediate snapshots too.
  const seen: unknown[] = [];
  for await (const v of values) {
    seen.push(v);
    if (seen.length >= 2) break;
  }
  expect(seen.length).toBe(2);
  // The messages projection assembled the streamed reply.
  const assembled: string[] = [];
  for await (const m of messageHandles) {
    assembled.push(await (m as unknown as { text: PromiseLike<string> }).text);
    if (assembled.length >= 1) break;
  }
  expect(assembled[0]).toBe("hello there");
  // The state, read through the protocol.
  const state = (await thread.state.get({ keys: ["answer"], namespace: [] } as never)) as {
    values: Record<string, unknown>;
    checkpoint?: { id: string };
  };
  expect(state.values).toEqual({ answer: "Ada" });
  expect(typeof state.checkpoint?.id).toBe("string");
}

/**
 * Runs the tool-calling graph: its tool calls on the `tools` channel (the SDK assembles them),
 * its named custom events on `custom:progress` alone, every custom event on `custom`.
 */
async function toolsRoundTrip(thread: ThreadStream, url: string): Promise<void> {
  const events = record(thread);
  const tools = await thread.subscribe(["tools"]);
  const all = await thread.subscribe(["custom"]);
  const progress = await thread.subscribe(["custom:progress"]);
  const toolCalls = thread.toolCalls;
  await thread.run.start({ input: { messages: [{ type: "human", content: "weather?" }] } });
  await eventually(
    () => (lifecycles(events).at(-1) === "completed" ? true : undefined),
    "the run to complete",
    10_000,
  );

  // The tools channel: each call started, then finished or failed, in its ToolNode task's
  // namespace, shaped as LangGraph's protocol conversion shapes them.
  const toolEvents = events.filter((e) => e.method === "tools");
  expect(toolEvents).toHaveLength(5);
  const byCall = (id: string) => toolEvents.filter((e) => e.params.data.tool_call_id === id);
  expect(byCall("call-lookup").map((e) => e.params.data)).toEqual([
    {
      event: "tool-started",
      tool_call_id: "call-lookup",
      tool_name: "lookup",
      input: JSON.stringify({ city: "Paris" }),
    },
    { event: "tool-output-delta", tool_call_id: "call-lookup", delta: "checking Paris" },
    {
      event: "tool-finished",
      tool_call_id: "call-lookup",
      output: expect.objectContaining({
        type: "tool",
        content: "sunny in Paris",
        tool_call_id: "call-lookup",
      }),
    },
  ]);
  expect(byCall("call-explode").map((e) => e.params.data)).toEqual([
    { event: "tool-started", tool_call_id: "call-explode", tool_name: "explode", input: "{}" },
    { event: "tool-error", tool_call_id: "call-explode", message: "the barometer broke" },
  ]);
  const taskNs = toolEvents[0]!.params.namespace;
  expect(taskNs).toHaveLength(1);
  expect(taskNs[0]).toMatch(/^tools:/);
  expect(toolEvents.every((e) => e.params.namespace[0] === taskNs[0])).toBe(true);
  // The raw subscription reads the same events.
  const first: Ev[] = [];
  for await (const e of tools) {
    first.push(e as unknown as Ev);
    if (first.length >= 5) break;
  }
  expect(first.map((e) => e.seq)).toEqual(toolEvents.map((e) => e.seq));
  // The SDK's tool-call projection assembles them: input, output, the failure.
  const assembled: { name: string; input: unknown; output: unknown; namespace: string[] }[] = [];
  for await (const call of toolCalls) {
    const output = await call.output.then(
      (v) => v,
      (err: Error) => `failed: ${err.message}`,
    );
    assembled.push({ name: call.name, input: call.input, output, namespace: call.namespace });
    if (assembled.length >= 2) break;
  }
  expect(assembled.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
    { name: "explode", input: {}, output: "failed: the barometer broke", namespace: taskNs },
    { name: "lookup", input: { city: "Paris" }, output: "sunny in Paris", namespace: taskNs },
  ]);

  // Custom events: `custom` has the unnamed ones ({payload}) and the named ones ({name, payload}).
  const custom = events.filter((e) => e.method === "custom").map((e) => e.params.data);
  expect(custom).toEqual([
    { payload: { step: "model" } },
    { name: "progress", payload: { city: "Paris", done: false } },
    { name: "progress", payload: { city: "Paris", done: true } },
    { payload: { step: "model" } },
  ]);
  const everything: unknown[] = [];
  for await (const e of all) {
    everything.push((e as unknown as Ev).params.data);
    if (everything.length >= 4) break;
  }
  expect(everything).toEqual(custom);
  // `custom:progress` reads the named ones only (the SDK hands out their payloads): the unnamed
  // event written before them is not among the first two.
  const named: unknown[] = [];
  for await (const p of progress) {
    named.push(p);
    if (named.length >= 2) break;
  }
  expect(named).toEqual([
    { city: "Paris", done: false },
    { city: "Paris", done: true },
  ]);
  // The SDK's extensions read a named channel's last payload.
  expect(await thread.extensions.progress).toEqual({ city: "Paris", done: true });

  // The server filters too: a stream of `custom:progress` carries nothing else.
  const res = await fetch(`${url}/threads/${thread.threadId}/stream/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      channels: ["custom:progress", "lifecycle"],
      namespaces: [[]],
      depth: 0,
    }),
  });
  const reader = res.body!.getReader();
  let text = "";
  while (!text.includes('"completed"'))
    text += new TextDecoder().decode((await reader.read()).value);
  await reader.cancel();
  const frames = text
    .split("\n\n")
    .filter((f) => f.includes("data: "))
    .map((f) => JSON.parse(f.slice(f.indexOf("data: ") + 6)) as Ev);
  expect(frames.filter((f) => f.method !== "lifecycle").map((f) => f.params.data)).toEqual(
    custom.filter((c) => c.name === "progress"),
  );

  // The model answered with what the tools returned.
  const last = events.filter((e) => e.method === "values").at(-1)!.params.data;
  const answer = (last.messages as { content: string }[]).at(-1)!.content;
  expect(answer).toContain("sunny in Paris");
  expect(answer).toContain("the barometer broke");
}

describe("thread protocol (ThreadStream) without auth", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ configPath: CONFIG });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("runs, streams and resumes a graph over SSE", async () => {
    const thread = server.client.threads.stream({ assistantId: "chat" });
    try {
      await chatRoundTrip(thread);
      // The thread exists on the server as any other, with the runs the protocol started.
      const runs = await server.client.runs.list(thread.threadId);
      expect(runs.map((r) => r.status).sort()).toEqual(["success", "success"]);
    } finally {
      await thread.close();
    }
  });

  it("runs, streams and resumes a graph over a WebSocket", async () => {
    const thread = server.client.threads.stream({
      assistantId: "chat",
      transport: "websocket",
      webSocketFactory: wsFactory(),
    });
    try {
      await chatRoundTrip(thread);
      const tree = (await thread.agent.getTree()) as {
        tree: { status: string; graph_name: string };
      };
      expect(tree.tree).toMatchObject({ status: "completed", graph_name: "chat" });
    } finally {
      await thread.close();
    }
  });

  it("streams tool calls and named custom events over SSE", async () => {
    const thread = server.client.threads.stream({ assistantId: "tools" });
    try {
      await toolsRoundTrip(thread, server.url);
    } finally {
      await thread.close();
    }
  });

  it("streams tool calls and named custom events over a WebSocket", async () => {
    const thread = server.client.threads.stream({
      assistantId: "tools",
      transport: "websocket",
      webSocketFactory: wsFactory(),
    });
    try {
      await toolsRoundTrip(thread, server.url);
    } finally {
      await thread.close();
    }
  });

  it("replays a finished run's events to a stream opened later, from `since`", async () => {
    const thread = server.client.threads.stream({ assistantId: "chat" });
    const events = record(thread);
    await thread.run.start({ input: { messages: [{ type: "human", content: "hi" }] } });
    await eventually(() => (thread.interrupted ? true : undefined), "the interrupt", 10_000);
    await thread.close();
    const read = async (since?: number) => {
      const res = await fetch(`${server.url}/threads/${thread.threadId}/stream/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ channels: ["lifecycle", "input"], ...(since ? { since } : {}) }),
      });
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const reader = res.body!.getReader();
      let text = "";
      while (!text.includes("interrupted"))
        text += new TextDecoder().decode((await reader.read()).value);
      await reader.cancel();
      return text
        .split("\n\n")
        .filter((f) => f.includes("data: "))
        .map((f) => JSON.parse(f.slice(f.indexOf("data: ") + 6)) as Ev);
    };
    const root = (list: Ev[]) =>
      list.filter((e) => e.params.namespace.length === 0).map((e) => e.method);
    const all = await read();
    expect(root(all)).toEqual(["lifecycle", "input.requested", "lifecycle"]);
    // The node that streamed a message had a namespace of its own, started and completed.
    const nested = all.filter((e) => e.params.namespace.length === 1);
    expect(nested.map((e) => e.params.data.event)).toEqual(["started", "completed"]);
    expect(nested[0]!.params.namespace[0]).toMatch(/^reply:/);
    const running = events.find((e) => e.method === "lifecycle")!;
    const later = await read(running.seq);
    expect(root(later)).toEqual(["input.requested", "lifecycle"]);
    expect(later.every((e) => e.seq > running.seq)).toBe(true);
  });

  it("answers malformed commands and filters with the field to fix", async () => {
    const id = randomUUID();
    const post = (path: string, body: unknown) =>
      fetch(`${server.url}/threads/${id}/${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    let res = await post("commands", { id: -1, method: "run.start" });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { field: string }).field).toBe("id");
    res = await post("commands", { id: 1, method: "run.start", params: {} });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { field: string }).field).toBe("params.assistant_id");
    res = await post("commands", { id: 2, method: "run.start", params: { assistant_id: "nope" } });
    expect(res.status).toBe(404);
    res = await post("commands", { id: 3, method: "state.fork" });
    expect(await res.json()).toMatchObject({ type: "error", id: 3, error: "unknown_command" });
    res = await post("commands", { id: 4, method: "input.respond", params: {} });
    expect(res.status).toBe(422);
    res = await post("stream/events", { channels: ["values", "bogus"] });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { field: string }).field).toBe("channels[1]");
    res = await post("stream/events", { channels: ["values"], extra: 1 });
    expect(res.status).toBe(422);
    res = await fetch(`${server.url}/threads/not-a-uuid/commands`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: 1, method: "state.get" }),
    });
    expect(res.status).toBe(422);
    // The WebSocket path without an upgrade says what to do.
    res = await fetch(`${server.url}/threads/${id}/stream/events`);
    expect(res.status).toBe(400);
    // Nothing was created by the refused requests.
    expect(await server.client.threads.get(id).catch((e: { status: number }) => e.status)).toBe(
      404,
    );
  });

  it("refuses a WebSocket upgrade for a foreign Host or from another web origin", async () => {
    const status = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(
          `${server.url.replace("http", "ws")}/threads/${randomUUID()}/stream/events`,
          { headers },
        );
        ws.once("unexpected-response", (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.once("open", () => {
          resolve(101);
          ws.close();
        });
        ws.once("error", (err) =>
          err.message.includes("Unexpected server response") ? undefined : reject(err),
        );
      });
    expect(await status({ host: "evil.example" })).toBe(403);
    expect(await status({ origin: "https://evil.example" })).toBe(403);
    expect(await status({ origin: server.url })).toBe(101);
  });

  it("answers malformed WebSocket messages with protocol errors and bounds subscriptions", async () => {
    const ws = new WebSocket(
      `${server.url.replace("http", "ws")}/threads/${randomUUID()}/stream/events`,
    );
    const replies: Record<string, unknown>[] = [];
    ws.on("message", (m) => replies.push(JSON.parse(m.toString()) as Record<string, unknown>));
    await new Promise((r, j) => ws.once("open", r).once("error", j));
    ws.send("not json");
    ws.send(JSON.stringify({ id: "x", method: "run.start" }));
    ws.send(JSON.stringify({ id: 7, method: "subscription.subscribe", params: { channels: [] } }));
    ws.send(
      JSON.stringify({
        id: 8,
        method: "subscription.unsubscribe",
        params: { subscription_id: "nope" },
      }),
    );
    await eventually(() => (replies.length >= 4 ? true : undefined), "four replies");
    expect(replies[0]).toMatchObject({ type: "error", id: null, error: "invalid_argument" });
    expect(replies[1]).toMatchObject({ type: "error", id: null, error: "invalid_argument" });
    expect(replies.find((r) => r.id === 7)).toMatchObject({
      type: "error",
      error: "invalid_input",
    });
    expect(replies.find((r) => r.id === 8)).toMatchObject({ error: "no_such_subscription" });
    replies.length = 0;
    for (let i = 0; i < 65; i += 1)
      ws.send(
        JSON.stringify({
          id: 100 + i,
          method: "subscription.subscribe",
          params: { channels: ["values"] },
        }),
      );
    await eventually(() => (replies.length >= 65 ? true : undefined), "65 replies");
    expect(replies.filter((r) => r.type === "success")).toHaveLength(64);
    expect(replies.find((r) => r.type === "error")?.message).toMatch(/64 subscriptions/);
    // A message over the size limit closes the connection (1009).
    const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    ws.send("x".repeat(1024 * 1024 + 1));
    expect(await closed).toBe(1009);
  });
});

describe("thread protocol with API keys", () => {
  let server: TestServer;
  const acme = keyHeaders("acme");
  const beta = keyHeaders("beta");
  beforeAll(async () => {
    server = await startTestServer({
      configPath: CONFIG,
      env: { REFINERY_API_KEYS: keysEnv(["acme", "beta"]) },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  const wsUrl = (threadId: string) =>
    `${server.url.replace("http", "ws")}/threads/${threadId}/stream/events`;
  /** The HTTP status a WebSocket upgrade is refused with (or 101 when accepted). */
  const upgradeStatus = (threadId: string, headers?: Record<string, string>) =>
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(wsUrl(threadId), headers ? { headers } : {});
      ws.once("unexpected-response", (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.once("open", () => {
        resolve(101);
        ws.close();
      });
      ws.once("error", (err) =>
        err.message.includes("Unexpected server response") ? undefined : reject(err),
      );
    });

  it("refuses the protocol without a key, over HTTP and WebSocket", async () => {
    const anonymous = new Client({ apiUrl: server.url, callerOptions: { maxRetries: 0 } });
    const thread = anonymous.threads.stream({ assistantId: "chat" });
    await expect(
      thread.run.start({ input: { messages: [{ type: "human", content: "hi" }] } }),
    ).rejects.toMatchObject({ status: 401 });
    await thread.close();
    expect(await upgradeStatus(randomUUID())).toBe(401);
    expect(await upgradeStatus(randomUUID(), { "x-api-key": "wrong-key-0123456789abcdef" })).toBe(
      401,
    );
    expect(await upgradeStatus(randomUUID(), acme)).toBe(101);
  });

  it("runs with a key over a WebSocket, and keeps other tenants out of the thread", async () => {
    const client = new Client({ apiUrl: server.url, callerOptions: { maxRetries: 0 } });
    const transport = new ProtocolWebSocketTransportAdapter({
      apiUrl: server.url,
      webSocketFactory: wsFactory(acme),
    });
    const thread = client.threads.stream({ assistantId: "chat", transport });
    try {
      const events = record(thread);
      await thread.run.start({ input: { messages: [{ type: "human", content: "hi" }] } });
      await eventually(() => (thread.interrupted ? true : undefined), "the interrupt", 10_000);
      expect(events.some((e) => e.method === "values")).toBe(true);
      const id = thread.threadId;
      // Another tenant: the thread is not found, whatever the transport or the command.
      expect(await upgradeStatus(id, beta)).toBe(404);
      for (const method of ["state.get", "agent.getTree", "run.start", "input.respond"]) {
        const res = await fetch(`${server.url}/threads/${id}/commands`, {
          method: "POST",
          headers: { ...beta, "content-type": "application/json" },
          body: JSON.stringify({
            id: 1,
            method,
            params:
              method === "run.start"
                ? { assistant_id: "chat", input: "Mallory" }
                : method === "input.respond"
                  ? { interrupt_id: thread.interrupts[0]!.interruptId, response: "Mallory" }
                  : {},
          }),
        });
        expect(res.status, method).toBe(404);
      }
      const sse = await fetch(`${server.url}/threads/${id}/stream/events`, {
        method: "POST",
        headers: { ...beta, "content-type": "application/json" },
        body: JSON.stringify({ channels: ["values"] }),
      });
      expect(sse.status).toBe(404);
      // The owner is still waiting at the interrupt, unchanged.
      expect((await sdkClient(server.url, acme).threads.get(id)).status).toBe("interrupted");
      await thread.input.respond({
        interrupt_id: thread.interrupts[0]!.interruptId,
        namespace: [],
        response: "Ada",
      });
      await eventually(
        () => (lifecycles(events).at(-1) === "completed" ? true : undefined),
        "the resumed run",
        10_000,
      );
      const final = events.filter((e) => e.method === "values").at(-1)!.params.data;
      expect(final.answer).toBe("Ada");
    } finally {
      await thread.close();
    }
  });

  it("closes a stream opened on a new thread id when another tenant creates that thread", async () => {
    const id = randomUUID();
    const controller = new AbortController();
    const sse = await fetch(`${server.url}/threads/${id}/stream/events`, {
      method: "POST",
      headers: { ...beta, "content-type": "application/json" },
      body: JSON.stringify({ channels: ["values", "lifecycle"] }),
      signal: controller.signal,
    });
    expect(sse.status).toBe(200);
    const res = await fetch(`${server.url}/threads/${id}/commands`, {
      method: "POST",
      headers: { ...acme, "content-type": "application/json" },
      body: JSON.stringify({
        id: 1,
        method: "run.start",
        params: {
          assistant_id: "chat",
          input: { messages: [{ type: "human", content: "secret" }] },
        },
      }),
    });
    expect(res.status).toBe(200);
    // beta's stream ends without a single event of acme's run.
    const text = await sse.text();
    expect(text).not.toContain("secret");
    expect(text).not.toContain("data:");
  });
});
