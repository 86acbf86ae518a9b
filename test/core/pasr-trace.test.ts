// PasrReader: one generation read from the content and the reasoning field into a PasrTrace.
import { describe, expect, it } from "vitest";
import { PasrReader } from "../../core/pasr-trace.ts";

describe("PasrReader", () => {
  it("reads tags in the content when no reasoning came", () => {
    const r = new PasrReader();
    r.content("<think>a<refine>b</refine></think><answer>c</answer>");
    const { trace } = r.finish();
    expect(trace).toEqual({
      thinkSource: "tag",
      positions: "content",
      think: "a<refine>b</refine>",
      thinkSpan: { start: 7, end: 26 },
      refinements: [{ index: 0, text: "b", start: 8, end: 26 }],
      answer: "c",
      answerSpan: { start: 42, end: 43 },
      ok: true,
      errors: [],
      warnings: [],
      fallback: false,
    });
  });

  it("takes reasoning as the think block, ending where the content begins", () => {
    const r = new PasrReader();
    const events = [...r.reasoning("x<refine>"), ...r.reasoning("y</refine>")];
    events.push(...r.content("<answer>z</answer>"));
    expect(events.map((e) => e.type)).toEqual(["think_start", "refine", "answer"]);
    const { trace } = r.finish();
    expect(trace).toMatchObject({
      thinkSource: "reasoning_field",
      positions: "reasoning+content",
      reasoningLength: 19,
      think: "x<refine>y</refine>",
      answerSpan: { start: 27, end: 28 },
      ok: true,
    });
  });

  it("ignores reasoning that is only whitespace, so tags in the content still count", () => {
    const r = new PasrReader();
    r.reasoning("\n");
    r.reasoning("\n");
    r.content("<think>t</think><answer>4</answer>");
    const { trace } = r.finish();
    expect(trace).toMatchObject({ thinkSource: "tag", positions: "content", ok: true });
    expect(trace).not.toHaveProperty("reasoningLength");
  });

  it("warns about reasoning that comes after the content started, and does not parse it", () => {
    const r = new PasrReader();
    r.content("4</think><answer>4</answer>");
    r.reasoning("<refine>late</refine>");
    const { trace } = r.finish();
    expect(trace.thinkSource).toBe("template");
    expect(trace.refinements).toEqual([]);
    expect(trace.warnings).toEqual(["reasoning sent after the content had started is not parsed"]);
  });

  it("reports reasoning with no content after it as a missing answer only", () => {
    const r = new PasrReader();
    r.reasoning("thinking <refine>fix</refine>");
    const { trace } = r.finish();
    expect(trace.ok).toBe(false);
    expect(trace.errors).toEqual([expect.stringMatching(/^no <answer> block/)]);
    expect(trace.refinements).toHaveLength(1);
  });

  it("gives an empty, malformed trace when nothing came", () => {
    const { trace } = new PasrReader().finish();
    expect(trace).toMatchObject({ thinkSource: "none", think: null, ok: false });
  });
});
