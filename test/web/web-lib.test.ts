// The console's pure modules (no DOM): line diffs, unified-diff parsing and the graph layout.
// They are browser ES modules outside the TypeScript project, so they are imported by path.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { WEB_DIR } from "../../server/routes/console.ts";

interface Row {
  type: string;
  text: string;
}
interface DiffModule {
  lineDiff(a: string, b: string): Row[];
  parseUnified(patch: string): Row[];
  collapse(rows: Row[], context?: number): Row[];
  diffStats(rows: Row[]): { added: number; removed: number };
}
interface Placed {
  id: string;
  layer: number;
  x: number;
  y: number;
}
interface Layout {
  nodes: Placed[];
  edges: { source: string; target: string; kind: string; side?: string }[];
}
interface LayoutModule {
  layoutGraph(
    nodes: { id: string }[],
    edges: { source: string; target: string; conditional?: boolean }[],
  ): Layout;
  arcCrossings(layout: Layout): number;
}
interface Verdict {
  iteration: number;
  verifierId: string;
  hard: boolean;
  pass: boolean;
}
interface ChecksModule {
  answerChecks(values: Record<string, unknown>): {
    iteration: number;
    passed: number;
    total: number;
    failed: string[];
    earlierPassing: number | null;
  } | null;
  checksSentence(report: unknown): string;
}

const load = async <T>(file: string): Promise<T> => (await import(join(WEB_DIR, file))) as T;

describe("web/lib/diff.js", () => {
  it("diffs drafts line by line", async () => {
    const { lineDiff, diffStats } = await load<DiffModule>("lib/diff.js");
    const rows = lineDiff("a\nb\nc\n", "a\nB\nc\nd");
    expect(rows).toEqual([
      { type: "same", text: "a" },
      { type: "del", text: "b" },
      { type: "add", text: "B" },
      { type: "same", text: "c" },
      { type: "add", text: "d" },
    ]);
    expect(diffStats(rows)).toEqual({ added: 2, removed: 1 });
    expect(lineDiff("same", "same").every((r) => r.type === "same")).toBe(true);
    expect(lineDiff("", "x")).toEqual([{ type: "add", text: "x" }]);
  });

  it("parses the server's unified diff and collapses long unchanged runs", async () => {
    const { parseUnified, collapse } = await load<DiffModule>("lib/diff.js");
    const patch = "--- draft 1\n+++ draft 2\n@@ -1,2 +1,2 @@\n-Answer: 5\n+Answer: 4\n same\n";
    expect(parseUnified(patch)).toEqual([
      { type: "hunk", text: "@@ -1,2 +1,2 @@" },
      { type: "del", text: "Answer: 5" },
      { type: "add", text: "Answer: 4" },
      { type: "same", text: "same" },
    ]);
    const rows = [
      { type: "add", text: "x" },
      ...Array.from({ length: 20 }, (_, i) => ({ type: "same", text: String(i) })),
      { type: "del", text: "y" },
    ];
    const out = collapse(rows, 3);
    expect(out.map((r) => r.type)).toEqual([
      ...["add", "same", "same", "same", "skip", "same", "same", "same", "del"],
    ]);
    expect(out[4]?.text).toBe("14 unchanged lines");
  });
});

describe("web/lib/graph-layout.js", () => {
  it("lays the refine graph out left to right with its loops marked as back edges", async () => {
    const { layoutGraph } = await load<LayoutModule>("lib/graph-layout.js");
    const ids = ["__start__", "generate", "critique", "verify", "revise", "approve", "__end__"];
    const e = (source: string, target: string) => ({ source, target, conditional: true });
    const layout = layoutGraph(
      ids.map((id) => ({ id })),
      [
        { source: "__start__", target: "generate" },
        e("generate", "critique"),
        e("generate", "verify"),
        e("critique", "verify"),
        e("verify", "critique"),
        e("verify", "revise"),
        e("revise", "critique"),
        e("revise", "approve"),
        e("approve", "revise"),
        e("approve", "__end__"),
        e("verify", "__end__"),
      ],
    );
    expect(layout.nodes.map((n) => n.layer)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(new Set(layout.nodes.map((n) => n.y)).size).toBe(1);
    const kind = (s: string, t: string) =>
      layout.edges.find((x) => x.source === s && x.target === t)?.kind;
    expect(kind("generate", "critique")).toBe("next");
    expect(kind("generate", "verify")).toBe("forward");
    expect(kind("verify", "critique")).toBe("back");
    expect(kind("approve", "revise")).toBe("back");
    expect(kind("verify", "__end__")).toBe("forward");
  });

  it("stacks parallel branches in one layer and ignores edges to unknown nodes", async () => {
    const { layoutGraph } = await load<LayoutModule>("lib/graph-layout.js");
    const layout = layoutGraph(
      ["__start__", "a", "b", "c", "__end__"].map((id) => ({ id })),
      [
        { source: "__start__", target: "a" },
        { source: "__start__", target: "b" },
        { source: "a", target: "c" },
        { source: "b", target: "c" },
        { source: "c", target: "__end__" },
        { source: "c", target: "ghost" },
      ],
    );
    const at = Object.fromEntries(layout.nodes.map((n) => [n.id, n]));
    expect(at.a?.layer).toBe(1);
    expect(at.b?.layer).toBe(1);
    expect(at.a?.y).not.toBe(at.b?.y);
    expect(at.__end__?.layer).toBe(3);
    expect(layout.edges).toHaveLength(5);
  });
});

/** The refine graph's edges as GET /assistants/refine/graph gives them (every route a node may take). */
const REFINE_EDGES: [string, string][] = [
  ["generate", "critique"],
  ["generate", "verify"],
  ["generate", "__end__"],
  ["critique", "verify"],
  ["critique", "revise"],
  ["critique", "approve"],
  ["critique", "__end__"],
  ["verify", "critique"],
  ["verify", "revise"],
  ["verify", "approve"],
  ["verify", "__end__"],
  ["revise", "critique"],
  ["revise", "verify"],
  ["revise", "approve"],
  ["revise", "__end__"],
  ["approve", "revise"],
  ["approve", "verify"],
  ["approve", "__end__"],
];

describe("web/lib/graph-layout.js: readable drawings", () => {
  it("puts arcs on the side where they cross fewer others: the refine graph has at most one crossing (9 with forward arcs above, back arcs below)", async () => {
    const { layoutGraph, arcCrossings } = await load<LayoutModule>("lib/graph-layout.js");
    const ids = ["__start__", "generate", "critique", "verify", "revise", "approve", "__end__"];
    const layout = layoutGraph(
      ids.map((id) => ({ id })),
      [
        { source: "__start__", target: "generate" },
        ...REFINE_EDGES.map(([source, target]) => ({ source, target, conditional: true })),
      ],
    );
    expect(arcCrossings(layout)).toBeLessThanOrEqual(1);
    for (const e of layout.edges)
      if (e.kind !== "next") e.side = e.kind === "forward" ? "top" : "bottom";
    expect(arcCrossings(layout)).toBe(9);
  });

  it("draws a declarative graph's internal __finish__ step as the end it leads to", async () => {
    const { layoutGraph } = await load<LayoutModule>("lib/graph-layout.js");
    const layout = layoutGraph(
      ["__start__", "extract", "check", "repair", "__finish__", "__end__"].map((id) => ({ id })),
      [
        { source: "__finish__", target: "__end__" },
        { source: "__start__", target: "extract" },
        { source: "extract", target: "check", conditional: true },
        { source: "extract", target: "__finish__", conditional: true },
        { source: "check", target: "__finish__", conditional: true },
        { source: "check", target: "repair", conditional: true },
        { source: "repair", target: "check", conditional: true },
      ],
    );
    expect(layout.nodes.map((n) => n.id)).toEqual([
      "__start__",
      "extract",
      "check",
      "repair",
      "__end__",
    ]);
    expect(layout.edges.map((e) => `${e.source}>${e.target}`)).toEqual([
      "__start__>extract",
      "extract>check",
      "extract>__end__",
      "check>__end__",
      "check>repair",
      "repair>check",
    ]);
  });
});

describe("web/lib/checks.js", () => {
  const v = (iteration: number, pass: boolean): Verdict => ({
    iteration,
    verifierId: "answer",
    hard: true,
    pass,
  });
  it("says the answer fails a hard check and which earlier draft passed them all", async () => {
    const { answerChecks, checksSentence } = await load<ChecksModule>("lib/checks.js");
    const drafts = [1, 2, 3].map((iteration) => ({ iteration, text: `draft ${iteration}` }));
    const report = answerChecks({
      drafts,
      verdicts: [v(1, true), v(2, false), v(3, false)],
      best: { iteration: 2, text: "draft 2" },
      answer: "draft 2",
    });
    expect(report).toEqual({
      iteration: 2,
      passed: 0,
      total: 1,
      failed: ["answer"],
      earlierPassing: 1,
    });
    expect(checksSentence(report)).toBe(
      "Fails hard check answer (0 of 1 pass). Draft 1 passed every hard check.",
    );
    const passing = answerChecks({ drafts, verdicts: [v(3, true)], best: null, answer: "draft 3" });
    expect(checksSentence(passing)).toBe("Passes its hard checks (1 of 1).");
    expect(answerChecks({ drafts, verdicts: [], answer: null })).toBeNull();
  });
});
