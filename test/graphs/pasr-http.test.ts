// The pasr strategy through the real graph against an OpenAI-compatible endpoint over HTTP
// (ChatOpenAI and the stub server on loopback): the trace kept whole with positions, reasoning
// sent in `reasoning_content` (streamed and not) or `reasoning`, a `<think>` opened by the chat
// template, `\boxed{}` answers accepted without a critique, retries and fallbacks.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MemorySaver } from "@langchain/langgraph";
import { ChatOpenAI } from "@langchain/openai";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PASR_SYSTEM_PROMPT } from "../../core/pasr.ts";
import { createOpenAIModel } from "../../core/models/openai.ts";
import { createSettingsResolver } from "../../core/settings.ts";
import type { PasrTrace, RefineStateType, TextSpan } from "../../core/state.ts";
import { createRefineGraph } from "../../graphs/refine.ts";
import { startOpenAIStub, type OpenAIStub, type StubCompletion } from "../support/openai-stub.ts";
import { scriptedProvider } from "../support/scripted-model.ts";

let stub: OpenAIStub;

beforeAll(async () => {
  stub = await startOpenAIStub();
});
afterAll(async () => {
  await stub.close();
});
beforeEach(() => {
  stub.requests.length = 0;
  // Anything but the PASR generation (a critique, a revise) would show up here.
  stub.setHandler(() => ({ content: '{"verdict":"pass","score":0.9,"issues":[]}' }));
});

const TRAIN = "A train travels 120 km in 1.5 hours. What is its speed in km/h?";
const expect80 = [{ kind: "answer_match", expected: 80 }];

function httpModel(): BaseChatModel {
  return createOpenAIModel({ apiKey: "sk-test", baseURL: stub.url, model: "stub-model" });
}

async function run(model: BaseChatModel, task: string, verifiers: unknown[], retries = 0) {
  const settings = createSettingsResolver({
    provider: scriptedProvider(model),
    defaults: { strategy: "pasr", verifiers, retry: { retries, baseDelayMs: 0 } },
  });
  const graph = createRefineGraph({ settings, checkpointer: new MemorySaver() });
  const custom: Record<string, unknown>[] = [];
  let state: RefineStateType | undefined;
  for await (const [mode, chunk] of await graph.stream(
    { task },
    { configurable: { thread_id: `pasr-http-${Math.random()}` }, streamMode: ["custom", "values"] },
  )) {
    if (mode === "custom") custom.push(chunk as Record<string, unknown>);
    else state = chunk as RefineStateType;
  }
  if (!state) throw new Error("no state");
  return { state, custom, refines: custom.filter((e) => e.type === "refine") };
}

/** The text the trace's positions count in. */
function positionsText(trace: PasrTrace, reply: StubCompletion): string {
  return trace.positions === "content" ? reply.content : `${reply.reasoning ?? ""}${reply.content}`;
}
const slice = (text: string, span: TextSpan | null) =>
  span ? text.slice(span.start, span.end) : null;

/** Only PASR generations were requested (no critique, no revise). */
function pasrRequestsOnly(): void {
  expect(stub.requests.map((r) => r.messages?.[0]?.content === PASR_SYSTEM_PROMPT)).toEqual(
    stub.requests.map(() => true),
  );
}

describe("pasr over HTTP: the trace kept whole", () => {
  it("keeps the think text, each refine and the answer with positions that slice the reply", async () => {
    const reply = {
      content:
        "<think>Speed = 120 / 1.5 = 70.<refine>120 / 1.5 = 80, not 70.</refine>So 80 km/h." +
        "<refine>Units: km/h.</refine></think>\n<answer>80 km/h</answer>",
    };
    stub.enqueue(reply);
    const { state, refines } = await run(httpModel(), TRAIN, expect80);

    const trace = state.pasr as PasrTrace;
    const text = positionsText(trace, reply);
    expect(trace).toMatchObject({ thinkSource: "tag", positions: "content", ok: true });
    expect(trace.think).toBe(
      "Speed = 120 / 1.5 = 70.<refine>120 / 1.5 = 80, not 70.</refine>So 80 km/h.<refine>Units: km/h.</refine>",
    );
    expect(slice(text, trace.thinkSpan)).toBe(trace.think);
    expect(trace.refinements.map((r) => text.slice(r.start, r.end))).toEqual([
      "<refine>120 / 1.5 = 80, not 70.</refine>",
      "<refine>Units: km/h.</refine>",
    ]);
    expect(slice(text, trace.answerSpan)).toBe("80 km/h");
    expect(state.refinements.map((r) => [r.index, r.text, r.offset, r.end])).toEqual(
      trace.refinements.map((r) => [r.index, r.text, r.start, r.end]),
    );
    expect(refines.map((e) => [e.text, e.offset, e.end])).toEqual(
      trace.refinements.map((r) => [r.text, r.start, r.end]),
    );
    expect(state.answer).toBe("80 km/h");
    expect(stub.requests[0]?.stream).toBe(true);
  });

  it("keeps only the attempt that succeeded when a retry starts the generation over", async () => {
    stub.enqueue(
      { status: 503 },
      { content: "<think>120 / 1.5 = 80<refine>so 80 km/h</refine></think><answer>80</answer>" },
    );
    const { state } = await run(httpModel(), TRAIN, expect80, 1);
    expect(state.usage.calls).toBeGreaterThanOrEqual(2);
    expect(state.pasr?.refinements.map((r) => r.text)).toEqual(["so 80 km/h"]);
    expect(state.refinements).toHaveLength(1);
  });
});

describe("pasr over HTTP: reasoning in reasoning_content", () => {
  const reply = {
    reasoning: "Speed = 120 / 1.5 = 70.<refine>120 / 1.5 = 80, not 70.</refine>So 80.",
    content: "<answer>80</answer>",
  };

  function expectReasoningTrace(state: RefineStateType): void {
    const trace = state.pasr as PasrTrace;
    const text = positionsText(trace, reply);
    expect(trace).toMatchObject({
      thinkSource: "reasoning_field",
      positions: "reasoning+content",
      reasoningLength: reply.reasoning.length,
      ok: true,
      fallback: false,
    });
    expect(trace.think).toBe(reply.reasoning);
    expect(slice(text, trace.thinkSpan)).toBe(reply.reasoning);
    expect(trace.refinements.map((r) => text.slice(r.start, r.end))).toEqual([
      "<refine>120 / 1.5 = 80, not 70.</refine>",
    ]);
    expect(slice(text, trace.answerSpan)).toBe("80");
    expect(state.answer).toBe("80");
    expect(state.stopReason).toBe("accepted");
    pasrRequestsOnly();
  }

  it("parses streamed reasoning as the think block, refines emitted as they complete", async () => {
    stub.enqueue(reply);
    const { state, refines } = await run(httpModel(), TRAIN, expect80);
    expect(stub.requests[0]?.stream).toBe(true);
    expect(refines.map((e) => e.text)).toEqual(["120 / 1.5 = 80, not 70."]);
    expectReasoningTrace(state);
  });

  it("reads it from a `reasoning` field too (newer vLLM), streamed", async () => {
    stub.enqueue({ ...reply, reasoningField: "reasoning" });
    const { state, refines } = await run(httpModel(), TRAIN, expect80);
    expect(stub.requests[0]?.stream).toBe(true);
    expect(refines.map((e) => e.text)).toEqual(["120 / 1.5 = 80, not 70."]);
    expectReasoningTrace(state);
  });

  it("parses it from a reply that is not streamed", async () => {
    stub.enqueue(reply);
    const model = new ChatOpenAI({
      apiKey: "sk-test",
      model: "stub-model",
      maxRetries: 0,
      disableStreaming: true,
      configuration: { baseURL: stub.url },
    });
    const { state, refines } = await run(model, TRAIN, expect80);
    expect(stub.requests[0]?.stream).toBeFalsy();
    expect(refines).toHaveLength(1);
    expectReasoningTrace(state);
  });
});

describe("pasr over HTTP: a <think> opened by the chat template", () => {
  it("reads a completion that starts inside the think block (only </think>)", async () => {
    const reply = {
      content:
        "Speed = 120 / 1.5 = 70.<refine>120 / 1.5 = 80, not 70.</refine>So 80.</think>\n<answer>80</answer>",
    };
    stub.enqueue(reply);
    const { state, refines } = await run(httpModel(), TRAIN, expect80);
    const trace = state.pasr as PasrTrace;
    expect(trace).toMatchObject({ thinkSource: "template", positions: "content", ok: true });
    expect(trace.thinkSpan).toEqual({ start: 0, end: reply.content.indexOf("</think>") });
    expect(trace.think).toBe(
      "Speed = 120 / 1.5 = 70.<refine>120 / 1.5 = 80, not 70.</refine>So 80.",
    );
    expect(refines.map((e) => e.text)).toEqual(["120 / 1.5 = 80, not 70."]);
    expect(state.answer).toBe("80");
    expect(state.strategy).toBe("pasr");
    pasrRequestsOnly();
  });
});

describe("pasr over HTTP: \\boxed{} answers", () => {
  it("accepts a correct boxed answer to a word problem without a critique or revise", async () => {
    stub.enqueue({
      content:
        "<think>120 / 1.5 = 70<refine>120 / 1.5 = 80</refine></think><answer>The speed is \\boxed{80} km/h.</answer>",
    });
    const { state } = await run(httpModel(), TRAIN, expect80);
    expect(state.answer).toBe("The speed is \\boxed{80} km/h.");
    expect(state.stopReason).toBe("accepted");
    expect(state.decisions.map((d) => d.action)).toEqual(["revise", "skip_critique"]);
    pasrRequestsOnly();
    expect(stub.requests).toHaveLength(1);
  });

  it("accepts a boxed answer with nested braces (\\boxed{\\frac{1}{2}})", async () => {
    stub.enqueue({
      content:
        "<think>6 + 6 = 12 marbles, 6 of them red.\n6 / 12 = 0.5</think><answer>\\boxed{\\frac{1}{2}}</answer>",
    });
    const { state } = await run(
      httpModel(),
      "A jar holds 6 red and 6 blue marbles. What is the probability of drawing a red one?",
      [{ kind: "answer_match", expected: 0.5 }],
    );
    expect(state.answer).toBe("\\boxed{\\frac{1}{2}}");
    expect(state.verdicts.every((v) => v.pass)).toBe(true);
    expect(state.stopReason).toBe("accepted");
    expect(stub.requests).toHaveLength(1);
  });
});

describe("pasr over HTTP: the bundled arithmetic dataset's Answer-line check", () => {
  it("passes a \\boxed{} answer, so a correct PASR answer is not sent to revise", async () => {
    const [line] = readFileSync(
      join(import.meta.dirname, "../../datasets/arithmetic.jsonl"),
      "utf8",
    ).split("\n");
    const item = JSON.parse(line ?? "") as {
      task: string;
      reference: number;
      verifiers: unknown[];
    };
    expect(item.verifiers).toContainEqual(expect.objectContaining({ id: "answer-line" }));
    stub.enqueue({
      content:
        "<think>7 boxes of 6: 6 * 7 = 42.\n42 - 15 = 28<refine>42 - 15 = 27</refine></think>" +
        `<answer>She has \\boxed{${item.reference}} muffins left.</answer>`,
    });
    const { state } = await run(httpModel(), item.task, item.verifiers);
    expect(state.verdicts.map((v) => [v.verifierId, v.pass])).toEqual([
      ["answer-line", true],
      ["steps", true],
    ]);
    expect(state.stopReason).toBe("accepted");
    expect(stub.requests).toHaveLength(1);
  });
});

describe("pasr over HTTP: fallback", () => {
  it("records a malformed reply in the trace and goes on with the proactive strategy", async () => {
    const reply = {
      content: "<think>120 / 1.5 = 80<refine>so 80</think>\nAnswer: 80",
    };
    stub.enqueue(reply);
    const { state } = await run(httpModel(), TRAIN, expect80);
    expect(state.strategy).toBe("proactive");
    expect(state.pasr).toMatchObject({
      thinkSource: "tag",
      ok: false,
      fallback: true,
      answer: null,
      errors: [expect.stringMatching(/unclosed <refine>/), expect.stringMatching(/no <answer>/)],
    });
    expect(state.pasr?.think).toBe("120 / 1.5 = 80<refine>so 80");
    expect(state.decisions[0]).toMatchObject({ action: "fallback" });
  });

  it("falls back from reasoning with no content after it, keeping the reasoning as the draft", async () => {
    stub.enqueue({
      reasoning: "120 / 1.5 = 80, so the speed is 80 km/h.\nAnswer: 80",
      content: "",
    });
    const { state } = await run(httpModel(), TRAIN, expect80);
    expect(state.pasr).toMatchObject({
      thinkSource: "reasoning_field",
      fallback: true,
      errors: [expect.stringMatching(/^no <answer> block/)],
    });
    expect(state.drafts[0]?.text).toBe("120 / 1.5 = 80, so the speed is 80 km/h.\nAnswer: 80");
    expect(state.answer).toMatch(/Answer: 80/);
  });
});
