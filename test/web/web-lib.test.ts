// The console's pure modules (no DOM): line diffs, unified-diff parsing and the graph layout.
// They are browser ES modules outside the TypeScript project, so they are imported by path.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { WEB_DIR } from "../../server/routes/ui.ts";

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
interface LayoutModule {
  layoutGraph(
    nodes: { id: string }[],
    edges: { source: string; target: string; conditional?: boolean }[],
  ): { nodes: Placed[]; edges: { source: string; target: string; kind: string }[] };
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
