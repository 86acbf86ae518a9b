// Declarative graphs through the real server: registration over HTTP (JSON and YAML, 422 with
// the path, versions, list, get, delete), runs with the official SDK client (wait, streaming,
// assistants, approval and resume, graph_version), persistence across a restart on the same
// database, and the folder and node-kind modules loaded at start-up.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RefineStateType } from "../../core/state.ts";
import { systemAssistantId } from "../../graphs/registry.ts";
import { silentLogger } from "../../server/log.ts";
import { startServer, type RunningServer } from "../../server/start.ts";
import { ScriptedChatModel, scriptedProvider } from "../support/scripted-model.ts";
import { FIXTURE_CONFIG } from "../support/server.ts";
import { EXAMPLES_DIR, readExample } from "./support.ts";

const PASS = '{"verdict":"pass","score":0.9,"issues":[]}';
const FULL = '{"name": "Ada", "age": 36, "email": "ada@example.org"}';
const REPLY = "Hello,\nA replacement is on its way.\nThe Support Team";

const text = (m: { content: unknown } | undefined) => String(m?.content ?? "");
const model = new ScriptedChatModel({
  // Answers by the example's system prompt, and by the task for the JSON extraction cases.
  generate: (messages) => {
    const system = text(messages[0]);
    if (system.includes("customer-support agent")) return REPLY;
    if (system.includes("translator")) return "Le chat noir dort.";
    return text(messages[1]).includes("incomplete") ? '{"name": "Ada", "age": 36}' : FULL;
  },
  // "loop" tasks get a new (failing) draft every time, so only the iteration cap stops them.
  revise: (messages, call) => (text(messages[1]).includes("loop") ? `Draft ${call}` : FULL),
  critique: () => PASS,
  judge: (messages) =>
    text(messages[1]).includes("noir") ? "The black cat sleeps." : "Something else entirely.",
});
const provider = scriptedProvider(model);

interface Started {
  running: RunningServer;
  client: Client;
  url: string;
}

async function start(dbPath: string, env: Record<string, string> = {}): Promise<Started> {
  const running = await startServer({
    env: { REFINERY_DB: dbPath, ...env },
    configPath: FIXTURE_CONFIG,
    port: 0,
    host: "127.0.0.1",
    log: silentLogger,
    provider,
    concurrency: 4,
    pollMs: 200,
  });
  return {
    running,
    url: running.url,
    client: new Client({ apiUrl: running.url, callerOptions: { maxRetries: 0 } }),
  };
}

let dir: string;
let s: Started;
const api = (path: string, init: RequestInit = {}) => fetch(`${s.url}${path}`, init);
const send = (method: string, path: string, body: unknown, type = "application/json") =>
  api(path, {
    method,
    headers: { "content-type": type },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "refinery-declarative-"));
  s = await start(join(dir, "refinery.db"));
});
afterAll(async () => {
  await s?.running.close(2_000);
  rmSync(dir, { recursive: true, force: true });
});

const json = readExample("json-extraction.yaml");
const support = readExample("support-reply.yaml");

describe("registration over HTTP", () => {
  it("registers, lists, reads and versions a graph; the same spec again is no new version", async () => {
    let res = await send("POST", "/graphs", json);
    expect(res.status).toBe(201);
    const created = (await res.json()) as Record<string, unknown>;
    expect(created).toMatchObject({
      graph_id: "json-extraction",
      version: 1,
      versions: [1],
      source: "api",
      assistant_id: systemAssistantId("json-extraction"),
      nodes: { extract: "generate", check: "verify", repair: "revise" },
    });

    res = await send("POST", "/graphs", json);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ version: 1, created: false });

    const v2 = { ...json, description: "v2", options: { maxIterations: 2 } };
    res = await send("PUT", "/graphs/json-extraction", { ...v2, id: undefined });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ version: 2, versions: [1, 2] });

    const list = (await (await api("/graphs")).json()) as Record<string, unknown>[];
    expect(list.find((g) => g.graph_id === "json-extraction")).toMatchObject({
      version: 2,
      description: "v2",
    });
    expect(list[0]).not.toHaveProperty("spec");

    const latest = (await (await api("/graphs/json-extraction")).json()) as {
      spec: { options: unknown };
    };
    expect(latest.spec.options).toEqual({ maxIterations: 2 });
    const first = (await (await api("/graphs/json-extraction?version=1")).json()) as {
      version: number;
      spec: { options: unknown };
    };
    expect(first).toMatchObject({ version: 1, spec: { options: { maxIterations: 3 } } });
    expect((await api("/graphs/json-extraction?version=7")).status).toBe(404);
    const bad = await api("/graphs/json-extraction?version=zero");
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ field: "version" });

    // The graph is an ordinary graph of the server: its system assistant and /info list it.
    const assistant = await s.client.assistants.get(systemAssistantId("json-extraction"));
    expect(assistant.graph_id).toBe("json-extraction");
    const info = (await (await api("/info")).json()) as { graphs?: string[] };
    expect(JSON.stringify(info)).toContain("json-extraction");
    const drawn = (await s.client.assistants.getGraph("json-extraction")) as unknown as {
      nodes: { id: string }[];
    };
    expect(drawn.nodes.map((n) => n.id)).toEqual(
      expect.arrayContaining(["extract", "check", "repair", "__finish__"]),
    );
    const schemas = await s.client.assistants.getSchemas("json-extraction");
    expect(JSON.stringify(schemas.input_schema)).toContain("task");
  });

  it("answers 422 with the exact path of the problem, and registers nothing", async () => {
    const broken = structuredClone(json) as { id: string; edges: { when?: { if: string }[] }[] };
    broken.id = "broken";
    broken.edges[1]!.when![0]!.if = "verdicts.allHardPass and iteration <";
    const res = await send("POST", "/graphs", broken);
    expect(res.status).toBe(422);
    const body = (await res.json()) as Record<string, string>;
    expect(body).toMatchObject({ error: "invalid_config", field: "edges[1].when[0].if" });
    expect(body.message).toMatch(/at character 36: Expected expression after </);
    expect((await api("/graphs/broken")).status).toBe(404);

    const unknownKind = structuredClone(json) as { nodes: Record<string, { kind: string }> };
    unknownKind.nodes.check!.kind = "inspect";
    expect(await (await send("POST", "/graphs", unknownKind)).json()).toMatchObject({
      field: "nodes.check.kind",
    });
    const mismatch = await send("PUT", "/graphs/other-id", json);
    expect(mismatch.status).toBe(422);
    expect(await mismatch.json()).toMatchObject({ field: "id" });
  });

  it("accepts YAML bodies; malformed YAML is a 422", async () => {
    const yaml = readFileSync(join(EXAMPLES_DIR, "support-reply.yaml"), "utf8");
    const res = await send("POST", "/graphs", yaml, "application/yaml");
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ graph_id: "support-reply", version: 1 });
    const bad = await send("POST", "/graphs", "id: [unclosed", "application/yaml");
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ field: "body" });
  });

  it("refuses ids of graphs that are not declarative", async () => {
    const res = await send("POST", "/graphs", { ...json, id: "refine" });
    expect(res.status).toBe(409);
    expect((await api("/graphs/refine", { method: "DELETE" })).status).toBe(404);
  });
});

describe("running registered graphs with the SDK", () => {
  it("waits for a run and streams another (updates from the spec's nodes, custom events)", async () => {
    const thread = await s.client.threads.create();
    const values = (await s.client.runs.wait(thread.thread_id, "json-extraction", {
      input: { task: "Extract the record (incomplete).", context: "Ada, 36, ada@example.org" },
    })) as unknown as RefineStateType;
    expect(values.stopReason).toBe("accepted");
    expect(JSON.parse(values.answer ?? "")).toMatchObject({ email: "ada@example.org" });
    expect(values.drafts).toHaveLength(2);

    const other = await s.client.threads.create();
    const nodes: string[] = [];
    const custom: string[] = [];
    for await (const chunk of s.client.runs.stream(other.thread_id, "json-extraction", {
      input: { task: "Extract the record (incomplete).", context: "Ada" },
      streamMode: ["updates", "custom"],
    })) {
      if (chunk.event === "updates") nodes.push(...Object.keys(chunk.data as object));
      if (chunk.event === "custom") custom.push((chunk.data as { type: string }).type);
    }
    expect(nodes).toEqual(["extract", "check", "repair", "check", "__finish__"]);
    expect(custom).toEqual(["draft", "verdicts", "draft", "verdicts"]);
  });

  it("assistants on a declarative graph: config validated, options layered over the spec's", async () => {
    const bad = await send("POST", "/assistants", {
      graph_id: "json-extraction",
      config: { configurable: { maxIterations: "many" } },
    });
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ field: "config.configurable.maxIterations" });

    const assistant = await s.client.assistants.create({
      graphId: "json-extraction",
      config: { configurable: { maxIterations: 1 } },
    });
    const thread = await s.client.threads.create();
    const values = (await s.client.runs.wait(thread.thread_id, assistant.assistant_id, {
      input: { task: "Extract (incomplete)." },
    })) as unknown as RefineStateType;
    expect(values.stopReason).toBe("max_iterations");
    expect(values.drafts).toHaveLength(1);

    const noTask = await send("POST", `/threads/${thread.thread_id}/runs/wait`, {
      assistant_id: "json-extraction",
      input: { context: "no task" },
    });
    expect(noTask.status).toBe(422);
    expect(await noTask.json()).toMatchObject({ field: "input.task" });
  });

  it("pins a version with configurable.graph_version; an unknown version is a 404", async () => {
    const thread = await s.client.threads.create();
    // Version 1 allows 3 drafts, version 2 (latest) only 2: the pinned run keeps revising.
    const failing = {
      task: "loop",
      options: { verifiers: [{ kind: "regex", mustMatch: ["zzz"] }] },
    };
    const v1 = (await s.client.runs.wait(thread.thread_id, "json-extraction", {
      input: failing,
      config: { configurable: { graph_version: 1 } },
    })) as unknown as RefineStateType;
    expect(v1.drafts).toHaveLength(3);
    const fresh = await s.client.threads.create();
    const latest = (await s.client.runs.wait(fresh.thread_id, "json-extraction", {
      input: failing,
    })) as unknown as RefineStateType;
    expect(latest.drafts).toHaveLength(2);
    // A thread keeps the configurable its runs were given: it stays on version 1.
    const again = (await s.client.runs.wait(thread.thread_id, "json-extraction", {
      input: failing,
    })) as unknown as RefineStateType;
    expect(again.drafts).toHaveLength(3);
    const res = await send("POST", `/threads/${thread.thread_id}/runs/wait`, {
      assistant_id: "json-extraction",
      input: failing,
      config: { configurable: { graph_version: 9 } },
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ field: "config.configurable.graph_version" });
  });

  it("human approval: the run pauses at the approve node and resumes with command.resume", async () => {
    const thread = await s.client.threads.create();
    await s.client.runs.wait(thread.thread_id, "support-reply", {
      input: { task: "My parcel arrived broken!" },
    });
    const paused = await s.client.threads.get(thread.thread_id);
    expect(paused.status).toBe("interrupted");
    const request = Object.values(paused.interrupts).flat()[0]?.value as Record<string, unknown>;
    expect(request).toMatchObject({ type: "approval", iteration: 1 });

    // An invalid decision is a 422 and the thread stays interrupted.
    const invalid = await send("POST", `/threads/${thread.thread_id}/runs/wait`, {
      assistant_id: "support-reply",
      command: { resume: { action: "reject" } },
    });
    expect(invalid.status).toBe(422);

    const done = (await s.client.runs.wait(thread.thread_id, "support-reply", {
      command: { resume: { action: "approve" } },
    })) as unknown as RefineStateType & { vars: Record<string, unknown> };
    expect(done.stopReason).toBe("approved");
    expect(done.vars.status).toBe("ready_to_send");
    expect((await s.client.threads.get(thread.thread_id)).status).toBe("idle");
  });

  it("deleting a graph unregisters it and its system assistant; its threads keep their state", async () => {
    const spec = { ...json, id: "short-lived" };
    expect((await send("POST", "/graphs", spec)).status).toBe(201);
    const thread = await s.client.threads.create();
    await s.client.runs.wait(thread.thread_id, "short-lived", { input: { task: "x" } });
    expect((await api("/graphs/short-lived", { method: "DELETE" })).status).toBe(204);
    expect((await api("/graphs/short-lived")).status).toBe(404);
    expect((await api("/graphs/short-lived", { method: "DELETE" })).status).toBe(404);
    const list = (await (await api("/graphs")).json()) as { graph_id: string }[];
    expect(list.map((g) => g.graph_id)).not.toContain("short-lived");
    const run = await send("POST", `/threads/${thread.thread_id}/runs/wait`, {
      assistant_id: "short-lived",
      input: { task: "x" },
    });
    expect(run.status).toBe(404);
    const kept = await s.client.threads.get(thread.thread_id);
    expect((kept.values as unknown as RefineStateType).answer).toBe(FULL);
    // Registering the id again makes it runnable again, from version 1.
    const again = await send("POST", "/graphs", spec);
    expect(await again.json()).toMatchObject({ version: 1 });
  });
});

describe("start-up", () => {
  it("graphs registered over HTTP survive a restart on the same database", async () => {
    const db = join(dir, "restart.db");
    let a = await start(db);
    try {
      const res = await fetch(`${a.url}/graphs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...support, id: "persisted" }),
      });
      expect(res.status).toBe(201);
      await fetch(`${a.url}/graphs/persisted`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...support, id: "persisted", description: "second" }),
      });
    } finally {
      await a.running.close(2_000);
    }
    a = await start(db);
    try {
      const got = (await (await fetch(`${a.url}/graphs/persisted`)).json()) as Record<
        string,
        unknown
      >;
      expect(got).toMatchObject({ version: 2, versions: [1, 2], description: "second" });
      const thread = await a.client.threads.create();
      await a.client.runs.wait(thread.thread_id, "persisted", { input: { task: "Broken!" } });
      expect((await a.client.threads.get(thread.thread_id)).status).toBe("interrupted");
    } finally {
      await a.running.close(2_000);
    }
  });

  it("loads a folder of spec files (read-only over HTTP) and node kinds from modules", async () => {
    const folder = join(dir, "graphs.d");
    mkdirSync(folder);
    copyFileSync(join(EXAMPLES_DIR, "translation.yaml"), join(folder, "translation.yaml"));
    writeFileSync(join(folder, "extract.json"), JSON.stringify({ ...json, id: "from-file" }));
    writeFileSync(join(folder, "notes.txt"), "not a spec");
    const a = await start(join(dir, "folder.db"), {
      REFINERY_GRAPHS_DIR: folder,
      REFINERY_NODE_KINDS: join(EXAMPLES_DIR, "back-translate.ts"),
    });
    try {
      const list = (await (await fetch(`${a.url}/graphs`)).json()) as Record<string, unknown>[];
      expect(list.map((g) => [g.graph_id, g.source])).toEqual([
        ["from-file", "file"],
        ["translation", "file"],
      ]);
      const del = await fetch(`${a.url}/graphs/translation`, { method: "DELETE" });
      expect(del.status).toBe(409);
      const post = await fetch(`${a.url}/graphs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...json, id: "from-file" }),
      });
      expect(post.status).toBe(409);

      const thread = await a.client.threads.create();
      const values = (await a.client.runs.wait(thread.thread_id, "translation", {
        input: { task: "Translate into French.", context: "The black cat sleeps." },
      })) as unknown as RefineStateType;
      expect(values.answer).toBe("Le chat noir dort.");
      expect(values.verdicts).toEqual([
        expect.objectContaining({ verifierId: "back_translation", pass: true, score: 1 }),
      ]);
    } finally {
      await a.running.close(2_000);
    }
  });

  it("an invalid spec file stops start-up with its path and the field", async () => {
    const folder = join(dir, "bad.d");
    mkdirSync(folder);
    const bad = structuredClone(json) as { edges: { to?: string }[] };
    bad.edges[0]!.to = "nowhere";
    writeFileSync(join(folder, "bad.json"), JSON.stringify(bad));
    await expect(start(join(dir, "bad.db"), { REFINERY_GRAPHS_DIR: folder })).rejects.toMatchObject(
      {
        field: "edges[0].to",
        message: expect.stringContaining("bad.json"),
      },
    );
  });
});
