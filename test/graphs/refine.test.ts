// The refine graph end to end with a scripted model: convergence, every stop reason,
// best-so-far, token accounting and resume from a checkpoint.
import { MemorySaver } from "@langchain/langgraph";
import { describe, expect, it } from "vitest";
import { RefineryError } from "../../core/errors.ts";
import { createSettingsResolver } from "../../core/settings.ts";
import { usageByNodeOf, type RefineStateType } from "../../core/state.ts";
import { totalsOnly } from "../../core/usage.ts";
import { createRefineGraph } from "../../graphs/refine.ts";
import { ScriptedChatModel, scriptedProvider, type Script } from "../support/scripted-model.ts";

const PASS = '{"verdict":"pass","score":0.95,"issues":[]}';
const REVISE = '{"verdict":"revise","score":0.3,"issues":["the final answer is wrong"]}';

function setup(script: Script, defaults: Record<string, unknown> = {}) {
  const model = new ScriptedChatModel(script);
  const settings = createSettingsResolver({
    provider: scriptedProvider(model),
    defaults: { retry: { retries: 0, baseDelayMs: 0 }, ...defaults },
  });
  const checkpointer = new MemorySaver();
  const graph = createRefineGraph({ settings, checkpointer });
  let n = 0;
  const run = async (input: Record<string, unknown> | null, threadId = `t${++n}`) =>
    (await graph.invoke(input, { configurable: { thread_id: threadId } })) as RefineStateType;
  return { model, graph, run, checkpointer };
}

const expect4 = { verifiers: [{ kind: "answer_match", expected: 4 }] };

describe("refine graph", () => {
  it("converges: a failed check is fed to revise and the fixed draft is accepted", async () => {
    const { model, run } = setup(
      {
        generate: ["2 + 2 = 5\nAnswer: 5"],
        critique: [REVISE, PASS],
        revise: ["2 + 2 = 4\nAnswer: 4"],
      },
      expect4,
    );
    const out = await run({ task: "What is 2 + 2?" });
    expect(out.stopReason).toBe("accepted");
    expect(out.answer).toBe("2 + 2 = 4\nAnswer: 4");
    expect(out.drafts.map((d) => d.iteration)).toEqual([1, 2]);
    expect(out.verdicts.map((v) => v.pass)).toEqual([false, true]);
    // revise saw both the critique and the verifier's message
    const revisePrompt = model.callsFor("revise")[0]?.messages[1]?.content ?? "";
    expect(revisePrompt).toContain("the final answer is wrong");
    expect(revisePrompt).toMatch(/\[answer_match\].*5.*4/);
    // 4 calls x (10 prompt + 5 completion)
    expect(totalsOnly(out.usage)).toEqual({
      promptTokens: 40,
      completionTokens: 20,
      totalTokens: 60,
      calls: 4,
    });
    expect(usageByNodeOf(out).generate?.totalTokens).toBe(15);
    expect(usageByNodeOf(out).critique?.calls).toBe(2);
  });

  it("hits the iteration cap and reports it", async () => {
    let i = 0;
    const { run } = setup(
      { generate: ["Answer: 1"], critique: [REVISE], revise: () => `Answer: ${++i + 1}0` },
      { ...expect4, maxIterations: 3 },
    );
    const out = await run({ task: "What is 2 + 2?" });
    expect(out.stopReason).toBe("max_iterations");
    expect(out.drafts).toHaveLength(3);
    expect(out.critiques).toHaveLength(3);
  });

  it("stops on the token budget before overspending", async () => {
    let i = 0;
    const { run } = setup(
      { generate: ["Answer: 1"], critique: [REVISE], revise: () => `Answer: ${++i + 10}` },
      { ...expect4, maxIterations: 10, tokenBudget: 100 },
    );
    const out = await run({ task: "What is 2 + 2?" });
    expect(out.stopReason).toBe("token_budget");
    expect(out.usage.totalTokens).toBeLessThanOrEqual(100);
    expect(out.drafts.length).toBeLessThan(10);
  });

  it("stops when a revision is identical to the previous draft", async () => {
    const { model, run } = setup(
      { generate: ["Answer: 5"], critique: [REVISE], revise: ["Answer: 5"] },
      expect4,
    );
    const out = await run({ task: "What is 2 + 2?" });
    expect(out.stopReason).toBe("unchanged");
    expect(out.answer).toBe("Answer: 5");
    expect(model.callsFor("critique")).toHaveLength(1);
  });

  it("keeps the best-so-far when a revision gets worse", async () => {
    const verifiers = [
      { kind: "regex", mustMatch: ["Answer:"] },
      { kind: "answer_match", expected: 4 },
    ];
    const { run } = setup(
      { generate: ["Answer: 3"], critique: [REVISE], revise: ["no idea", "still no idea"] },
      { verifiers, maxIterations: 3 },
    );
    const out = await run({ task: "What is 2 + 2?" });
    expect(out.stopReason).toBe("max_iterations");
    expect(out.best).toMatchObject({ iteration: 1, hardPassed: 1, hardTotal: 2 });
    expect(out.answer).toBe("Answer: 3");
  });

  it("accepts on the score threshold when the critique only has nits", async () => {
    const { run } = setup(
      {
        generate: ["Answer: 4"],
        critique: ['{"verdict":"revise","score":0.9,"issues":["could be terser"]}'],
      },
      { ...expect4, scoreThreshold: 0.8 },
    );
    const out = await run({ task: "What is 2 + 2?" });
    expect(out.stopReason).toBe("accepted");
    expect(out.drafts).toHaveLength(1);
  });

  it("runs without a critique when it is switched off", async () => {
    const { model, run } = setup({ generate: ["Answer: 4"] }, { ...expect4, critique: false });
    const out = await run({ task: "What is 2 + 2?" });
    expect(out.stopReason).toBe("accepted");
    expect(model.callsFor("critique")).toHaveLength(0);
  });

  it("a model failure after the first draft stops with the best-so-far and the error recorded", async () => {
    const failure = new RefineryError("model_unavailable", "endpoint down");
    const { run } = setup(
      { generate: ["Answer: 3"], critique: [REVISE], revise: [failure] },
      expect4,
    );
    const out = await run({ task: "What is 2 + 2?" });
    expect(out.stopReason).toBe("model_error");
    expect(out.answer).toBe("Answer: 3");
    expect(out.error).toMatchObject({ code: "model_unavailable", node: "revise" });
  });

  it("a model failure before any draft fails the run", async () => {
    const { run } = setup({ generate: [new RefineryError("model_error", "bad key")] });
    await expect(run({ task: "x" })).rejects.toThrow(/bad key/);
  });

  it("rejects an empty task", async () => {
    const { run } = setup({});
    await expect(run({ task: "   " })).rejects.toThrow(/task is empty/);
  });

  it("options stored with the input drive the run (and survive a resume)", async () => {
    const { run } = setup({ generate: ["Answer: 5"], critique: [PASS] });
    const out = await run({
      task: "What is 2 + 2?",
      options: { verifiers: [{ kind: "answer_match", expected: 5 }] },
    });
    expect(out.verdicts[0]).toMatchObject({ kind: "answer_match", pass: true });
  });

  it("a new task on a finished thread starts a fresh round", async () => {
    const { run } = setup({ generate: ["Answer: 4", "Answer: 9"], critique: [PASS] });
    await run({ task: "What is 2 + 2?" }, "same");
    const out = await run({ task: "What is 3 * 3?" }, "same");
    expect(out.drafts.map((d) => d.text)).toEqual(["Answer: 9"]);
    expect(out.answer).toBe("Answer: 9");
    expect(out.critiques).toHaveLength(1);
  });

  it("resumes an interrupted run from its last checkpoint without redoing steps", async () => {
    const { model, graph } = setup(
      { generate: ["Answer: 3"], critique: [REVISE, PASS], revise: ["Answer: 4"] },
      expect4,
    );
    const config = { configurable: { thread_id: "resume" } };
    const abort = new AbortController();
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const chunk of await graph.stream(
          { task: "What is 2 + 2?" },
          { ...config, streamMode: "updates", signal: abort.signal },
        )) {
          seen.push(...Object.keys(chunk));
          if (seen.includes("verify")) abort.abort();
        }
      })(),
    ).rejects.toThrow();
    expect(seen).toEqual(["generate", "critique", "verify"]);
    const paused = await graph.getState(config);
    expect(paused.next).toEqual(["revise"]);
    const out = (await graph.invoke(null, config)) as RefineStateType;
    expect(out.stopReason).toBe("accepted");
    expect(model.callsFor("generate")).toHaveLength(1);
    expect(model.callsFor("critique")).toHaveLength(2);
  });
});
