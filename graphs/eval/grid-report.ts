// Renders a sensitivity grid: a plain-text table (one row per cell, strategy and task family) and
// an SVG forest plot of the accuracy difference and the token ratio with their 95% intervals.
// Pure string functions, no I/O.
import type { GridSummary } from "./grid.ts";
import { columns, escapeXml, niceMax, parameterText } from "./report.ts";
import { seedRange } from "./replicates.ts";
import type { PairedComparison } from "./stats.ts";

const fmt = (x: number, digits: number) => (Object.is(x, -0) ? 0 : x).toFixed(digits);
const signed = (x: number) => `${x > 0 ? "+" : ""}${fmt(x, 1)}`;
const pValue = (p: number) => (p < 0.001 ? "<0.001" : p.toFixed(3));

function header(summary: GridSummary): string[] {
  const names = summary.datasets.map((d) => d.name).join(" + ");
  const items = summary.datasets.reduce((n, d) => n + d.items, 0);
  const compared = summary.strategies.filter((s) => s !== summary.baseline).join(", ");
  return [
    `SIMULATED — ${summary.notice}`,
    `sensitivity grid: ${names} (${items} items) × seeds ${seedRange(summary.seeds)}, max ${summary.max_iterations} iteration(s); ${compared} vs ${summary.baseline}${summary.status === "interrupted" ? " — INTERRUPTED, partial results" : ""}`,
    `parameters (${summary.parameters.source}): ${parameterText(summary.parameters.values)}`,
    `varied: ${Object.entries(summary.grid)
      .map(([k, v]) => `${k} ∈ {${v.join(", ")}}`)
      .join("; ")}`,
    `intervals: 95% percentile bootstrap over items (${summary.bootstrap.samples} resamples, seed ${summary.bootstrap.seed}); McNemar on paired runs (exact binomial below 25 discordant pairs)`,
  ];
}

function rowOf(summary: GridSummary, cell: GridSummary["cells"][number], c: PairedComparison) {
  return [
    String(cell.index),
    ...Object.keys(summary.grid).map((k) => String(cell.params[k])),
    summary.strategies.length > 2 ? c.strategy : "",
    c.family,
    String(c.runs),
    `${fmt(c.accuracy * 100, 1)}%`,
    `${fmt(c.baselineAccuracy * 100, 1)}%`,
    `${signed(c.accuracyDeltaPoints)} [${signed(c.accuracyDeltaCi95[0])}, ${signed(c.accuracyDeltaCi95[1])}]`,
    `${c.mcnemar.b}/${c.mcnemar.c} p=${pValue(c.mcnemar.p)}`,
    c.tokenRatio === null || c.tokenRatioCi95 === null
      ? "—"
      : `${fmt(c.tokenRatio * 100, 1)}% [${fmt(c.tokenRatioCi95[0] * 100, 1)}, ${fmt(c.tokenRatioCi95[1] * 100, 1)}]`,
    `${c.harmed}/${c.firstRight} vs ${c.baselineHarmed}/${c.baselineFirstRight}`,
  ];
}

export function formatGridTable(summary: GridSummary): string {
  const head = [
    "cell",
    ...Object.keys(summary.grid),
    summary.strategies.length > 2 ? "strategy" : "",
    "family",
    "runs",
    "accuracy",
    summary.baseline,
    "Δ points [95% CI]",
    "McNemar b/c",
    "tokens [95% CI]",
    "harm vs baseline",
  ];
  const rows = summary.cells.flatMap((cell) =>
    cell.comparisons.map((c) => rowOf(summary, cell, c)),
  );
  const keep = head.map((h, i) => h !== "" || rows.some((r) => r[i] !== ""));
  const pickCols = (r: string[]) => r.filter((_, i) => keep[i]);
  return `${[...header(summary), "", ...columns(pickCols(head), rows.map(pickCols))].join("\n")}\n`;
}

/**
 * A forest plot: one row per cell, strategy and family; left the accuracy difference in points
 * with its interval (0 marked), right the token ratio with its interval (100% marked).
 */
export function renderGridSvg(summary: GridSummary): string {
  const rows = summary.cells.flatMap((cell) => cell.comparisons.map((c) => ({ cell, c })));
  const rowH = 18;
  const labelW = 330;
  const panelW = 300;
  const gap = 40;
  const top = 96;
  const width = labelW + 2 * panelW + gap + 30;
  const height = top + rows.length * rowH + 50;
  const maxDelta = niceMax(
    Math.max(1, ...rows.flatMap(({ c }) => c.accuracyDeltaCi95.map((x) => Math.abs(x)))),
  );
  const maxRatio = niceMax(
    Math.max(1.1, ...rows.map(({ c }) => c.tokenRatioCi95?.[1] ?? c.tokenRatio ?? 0)) * 1.05,
  );
  const xDelta = (v: number) => labelW + ((v + maxDelta) / (2 * maxDelta)) * panelW;
  const x2 = labelW + panelW + gap;
  const xRatio = (v: number) => x2 + (v / maxRatio) * panelW;
  const compared = summary.strategies.filter((s) => s !== summary.baseline).join(", ");
  const title = `SIMULATED — sensitivity grid: ${compared} vs ${summary.baseline}`;
  const subtitle = `${summary.notice}; seeds ${seedRange(summary.seeds)}; 95% bootstrap intervals over items`;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="${width / 2}" y="44" text-anchor="middle" font-size="11" fill="#555">${escapeXml(subtitle)}</text>`,
    `<text x="${labelW + panelW / 2}" y="${top - 24}" text-anchor="middle" font-size="12">accuracy difference (points)</text>`,
    `<text x="${x2 + panelW / 2}" y="${top - 24}" text-anchor="middle" font-size="12">tokens, share of ${escapeXml(summary.baseline)}'s</text>`,
    `<text x="8" y="${top - 8}" font-size="11" fill="#555">${escapeXml(`cell: ${Object.keys(summary.grid).join(", ")} · family`)}</text>`,
  ];
  const bottom = top + rows.length * rowH;
  // Row shading first, so the axes and grid lines stay visible over it.
  rows.forEach((_, i) => {
    if (i % 2 === 0)
      parts.push(
        `<rect x="0" y="${top + i * rowH}" width="${width}" height="${rowH}" fill="#f7f7f7"/>`,
      );
  });
  for (const v of [-maxDelta, -maxDelta / 2, 0, maxDelta / 2, maxDelta]) {
    parts.push(
      `<line x1="${xDelta(v)}" x2="${xDelta(v)}" y1="${top - 4}" y2="${bottom}" stroke="${v === 0 ? "#333" : "#e5e5e5"}"/>`,
      `<text x="${xDelta(v)}" y="${bottom + 16}" text-anchor="middle" font-size="10">${signed(v)}</text>`,
    );
  }
  for (let i = 0; i <= 4; i++) {
    const v = (maxRatio * i) / 4;
    parts.push(
      `<line x1="${xRatio(v)}" x2="${xRatio(v)}" y1="${top - 4}" y2="${bottom}" stroke="#e5e5e5"/>`,
      `<text x="${xRatio(v)}" y="${bottom + 16}" text-anchor="middle" font-size="10">${Math.round(v * 100)}%</text>`,
    );
  }
  parts.push(
    `<line x1="${xRatio(1)}" x2="${xRatio(1)}" y1="${top - 4}" y2="${bottom}" stroke="#333"/>`,
  );
  rows.forEach(({ cell, c }, i) => {
    const y = top + i * rowH + rowH / 2;
    const color =
      c.accuracyDeltaCi95[1] < 0 ? "#d62728" : c.accuracyDeltaCi95[0] > 0 ? "#2ca02c" : "#1f77b4";
    const label = `${cell.index}: ${Object.keys(summary.grid)
      .map((k) => String(cell.params[k]))
      .join(", ")} · ${summary.strategies.length > 2 ? `${c.strategy} · ` : ""}${c.family}`;
    parts.push(
      `<text x="8" y="${y + 4}" font-size="11"${c.family === "all" ? ' font-weight="bold"' : ""}>${escapeXml(label)}</text>`,
      `<line x1="${xDelta(c.accuracyDeltaCi95[0]).toFixed(1)}" x2="${xDelta(c.accuracyDeltaCi95[1]).toFixed(1)}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2"/>`,
      `<circle cx="${xDelta(c.accuracyDeltaPoints).toFixed(1)}" cy="${y}" r="3.5" fill="${color}"/>`,
    );
    if (c.tokenRatio !== null && c.tokenRatioCi95 !== null) {
      parts.push(
        `<line x1="${xRatio(c.tokenRatioCi95[0]).toFixed(1)}" x2="${xRatio(c.tokenRatioCi95[1]).toFixed(1)}" y1="${y}" y2="${y}" stroke="#555" stroke-width="2"/>`,
        `<circle cx="${xRatio(c.tokenRatio).toFixed(1)}" cy="${y}" r="3.5" fill="#555"/>`,
      );
    }
  });
  parts.push(
    `<text x="8" y="${height - 10}" font-size="10" fill="#555">green: interval above 0 (better than the baseline); red: below 0 (worse); blue: includes 0</text>`,
    "</svg>",
  );
  return `${parts.join("\n")}\n`;
}
