// Strategies through the real graph with scripted models: vanilla, self-refine vs proactive
// (critique only when doubtful, targeted revise, every decision recorded) and pasr (refine
// segments parsed while streaming; malformed output falls back to proactive).
import { MemorySaver } from "@langchain/langgraph";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { describe, expect, it } from "vitest";
import { RefineryError } from "../../core/errors.ts";
import { createSettingsResolver } from "../../core/settings.ts";
import type { RefineStateType } from "../../core/state.ts";
import { createRefineGraph } from "../../graphs/refine.ts";
import { PasrChatModel, pasrReply } from "../support/pasr-model.ts";
import { ScriptedChatModel, scriptedProvider, type Script } from "../support/scripted-model.ts";

const PASS = '{"verdict":"pass","score":0.95,"issues":[]}';
const REVISE = '{"verdict":"revise","score":0.3,"issues":["step 1 is wrong"]}';

function setup(model: BaseChatModel, defaults: Record<string, unknown>) {
  const settings = createSettingsResolver({
    provider: scriptedProvider(model),
    defaults: { retry: { retries: 0, baseDelayMs: 0 }, ...defaults },
  });
  const graph = createRefineGraph({ settings, checkpointer: new MemorySaver() });
  let n = 0;
  return async (input: Record<string, unknown>) => {
    const custom: Record<string, unknown>[] = [];
    let state: RefineStateType | undefined;
    for await (const [mode, chunk] of await graph.stream(input, {
      configurable: { thread_id: `s${++n}` },
      streamMode: ["custom", "values"],
    })) {
      if (mode === "custom") custom.push(chunk as Record<string, unknown>);
      else state = chunk as RefineStateType;
    }
    if (!state) throw new Error("no state");
    return { state, custom };
  };
}

const scripted = (script: Script) => new ScriptedChatModel(script);
const expect4 = [{ kind: "answer_match", expected: 4 }];

describe("strategies", () => {
  it("vanilla: one draft, verifiers only reported", async () => {
    const model = scripted({ generate: ["Answer: 5"] });
    const { state } = await setup(model, { strategy: "vanilla", verifiers: expect4 })({
      task: "What is 2 + 2?",
    });
    expect(state.stopReason).toBe("single_pass");
    expect(state.verdicts[0]?.pass).toBe(false);
    expect(model.calls.map((c) => c.role)).toEqual(["generate"]);
  });

  it("proactive: a passing draft is accepted without spending a critique, and the skip is recorded", async () => {
    const model = scripted({ generate: ["2 + 2 = 4\nAnswer: 4"] });
    const { state } = await setup(model, { strategy: "proactive", verifiers: expect4 })({
      task: "What is 2 + 2?",
    });
    expect(state.stopReason).toBe("accepted");
    expect(model.calls.map((c) => c.role)).toEqual(["generate"]);
    expect(state.decisions).toEqual([
      expect.objectContaining({
        node: "verify",
        action: "skip_critique",
        reason: expect.stringMatching(/critique skipped/),
      }),
    ]);
  });

  it("proactive: a failing hard check goes straight to a targeted revise that names only the failure", async () => {
    const model = scripted({
      generate: ["2 + 2 = 5\nAnswer: 5"],
      revise: ["2 + 2 = 4\nAnswer: 4"],
    });
    const { state } = await setup(model, { strategy: "proactive", verifiers: expect4 })({
      task: "What is 2 + 2?",
    });
    expect(state.stopReason).toBe("accepted");
    expect(model.calls.map((c) => c.role)).toEqual(["generate", "revise"]);
    const prompt = model.callsFor("revise")[0]?.messages;
    expect(prompt?.[0]?.content).toMatch(/change only what the Critique and Failed checks name/);
    expect(prompt?.[1]?.content).toMatch(/\[answer_match\].*5.*4/);
    expect(state.decisions.map((d) => d.action)).toEqual(["revise", "skip_critique"]);
  });

  it("proactive: a doubtful draft gets a critique, whose issues drive the revise", async () => {
    const model = scripted({
      generate: ["I think it is probably 5.\nAnswer: 5"],
      critique: [REVISE, PASS],
      revise: ["2 + 2 = 4\nAnswer: 4"],
    });
    const { state } = await setup(model, { strategy: "proactive" })({ task: "What is 2 + 2?" });
    expect(model.calls.map((c) => c.role)).toEqual(["generate", "critique", "revise"]);
    expect(state.decisions[0]).toMatchObject({
      action: "critique",
      reason: expect.stringMatching(/self-check/),
    });
    expect(model.callsFor("revise")[0]?.messages[1]?.content).toMatch(/step 1 is wrong/);
    expect(state.stopReason).toBe("accepted");
    // The critic demoted the first draft, so the clean revision is the answer, not the incumbent.
    expect(state.answer).toBe("2 + 2 = 4\nAnswer: 4");
  });

  it("proactive: a critique that names nothing is followed by one localize call; nothing named keeps the draft; self-refine revises on it", async () => {
    const VAGUE = '{"verdict":"revise","score":0.6,"issues":["Double-check the work."]}';
    const script: Script = {
      generate: ["I think it is 4.\nAnswer: 4"],
      critique: [VAGUE, VAGUE, PASS],
      revise: ["2 + 2 = 4\nAnswer: 4"],
    };
    const a = scripted(script);
    const pr = await setup(a, { strategy: "proactive", verifiers: expect4 })({
      task: "What is 2 + 2?",
    });
    expect(a.calls.map((c) => c.role)).toEqual(["generate", "critique", "critique"]);
    const [first, follow] = a.callsFor("critique");
    expect(first?.messages[0]?.content).toMatch(/errors automatic checks cannot see/);
    // The follow-up shows the critic its own vague critique and asks it to point at the part.
    expect(follow?.messages[0]?.content).toMatch(/doubted this draft but named nothing/);
    expect(follow?.messages[1]?.content).toMatch(
      /Critique:\n- Double-check the work\.\n\nDraft:\n/,
    );
    expect(pr.state.stopReason).toBe("accepted");
    expect(pr.state.answer).toBe("I think it is 4.\nAnswer: 4");
    expect(pr.state.critiques).toHaveLength(2);
    expect(pr.state.decisions.filter((d) => d.node === "critique")).toEqual([
      expect.objectContaining({ action: "localize", reason: expect.stringMatching(/point at/) }),
      expect.objectContaining({
        action: "stop",
        reason: expect.stringMatching(/named none.*revise skipped/),
      }),
    ]);
    // Both critic calls are counted under the critique node.
    const critiqueTokens = pr.state.critiques.reduce((n, c) => n + c.usage.totalTokens, 0);
    expect(pr.state.usage.byNode.critique?.totalTokens).toBe(critiqueTokens);

    const b = scripted({ ...script, critique: [VAGUE, PASS] });
    const sr = await setup(b, { strategy: "self-refine", verifiers: expect4 })({
      task: "What is 2 + 2?",
    });
    expect(b.calls.map((c) => c.role)).toEqual(["generate", "critique", "revise", "critique"]);
    expect(sr.state.drafts).toHaveLength(2);
  });

  it("proactive: when the localize call names the wrong part, the targeted revise repairs exactly that", async () => {
    const VAGUE = '{"verdict":"revise","score":0.6,"issues":["Double-check the work."]}';
    const NAMED =
      '{"verdict":"revise","score":0.3,"issues":["The final answer 5 is wrong: 2 + 2 = 4."]}';
    const model = scripted({
      generate: ["I think it is 5.\nAnswer: 5"],
      critique: [VAGUE, NAMED],
      revise: ["2 + 2 = 4\nAnswer: 4"],
    });
    const { state } = await setup(model, {
      strategy: "proactive",
      verifiers: [{ kind: "regex", mustMatch: ["^Answer: \\d+$"], flags: "m" }],
    })({ task: "What is 2 + 2?" });
    expect(model.calls.map((c) => c.role)).toEqual(["generate", "critique", "critique", "revise"]);
    const revise = model.callsFor("revise")[0]?.messages;
    expect(revise?.[0]?.content).toMatch(/change only what the Critique and Failed checks name/);
    expect(revise?.[1]?.content).toMatch(/The final answer 5 is wrong: 2 \+ 2 = 4\./);
    expect(revise?.[1]?.content).not.toMatch(/Double-check the work/);
    expect(state.decisions.map((d) => `${d.node}:${d.action}`)).toEqual([
      "verify:critique",
      "critique:localize",
      "critique:revise",
      // The repaired draft shows its working: the self-check has no doubt left, no critique.
      "verify:skip_critique",
    ]);
    expect(state.answer).toBe("2 + 2 = 4\nAnswer: 4");
  });

  it("proactive: a localize call that fails keeps the draft on the first critique, with the error and both costs recorded", async () => {
    const VAGUE = '{"verdict":"revise","score":0.6,"issues":["Double-check the work."]}';
    const model = scripted({
      generate: ["I think it is 4.\nAnswer: 4"],
      critique: [VAGUE, new RefineryError("model_unavailable", "endpoint down")],
    });
    const { state } = await setup(model, { strategy: "proactive", verifiers: expect4 })({
      task: "What is 2 + 2?",
    });
    expect(state.stopReason).toBe("model_error");
    expect(state.error).toMatchObject({ code: "model_unavailable", node: "critique" });
    expect(state.answer).toBe("I think it is 4.\nAnswer: 4");
    expect(state.best?.score).toBeCloseTo(0.6);
    expect(state.critiques).toHaveLength(1);
    expect(state.decisions.at(-1)).toMatchObject({ node: "critique", action: "localize" });
    expect(state.usage.byNode.critique?.totalTokens).toBe(state.critiques[0]?.usage.totalTokens);
  });

  it("proactive: no localize call when no revise could follow it (iteration cap)", async () => {
    const VAGUE = '{"verdict":"revise","score":0.6,"issues":["Double-check the work."]}';
    const model = scripted({ generate: ["I think it is 4.\nAnswer: 4"], critique: [VAGUE] });
    const { state } = await setup(model, {
      strategy: "proactive",
      maxIterations: 1,
      verifiers: expect4,
    })({ task: "What is 2 + 2?" });
    expect(model.calls.map((c) => c.role)).toEqual(["generate", "critique"]);
    expect(state.decisions.at(-1)).toMatchObject({
      action: "stop",
      reason: expect.stringMatching(/iteration cap leaves no revise/),
    });
  });

  it("proactive: a team's own revise prompt is used by proactive too, unless it sets reviseTargeted", async () => {
    const script = () =>
      scripted({ generate: ["2 + 2 = 5\nAnswer: 5"], revise: ["2 + 2 = 4\nAnswer: 4"] });
    const custom = { system: "House revise rules." };
    const a = script();
    await setup(a, { strategy: "proactive", verifiers: expect4, prompts: { revise: custom } })({
      task: "What is 2 + 2?",
    });
    expect(a.callsFor("revise")[0]?.messages[0]?.content).toBe(custom.system);
    const b = script();
    await setup(b, {
      strategy: "proactive",
      verifiers: expect4,
      prompts: { revise: custom, reviseTargeted: { system: "Targeted revise rules." } },
    })({ task: "What is 2 + 2?" });
    expect(b.callsFor("revise")[0]?.messages[0]?.content).toBe("Targeted revise rules.");
  });

  it("proactive: a team's own critique prompt is used by proactive too, unless it sets critiqueTargeted", async () => {
    const model = scripted({ generate: ["I think it is 4.\nAnswer: 4"], critique: [PASS, PASS] });
    const custom = { system: "House critique rules. Reply with JSON." };
    await setup(model, { strategy: "proactive", prompts: { critique: custom } })({
      task: "What is 2 + 2?",
    });
    expect(model.callsFor("critique")[0]?.messages[0]?.content).toBe(custom.system);
    const other = scripted({ generate: ["I think it is 4.\nAnswer: 4"], critique: [PASS] });
    await setup(other, {
      strategy: "proactive",
      prompts: { critique: custom, critiqueTargeted: { system: "Targeted house rules." } },
    })({ task: "What is 2 + 2?" });
    expect(other.callsFor("critique")[0]?.messages[0]?.content).toBe("Targeted house rules.");
  });

  it("proactive: with no hard verifier to vouch for the draft, a vague critique still revises", async () => {
    const model = scripted({
      generate: ["I think it is 4.\nAnswer: 4"],
      critique: ['{"verdict":"revise","score":0.6,"issues":["Double-check the work."]}', PASS],
      revise: ["2 + 2 = 4\nAnswer: 4"],
    });
    const { state } = await setup(model, { strategy: "proactive" })({ task: "What is 2 + 2?" });
    expect(model.calls.map((c) => c.role)).toEqual(["generate", "critique", "revise"]);
    expect(state.stopReason).toBe("accepted");
  });

  it("proactive: a revision the critic scores lower does not displace the better earlier draft", async () => {
    const model = scripted({
      generate: ["Answer: 4"],
      critique: (messages) =>
        String(messages.at(-1)?.content).includes("Answer: 4")
          ? '{"verdict":"revise","score":0.7,"issues":["state the sum 2 + 2 before the answer"]}'
          : '{"verdict":"revise","score":0.2,"issues":["the answer 5 is wrong"]}',
      revise: ["Answer: 5"],
    });
    // A word problem with a bare answer: the self-check doubts it, so each draft gets a critique.
    const { state } = await setup(model, { strategy: "proactive", maxIterations: 2 })({
      task: "Tom has 2 apples and buys 2 more. How many apples does he have?",
    });
    expect(model.calls.map((c) => c.role)).toEqual(["generate", "critique", "revise", "critique"]);
    expect(state.stopReason).toBe("max_iterations");
    expect(state.best).toMatchObject({ iteration: 1, score: 0.7 });
    expect(state.answer).toBe("Answer: 4");
  });

  it("proactive: a defect the self-check found is revised even when the critic is vague", async () => {
    const model = scripted({
      generate: ["2 + 2 = 5\nAnswer: 5"],
      critique: ['{"verdict":"revise","score":0.6,"issues":["double-check the work"]}', PASS],
      revise: ["2 + 2 = 4\nAnswer: 4"],
    });
    const { state } = await setup(model, {
      strategy: "proactive",
      verifiers: [{ kind: "regex", mustMatch: ["^Answer: "], flags: "m" }],
    })({ task: "What is 2 + 2?" });
    expect(model.calls.map((c) => c.role)).toContain("revise");
    expect(state.answer).toBe("2 + 2 = 4\nAnswer: 4");
  });

  it("self-refine spends a critique every round, proactive does not (same scripted content)", async () => {
    const script: Script = { generate: ["2 + 2 = 4\nAnswer: 4"], critique: [PASS] };
    const a = scripted(script);
    const b = scripted(script);
    const sr = await setup(a, { strategy: "self-refine", verifiers: expect4 })({
      task: "What is 2 + 2?",
    });
    const pr = await setup(b, { strategy: "proactive", verifiers: expect4 })({
      task: "What is 2 + 2?",
    });
    expect(sr.state.answer).toBe(pr.state.answer);
    expect(pr.state.usage.totalTokens).toBeLessThan(sr.state.usage.totalTokens);
  });

  it("pasr: refine segments are emitted while streaming and stored; the answer is verified", async () => {
    const reply = pasrReply({
      think: "2 + 2 = 5?",
      refines: ["No: 2 + 2 = 4."],
      answer: "Answer: 4",
    });
    const { state, custom } = await setup(new PasrChatModel(reply), {
      strategy: "pasr",
      verifiers: expect4,
    })({ task: "What is 2 + 2?" });
    expect(state.refinements).toEqual([
      {
        iteration: 1,
        index: 0,
        text: "No: 2 + 2 = 4.",
        offset: reply.indexOf("<refine>"),
        end: reply.indexOf("</refine>") + "</refine>".length,
      },
    ]);
    expect(state.pasr).toMatchObject({ thinkSource: "tag", ok: true, fallback: false });
    expect(custom.filter((e) => e.type === "refine")).toHaveLength(1);
    expect(state.drafts[0]?.text).toBe("Answer: 4");
    expect(state.stopReason).toBe("accepted");
    expect(state.strategy).toBe("pasr");
  });

  it("pasr: malformed output falls back to proactive with the reason recorded", async () => {
    const { state } = await setup(
      new PasrChatModel("<think>2 + 2 <refine>is 4</think> Answer: 4"),
      { strategy: "pasr", verifiers: expect4 },
    )({ task: "What is 2 + 2?" });
    expect(state.strategy).toBe("proactive");
    expect(state.decisions[0]).toMatchObject({
      action: "fallback",
      reason: expect.stringMatching(/malformed PASR output/),
    });
    expect(state.drafts[0]?.text).not.toMatch(/<think>/);
    expect(state.pasr).toMatchObject({ ok: false, fallback: true, thinkSource: "tag" });
  });
});
