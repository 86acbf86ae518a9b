// Draws a graph's structure as an inline SVG from layoutGraph: nodes as boxes, the main path as
// straight arrows, other edges as arcs above or below the row (the side that crosses fewer arcs;
// dashed = conditional), each conditional edge labelled with its condition when it is known.
import { api } from "../lib/api.js";
import { h, nextId, svg } from "../lib/dom.js";
import { layoutGraph } from "../lib/graph-layout.js";

const LABELS = { __start__: "start", __end__: "end" };
const PAD_X = 16;

/**
 * Where each arc meets its nodes. Arcs nest instead of crossing when, at every node, arcs that
 * leave to the right sit in the right half (the longest nearest the centre) and arcs that arrive
 * from the left sit in the left half (the longest nearest the centre).
 */
function anchors(edges, byId) {
  const ends = new Map(); // "node|side|half" -> [{edge, span}]
  const add = (node, side, half, edge) => {
    const key = `${node}|${side}|${half}`;
    if (!ends.has(key)) ends.set(key, []);
    ends.get(key).push(edge);
  };
  for (const e of edges) {
    if (e.kind === "next") continue;
    const side = e.side ?? (e.kind === "forward" ? "top" : "bottom");
    const a = byId.get(e.source);
    const b = byId.get(e.target);
    const [left, right] = a.x <= b.x ? [e.source, e.target] : [e.target, e.source];
    add(left, side, "right", e);
    add(right, side, "left", e);
  }
  const at = new Map(); // edge -> {left: x, right: x}
  for (const [key, list] of ends) {
    const [id, , half] = key.split("|");
    const n = byId.get(id);
    const cx = n.x + n.w / 2;
    // A half whose other half is unused may take the whole side.
    const alone = !ends.has(`${id}|${key.split("|")[1]}|${half === "right" ? "left" : "right"}`);
    const from = half === "right" ? (alone ? n.x + 12 : cx + 8) : n.x + 12;
    const to = half === "right" ? n.x + n.w - 12 : alone ? n.x + n.w - 12 : cx - 8;
    list.sort((a, b) => (half === "right" ? b.span - a.span : a.span - b.span));
    list.forEach((e, i) => {
      const x = list.length === 1 ? (from + to) / 2 : from + ((to - from) * i) / (list.length - 1);
      const slot = at.get(e) ?? {};
      slot[half === "right" ? "left" : "right"] = x;
      at.set(e, slot);
    });
  }
  return at;
}

function edgePath(e, a, b, at) {
  if (e.kind === "next") {
    const y = a.y + a.h / 2;
    return {
      d: `M${a.x + a.w},${y} L${b.x - 2},${y}`,
      mid: { x: (a.x + a.w + b.x) / 2, y: y - 6 },
    };
  }
  const above = (e.side ?? (e.kind === "forward" ? "top" : "bottom")) === "top";
  const { left, right } = at.get(e);
  const [sx, tx] = a.x <= b.x ? [left, right] : [right, left];
  const sy = above ? a.y : a.y + a.h;
  const ty = above ? b.y : b.y + b.h;
  const lift = 12 + Math.max(1, e.span) * 17;
  const cy = above ? Math.min(sy, ty) - lift : Math.max(sy, ty) + lift;
  // A cubic's peak is three quarters of the way to its control points.
  const extent = sy + (cy - sy) * 0.75;
  // The label sits on the arc a third of the way from its source, so the labels of two arcs
  // between the same nodes in opposite directions do not land on each other.
  const t = 0.3;
  const at3 = (p0, p1, p2, p3) =>
    p0 * (1 - t) ** 3 + 3 * p1 * (1 - t) ** 2 * t + 3 * p2 * (1 - t) * t ** 2 + p3 * t ** 3;
  const lx = at3(sx, sx, tx, tx);
  const ly = at3(sy, cy, cy, ty);
  return {
    d: `M${sx},${sy} C${sx},${cy} ${tx},${cy} ${tx},${above ? ty - 2 : ty + 2}`,
    extent,
    mid: { x: lx, y: above ? ly - 3 : ly + 10 },
  };
}

/**
 * What the refine graph's router (graphs/refine.ts, routeNext) sends along each edge. Edges into
 * approve (a reviewer is asked) and end (the loop stops) go unlabelled: the node says it.
 */
export const REFINE_EDGE_LABELS = {
  "generate>critique": "self-refine",
  "generate>verify": "other strategies",
  "critique>verify": "self-refine",
  "critique>revise": "issues named",
  "verify>revise": "not done",
  "verify>critique": "doubt",
  "revise>critique": "self-refine",
  "revise>verify": "other strategies",
  "approve>revise": "reject",
  "approve>verify": "edit",
  "approve>__end__": "approve · abort",
};

/** Condition labels of a declarative graph's spec (GET /graphs): "source>target" -> condition. */
export function specEdgeLabels(spec) {
  const labels = {};
  const id = (n) => (n === "END" ? "__end__" : n);
  for (const e of spec?.edges ?? []) {
    if (!e || typeof e.from !== "string") continue;
    for (const w of e.when ?? [])
      if (w?.to && w.if) labels[`${e.from}>${id(w.to)}`] ??= String(w.if);
    if (e.else) labels[`${e.from}>${id(e.else)}`] ??= "else";
  }
  return labels;
}

/**
 * @param {{nodes: {id: string}[], edges: {source: string, target: string, conditional?: boolean}[]}} graph
 * @param {{current?: string[], counts?: Record<string, number>, title?: string}} options
 */
export function graphSvg(graph, options = {}) {
  const labels = options.labels ?? {};
  const layout = layoutGraph(graph.nodes ?? [], graph.edges ?? [], {
    labelled: Object.keys(labels).length > 0,
  });
  const byId = new Map(layout.nodes.map((n) => [n.id, n]));
  const current = new Set(options.current ?? []);
  const counts = options.counts ?? {};
  const arrow = nextId("arrow");

  const at = anchors(layout.edges, byId);
  const paths = [];
  const texts = [];
  let minY = 0;
  let maxY = layout.height;
  // Long arcs first, so the short ones (drawn later) stay visible on top.
  const ordered = [...layout.edges].sort((x, y) => y.span - x.span);
  for (const e of ordered) {
    const { d, extent, mid } = edgePath(e, byId.get(e.source), byId.get(e.target), at);
    if (extent !== undefined) {
      minY = Math.min(minY, extent - (labels[`${e.source}>${e.target}`] ? 16 : 0));
      maxY = Math.max(maxY, extent + (labels[`${e.source}>${e.target}`] ? 16 : 0));
    }
    const label = labels[`${e.source}>${e.target}`];
    if (label)
      texts.push(
        svg(
          "text",
          { class: "edge-label", x: mid.x, y: mid.y, "text-anchor": "middle" },
          label.length > 28 ? `${label.slice(0, 27)}…` : label,
        ),
      );
    paths.push(
      svg(
        "path",
        {
          d,
          class: [
            "edge",
            e.kind,
            e.conditional && "conditional",
            current.has(e.target) && "to-current",
          ],
          "marker-end": `url(#${arrow})`,
        },
        svg(
          "title",
          {},
          `${LABELS[e.source] ?? e.source} → ${LABELS[e.target] ?? e.target}${e.conditional ? ` (conditional${labels[`${e.source}>${e.target}`] ? `: ${labels[`${e.source}>${e.target}`]}` : ""})` : ""}`,
        ),
      ),
    );
  }

  const boxes = layout.nodes.map((n) => {
    const terminal = n.id === "__start__" || n.id === "__end__";
    const label = LABELS[n.id] ?? n.id;
    const count = counts[n.id];
    return svg(
      "g",
      {
        class: [
          "node",
          terminal && "terminal",
          current.has(n.id) && "current",
          count > 0 && "visited",
        ],
        transform: `translate(${n.x},${n.y})`,
      },
      svg(
        "title",
        {},
        `${label}${count ? `: ran ${count}×` : ""}${current.has(n.id) ? " (current)" : ""}`,
      ),
      svg("rect", { width: n.w, height: n.h, rx: terminal ? n.h / 2 : 8 }),
      svg(
        "text",
        {
          x: count > 0 ? n.w / 2 - 8 : n.w / 2,
          y: n.h / 2,
          "dominant-baseline": "central",
          "text-anchor": "middle",
        },
        label,
      ),
      count > 0
        ? svg(
            "text",
            {
              class: "count",
              x: n.w - 10,
              y: n.h / 2,
              "dominant-baseline": "central",
              "text-anchor": "end",
            },
            `${count}×`,
          )
        : null,
    );
  });

  const top = Math.floor(minY) - 10;
  const height = Math.ceil(maxY - minY) + 20;
  const width = layout.width + PAD_X * 2;
  return svg(
    "svg",
    {
      class: "graph",
      viewBox: `${-PAD_X} ${top} ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-label":
        options.title ?? `Graph with ${layout.nodes.length} nodes and ${layout.edges.length} edges`,
    },
    svg(
      "defs",
      {},
      svg(
        "marker",
        {
          id: arrow,
          viewBox: "0 0 10 10",
          refX: 9,
          refY: 5,
          markerWidth: 7,
          markerHeight: 7,
          orient: "auto-start-reverse",
        },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }),
      ),
    ),
    svg("g", { class: "edges" }, paths),
    svg("g", { class: "edge-labels" }, texts),
    svg("g", { class: "nodes" }, boxes),
  );
}

/** How often each refine node ran, read from the thread's values (empty for other graphs). */
export function refineCounts(values) {
  if (!values || !Array.isArray(values.drafts)) return {};
  const verified = new Set((values.verdicts ?? []).map((v) => v.iteration));
  return {
    generate: values.drafts.filter((d) => d.source === "generate").length,
    revise: values.drafts.filter((d) => d.source === "revise").length,
    critique: (values.critiques ?? []).length,
    verify: verified.size,
    approve: (values.approvals ?? []).length,
  };
}

/** What the strokes mean. */
export function graphLegend({ current = false } = {}) {
  const item = (cls, text) =>
    h("li", {}, h("span", { class: ["legend-swatch", cls], "aria-hidden": "true" }), text);
  return h(
    "ul",
    { class: "graph-legend", "aria-label": "Legend" },
    item("solid", "always"),
    item("dashed", "conditional"),
    item("loop", "loops back"),
    current ? item("current", "where the thread is") : null,
  );
}

/** Condition labels for a graph: the refine graph's own, a declarative graph's from its spec. */
export async function edgeLabelsFor(graphId, specs, signal) {
  if (graphId === "refine") return REFINE_EDGE_LABELS;
  try {
    // The list says which graphs are declarative; only their own page carries the spec.
    const list = specs ?? (await api("/graphs", { signal }));
    if (!(list ?? []).some((g) => g.graph_id === graphId)) return {};
    const found = await api(`/graphs/${encodeURIComponent(graphId)}`, { signal });
    return specEdgeLabels(found?.spec);
  } catch {
    return {};
  }
}
