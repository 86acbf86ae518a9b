// Time travel through the official SDK on a real server, on the built-in `refine` graph (whose
// nodes route with `Command({ goto })`) and on a declarative graph, with a plain LangGraph graph
// (test/fixtures/graphs/steps.ts `slow`, static edges) as the reference: a state update made as a
// node leaves `next` at that node's successor and a run with `input: null` continues from it; a
// run from an earlier checkpoint forks a branch that history shows. Fakes model content only.
import type { ThreadState } from "@langchain/langgraph-sdk";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Critique, Draft, RefineStateType } from "../../core/state.ts";
import { readExample } from "../declarative/support.ts";
import { ScriptedChatModel, scriptedProvider } from "../support/scripted-model.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { TEST_BACKEND } from "../support/test-backend.ts";

const PASS = '{"verdict":"pass","score":0.95,"issues":[]}';
const REVISE = '{"verdict":"revise","score":0.3,"issues":["the final answer is wrong"]}';
const FULL = '{"name": "Ada", "age": 36, "email": "ada@example.org"}';
const text = (m: { content: unknown } | undefined) => String(m?.content ?? "");

const model = new ScriptedChatModel({
  // refine: a wrong first draft, a right revision; json-extraction: an incomplete record first.
  generate: (messages) =>
    text(messages[0]).includes("extract data") ? '{"name": "Ada", "age": 36}' : "Answer: 5",
  critique: (messages) => (messages.some((m) => text(m).includes("Answer: 4")) ? PASS : REVISE),
  revise: (messages) => (text(messages[0]).includes("repair a JSON") ? FULL : "Answer: 4"),
});

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ provider: scriptedProvider(model) });
  const res = await fetch(`${s.url}/graphs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(readExample("json-extraction.yaml")),
  });
  expect(res.status).toBe(201);
});
afterAll(async () => s?.close());

type Values = RefineStateType & { log?: string[] };
type State = ThreadState<Values>;

const refineConfig = {
  configurable: {
    verifiers: [{ kind: "answer_match", expected: 4 }],
    retry: { retries: 0 },
    maxIterations: 3,
  },
};

/** POST /threads/{id}/state answers `{checkpoint}` (the SDK types it as a config). */
const checkpointIdOf = (r: unknown) =>
  (r as { checkpoint: { checkpoint_id: string } }).checkpoint.checkpoint_id;

const history = (threadId: string) =>
  s.client.threads.getHistory<Values>(threadId, { limit: 100 }) as Promise<State[]>;

/** The oldest checkpoint (history is newest first) whose pending node is `next`. */
async function checkpointBefore(threadId: string, next: string): Promise<string> {
  const found = (await history(threadId)).findLast(
    (h) => h.next.length === 1 && h.next[0] === next,
  );
  expect(found, `a checkpoint with next [${next}]`).toBeDefined();
  return found?.checkpoint.checkpoint_id ?? "";
}

/** Checkpoint ids from `from` back to the first checkpoint, following parent_checkpoint. */
function ancestry(states: State[], from: string | null | undefined): string[] {
  const byId = new Map(states.map((h) => [h.checkpoint.checkpoint_id, h]));
  const chain: string[] = [];
  for (let c = from; c; c = byId.get(c)?.parent_checkpoint?.checkpoint_id) chain.push(c);
  return chain;
}

async function finishedThread(graph: string, input: Record<string, unknown>) {
  const thread = await s.client.threads.create();
  await s.client.runs.wait(thread.thread_id, graph, {
    input,
    ...(graph === "refine" ? { config: refineConfig } : {}),
  });
  const state = (await s.client.threads.getState<Values>(thread.thread_id)) as State;
  expect(state.next).toEqual([]);
  const head = state.checkpoint.checkpoint_id ?? "";
  expect(head).not.toBe("");
  return { id: thread.thread_id, head };
}

/** Updates the state at `checkpointId` as `asNode`, checks `next`, and continues from the edit. */
async function editAndContinue(
  id: string,
  graph: string,
  checkpointId: string,
  asNode: string,
  values: Record<string, unknown>,
  expectedNext: string[],
) {
  const editId = checkpointIdOf(
    await s.client.threads.updateState(id, { values, asNode, checkpointId }),
  );
  const edited = (await s.client.threads.getState<Values>(id)) as State;
  expect(edited.checkpoint.checkpoint_id).toBe(editId);
  expect(edited.next).toEqual(expectedNext);
  const out = (await s.client.runs.wait(id, graph, {
    input: null,
    checkpointId: editId,
  })) as unknown as Values;
  const now = (await s.client.threads.getState<Values>(id)) as State;
  expect(now.next).toEqual([]);
  return { out, editId, now };
}

const draft = (text: string, iteration = 0): Draft => ({
  iteration,
  text,
  source: "generate",
  usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0, calls: 0 },
  latencyMs: 0,
  createdAt: new Date(0).toISOString(),
});

describe("updateState as a node, then input null", () => {
  it("the plain graph (reference): next is the node's successor and the run finishes", async () => {
    const { id } = await finishedThread("slow", { topic: "t" });
    const at = await checkpointBefore(id, "two");
    const { out } = await editAndContinue(id, "slow", at, "one", { log: "one-edited" }, ["two"]);
    expect(out.log).toEqual(["one", "one-edited", "two", "three"]);
  });

  it("refine as generate: next is critique, and the run accepts the edited draft", async () => {
    const { id } = await finishedThread("refine", { task: "What is 2 + 2?" });
    const at = await checkpointBefore(id, "critique");
    const { out } = await editAndContinue(
      id,
      "refine",
      at,
      "generate",
      { drafts: [draft("2 + 2 = 4\nAnswer: 4")] },
      ["critique"],
    );
    expect(out.stopReason).toBe("accepted");
    expect(out.answer).toContain("Answer: 4");
    // The edited draft was the one critiqued and accepted: no revision was needed.
    expect(out.drafts.map((d) => d.text)).toEqual(["Answer: 5", "2 + 2 = 4\nAnswer: 4"]);
  });

  it("refine as critique: next is verify, and the run goes on from the edited critique", async () => {
    const { id } = await finishedThread("refine", { task: "What is 2 + 2?" });
    const at = await checkpointBefore(id, "critique");
    const critique: Critique = {
      iteration: 0,
      verdict: "revise",
      score: 0.1,
      issues: ["edited: say 4"],
      raw: "edited",
      usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0, calls: 0 },
      latencyMs: 0,
    };
    const { out, now } = await editAndContinue(
      id,
      "refine",
      at,
      "critique",
      { critiques: [critique] },
      ["verify"],
    );
    expect(out.stopReason).toBe("accepted");
    expect(out.answer).toContain("Answer: 4");
    expect(now.values.critiques.map((c) => c.raw)).toContain("edited");
  });

  it("refine as revise: next is critique; on the final state it stays END until stopReason is cleared", async () => {
    const { id, head } = await finishedThread("refine", { task: "What is 2 + 2?" });
    // The run stopped (stopReason set): an update as revise routes to END, as an edge would.
    await s.client.threads.updateState(id, {
      values: { drafts: [draft("Answer: 4", 1)] },
      asNode: "revise",
      checkpointId: head,
    });
    expect((await s.client.threads.getState(id)).next).toEqual([]);
    // Cleared, the same update routes to revise's successor and the run ends accepted again.
    const { out } = await editAndContinue(
      id,
      "refine",
      head,
      "revise",
      { drafts: [draft("Answer: 4", 1)], stopReason: null, answer: null },
      ["critique"],
    );
    expect(out.stopReason).toBe("accepted");
    expect(out.answer).toBe("Answer: 4");
  });

  it("refine under proactive: an update as verify routes by the route it records", async () => {
    const thread = await s.client.threads.create();
    await s.client.runs.wait(thread.thread_id, "refine", {
      input: { task: "What is 2 + 2?" },
      config: { configurable: { ...refineConfig.configurable, strategy: "proactive" } },
    });
    const id = thread.thread_id;
    const at = await checkpointBefore(id, "verify");
    for (const route of ["critique", "revise"] as const) {
      await s.client.threads.updateState(id, {
        values: { route },
        asNode: "verify",
        checkpointId: at,
      });
      expect((await s.client.threads.getState(id)).next).toEqual([route]);
    }
    // Without asNode LangGraph attributes the update to the node that ran last (generate here),
    // which routes the same way.
    await s.client.threads.updateState(id, { values: { route: "critique" }, checkpointId: at });
    expect((await s.client.threads.getState(id)).next).toEqual(["critique"]);
  });

  it("declarative graph as its generate node: next is the verify node (the finish step on a stopped state unless nodeStop is cleared), and it finishes", async () => {
    const { id, head } = await finishedThread("json-extraction", { task: "Extract the person." });
    // On the stopped state the edges read the last step's stop reason: an update as extract goes
    // to the finishing step, as the same edge would after a run of extract; with `nodeStop: null`
    // it goes to extract's successor.
    for (const [values, next] of [
      [{}, ["__finish__"]],
      [{ nodeStop: null }, ["check"]],
    ] as const) {
      await s.client.threads.updateState(id, { values, asNode: "extract", checkpointId: head });
      expect((await s.client.threads.getState(id)).next).toEqual(next);
    }
    const at = await checkpointBefore(id, "check");
    const { out } = await editAndContinue(
      id,
      "json-extraction",
      at,
      "extract",
      { drafts: [draft(FULL)] },
      ["check"],
    );
    expect(out.answer).toBe(FULL);
    // The fixed record passed the check: no repair after the edit.
    expect(out.drafts.map((d) => d.text)).toEqual(['{"name": "Ada", "age": 36}', FULL]);
  });
});

describe("a run from an earlier checkpoint forks", () => {
  for (const [graph, input, next] of [
    ["slow", { topic: "f" }, "two"],
    ["refine", { task: "What is 2 + 2?" }, "verify"],
    ["json-extraction", { task: "Extract the person." }, "check"],
  ] as const) {
    it(`${graph}: input null at a checkpoint replays from there on a new branch`, async () => {
      const { id, head } = await finishedThread(graph, input);
      const original = await history(id);
      const at = await checkpointBefore(id, next);
      const before = (await s.client.threads.getState<Values>(id, at)) as State;
      const forked = (await s.client.runs.wait(id, graph, {
        input: null,
        checkpointId: at,
      })) as unknown as Values;
      const last = original[0]?.values as Values;
      if (graph === "slow") expect(forked.log).toEqual(last.log);
      else {
        expect(forked.answer).toBe(last.answer);
        expect(forked.stopReason).toBe(last.stopReason);
        expect(forked.drafts.length).toBe(last.drafts.length);
      }
      const after = await history(id);
      expect(after.length).toBeGreaterThan(original.length);
      const now = (await s.client.threads.getState<Values>(id)) as State;
      const chain = ancestry(after, now.checkpoint.checkpoint_id);
      expect(chain).toContain(at);
      expect(chain).not.toContain(head);
      // The fork's first new checkpoint is a child of the fork point; the old head is kept.
      expect(chain[chain.indexOf(at) - 1]).toBeDefined();
      expect(before.next).toEqual([next]);
      const old = (await s.client.threads.getState<Values>(id, head)) as State;
      expect(old.checkpoint.checkpoint_id).toBe(head);
    });
  }
});

describe("a finished run's history", () => {
  it("is archived once the run ends (SQLite) and reads back step by step, pending writes included", async () => {
    const { id, head } = await finishedThread("refine", { task: "What is 2 + 2?" });
    const states = await history(id);
    // Every step of the run, each the child of the one before, the first the input.
    expect(ancestry(states, head)).toHaveLength(states.length);
    expect(states.at(-1)?.metadata?.source).toBe("input");
    // A step's tasks show their results (from the step's pending writes).
    const atCritique = states.find((h) => h.next[0] === "critique");
    expect(atCritique?.tasks[0]?.result).toBeDefined();
    if (TEST_BACKEND === "sqlite") {
      // Compacted just after the run's result went out (server/run-runner.ts compactAfter).
      const db = new Database(s.dbPath, { readonly: true });
      try {
        const count = (sql: string) => (db.prepare(sql).get(id) as { n: number }).n;
        await expect
          .poll(
            () =>
              count("SELECT COUNT(*) AS n FROM refinery_checkpoint_archive WHERE thread_id = ?"),
            {
              timeout: 5000,
            },
          )
          .toBe(1);
        expect(count("SELECT COUNT(*) AS n FROM checkpoints WHERE thread_id = ?")).toBe(1);
      } finally {
        db.close();
      }
      // The history reads the same from the archive.
      expect(await history(id)).toEqual(states);
    }
  });
});
