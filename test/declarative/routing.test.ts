// The edge rule, the graph checks and the scope: pure functions, branch by branch.
import { describe, expect, it } from "vitest";
import type { RefineStateType } from "../../core/state.ts";
import { ZERO_TOTALS, ZERO_USAGE } from "../../core/usage.ts";
import { reachable, trappedCycles, type EdgeView } from "../../graphs/declarative/analysis.ts";
import { compileExpression } from "../../graphs/declarative/expression.ts";
import { nextTarget, type CompiledEdge } from "../../graphs/declarative/routing.ts";
import { buildScope } from "../../graphs/declarative/scope.ts";
import type { DeclarativeStateType } from "../../graphs/declarative/state.ts";

const when = (source: string, to: string) => ({ test: compileExpression(source), to });
const LIMITS = { maxIterations: 3, scoreThreshold: 0.8 };

describe("nextTarget", () => {
  const conditional: CompiledEdge = {
    type: "conditional",
    when: [when("x == 1", "one"), when("x >= 1", "many")],
    else: "other",
  };

  it("takes the first condition that holds, else `else`", () => {
    expect(nextTarget(conditional, { x: 1 }, null)).toBe("one");
    expect(nextTarget(conditional, { x: 5 }, null)).toBe("many");
    expect(nextTarget(conditional, { x: 0 }, null)).toBe("other");
  });

  it("a node that recorded a stop ends the run unless a condition picks a target", () => {
    expect(nextTarget(conditional, { x: 0 }, "max_iterations")).toBe("END");
    expect(nextTarget(conditional, { x: 1 }, "max_iterations")).toBe("one");
    expect(nextTarget({ type: "direct", to: "next" }, {}, "accepted")).toBe("END");
    expect(nextTarget({ type: "direct", to: "next" }, {}, null)).toBe("next");
  });
});

describe("graph checks", () => {
  const e = (index: number, from: string, targets: string[], conditional = false): EdgeView => ({
    index,
    from,
    targets,
    conditional,
  });

  it("reachable follows every possible target", () => {
    const edges = [e(0, "a", ["b"]), e(1, "b", ["c", "END"], true), e(2, "d", ["a"])];
    expect([...reachable("a", edges)].filter((n) => n !== "END")).toEqual(["a", "b", "c"]);
  });

  it("a cycle is trapped without a conditional exit and without a node that can stop", () => {
    const edges = [e(0, "a", ["b"]), e(1, "b", ["c"]), e(2, "c", ["b"])];
    expect(trappedCycles(["a", "b", "c"], edges, () => false)).toEqual([
      { nodes: ["b", "c"], edgeIndex: 1 },
    ]);
    expect(trappedCycles(["a", "b", "c"], edges, (n) => n === "c")).toEqual([]);
    const exit = [e(0, "a", ["b"]), e(1, "b", ["c", "END"], true), e(2, "c", ["b"])];
    expect(trappedCycles(["a", "b", "c"], exit, () => false)).toEqual([]);
    // A conditional edge whose every target stays inside is no exit.
    const inside = [e(0, "a", ["b"]), e(1, "b", ["c", "b"], true), e(2, "c", ["b"])];
    expect(trappedCycles(["a", "b", "c"], inside, () => false)).toHaveLength(1);
  });
});

function state(over: Partial<DeclarativeStateType>): DeclarativeStateType {
  const base: Partial<RefineStateType> = {
    task: "t",
    context: "",
    options: null,
    feedback: [],
    drafts: [],
    critiques: [],
    verdicts: [],
    best: null,
    iteration: 0,
    usage: ZERO_TOTALS,
    stopReason: null,
    route: null,
    strategy: null,
    approvals: [],
    answer: null,
    error: null,
  };
  return { ...base, vars: {}, nodeStop: null, ...over } as DeclarativeStateType;
}

describe("buildScope", () => {
  it("summarises the newest draft's verdicts and critique", () => {
    const draft = (iteration: number, text: string) => ({
      iteration,
      text,
      source: "generate" as const,
      usage: ZERO_USAGE,
      latencyMs: 0,
      createdAt: "",
    });
    const verdict = (iteration: number, id: string, pass: boolean, hard = true) => ({
      verifierId: id,
      kind: "regex" as const,
      hard,
      pass,
      score: pass ? 1 : 0,
      message: "",
      iteration,
      latencyMs: 0,
    });
    const s = buildScope(
      state({
        iteration: 2,
        drafts: [draft(1, "old"), draft(2, "new draft here")],
        verdicts: [verdict(1, "a", false), verdict(2, "a", true), verdict(2, "b", false, false)],
        critiques: [
          {
            iteration: 2,
            verdict: "pass",
            score: 0.9,
            issues: [],
            raw: "",
            usage: ZERO_USAGE,
            latencyMs: 0,
          },
        ],
        approvals: [{ iteration: 2, action: "approve", reason: "", at: "" }],
      }),
      LIMITS,
    );
    expect(s.draft).toMatchObject({ text: "new draft here", iteration: 2, words: 3 });
    expect(s.verdicts).toMatchObject({
      count: 2,
      passed: 1,
      failed: 1,
      hardFailed: 0,
      softFailed: 1,
      allHardPass: true,
      allPass: false,
    });
    expect(s.critique).toEqual({ verdict: "pass", score: 0.9, issues: 0, clean: true });
    expect(s.approved).toBe(true);
    expect(s.limits).toEqual({ maxIterations: 3, scoreThreshold: 0.8, tokenBudget: null });
  });

  it("before any draft: null draft and critique, vacuous verdicts", () => {
    const s = buildScope(state({}), LIMITS);
    expect(s.draft).toBe(null);
    expect(s.critique).toBe(null);
    expect(s.verdicts).toMatchObject({ count: 0, allHardPass: true, score: null });
  });
});
