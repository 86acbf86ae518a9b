// Tests for the llm_judge verifier against a scripted fake judge: lenient reply parsing, the
// single reformatting retry, soft failure, and usage summed over every attempt.
import type { BaseMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import { ModelCallError } from "../../core/models/call.ts";
import type { ModelInvoker, ModelRole } from "../../core/models/types.ts";
import { runVerifiers } from "../../core/verifiers/index.ts";
import type { TokenUsage } from "../../core/usage.ts";
import {
  createLlmJudgeVerifier,
  parseJudgeReply,
  parseScore,
} from "../../core/verifiers/llm-judge.ts";
import { isVerifierErrorMessage, type LlmJudgeVerifierSpec } from "../../core/verifiers/spec.ts";

const ctx = { task: "Explain photosynthesis", context: "for children", iteration: 2 };

interface Call {
  messages: BaseMessage[];
  role: ModelRole;
}

/** A judge that answers from a script and records what it was asked. */
function scriptedJudge(replies: string[]): { judge: ModelInvoker; calls: Call[] } {
  const calls: Call[] = [];
  const judge: ModelInvoker = async (messages, options) => {
    calls.push({ messages: [...messages], role: options.role });
    const text = replies[calls.length - 1];
    if (text === undefined) throw new Error("judge script exhausted");
    const usage: TokenUsage = {
      promptTokens: 100 * calls.length,
      completionTokens: 10,
      totalTokens: 100 * calls.length + 10,
      calls: 1,
    };
    return { text, usage };
  };
  return { judge, calls };
}

function spec(overrides: Partial<LlmJudgeVerifierSpec> = {}): LlmJudgeVerifierSpec {
  return { kind: "llm_judge", hard: false, rubric: "Is it simple?", threshold: 0.7, ...overrides };
}

describe("parseScore", () => {
  it.each([
    [0.8, 0.8],
    ["0.8", 0.8],
    ["8/10", 0.8],
    ["4 / 5", 0.8],
    ["80%", 0.8],
    [8, 0.8],
    [80, 0.8],
    [1, 1],
    [0, 0],
  ])("%j -> %j", (input, expected) => {
    expect(parseScore(input)).toBeCloseTo(expected);
  });

  it.each([[-1], [250], ["high"], [null], ["8/0"]])("rejects %j", (input) => {
    expect(parseScore(input)).toBeUndefined();
  });
});

describe("parseJudgeReply", () => {
  it("reads bare, fenced and embedded JSON", () => {
    expect(parseJudgeReply('{"score": 0.9, "reason": "clear"}')).toEqual({
      score: 0.9,
      reason: "clear",
    });
    expect(parseJudgeReply('```json\n{"score": "8/10", "reason": "ok"}\n```')).toEqual({
      score: 0.8,
      reason: "ok",
    });
    expect(
      parseJudgeReply('My verdict:\n{"score": "75%", "explanation": "mostly"} Thanks.'),
    ).toEqual({ score: 0.75, reason: "mostly" });
  });

  it("falls back to a plain `score:` line", () => {
    expect(parseJudgeReply("Score: 0.6\nReason: too long")).toEqual({
      score: 0.6,
      reason: "too long",
    });
  });

  it("returns undefined when there is no score", () => {
    expect(parseJudgeReply("I think it is pretty good.")).toBeUndefined();
    expect(parseJudgeReply('{"reason": "no score"}')).toBeUndefined();
  });
});

describe("llm_judge verifier", () => {
  it("passes at or above the threshold and fills the prompt", async () => {
    const { judge, calls } = scriptedJudge(['{"score": 0.7, "reason": "simple words"}']);
    const v = createLlmJudgeVerifier(spec(), "judge", judge);
    const result = await v.verify("Plants eat light.", ctx);
    expect(result).toMatchObject({
      pass: true,
      score: 0.7,
      message: "judge score 0.7 meets threshold 0.7: simple words",
    });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.role).toBe("judge");
    const user = String(calls[0]?.messages[1]?.content);
    expect(user).toContain("Rubric:\nIs it simple?");
    expect(user).toContain("Task:\nExplain photosynthesis");
    expect(user).toContain("Draft:\nPlants eat light.");
    expect(result.usage).toEqual({
      promptTokens: 100,
      completionTokens: 10,
      totalTokens: 110,
      calls: 1,
    });
  });

  it("fails below the threshold with the judge's reason", async () => {
    const { judge } = scriptedJudge(['{"score": 0.4, "reason": "uses jargon: chlorophyll"}']);
    const result = await createLlmJudgeVerifier(spec(), "judge", judge).verify("…", ctx);
    expect(result).toMatchObject({
      pass: false,
      score: 0.4,
      message: "judge score 0.4 is below threshold 0.7: uses jargon: chlorophyll",
    });
    expect(isVerifierErrorMessage(result.message)).toBe(false);
  });

  it("retries once after an unparseable reply and sums usage of both attempts", async () => {
    const { judge, calls } = scriptedJudge([
      "It's quite good overall!",
      '{"score": 0.9, "reason": "fine"}',
    ]);
    const result = await createLlmJudgeVerifier(spec(), "judge", judge).verify("draft", ctx);
    expect(result).toMatchObject({ pass: true, score: 0.9 });
    expect(result.usage).toEqual({
      promptTokens: 300,
      completionTokens: 20,
      totalTokens: 320,
      calls: 2,
    });
    // The retry shows the judge its own reply and asks only for the format.
    const retry = calls[1]?.messages ?? [];
    expect(retry).toHaveLength(4);
    expect(retry[2]?.content).toBe("It's quite good overall!");
    expect(String(retry[3]?.content)).toContain("Reply with JSON only");
  });

  it("fails soft with score 0 when both replies are unparseable", async () => {
    const { judge, calls } = scriptedJudge(["meh", "still meh"]);
    const result = await createLlmJudgeVerifier(spec(), "judge", judge).verify("draft", ctx);
    expect(calls).toHaveLength(2);
    expect(result.pass).toBe(false);
    expect(result.score).toBe(0);
    expect(isVerifierErrorMessage(result.message)).toBe(true);
    expect(result.message).toContain("could not be parsed");
    expect(result.message).toContain('"still meh"');
    expect(result.usage?.calls).toBe(2);
  });

  it("uses prompt overrides", async () => {
    const { judge, calls } = scriptedJudge(['{"score": 1, "reason": "ok"}']);
    const v = createLlmJudgeVerifier(
      spec({ prompt: { system: "Be strict.", user: "{rubric} | {context} | {draft}" } }),
      "judge",
      judge,
    );
    await v.verify("D", ctx);
    expect(calls[0]?.messages[0]?.content).toBe("Be strict.");
    expect(calls[0]?.messages[1]?.content).toBe("Is it simple? | for children | D");
  });

  it("passes the abort signal to the judge and lets its error propagate", async () => {
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    const judge: ModelInvoker = async (_messages, options) => {
      seen = options.signal;
      throw new DOMException("aborted", "AbortError");
    };
    controller.abort();
    const v = createLlmJudgeVerifier(spec(), "judge", judge);
    await expect(v.verify("d", { ...ctx, signal: controller.signal })).rejects.toThrow("aborted");
    expect(seen).toBe(controller.signal);
  });

  it("a judge call that fails for good still counts its attempts and the unreadable replies before it", async () => {
    let calls = 0;
    const judge: ModelInvoker = async () => {
      calls += 1;
      if (calls === 1) {
        return {
          text: "no idea",
          usage: { promptTokens: 100, completionTokens: 10, totalTokens: 110, calls: 1 },
        };
      }
      throw new ModelCallError("model_unavailable", "judge endpoint down", {
        usage: { promptTokens: 120, completionTokens: 0, totalTokens: 120, calls: 3 },
        attempts: 3,
      });
    };
    const v = createLlmJudgeVerifier(spec(), "judge", judge);

    const [verdict] = await runVerifiers([v], "draft", ctx);

    expect(verdict?.pass).toBe(false);
    expect(verdict && isVerifierErrorMessage(verdict.message)).toBe(true);
    expect(verdict?.usage).toEqual({
      promptTokens: 220,
      completionTokens: 10,
      totalTokens: 230,
      calls: 4,
    });
  });
});
