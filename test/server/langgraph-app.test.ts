// A project laid out like a LangGraph app (test/fixtures/langgraph-app) served as it is: graph
// exports in every form the LangGraph server loads (a Promise, a factory of the run's config, an
// uncompiled builder, a createAgent-shaped agent, a graph taking getLogger() at import, a chat
// graph whose subgraph streams a model's tokens: the events and messages stream modes),
// langgraph.json's `env` file with LANGGRAPH_CONFIG defaults for system assistants,
// `dependencies` and `node_version`. One real server, driven with the official SDK; the
// registry's start-up checks (bad env file, missing local dependency, bad LANGGRAPH_CONFIG, a
// rejected Promise, an old Node) are driven on the registry itself.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemorySaver } from "@langchain/langgraph";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGraphRegistry, systemAssistantId } from "../../graphs/registry.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const APP = join(import.meta.dirname, "../fixtures/langgraph-app");
const SET_BY_ENV_FILE = ["LANGGRAPH_APP_GREETING", "LANGGRAPH_CONFIG"];
const preset = new Set(SET_BY_ENV_FILE.filter((k) => process.env[k] !== undefined));

let s: TestServer;
const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];

beforeAll(async () => {
  s = await startTestServer({
    configPath: join(APP, "langgraph.json"),
    log: (level, msg, fields) => logs.push({ level, msg, fields }),
  });
});
afterAll(async () => {
  await s?.close();
  for (const k of SET_BY_ENV_FILE) if (!preset.has(k)) delete process.env[k];
});

async function wait(assistantId: string, config?: Record<string, unknown>) {
  return (await s.client.runs.wait(null, assistantId, {
    input: { topic: "t" },
    ...(config ? { config } : {}),
  })) as { path: string[] };
}

async function nodes(assistantId: string): Promise<string[]> {
  const graph = (await s.client.assistants.getGraph(assistantId)) as {
    nodes: { id: string | number }[];
  };
  return graph.nodes.map((n) => String(n.id)).sort();
}

describe("a LangGraph app's graphs", () => {
  it("serves a graph exported as a Promise, with langgraph.json's env file applied", async () => {
    expect(await wait("promised")).toMatchObject({ path: ["greet:hello from app.env"] });
    expect(await nodes(systemAssistantId("promised"))).toEqual(["__end__", "__start__", "greet"]);
  });

  it("calls a factory export with each run's config, so the nodes follow the configurable", async () => {
    // The system assistant carries LANGGRAPH_CONFIG's defaults for the graph.
    const system = await s.client.assistants.get(systemAssistantId("factory"));
    expect(system.config).toMatchObject({ configurable: { variant: "b" } });
    expect(system.context).toEqual({ tone: "dry" });
    expect(await nodes(system.assistant_id)).toEqual(["__end__", "__start__", "variant_b"]);
    expect(await wait(system.assistant_id)).toMatchObject({ path: ["variant_b:t"] });
    const thread = await s.client.threads.create();
    await s.client.runs.wait(thread.thread_id, system.assistant_id, { input: { topic: "t" } });
    const state = await s.client.threads.getState(thread.thread_id);
    expect(state.values).toMatchObject({ path: ["variant_b:t"] });
    expect(state.next).toEqual([]);

    const other = await s.client.assistants.create({
      graphId: "factory",
      config: { configurable: { variant: "a" } },
    });
    expect(await nodes(other.assistant_id)).toEqual(["__end__", "__start__", "variant_a"]);
    expect(await wait(other.assistant_id)).toMatchObject({ path: ["variant_a:t"] });
    // A run's own configurable picks the node set of that run.
    expect(await wait(other.assistant_id, { configurable: { variant: "c" } })).toMatchObject({
      path: ["variant_c:t"],
    });
    // Graphs without LANGGRAPH_CONFIG defaults keep an empty config.
    const plain = await s.client.assistants.get(systemAssistantId("builder"));
    expect(plain.config).not.toHaveProperty("configurable.variant");
  });

  it("compiles a builder export on the server's checkpointer", async () => {
    const thread = await s.client.threads.create();
    expect(await s.client.runs.wait(thread.thread_id, "builder", { input: {} })).toMatchObject({
      path: ["first", "second"],
    });
    const history = await s.client.threads.getHistory(thread.thread_id);
    expect(history.length).toBeGreaterThan(2);
  });

  it("unwraps a createAgent-shaped agent to its compiled graph", async () => {
    expect(await wait("agent")).toMatchObject({ path: ["agent:t"] });
    expect(await nodes(systemAssistantId("agent"))).toContain("model_request");
  });

  it("gives getLogger() a structured logger that writes to the server's log", async () => {
    expect(await wait("logged")).toMatchObject({ path: ["work"] });
    expect(logs).toContainEqual({
      level: "info",
      msg: "working on the topic",
      fields: { topic: "t", logger: "graph" },
    });
    expect(logs).toContainEqual({
      level: "warn",
      msg: "object form",
      fields: { step: 2, logger: "graph" },
    });
  });

  it("streams events and messages from a chat model in a subgraph, with stream_subgraphs, as the LangGraph server does", async () => {
    const thread = await s.client.threads.create();
    type Ev = { event: string; data: unknown };
    const events: Ev[] = [];
    let runId = "";
    for await (const e of s.client.runs.stream(thread.thread_id, "chat", {
      input: { messages: [{ role: "user", content: "hi" }] },
      streamMode: ["events", "messages", "updates"],
      streamSubgraphs: true,
      onRunCreated: ({ run_id }) => void (runId = run_id),
    }))
      events.push(e as Ev);
    const names = events.map((e) => e.event);
    // updates are namespaced by the subgraph's task; events and messages/* are not (as the
    // reference names them: the namespace is in each event's metadata)
    expect(names).toContain("updates");
    expect(names.some((n) => /^updates\|assistant:[0-9a-f-]{36}$/.test(n))).toBe(true);
    expect(
      new Set(names.filter((n) => !n.startsWith("updates") && !n.startsWith("checkpoints"))),
    ).toEqual(
      new Set(["metadata", "events", "messages/metadata", "messages/partial", "messages/complete"]),
    );
    // messages reads values, so (with subgraphs) LangGraph's checkpoint envelopes come along, the
    // root's and the subgraph's (namespaced), as the reference emits them
    const envelopes = events.filter((e) => e.event.startsWith("checkpoints"));
    expect(envelopes.some((e) => e.event === "checkpoints")).toBe(true);
    expect(envelopes.some((e) => /^checkpoints\|assistant:[0-9a-f-]{36}$/.test(e.event))).toBe(
      true,
    );
    for (const e of envelopes) {
      expect(Object.keys(e.data as object).sort()).toEqual(
        expect.arrayContaining(["id", "source", "step"]),
      );
      expect(e.data).not.toHaveProperty("values");
    }
    const callbacks = events
      .filter((e) => e.event === "events")
      .map((e) => e.data as { event: string; run_id: string; metadata: Record<string, unknown> });
    expect(callbacks[0]).toMatchObject({ event: "on_chain_start", run_id: runId });
    // the subgraphs' own chunks arrive namespaced, not as on_chain_stream events
    expect(callbacks.filter((c) => c.event === "on_chain_stream")).toEqual([]);
    const token = callbacks.find((c) => c.event === "on_chat_model_stream")!;
    expect(token.metadata.langgraph_checkpoint_ns).toMatch(/^assistant:/);
    // the tokens add up, partial by partial, to the model's answer
    const partials = events
      .filter((e) => e.event === "messages/partial")
      .map((e) => (e.data as { content: string; type: string }[])[0]!);
    expect(partials.length).toBeGreaterThan(2);
    expect(partials.map((m) => m.content)).toEqual(
      [..."hello there"].map((_, i) => "hello there".slice(0, i + 1)),
    );
    expect(partials.every((m) => m.type === "ai")).toBe(true);
    const metadata = events.find((e) => e.event === "messages/metadata")!.data as Record<
      string,
      { metadata: Record<string, unknown> }
    >;
    expect(Object.values(metadata)[0]!.metadata).toMatchObject({
      langgraph_node: "reply",
      thread_id: thread.thread_id,
    });
    // messages/complete: the input message after the first step, the reply after the last
    const complete = events
      .filter((e) => e.event === "messages/complete")
      .map((e) => (e.data as { type: string; content: string; id: string }[]).map((m) => m.type));
    expect(complete).toEqual([["human"], ["ai"]]);
    // the root's on_chain_end closes the stream
    expect(events.at(-1)).toMatchObject({ event: "events", data: { event: "on_chain_end" } });
  });
});

describe("langgraph.json start-up checks", () => {
  const dir = mkdtempSync(join(tmpdir(), "refinery-lgapp-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, "g.ts"),
    `import { Annotation, START, StateGraph } from "@langchain/langgraph";
const S = Annotation.Root({ x: Annotation<string> });
export const g = new StateGraph(S).addNode("n", () => ({})).addEdge(START, "n");
export default g.compile();
export const rejected = Promise.reject(new Error("no model key"));
rejected.catch(() => {});
`,
  );

  // The server's env: LANGGRAPH_CONFIG there wins over the one the app's env file left in process.env.
  async function load(
    json: Record<string, unknown>,
    env: Record<string, string> = { LANGGRAPH_CONFIG: "{}" },
  ) {
    const path = join(dir, `langgraph-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, JSON.stringify({ graphs: { g: "./g.ts:g" }, ...json }));
    const warnings: string[] = [];
    const registry = await createGraphRegistry({
      builtins: {},
      configPath: path,
      checkpointer: new MemorySaver(),
      env,
      log: (level, msg) => void (level === "warn" && warnings.push(msg)),
    });
    return { registry, warnings };
  }

  it("warns when the running Node is older than node_version, and not otherwise", async () => {
    expect((await load({ node_version: "99" })).warnings).toEqual([
      `langgraph.json asks for Node.js 99; this server runs on ${process.versions.node}`,
    ]);
    expect((await load({ node_version: "20" })).warnings).toEqual([]);
    await expect(load({ node_version: "latest" })).rejects.toMatchObject({
      field: expect.stringContaining("node_version"),
    });
  });

  it("names a local dependency that does not exist, and accepts package dependencies", async () => {
    await load({ dependencies: [".", "@langchain/langgraph"] });
    await expect(load({ dependencies: [".", "./missing-pkg"] })).rejects.toMatchObject({
      message: expect.stringContaining('local dependency "./missing-pkg" does not exist'),
      field: "dependencies[1]",
    });
  });

  it("warns of a missing env file, names an unreadable one and a LANGGRAPH_CONFIG that is not JSON", async () => {
    // A missing env file is a warning, as with `langgraphjs dev`; an unreadable one (here a
    // directory) stops start-up.
    expect((await load({ env: "./nope.env" })).warnings).toEqual([
      expect.stringMatching(/nope\.env named in .* does not exist; continuing without it$/),
    ]);
    await expect(load({ env: "." })).rejects.toMatchObject({ field: "env" });
    await expect(load({}, { LANGGRAPH_CONFIG: "{graph" })).rejects.toMatchObject({
      field: "LANGGRAPH_CONFIG",
    });
    const { registry } = await load({}, { LANGGRAPH_CONFIG: '{"g": {"context": {"k": 1}}}' });
    expect(registry.entry("g")?.defaults).toEqual({ config: {}, context: { k: 1 } });
  });

  it("takes a file without an export name as its default export", async () => {
    const { registry } = await load({ graphs: { g: "./g.ts" } });
    expect(Object.keys((await registry.get("g")).nodes ?? {})).toContain("n");
    await expect(load({ graphs: { g: "./missing-default.ts" } })).rejects.toMatchObject({
      field: "graphs.g",
    });
  });

  it("names a graph whose Promise export rejects", async () => {
    await expect(load({ graphs: { g: "./g.ts:rejected" } })).rejects.toMatchObject({
      message: expect.stringContaining("is a Promise that rejected: no model key"),
      field: "graphs.g",
    });
  });
});
