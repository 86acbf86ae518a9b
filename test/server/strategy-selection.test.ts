// Choosing the refinement strategy per graph (a declarative spec's options), per assistant (its
// config) and per run (the run's configurable, which wins), over the real server with the official
// SDK client; an unknown strategy is a 422 naming the field, before any run exists.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => s?.close());

const TASK = "What is 17 * 23 + 4?";
const configurable = (extra: Record<string, unknown>) => ({
  models: { default: { provider: "simulated", simulated: { seed: 5 } } },
  verifiers: [{ kind: "answer_match", expected: 395 }],
  ...extra,
});

interface Values {
  strategy: string | null;
  stopReason: string | null;
  decisions: { node: string; action: string }[];
  critiques: unknown[];
}

async function wait(assistantId: string, extra?: Record<string, unknown>): Promise<Values> {
  const thread = await s.client.threads.create();
  return (await s.client.runs.wait(thread.thread_id, assistantId, {
    input: { task: TASK },
    ...(extra ? { config: { configurable: extra } } : {}),
  })) as unknown as Values;
}

describe("strategy selection", () => {
  it("per assistant config, and per run over it", async () => {
    const proactive = await s.client.assistants.create({
      graphId: "refine",
      config: { configurable: configurable({ strategy: "proactive" }) },
    });
    const a = await wait(proactive.assistant_id);
    expect(a.strategy).toBe("proactive");
    // Proactive records its decisions; with a passing, worked draft it spends no critique.
    expect(a.decisions.length).toBeGreaterThan(0);
    expect(a.decisions[0]).toMatchObject({ node: "verify" });

    const b = await wait(proactive.assistant_id, { strategy: "vanilla" });
    expect(b).toMatchObject({ strategy: "vanilla", stopReason: "single_pass" });
    expect(b.critiques).toEqual([]);

    const c = await wait(proactive.assistant_id, { strategy: "self-refine" });
    expect(c.strategy).toBe("self-refine");
    expect(c.critiques.length).toBeGreaterThan(0); // self-refine critiques every round
    expect(c.decisions).toEqual([]);
  });

  it("per graph: a declarative spec's options, still overridable per run", async () => {
    const res = await fetch(`${s.url}/graphs`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        id: "one-shot",
        options: configurable({ strategy: "vanilla" }),
        start: "draft",
        nodes: { draft: { kind: "generate" }, check: { kind: "verify" } },
        edges: [
          { from: "draft", to: "check" },
          { from: "check", to: "END" },
        ],
      }),
    });
    expect(res.status).toBeLessThan(300);
    const a = await wait("one-shot");
    expect(a).toMatchObject({ strategy: "vanilla", stopReason: "single_pass" });
    const b = await wait("one-shot", { strategy: "proactive" });
    expect(b.strategy).toBe("proactive");
  });

  it("an unknown strategy is a 422 naming the field, and creates no run", async () => {
    const thread = await s.client.threads.create();
    const res = await fetch(`${s.url}/threads/${thread.thread_id}/runs/wait`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        assistant_id: "refine",
        input: { task: TASK },
        config: { configurable: { strategy: "telepathy" } },
      }),
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { field: string; message: string };
    expect(body.field).toBe("config.configurable.strategy");
    expect(body.message).toMatch(/vanilla|self-refine|proactive|pasr/);
    expect(await s.client.runs.list(thread.thread_id)).toEqual([]);
  });
});
