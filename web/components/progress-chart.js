// A per-iteration chart of a refine thread, as inline SVG: each draft's score (the critic's, else
// the share of hard checks passed) as a line over bars of the tokens that iteration spent.
import { svg, h } from "../lib/dom.js";
import { score, tokens } from "../lib/format.js";

const W = 320;
const H = 140;
const PAD = { left: 34, right: 40, top: 12, bottom: 24 };

/** One point per draft: {iteration, score (0..1 or null), tokens, passed, total}. */
export function iterationSeries(values) {
  const drafts = Array.isArray(values?.drafts) ? values.drafts : [];
  return drafts.map((d) => {
    const critiques = (values.critiques ?? []).filter((c) => c.iteration === d.iteration);
    const critique = critiques[critiques.length - 1];
    const hard = (values.verdicts ?? []).filter((v) => v.iteration === d.iteration && v.hard);
    const passed = hard.filter((v) => v.pass).length;
    const s =
      typeof critique?.score === "number"
        ? critique.score
        : hard.length
          ? passed / hard.length
          : null;
    const spent =
      (d.usage?.totalTokens ?? 0) + critiques.reduce((n, c) => n + (c.usage?.totalTokens ?? 0), 0);
    return { iteration: d.iteration, score: s, tokens: spent, passed, total: hard.length };
  });
}

export function progressChart(values) {
  const series = iterationSeries(values);
  if (!series.length) return h("p", { class: "muted small" }, "No drafts yet.");
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const maxTokens = Math.max(1, ...series.map((p) => p.tokens));
  const step = iw / series.length;
  const x = (i) => PAD.left + step * i + step / 2;
  const yScore = (s) => PAD.top + ih * (1 - s);
  const bars = series.map((p, i) => {
    const bh = (ih * p.tokens) / maxTokens;
    return svg(
      "rect",
      {
        class: "bar",
        "data-iteration": p.iteration,
        x: x(i) - Math.min(18, step * 0.3),
        y: PAD.top + ih - bh,
        width: Math.min(36, step * 0.6),
        height: Math.max(0, bh),
      },
      svg("title", {}, `Draft ${p.iteration}: ${tokens(p.tokens)} tokens`),
    );
  });
  const scored = series.map((p, i) => ({ ...p, i })).filter((p) => p.score !== null);
  const line = scored.length
    ? svg("polyline", {
        class: "score-line",
        points: scored.map((p) => `${x(p.i)},${yScore(p.score)}`).join(" "),
      })
    : null;
  const dots = scored.map((p) =>
    svg(
      "circle",
      {
        class: ["dot", p.total && p.passed < p.total ? "fail" : "pass"],
        "data-iteration": p.iteration,
        cx: x(p.i),
        cy: yScore(p.score),
        r: 4,
      },
      svg(
        "title",
        {},
        `Draft ${p.iteration}: score ${score(p.score)}${p.total ? `, ${p.passed}/${p.total} hard checks pass` : ""}`,
      ),
    ),
  );
  const axis = [
    svg("line", {
      class: "axis",
      x1: PAD.left,
      y1: PAD.top + ih,
      x2: W - PAD.right,
      y2: PAD.top + ih,
    }),
    svg(
      "text",
      {
        class: "tick",
        x: PAD.left - 4,
        y: yScore(1),
        "text-anchor": "end",
        "dominant-baseline": "central",
      },
      "1",
    ),
    svg(
      "text",
      {
        class: "tick",
        x: PAD.left - 4,
        y: yScore(0),
        "text-anchor": "end",
        "dominant-baseline": "central",
      },
      "0",
    ),
    svg(
      "text",
      { class: "tick", x: W - PAD.right + 4, y: PAD.top, "dominant-baseline": "central" },
      tokens(maxTokens),
    ),
    series.map((p, i) =>
      svg("text", { class: "tick", x: x(i), y: H - 6, "text-anchor": "middle" }, `#${p.iteration}`),
    ),
  ];
  const summary = series
    .map(
      (p) =>
        `draft ${p.iteration}: score ${p.score === null ? "none" : score(p.score)}, ${tokens(p.tokens)} tokens`,
    )
    .join("; ");
  return h(
    "figure",
    { class: "progress-chart" },
    svg(
      "svg",
      {
        viewBox: `0 0 ${W} ${H}`,
        role: "img",
        "aria-label": `Score and tokens per iteration: ${summary}`,
        preserveAspectRatio: "xMidYMid meet",
      },
      svg("g", { class: "bars" }, bars),
      axis,
      line,
      dots,
    ),
    h(
      "figcaption",
      { class: "small muted" },
      h("span", { class: "key line" }, "score"),
      " · ",
      h("span", { class: "key bar" }, "tokens"),
      " per iteration",
    ),
  );
}
