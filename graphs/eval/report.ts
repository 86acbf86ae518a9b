// Renders an evaluation summary: a plain-text table for terminals and an SVG chart of accuracy
// against tokens per item, one labelled point per strategy. Pure string functions, no I/O.
import { isPooled, seedRange } from "./replicates.ts";
import type { EvalSummary } from "./run.ts";

const pct = (x: number | null) => (x === null ? "—" : `${(x * 100).toFixed(1)}%`);
const int = (x: number) => Math.round(x).toLocaleString("en-US");
const num = (x: number | null, digits = 0) =>
  x === null
    ? "—"
    : x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** "seed 7", or "seeds 1-20 pooled" for replicates. */
function seedText(summary: EvalSummary): string {
  return isPooled(summary)
    ? `seeds ${seedRange(summary.seeds)} pooled, ${summary.seeds.length} replicates`
    : `seed ${String(summary.model.seed)}`;
}

/** A header, a rule and the rows, in columns: the first left-aligned, the rest right-aligned. */
export function columns(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ");
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

/** "name=value name=value" for parameters, sorted, nested families flattened. */
export function parameterText(values: Record<string, unknown>, prefix = ""): string {
  return Object.entries(values)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) =>
      typeof v === "object" && v !== null
        ? parameterText(v as Record<string, unknown>, `${prefix}${k}.`)
        : `${prefix}${k}=${String(v)}`,
    )
    .filter(Boolean)
    .join(" ");
}

/** Where the simulation's parameter values come from, printed with them. */
export const SIMULATED_PARAMETERS_SOURCE =
  "defaults of DEFAULT_SIMULATED_OPTIONS, each with its source in docs/simulated-model.md; --sim overrides";

/** The simulation's parameters of a simulated summary (the model identity minus provider and seed). */
function parametersLine(summary: EvalSummary): string[] {
  if (!summary.simulated) return [];
  const { provider: _p, seed: _s, seeds: _ss, ...values } = summary.model;
  return [`parameters (${SIMULATED_PARAMETERS_SOURCE}): ${parameterText(values)}`];
}

function modelLine(summary: EvalSummary): string {
  const m = summary.model;
  if (m.replayed !== undefined) {
    return `REPLAY of ${String(m.replayed)}: the recorded answers graded again, no model called`;
  }
  const decoding = m.decoding as Record<string, unknown> | undefined;
  const sent = decoding
    ? ` (${Object.entries(decoding)
        .map(([k, v]) => `${k} ${String(v)}`)
        .join(", ")})`
    : "";
  const own = m.per_strategy as Record<string, string> | undefined;
  const per = own
    ? `; ${Object.entries(own)
        .map(([strategy, model]) => `${strategy} on ${model}`)
        .join(", ")}`
    : "";
  return `${baseModelLine(summary)}${sent}${per}`;
}

function baseModelLine(summary: EvalSummary): string {
  const m = summary.model;
  return summary.simulated
    ? `SIMULATED — ${summary.notice ?? "offline simulated model"} (${seedText(summary)})`
    : `model ${m.model === undefined ? "(the server's configured model)" : String(m.model)}${m.baseURL ? ` at ${String(m.baseURL)}` : ""}`;
}

export function formatTable(summary: EvalSummary): string {
  const head = [
    "strategy",
    "n",
    "accuracy",
    "tokens",
    "tokens/item",
    "calls",
    "wall s",
    "refine/item",
    "rescue",
    "harm",
  ];
  const rows = summary.strategies.map((s) => [
    s.strategy,
    String(s.items),
    `${pct(s.accuracy)} (${s.correct})`,
    int(s.tokens.total),
    num(s.tokens_per_item),
    int(s.calls),
    num(s.wall_ms / 1000, 1),
    num(s.refinements_per_item, 2),
    `${pct(s.rescue_rate)} (${s.rescued}/${s.first_wrong})`,
    `${pct(s.harm_rate)} (${s.harmed}/${s.first_right})`,
  ]);
  const out = [
    `${summary.datasets.map((d) => d.name).join(" + ")}: ${summary.items} item(s)${isPooled(summary) ? ` × ${summary.seeds.length} seeds` : ""}, max ${summary.max_iterations} iteration(s)${summary.status === "interrupted" ? " — INTERRUPTED, partial results" : ""}`,
    modelLine(summary),
    ...parametersLine(summary),
    "",
    ...columns(head, rows),
  ];
  for (const c of summary.comparisons) {
    const mine = summary.strategies.find((s) => s.strategy === c.strategy);
    const base = summary.strategies.find((s) => s.strategy === c.baseline);
    const tokens = c.token_ratio === null ? "—" : `${(c.token_ratio * 100).toFixed(1)}%`;
    const points =
      c.accuracy_delta_points === null
        ? "—"
        : `${c.accuracy_delta_points >= 0 ? "+" : ""}${c.accuracy_delta_points.toFixed(1)} points`;
    out.push(
      `${c.strategy} vs ${c.baseline}: ${tokens} of the tokens, accuracy ${points}, harm ${pct(mine?.harm_rate ?? null)} vs ${pct(base?.harm_rate ?? null)}`,
    );
  }
  for (const s of summary.strategies) {
    if (!s.pasr_items) continue;
    out.push(
      `${s.strategy}: ${s.in_generation_refinements} in-generation refinement(s) over ${s.pasr_items} generation(s) (${num(s.in_generation_refinements / s.pasr_items, 2)}/item); ${s.pasr_fallbacks} malformed, fell back to proactive (${pct(s.pasr_fallbacks / s.pasr_items)})`,
    );
  }
  if (isPooled(summary)) out.push("", ...replicateTable(summary));
  return `${out.join("\n")}\n`;
}

/** Per seed: correct answers per strategy, then each comparison's token share and harm. */
function replicateTable(summary: EvalSummary): string[] {
  if (!isPooled(summary)) return [];
  const names = summary.strategies.map((s) => s.strategy);
  // Vanilla against self-refine is the table's business; per seed, the refining strategies.
  const comparisons = summary.comparisons.filter((c) => c.strategy !== "vanilla");
  const head = [
    "seed",
    ...names.map((n) => `${n} right`),
    ...comparisons.flatMap((c) => [`${c.strategy} tokens`, `harm ${c.baseline} / ${c.strategy}`]),
  ];
  const rows = summary.replicates.map((r) => {
    const of = (name: string) => r.strategies.find((s) => s.strategy === name);
    return [
      `${r.seed}${r.status === "complete" ? "" : "*"}`,
      ...names.map((n) => {
        const s = of(n);
        return s ? `${s.correct}/${s.items}` : "—";
      }),
      ...comparisons.flatMap((c) => {
        const mine = of(c.strategy);
        const base = of(c.baseline);
        const share = mine && base && base.tokens > 0 ? mine.tokens / base.tokens : null;
        return [
          share === null ? "—" : `${(share * 100).toFixed(1)}%`,
          `${base ? `${base.harmed}/${base.first_right}` : "—"} / ${mine ? `${mine.harmed}/${mine.first_right}` : "—"}`,
        ];
      }),
    ];
  });
  return [`per seed${summary.simulated ? " (simulated)" : ""}:`, ...columns(head, rows)];
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A "nice" axis maximum: 1, 2 or 5 times a power of ten, at least `value`. */
export function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (m * power >= value) return m * power;
  return 10 * power;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

/** Accuracy (y) against tokens per item (x); the title says "simulated" when it is. */
export function renderChartSvg(summary: EvalSummary): string {
  const width = 720;
  const height = 460;
  const m = { left: 70, right: 30, top: 70, bottom: 60 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const points = summary.strategies.filter(
    (s) => s.accuracy !== null && s.tokens_per_item !== null,
  );
  const xMax = niceMax(Math.max(0, ...points.map((p) => p.tokens_per_item ?? 0)) * 1.1);
  const x = (v: number) => m.left + (v / xMax) * plotW;
  const y = (v: number) => m.top + plotH - v * plotH;
  const names = summary.datasets.map((d) => d.name).join(" + ");
  const title = `${summary.simulated ? "SIMULATED — " : ""}Accuracy vs tokens per item: ${names}`;
  const subtitle = summary.simulated
    ? `offline simulated model (${seedText(summary)}): outputs are simulated, not from a real LLM`
    : `model ${summary.model.model === undefined ? "(configured)" : String(summary.model.model)}, ${summary.items} item(s)`;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="${width / 2}" y="50" text-anchor="middle" font-size="12" fill="#555">${escapeXml(subtitle)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const v = i / 5;
    parts.push(
      `<line x1="${m.left}" x2="${m.left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 8}" y="${y(v) + 4}" text-anchor="end" font-size="11">${Math.round(v * 100)}%</text>`,
    );
    const xv = (xMax * i) / 5;
    parts.push(
      `<line x1="${x(xv)}" x2="${x(xv)}" y1="${m.top}" y2="${m.top + plotH}" stroke="#f0f0f0"/>`,
      `<text x="${x(xv)}" y="${m.top + plotH + 18}" text-anchor="middle" font-size="11">${int(xv)}</text>`,
    );
  }
  parts.push(
    `<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${m.left + plotW / 2}" y="${height - 16}" text-anchor="middle" font-size="13">tokens per item (mean, all calls and retries)</text>`,
    `<text transform="translate(18 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="13">accuracy (final answer graded against the reference)</text>`,
  );
  points.forEach((p, i) => {
    const cx = x(p.tokens_per_item ?? 0);
    const cy = y(p.accuracy ?? 0);
    const color = COLORS[i % COLORS.length] ?? "#000";
    const anchor = cx > m.left + plotW * 0.75 ? "end" : "start";
    const dx = anchor === "end" ? -10 : 10;
    parts.push(
      `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="6" fill="${color}"/>`,
      `<text x="${(cx + dx).toFixed(1)}" y="${(cy - 8).toFixed(1)}" text-anchor="${anchor}" font-size="13" fill="${color}">${escapeXml(`${p.strategy}: ${pct(p.accuracy)}, ${int(p.tokens_per_item ?? 0)} tok`)}</text>`,
    );
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

/** The LLM judge's grades, apart from the deterministic table and marked as model-graded. */
export function formatJudgeTable(summary: EvalSummary): string {
  if (!summary.judge) return "";
  const head = [
    "strategy",
    "n",
    "judge accuracy",
    "first right",
    "disagree",
    "errors",
    "judge tokens",
  ];
  const rows = summary.judge.strategies.map((s) => [
    s.strategy,
    String(s.items),
    `${pct(s.accuracy)} (${s.correct})`,
    String(s.first_correct),
    String(s.disagreements),
    String(s.errors),
    int(s.tokens),
  ]);
  const model = String(summary.judge.model.model ?? "the configured model");
  return `\nLLM-JUDGE GRADED by ${model}: a second grade by a model, not deterministic; the accuracy above is the deterministic one\n${columns(head, rows).join("\n")}\n`;
}
