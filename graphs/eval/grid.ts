// Sensitivity grid: the same evaluation on the simulated model across every combination of some
// simulation parameters and several seeds, each strategy compared with a baseline per cell and
// task family (bootstrap intervals, McNemar). The grid file is YAML, checked field by field.
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import { isRefineryError, RefineryError } from "../../core/errors.ts";
import {
  createSimulatedModel,
  DEFAULT_SIMULATED_OPTIONS,
  SIMULATED_MODEL_NOTICE,
} from "../../core/models/simulated.ts";
import type { Strategy } from "../../core/state.ts";
import type { Dataset } from "./dataset.ts";
import { fileSink } from "./records.ts";
import { runReplicated } from "./replicates.ts";
import {
  DEFAULT_MAX_ITERATIONS,
  STRATEGIES,
  type EvalProgress,
  type RefineRunner,
  type SimulatedParams,
} from "./run.ts";
import { comparePaired, type PairedComparison } from "./stats.ts";

/** Most graph runs one grid may ask for (cells × seeds × items × strategies). */
export const GRID_MAX_RUNS = 200_000;

type ParamValue = number | boolean;

export interface GridSpec {
  /** Dataset paths, resolved against the grid file's folder. */
  datasets: string[];
  strategies: Strategy[];
  baseline: Strategy;
  seeds: number[];
  maxIterations: number;
  limit?: number;
  bootstrap: { samples: number; seed: number };
  /** Parameters every cell uses. */
  fixed: Record<string, ParamValue>;
  /** The grid: every combination of these values is one cell. */
  params: Record<string, ParamValue[]>;
}

const value = z.union([z.number(), z.boolean()]);
// A parameter name, or a dotted path for one family's rate (families.json.invisibleErrorRate).
const paramName = /^[A-Za-z]+(?:\.[A-Za-z]+){0,2}$/;

const GridFileSchema = z.strictObject({
  datasets: z.array(z.string().min(1)).min(1).optional(),
  strategies: z
    .array(z.enum(STRATEGIES))
    .min(2, "name at least two strategies: the baseline and one to compare with it"),
  baseline: z.enum(STRATEGIES).default("self-refine"),
  seeds: z.union([
    z.array(z.number().int()).min(1).max(1000),
    z.strictObject({ from: z.number().int(), count: z.number().int().min(1).max(1000) }),
  ]),
  max_iterations: z.number().int().min(1).max(50).default(DEFAULT_MAX_ITERATIONS),
  limit: z.number().int().min(1).optional(),
  bootstrap: z
    .strictObject({
      samples: z.number().int().min(100).max(100_000).default(2000),
      seed: z.number().int().default(1),
    })
    .default({ samples: 2000, seed: 1 }),
  fixed: z.record(z.string().regex(paramName, "expected a parameter name"), value).default({}),
  params: z
    .record(z.string().regex(paramName, "expected a parameter name"), z.array(value).min(1))
    .refine((p) => Object.keys(p).length > 0, "name at least one parameter with its values"),
});

function gridError(where: string, path: readonly PropertyKey[], message: string, fix: string) {
  const field = path.reduce<string>(
    (acc, key) =>
      typeof key === "number" ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key),
    "",
  );
  return new RefineryError("invalid_input", message, {
    field: field ? `${where}: ${field}` : where,
    fix,
  });
}

const FIX = "see docs/evaluation.md (Sensitivity grid) for the grid file's fields";

/** Sets `a.b.c` in a nested options object. */
export function setSimPath(target: Record<string, unknown>, path: string, v: unknown): void {
  const [head, ...rest] = path.split(".");
  if (head === undefined) return;
  if (rest.length === 0) {
    target[head] = v;
    return;
  }
  const next = target[head];
  const child: Record<string, unknown> =
    typeof next === "object" && next !== null ? (next as Record<string, unknown>) : {};
  target[head] = child;
  setSimPath(child, rest.join("."), v);
}

/** The simulation options of one cell: the fixed parameters, then the cell's values. */
function cellOptions(
  fixed: Record<string, ParamValue>,
  values: Record<string, ParamValue>,
): SimulatedParams {
  const options: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fixed)) setSimPath(options, k, v);
  for (const [k, v] of Object.entries(values)) setSimPath(options, k, v);
  return options as SimulatedParams;
}

/**
 * Reads and checks a grid file. Errors name the file and the field (`grid.yaml: params.detectRate`)
 * and say how to fix it; a YAML syntax error names the line.
 */
export function parseGrid(text: string, where: string): GridSpec {
  const doc = parseDocument(text, { prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax) {
    const offset = syntax.pos[0];
    const line = text.slice(0, offset).split("\n").length;
    throw new RefineryError("invalid_input", `not valid YAML: ${syntax.message.split("\n")[0]}`, {
      field: `${where} line ${line}`,
      fix: "fix the YAML syntax (indentation, colons, brackets)",
    });
  }
  const raw: unknown = doc.toJS();
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw gridError(where, [], "the grid file must be a YAML mapping", FIX);
  }
  const parsed = GridFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const keys = issue?.code === "unrecognized_keys" ? issue.keys : [];
    throw gridError(
      where,
      [...(issue?.path ?? []), ...(keys.length === 1 ? [keys[0] as string] : [])],
      keys.length > 0 ? `unknown field "${keys.join('", "')}"` : (issue?.message ?? "invalid"),
      FIX,
    );
  }
  const g = parsed.data;
  if (!g.strategies.includes(g.baseline)) {
    throw gridError(
      where,
      ["baseline"],
      `the baseline "${g.baseline}" is not among the strategies`,
      `add ${g.baseline} to strategies, or name one of ${g.strategies.join(", ")}`,
    );
  }
  for (const [section, names] of [
    ["fixed", Object.keys(g.fixed)],
    ["params", Object.keys(g.params)],
  ] as const) {
    for (const name of names) {
      const top = name.split(".")[0];
      if (top === "seed" || top === "answerKey" || top === "oracle") {
        throw gridError(
          where,
          [section, name],
          `${top} cannot be a grid parameter`,
          top === "seed"
            ? "list the seeds under seeds:"
            : "the answer key is built from the datasets",
        );
      }
    }
  }
  // Every value is checked by the simulation's own option schema, one parameter at a time.
  for (const [section, entries] of [
    ["fixed", Object.entries(g.fixed).map(([k, v]) => [k, [v]] as const)],
    ["params", Object.entries(g.params)],
  ] as const) {
    for (const [name, values] of entries) {
      values.forEach((v, i) => {
        try {
          createSimulatedModel(cellOptions({}, { [name]: v }));
        } catch (err) {
          if (!isRefineryError(err)) throw err;
          throw gridError(
            where,
            section === "fixed" ? [section, name] : [section, name, i],
            err.message,
            "see docs/simulated-model.md for the parameters and their ranges",
          );
        }
      });
    }
  }
  const seeds = Array.isArray(g.seeds)
    ? g.seeds
    : Array.from({ length: g.seeds.count }, (_, i) => (g.seeds as { from: number }).from + i);
  const cells = Object.values(g.params).reduce((n, values) => n * values.length, 1);
  if (cells > 10_000) {
    throw gridError(
      where,
      ["params"],
      `${cells} cells is more than 10000`,
      "use fewer values per parameter",
    );
  }
  const strategies = [...new Set(g.strategies)];
  const base = dirname(resolve(where));
  return {
    datasets: (g.datasets ?? []).map((p) => resolve(base, p)),
    strategies,
    baseline: g.baseline,
    seeds,
    maxIterations: g.max_iterations,
    ...(g.limit !== undefined ? { limit: g.limit } : {}),
    bootstrap: g.bootstrap,
    fixed: g.fixed,
    params: g.params,
  };
}

export function readGrid(path: string): GridSpec {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new RefineryError(
      "invalid_input",
      `cannot read grid file ${path}: ${(err as Error).message}`,
      {
        field: "--grid",
        fix: "pass the path of a YAML grid file, e.g. --grid bench/grid.yaml",
      },
    );
  }
  return parseGrid(text, path);
}

/** Every combination of the grid's values, in order (the last parameter varies fastest). */
export function gridCells(spec: Pick<GridSpec, "params">): Record<string, ParamValue>[] {
  return Object.entries(spec.params).reduce<Record<string, ParamValue>[]>(
    (cells, [name, values]) => cells.flatMap((cell) => values.map((v) => ({ ...cell, [name]: v }))),
    [{}],
  );
}

export interface GridCell {
  index: number;
  /** The cell's values of the grid parameters. */
  params: Record<string, ParamValue>;
  status: "complete" | "interrupted";
  strategies: {
    strategy: string;
    runs: number;
    accuracy: number | null;
    tokens_per_item: number | null;
    harmed: number;
    first_right: number;
  }[];
  /** Each strategy against the baseline: overall (`family: "all"`) and per task family. */
  comparisons: PairedComparison[];
  records_files: string[];
}

export interface GridSummary {
  label: "simulated";
  simulated: true;
  notice: string;
  status: "complete" | "interrupted";
  datasets: { name: string; sha256: string; items: number }[];
  strategies: Strategy[];
  baseline: Strategy;
  seeds: number[];
  max_iterations: number;
  bootstrap: { samples: number; seed: number };
  /** Every simulation parameter a cell does not vary, and where its value comes from. */
  parameters: {
    values: Record<string, unknown>;
    fixed: Record<string, ParamValue>;
    source: string;
  };
  grid: Record<string, ParamValue[]>;
  cells: GridCell[];
  elapsed_ms: number;
  generated_at: string;
}

export interface GridOptions {
  spec: GridSpec;
  datasets: Dataset[];
  runner: RefineRunner;
  /** Folder for the records files (one per cell and seed; a rerun resumes from them). */
  out: string;
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (cell: number, cells: number, seed: number | undefined, p: EvalProgress) => void;
}

export const PARAMETER_SOURCE =
  "defaults of DEFAULT_SIMULATED_OPTIONS, each with its source in docs/simulated-model.md";

export function gridRecordsPath(out: string, cell: number, seed: number | undefined): string {
  return join(out, `grid-${cell + 1}.seed-${seed}.records.jsonl`);
}

export async function runGrid(opts: GridOptions): Promise<GridSummary> {
  const started = performance.now();
  const { spec } = opts;
  const items = opts.datasets.reduce((n, d) => n + d.items.length, 0);
  const perCell = spec.seeds.length * Math.min(items, spec.limit ?? items) * spec.strategies.length;
  const cellsParams = gridCells(spec);
  if (perCell * cellsParams.length > GRID_MAX_RUNS) {
    throw new RefineryError(
      "invalid_input",
      `the grid asks for ${perCell * cellsParams.length} graph runs, more than ${GRID_MAX_RUNS}`,
      { field: "--grid", fix: "use fewer cells, seeds or items (limit:)" },
    );
  }
  const cells: GridCell[] = [];
  let first: Awaited<ReturnType<typeof runReplicated>> | undefined;
  for (const [index, params] of cellsParams.entries()) {
    const options = cellOptions(spec.fixed, params);
    const result = await runReplicated({
      datasets: opts.datasets,
      strategies: spec.strategies,
      runner: opts.runner,
      models: spec.seeds.map((seed) => ({ kind: "simulated" as const, seed, options })),
      sinkFor: (seed) => fileSink(gridRecordsPath(opts.out, index, seed)),
      concurrency: opts.concurrency,
      limit: spec.limit,
      maxIterations: spec.maxIterations,
      signal: opts.signal,
      onProgress: (p, seed) => opts.onProgress?.(index, cellsParams.length, seed, p),
    });
    first ??= result;
    const status = result.summary.status;
    cells.push({
      index: index + 1,
      params,
      status,
      strategies: result.summary.strategies.map((s) => ({
        strategy: s.strategy,
        runs: s.items,
        accuracy: s.accuracy,
        tokens_per_item: s.tokens_per_item,
        harmed: s.harmed,
        first_right: s.first_right,
      })),
      comparisons: spec.strategies
        .filter((s) => s !== spec.baseline)
        .flatMap((s) => comparePaired(result.runs, s, spec.baseline, spec.bootstrap)),
      records_files: result.runs.map((r) => gridRecordsPath(opts.out, index, r.seed)),
    });
    if (status === "interrupted") break;
  }
  const { answerKey: _k, oracle: _o, ...defaults } = DEFAULT_SIMULATED_OPTIONS;
  const values: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(spec.fixed)) setSimPath(values, k, v);
  for (const k of Object.keys(spec.params)) if (!k.includes(".")) delete values[k];
  delete values.seed;
  return {
    label: "simulated",
    simulated: true,
    notice: SIMULATED_MODEL_NOTICE,
    status:
      cells.length === cellsParams.length && cells.every((c) => c.status === "complete")
        ? "complete"
        : "interrupted",
    datasets: first?.summary.datasets ?? [],
    strategies: spec.strategies,
    baseline: spec.baseline,
    seeds: spec.seeds,
    max_iterations: spec.maxIterations,
    bootstrap: spec.bootstrap,
    parameters: { values, fixed: spec.fixed, source: PARAMETER_SOURCE },
    grid: spec.params,
    cells,
    elapsed_ms: Math.round(performance.now() - started),
    generated_at: new Date().toISOString(),
  };
}
