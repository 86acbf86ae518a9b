// Assistants over the real server with the official SDK: system assistants (uuid5 of the graph
// id) and graph ids as assistant ids, CRUD with versions, search/count, graph and schemas, an
// assistant's config driving a run, and precise 422s for invalid configs and unknown graphs.
import { v5 as uuidv5 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";
import { failure } from "../support/wait.ts";

const NAMESPACE = "6ba7b821-9dad-11d1-80b4-00c04fd430c8";
const GRAPHS = ["refine", "approval", "slow", "failing", "busy", "hang"];

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => s?.close());

const simulated = (seed: number) => ({ default: { provider: "simulated", simulated: { seed } } });

interface RefineValues {
  answer: string | null;
  stopReason: string | null;
  drafts: { iteration: number; text: string }[];
  simulated: boolean;
}

describe("system assistants", () => {
  it("exist for every graph with id uuid5(graph_id, NS) and created_by system", async () => {
    for (const graphId of GRAPHS) {
      const id = uuidv5(graphId, NAMESPACE);
      const a = await s.client.assistants.get(id);
      expect(a).toMatchObject({ assistant_id: id, graph_id: graphId, version: 1 });
      expect(a.metadata).toMatchObject({ created_by: "system" });
      // The graph id is accepted wherever an assistant id is.
      expect((await s.client.assistants.get(graphId)).assistant_id).toBe(id);
    }
    const system = await s.client.assistants.search({ metadata: { created_by: "system" } });
    expect(system.map((a) => a.graph_id).sort()).toEqual([...GRAPHS].sort());
  });

  it("a graph id works as assistant id for graph, schemas and runs", async () => {
    const graph = await s.client.assistants.getGraph("approval");
    expect(graph.nodes.map((n) => n.id)).toEqual(
      expect.arrayContaining(["draft", "review", "publish"]),
    );
    const thread = await s.client.threads.create();
    const byId = uuidv5("slow", NAMESPACE);
    const out = (await s.client.runs.wait(thread.thread_id, byId, {
      input: { topic: "x" },
    })) as { log: string[] };
    expect(out.log).toEqual(["one", "two", "three"]);
    const [run] = await s.client.runs.list(thread.thread_id);
    expect(run?.assistant_id).toBe(byId);
    const t2 = await s.client.threads.create();
    await s.client.runs.wait(t2.thread_id, "slow", { input: { topic: "y" } });
    expect((await s.client.runs.list(t2.thread_id))[0]?.assistant_id).toBe(byId);
  });
});

describe("system assistants cannot be removed or changed", () => {
  it("DELETE /assistants/refine is a 409 naming the fix, and refine runs go on", async () => {
    const del = await failure(s.client.assistants.delete("refine"));
    expect(del.status).toBe(409);
    expect(del.body).toMatch(
      /system assistant of graph .*refine.*cannot be deleted.*POST \/assistants/,
    );
    const patch = await failure(s.client.assistants.update("refine", { name: "mine" }));
    expect(patch.status).toBe(409);
    expect((await s.client.assistants.get("refine")).name).toBe("refine");
    const t = await s.client.threads.create();
    const out = (await s.client.runs.wait(t.thread_id, "refine", {
      input: { task: "What is 2 + 2?" },
      config: { configurable: { maxIterations: 1 } },
    })) as unknown as RefineValues;
    expect(out.answer).toMatch(/4/);
  });
});

describe("assistant CRUD and versions", () => {
  it("creates, gets, updates (new version), lists versions, sets latest, searches, counts and deletes", async () => {
    const tag = `crud-${Date.now()}`;
    const created = await s.client.assistants.create({
      graphId: "refine",
      name: "two rounds",
      description: "at most two drafts",
      metadata: { tag, team: "a" },
      config: {
        configurable: {
          maxIterations: 2,
          verifiers: [{ kind: "answer_match", expected: 395 }],
        },
      },
    });
    expect(created).toMatchObject({
      graph_id: "refine",
      name: "two rounds",
      description: "at most two drafts",
      version: 1,
      metadata: { tag, team: "a" },
    });
    expect(created.config.configurable).toMatchObject({ maxIterations: 2 });
    expect(await s.client.assistants.get(created.assistant_id)).toEqual(created);

    const updated = await s.client.assistants.update(created.assistant_id, {
      config: { configurable: { maxIterations: 3 } },
      metadata: { team: "b" },
    });
    expect(updated.version).toBe(2);
    expect(updated.config.configurable).toEqual({ maxIterations: 3 });
    // Metadata merges; config is replaced.
    expect(updated.metadata).toEqual({ tag, team: "b" });
    // Fields not in the patch carry over.
    expect(updated.name).toBe("two rounds");
    expect((await s.client.assistants.get(created.assistant_id)).version).toBe(2);

    const versions = await s.client.assistants.getVersions(created.assistant_id);
    expect(versions.map((v) => v.version)).toEqual([2, 1]);
    const v1 = versions.find((v) => v.version === 1);
    expect(v1?.config.configurable).toMatchObject({ maxIterations: 2 });

    const back = await s.client.assistants.setLatest(created.assistant_id, 1);
    expect(back.version).toBe(1);
    expect(back.config.configurable).toMatchObject({ maxIterations: 2 });
    const now = await s.client.assistants.get(created.assistant_id);
    expect(now.version).toBe(1);
    expect(now.metadata).toMatchObject({ team: "a" });
    // A version that does not exist is a 404 naming it.
    const missing = await failure(s.client.assistants.setLatest(created.assistant_id, 9));
    expect(missing.status).toBe(404);
    expect(missing.body).toContain("version");

    const other = await s.client.assistants.create({
      graphId: "approval",
      metadata: { tag, team: "a" },
    });
    const byGraph = await s.client.assistants.search({ graphId: "refine", metadata: { tag } });
    expect(byGraph.map((a) => a.assistant_id)).toEqual([created.assistant_id]);
    const byMeta = await s.client.assistants.search({ metadata: { tag, team: "a" } });
    expect(byMeta.map((a) => a.assistant_id).sort()).toEqual(
      [created.assistant_id, other.assistant_id].sort(),
    );
    expect(await s.client.assistants.count({ metadata: { tag } })).toBe(2);
    expect(await s.client.assistants.count({ graphId: "approval", metadata: { tag } })).toBe(1);
    const limited = await s.client.assistants.search({ metadata: { tag }, limit: 1 });
    expect(limited).toHaveLength(1);

    // The deleted ids, as the LangGraph server answers (issue 22).
    expect(await s.client.assistants.delete(created.assistant_id)).toEqual([created.assistant_id]);
    const gone = await failure(s.client.assistants.get(created.assistant_id));
    expect(gone.status).toBe(404);
    expect(gone.body).toContain("Assistant not found");
    expect(await s.client.assistants.count({ metadata: { tag } })).toBe(1);
    expect((await failure(s.client.assistants.delete(created.assistant_id))).status).toBe(404);
  });

  it("delete with deleteThreads also deletes the assistant's threads, no others (issue 22)", async () => {
    const mine = await s.client.assistants.create({ graphId: "slow" });
    const other = await s.client.assistants.create({ graphId: "slow" });
    const t1 = await s.client.threads.create();
    await s.client.runs.wait(t1.thread_id, mine.assistant_id, { input: { topic: "dt" } });
    const t2 = await s.client.threads.create();
    await s.client.runs.wait(t2.thread_id, other.assistant_id, { input: { topic: "dt" } });
    expect(await s.client.assistants.delete(mine.assistant_id, { deleteThreads: true })).toEqual([
      mine.assistant_id,
    ]);
    expect((await failure(s.client.threads.get(t1.thread_id))).status).toBe(404);
    expect((await s.client.threads.get(t2.thread_id)).thread_id).toBe(t2.thread_id);
  });

  it('an assistant created without a name is "Untitled", as the LangGraph server names it (issue 22)', async () => {
    const a = await s.client.assistants.create({ graphId: "refine" });
    expect(a.name).toBe("Untitled");
    expect((await s.client.assistants.get(a.assistant_id)).name).toBe("Untitled");
  });

  it("if_exists do_nothing returns the existing assistant; raise is a 409", async () => {
    const first = await s.client.assistants.create({ graphId: "slow", name: "first" });
    const again = await s.client.assistants.create({
      graphId: "slow",
      assistantId: first.assistant_id,
      name: "second",
      ifExists: "do_nothing",
    });
    expect(again).toEqual(first);
    const raised = await failure(
      s.client.assistants.create({ graphId: "slow", assistantId: first.assistant_id }),
    );
    expect(raised.status).toBe(409);
  });
});

describe("graph and schemas", () => {
  it("getGraph returns the refine nodes and edges", async () => {
    const graph = await s.client.assistants.getGraph("refine");
    const ids = graph.nodes.map((n) => String(n.id));
    expect(ids).toEqual(
      expect.arrayContaining(["__start__", "generate", "critique", "verify", "revise", "__end__"]),
    );
    const edges = graph.edges.map((e) => `${e.source}->${e.target}`);
    expect(edges).toContain("__start__->generate");
    expect(edges).toEqual(
      expect.arrayContaining(["generate->critique", "critique->verify", "verify->revise"]),
    );
  });

  it("getSchemas for refine has an input schema and a config schema naming the options", async () => {
    const schemas = await s.client.assistants.getSchemas("refine");
    expect(schemas.graph_id).toBe("refine");
    const config = schemas.config_schema as { properties?: Record<string, unknown> } | null;
    expect(Object.keys(config?.properties ?? {})).toEqual(
      expect.arrayContaining(["maxIterations", "verifiers", "models", "scoreThreshold"]),
    );
    const input = schemas.input_schema as { properties?: Record<string, unknown> } | null;
    expect(Object.keys(input?.properties ?? {})).toContain("task");
    // A graph without declared schemas answers with nulls, not an error.
    const approval = await s.client.assistants.getSchemas("approval");
    expect(approval.graph_id).toBe("approval");
  });
});

describe("an assistant's config drives runs", () => {
  it("maxIterations 1 stops after one draft; the same seed gives the same answer", async () => {
    const one = await s.client.assistants.create({
      graphId: "refine",
      config: {
        configurable: {
          maxIterations: 1,
          verifiers: [{ kind: "answer_match", expected: 395 }],
          models: simulated(3),
        },
      },
    });
    const input = { task: "What is 17 * 23 + 4?" };
    const t1 = await s.client.threads.create();
    const out = (await s.client.runs.wait(t1.thread_id, one.assistant_id, {
      input,
    })) as unknown as RefineValues;
    expect(out.simulated).toBe(true);
    expect(out.drafts).toHaveLength(1);
    expect(["max_iterations", "accepted"]).toContain(out.stopReason);

    const t2 = await s.client.threads.create();
    const again = (await s.client.runs.wait(t2.thread_id, one.assistant_id, {
      input,
    })) as unknown as RefineValues;
    expect(again.answer).toBe(out.answer);
    expect(again.drafts.map((d) => d.text)).toEqual(out.drafts.map((d) => d.text));

    // A run's own configurable overrides the assistant's.
    const t3 = await s.client.threads.create();
    const three = (await s.client.runs.wait(t3.thread_id, one.assistant_id, {
      input,
      config: { configurable: { maxIterations: 3, scoreThreshold: 1 } },
    })) as unknown as RefineValues;
    expect(three.drafts.length).toBeGreaterThanOrEqual(1);
    expect(three.drafts.length).toBeLessThanOrEqual(3);
  });
});

describe("invalid assistants", () => {
  it("an invalid regex verifier is a 422 naming the field, and nothing is created", async () => {
    const before = await s.client.assistants.count();
    const bad = await failure(
      s.client.assistants.create({
        graphId: "refine",
        config: { configurable: { verifiers: [{ kind: "regex", mustMatch: ["("] }] } },
      }),
    );
    expect(bad.status).toBe(422);
    expect(bad.body).toContain("verifiers[0]");
    expect(bad.body).not.toMatch(/\bat .+\.ts:\d+/);
    expect(await s.client.assistants.count()).toBe(before);
  });

  it("maxIterations 0 is a 422 naming maxIterations", async () => {
    const bad = await failure(
      s.client.assistants.create({
        graphId: "refine",
        config: { configurable: { maxIterations: 0 } },
      }),
    );
    expect(bad.status).toBe(422);
    expect(bad.body).toContain("maxIterations");
  });

  it("an update with an invalid config is a 422 and writes no version", async () => {
    const a = await s.client.assistants.create({ graphId: "refine" });
    const bad = await failure(
      s.client.assistants.update(a.assistant_id, {
        config: { configurable: { maxIterations: 0 } },
      }),
    );
    expect(bad.status).toBe(422);
    expect(bad.body).toContain("maxIterations");
    expect((await s.client.assistants.get(a.assistant_id)).version).toBe(1);
    expect(await s.client.assistants.getVersions(a.assistant_id)).toHaveLength(1);
  });

  it("an unknown graph_id is a 422 naming graph_id", async () => {
    const bad = await failure(s.client.assistants.create({ graphId: "nope" }));
    expect(bad.status).toBe(422);
    expect(bad.body).toContain("graph_id");
    expect(bad.body).toContain("refine");
  });

  it("an unknown assistant id or graph id is a 404 Assistant not found", async () => {
    for (const id of ["00000000-0000-4000-8000-000000000000", "no-such-graph"]) {
      const missing = await failure(s.client.assistants.get(id));
      expect(missing.status).toBe(404);
      expect(missing.body).toContain("Assistant not found");
    }
  });
});
