// Human approval inside the refine graph: when it pauses, what the reviewer sees, and each of
// approve / reject-with-feedback / edit / abort.
import { Command, MemorySaver } from "@langchain/langgraph";
import { describe, expect, it } from "vitest";
import { approvalReason, type ApprovalRequest } from "../../core/approval.ts";
import { createSettingsResolver } from "../../core/settings.ts";
import type { RefineStateType } from "../../core/state.ts";
import { createRefineGraph } from "../../graphs/refine.ts";
import { ScriptedChatModel, scriptedProvider, type Script } from "../support/scripted-model.ts";

const PASS = '{"verdict":"pass","score":0.95,"issues":[]}';
const REVISE = '{"verdict":"revise","score":0.3,"issues":["wrong sum"]}';
const expect4 = [{ kind: "answer_match", expected: 4 }];

function setup(script: Script, defaults: Record<string, unknown>) {
  const model = new ScriptedChatModel(script);
  const settings = createSettingsResolver({
    provider: scriptedProvider(model),
    defaults: { retry: { retries: 0, baseDelayMs: 0 }, ...defaults },
  });
  const graph = createRefineGraph({ settings, checkpointer: new MemorySaver() });
  const config = { configurable: { thread_id: "a" } };
  const pending = async () => {
    const state = await graph.getState(config);
    return state.tasks.flatMap((t) => t.interrupts).map((i) => i.value as ApprovalRequest)[0];
  };
  return { model, graph, config, pending };
}

describe("approval", () => {
  it("final: pauses before the final answer with draft, diff, critique, verdicts and tokens; approve finishes", async () => {
    const { graph, config, pending, model } = setup(
      { generate: ["Answer: 5"], critique: [REVISE, PASS], revise: ["Answer: 4"] },
      { verifiers: expect4, approval: { mode: "final" } },
    );
    await graph.invoke({ task: "What is 2 + 2?" }, config);
    const req = await pending();
    expect(req).toMatchObject({
      type: "approval",
      iteration: 2,
      draft: "Answer: 4",
      previousDraft: "Answer: 5",
      stopReason: "accepted",
      actions: ["approve", "reject", "edit", "abort"],
    });
    expect(req?.diff).toMatch(/-Answer: 5\n\+Answer: 4/);
    expect(req?.verdicts[0]).toMatchObject({ verifierId: "answer_match", pass: true });
    expect(req?.critique).toMatchObject({ verdict: "pass" });
    expect(req?.usage.totalTokens).toBeGreaterThan(0);
    const out = (await graph.invoke(
      new Command({ resume: { action: "approve" } }),
      config,
    )) as RefineStateType;
    expect(out.stopReason).toBe("approved");
    expect(out.answer).toBe("Answer: 4");
    expect(out.approvals).toEqual([expect.objectContaining({ action: "approve", iteration: 2 })]);
    expect(model.calls).toHaveLength(4);
  });

  it("reject with feedback: the feedback reaches revise and the loop continues", async () => {
    const { graph, config, model } = setup(
      {
        generate: ["Answer: 4"],
        critique: [PASS],
        revise: ["2 + 2 = 4, so the answer is four.\nAnswer: 4"],
      },
      { verifiers: expect4, approval: { mode: "final" } },
    );
    await graph.invoke({ task: "What is 2 + 2?" }, config);
    await graph.invoke(
      new Command({ resume: { action: "reject", feedback: "show the working" } }),
      config,
    );
    expect(model.callsFor("revise")[0]?.messages[1]?.content).toMatch(
      /Reviewer feedback[\s\S]*show the working/,
    );
    const state = (await graph.getState(config)).values as RefineStateType;
    expect(state.feedback).toEqual([
      expect.objectContaining({ text: "show the working", source: "human" }),
    ]);
    // the new draft is up for approval again
    const out = (await graph.invoke(new Command({ resume: "approve" }), config)) as RefineStateType;
    expect(out.answer).toMatch(/show|working|four/);
    expect(out.approvals.map((a) => a.action)).toEqual(["reject", "approve"]);
  });

  it("edit: the reviewer's text becomes the draft and is verified again", async () => {
    const { graph, config } = setup(
      { generate: ["Answer: 5"], critique: [REVISE] },
      { verifiers: expect4, maxIterations: 1, approval: { mode: "escalation" } },
    );
    await graph.invoke({ task: "What is 2 + 2?" }, config);
    const out = (await graph.invoke(
      new Command({ resume: { action: "edit", text: "Answer: 4" } }),
      config,
    )) as RefineStateType;
    expect(out.drafts.at(-1)).toMatchObject({ source: "human", text: "Answer: 4" });
    expect(out.verdicts.at(-1)).toMatchObject({ pass: true, iteration: 2 });
    expect(out.answer).toBe("Answer: 4");
  });

  it("abort ends with the best-so-far", async () => {
    const { graph, config } = setup(
      { generate: ["Answer: 5"], critique: [REVISE] },
      { verifiers: expect4, maxIterations: 1, approval: { mode: "escalation" } },
    );
    await graph.invoke({ task: "What is 2 + 2?" }, config);
    const out = (await graph.invoke(
      new Command({ resume: { action: "abort", reason: "not worth it" } }),
      config,
    )) as RefineStateType;
    expect(out.stopReason).toBe("aborted");
    expect(out.answer).toBe("Answer: 5");
  });

  it("escalation does not ask when the answer passes", async () => {
    const { graph, config, pending } = setup(
      { generate: ["Answer: 4"], critique: [PASS] },
      { verifiers: expect4, approval: { mode: "escalation" } },
    );
    const out = (await graph.invoke({ task: "What is 2 + 2?" }, config)) as RefineStateType;
    expect(out.stopReason).toBe("accepted");
    expect(await pending()).toBeUndefined();
  });

  it("every_revision pauses after each revised draft", async () => {
    const { graph, config, pending } = setup(
      { generate: ["Answer: 5"], critique: [REVISE], revise: ["Answer: 6", "Answer: 4"] },
      { verifiers: expect4, approval: { mode: "every_revision" }, maxIterations: 5 },
    );
    await graph.invoke({ task: "What is 2 + 2?" }, config);
    expect((await pending())?.iteration).toBe(2);
  });

  it("a malformed decision is refused", async () => {
    const { graph, config } = setup(
      { generate: ["Answer: 4"], critique: [PASS] },
      { verifiers: expect4, approval: { mode: "final" } },
    );
    await graph.invoke({ task: "What is 2 + 2?" }, config);
    await expect(
      graph.invoke(new Command({ resume: { action: "reject" } }), config),
    ).rejects.toThrow(/feedback/);
  });
});

describe("approvalReason", () => {
  const p = { iteration: 2, hardPassed: 1, hardTotal: 1, score: 0.9, decided: false };
  it.each([
    [{ mode: "never" as const }, { ...p, stopReason: "accepted" as const }, undefined],
    [{ mode: "final" as const }, { ...p, stopReason: null }, undefined],
    [
      { mode: "final" as const },
      { ...p, stopReason: "accepted" as const },
      "final answer ready (accepted)",
    ],
    [
      { mode: "escalation" as const },
      { ...p, hardPassed: 0, stopReason: "max_iterations" as const },
      "escalation: 1 hard verifier(s) still fail at max_iterations",
    ],
    [
      { mode: "escalation" as const },
      { ...p, stopReason: "token_budget" as const },
      "escalation: the token budget ran out",
    ],
    [
      { mode: "escalation" as const, scoreBelow: 0.95 },
      { ...p, stopReason: "accepted" as const },
      "escalation: score 0.90 is below 0.95",
    ],
    [{ mode: "escalation" as const }, { ...p, stopReason: "accepted" as const }, undefined],
    [
      { mode: "final" as const },
      { ...p, stopReason: "accepted" as const, decided: true },
      undefined,
    ],
  ])("%j %j", (options, point, expected) => {
    expect(approvalReason(options, point)).toBe(expected);
  });
});
