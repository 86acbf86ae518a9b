// A layered layout of a graph's nodes and edges (GET /assistants/{id}/graph), left to right:
// back edges are found by a depth-first walk from __start__, layers are longest paths over the
// remaining edges, and nodes of one layer stack vertically. Arcs go above or below the row,
// whichever crosses fewer arcs already placed. A declarative graph's internal `__finish__` step
// is drawn as the end it leads to. Pure: no DOM.

const NODE_H = 40;
const COL_GAP = 40;
/** Room between columns for a condition label on a straight arrow. */
const LABEL_GAP = 76;
const FINISH = "__finish__";
const LABELS = { __start__: "start", __end__: "end" };
const ROW_GAP = 28;

/**
 * @param {{id: string}[]} nodes
 * @param {{source: string, target: string, conditional?: boolean}[]} edges
 */
export function layoutGraph(rawNodes, rawEdges, { labelled = false } = {}) {
  const { nodes, edges } = withoutFinish(rawNodes, rawEdges);
  const colGap = labelled ? LABEL_GAP : COL_GAP;
  const ids = nodes.map((n) => n.id);
  // One width for all boxes, from the longest label (13px bold ≈ 7.6px a character) plus room
  // for a run count.
  const nodeW = Math.max(
    90,
    Math.round(7.6 * Math.max(0, ...ids.map((id) => (LABELS[id] ?? id).length))) + 52,
  );
  const known = new Set(ids);
  const valid = edges.filter((e) => known.has(e.source) && known.has(e.target));
  const out = new Map(ids.map((id) => [id, []]));
  for (const e of valid) out.get(e.source).push(e);

  // Depth-first from the entry (then any unvisited node), marking edges into the current path.
  const back = new Set();
  const state = new Map(); // 1 on the path, 2 done
  const visit = (id) => {
    state.set(id, 1);
    for (const e of out.get(id)) {
      const s = state.get(e.target);
      if (s === 1) back.add(e);
      else if (!s) visit(e.target);
    }
    state.set(id, 2);
  };
  const roots = ids.includes("__start__") ? ["__start__", ...ids] : ids;
  for (const id of roots) if (!state.get(id)) visit(id);

  // Longest-path layers over the forward edges (a DAG now), in topological order.
  const forward = valid.filter((e) => !back.has(e));
  const indegree = new Map(ids.map((id) => [id, 0]));
  for (const e of forward) indegree.set(e.target, indegree.get(e.target) + 1);
  const layer = new Map(ids.map((id) => [id, 0]));
  const queue = ids.filter((id) => indegree.get(id) === 0);
  while (queue.length) {
    const id = queue.shift();
    for (const e of forward) {
      if (e.source !== id || e.source === e.target) continue;
      layer.set(e.target, Math.max(layer.get(e.target), layer.get(id) + 1));
      indegree.set(e.target, indegree.get(e.target) - 1);
      if (indegree.get(e.target) === 0) queue.push(e.target);
    }
  }
  // The end node goes last, whatever the edges say.
  const maxLayer = Math.max(0, ...layer.values());
  if (layer.has("__end__") && ids.length > 1) layer.set("__end__", Math.max(maxLayer, 1));

  const columns = [];
  for (const id of ids) (columns[layer.get(id)] ??= []).push(id);
  const tallest = Math.max(1, ...columns.map((c) => c?.length ?? 0));
  const top = 0;
  const columnHeight = tallest * NODE_H + (tallest - 1) * ROW_GAP;
  const placed = new Map();
  columns.forEach((column, l) => {
    (column ?? []).forEach((id, i) => {
      const h = column.length * NODE_H + (column.length - 1) * ROW_GAP;
      placed.set(id, {
        id,
        layer: l,
        x: l * (nodeW + colGap),
        y: top + (columnHeight - h) / 2 + i * (NODE_H + ROW_GAP),
        w: nodeW,
        h: NODE_H,
      });
    });
  });

  const laidEdges = valid.map((e) => {
    const a = placed.get(e.source);
    const b = placed.get(e.target);
    let kind = "forward";
    if (back.has(e)) kind = "back";
    else if (b.layer - a.layer === 1 && a.y === b.y) kind = "next";
    else if (b.layer === a.layer) kind = "back";
    return {
      source: e.source,
      target: e.target,
      conditional: Boolean(e.conditional),
      kind,
      span: Math.abs(b.layer - a.layer),
      // Columns the arc spans, left to right (for sides and crossings).
      from: Math.min(a.layer, b.layer),
      to: Math.max(a.layer, b.layer),
    };
  });
  assignSides(laidEdges);

  return {
    nodes: ids.map((id) => placed.get(id)),
    edges: laidEdges,
    width: columns.length * nodeW + Math.max(0, columns.length - 1) * colGap,
    height: columnHeight,
  };
}

/** Drops `__finish__` (a declarative graph's last internal step): edges into it go to the end. */
function withoutFinish(nodes, edges) {
  if (!nodes.some((n) => n.id === FINISH)) return { nodes, edges };
  const seen = new Set();
  const out = [];
  for (const e of edges) {
    if (e.source === FINISH) continue;
    const target = e.target === FINISH ? "__end__" : e.target;
    const key = `${e.source}>${target}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ ...e, target });
  }
  const hasEnd = nodes.some((n) => n.id === "__end__");
  return {
    nodes: nodes.filter((n) => n.id !== FINISH).concat(hasEnd ? [] : [{ id: "__end__" }]),
    edges: out,
  };
}

/** Two arcs on one side cross when each starts strictly inside the other's span. */
function crosses(a, b) {
  return (
    (a.from < b.from && b.from < a.to && a.to < b.to) ||
    (b.from < a.from && a.from < b.to && b.to < a.to)
  );
}

/**
 * Puts each arc above or below the row: longest first, on the side where it crosses fewer arcs
 * already placed (ties: forward above, back below).
 */
function assignSides(edges) {
  const placed = { top: [], bottom: [] };
  const arcs = edges.filter((e) => e.kind !== "next").sort((a, b) => b.span - a.span);
  for (const e of arcs) {
    const preferred = e.kind === "forward" ? "top" : "bottom";
    const other = preferred === "top" ? "bottom" : "top";
    const cost = (side) => placed[side].filter((x) => crosses(x, e)).length;
    const side = cost(other) < cost(preferred) ? other : preferred;
    e.side = side;
    placed[side].push(e);
  }
}

/** How many pairs of arcs cross (on the same side of the row). */
export function arcCrossings(layout) {
  const arcs = layout.edges.filter((e) => e.kind !== "next");
  let n = 0;
  for (let i = 0; i < arcs.length; i++)
    for (let j = i + 1; j < arcs.length; j++)
      if (arcs[i].side === arcs[j].side && crosses(arcs[i], arcs[j])) n++;
  return n;
}
