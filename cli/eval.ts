// `refinery eval`: runs JSONL datasets through refinement strategies and reports accuracy,
// tokens, calls, time, refinements, rescue and harm per strategy (table, JSON, SVG chart).
// Results are appended per item, so running the same command again resumes an interrupted run.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isRefineryError, RefineryError } from "../core/errors.ts";
import { createSimulatedModel, DEFAULT_SIMULATED_OPTIONS } from "../core/models/simulated.ts";
import { bindModel } from "../core/models/call.ts";
import { openEngine } from "../graphs/engine.ts";
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_MAX_ITERATIONS,
  engineRunner,
  EVAL_STRATEGIES,
  fileSink,
  formatJudgeTable,
  formatTable,
  loadDataset,
  renderChartSvg,
  replicateModels,
  runReplicated,
  seedOf,
  seedRange,
  setSimPath,
  type EvalJudge,
  type EvalProgress,
  type EvalStrategy,
  type EvalSummary,
  type ModelChoice,
  type SimulatedParams,
} from "../graphs/eval/index.ts";
import { parseFlags, settingsFromFlags } from "./args.ts";
import { gridCommand } from "./eval-grid.ts";
import {
  checkOnlineOptions,
  decodingFromFlags,
  EVAL_MODEL_FLAGS,
  EVAL_MODEL_HELP,
  modelSlug,
  modelsFromFlags,
  strategyModelsFromFlags,
} from "./eval-options.ts";
import { replayCommand } from "./eval-replay.ts";
import type { CliIO } from "./main.ts";

export const EVAL_HELP = `refinery eval --dataset PATH [options]

Runs every item of a JSONL dataset ({id?, task, context?, reference, grade?, verifiers?} per
line) through each strategy, grades the first draft and the final answer against the reference,
and reports per strategy: accuracy, tokens, calls, wall time, refinements, rescue and harm rates.
      --dataset PATH  +      JSONL dataset (repeatable: the datasets are evaluated together); a
                             benchmark file as FORMAT:PATH (gsm8k, math, arc, mmlu, qa) or
                             recognised by its fields (docs/evaluation.md)
      --strategies LIST      comma-separated: ${EVAL_STRATEGIES.join(", ")}
                             (default vanilla,self-refine,proactive)
      --out DIR              where records, summary and chart go (default results/)
      --concurrency N        items running at once (default ${DEFAULT_CONCURRENCY})
      --limit N              evaluate only the first N items
      --max-iterations N     maximum drafts per run (default ${DEFAULT_MAX_ITERATIONS})
      --offline              use the offline simulated model even if OPENAI_API_KEY is set
      --seed N               seed of the simulated model (implies --offline; default ${DEFAULT_SIMULATED_OPTIONS.seed})
      --replicates N         simulated only: run seeds N times (seed, seed+1, ...) and pool them
      --sim NAME=VALUE   +   simulated only: set a simulation parameter (docs/simulated-model.md),
                             e.g. --sim criticCorrelation=0.5, or one family's rate:
                             --sim families.json.invisibleErrorRate=0.3
      --grid FILE            simulated only: run the strategies across a grid of simulation
                             parameters and seeds (YAML, docs/evaluation.md "Sensitivity grid");
                             with --out, --dataset (else the file's datasets), --concurrency,
                             --fresh and --json only
      --fresh                discard earlier records of these datasets in DIR and start over
      --json                 print the summary JSON instead of the table
${EVAL_MODEL_HELP}
Model: OPENAI_API_KEY / OPENAI_BASE_URL / REFINERY_MODEL, else the offline simulated model
(results are then labelled "simulated" everywhere).
Output in DIR, named after the dataset(s): NAME.records.jsonl (one record per item and strategy,
appended as each finishes), NAME.summary.json, NAME.chart.svg (accuracy vs tokens per item).
With --replicates, one NAME.seed-S.records.jsonl per seed; summary and chart are pooled.
Interrupted (Ctrl-C, crash)? Run the same command again: recorded items are not re-run
(records from another configuration are refused; after changing code, use --fresh).
Exit codes: 0 done; 1 a model or storage error stopped it; 2 invalid input; 130 interrupted.
`;

const EVAL_FLAGS = {
  dataset: { type: "string", multiple: true },
  strategies: { type: "string" },
  out: { type: "string" },
  concurrency: { type: "string" },
  limit: { type: "string" },
  "max-iterations": { type: "string" },
  offline: { type: "boolean" },
  seed: { type: "string" },
  replicates: { type: "string" },
  sim: { type: "string", multiple: true },
  grid: { type: "string" },
  json: { type: "boolean" },
  fresh: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  ...EVAL_MODEL_FLAGS,
} as const;

function intFlag(
  value: string | undefined,
  name: string,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
    throw new RefineryError(
      "invalid_input",
      `expected an integer from ${min} to ${max}, got "${value}"`,
      {
        field: `--${name}`,
        fix: `pass a whole number between ${min} and ${max}, e.g. --${name} ${Math.min(Math.max(min, 1), max)}`,
      },
    );
  }
  return n;
}

function parseStrategies(raw: string | undefined): EvalStrategy[] {
  const names = (raw ?? "vanilla,self-refine,proactive")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.find((n) => !(EVAL_STRATEGIES as readonly string[]).includes(n));
  if (unknown !== undefined || names.length === 0) {
    throw new RefineryError("invalid_input", `unknown strategy "${unknown ?? ""}"`, {
      field: "--strategies",
      fix: `use a comma-separated list of ${EVAL_STRATEGIES.join(", ")}`,
    });
  }
  return [...new Set(names)] as EvalStrategy[];
}

export async function evalCommand(args: string[], io: CliIO): Promise<number> {
  const parsed = parseFlags(args, EVAL_FLAGS, "eval");
  if (parsed.positionals.length > 0)
    throw new RefineryError("invalid_input", `unexpected argument "${parsed.positionals[0]}"`, {
      fix: "eval takes only options, e.g. refinery eval --dataset data.jsonl (see refinery eval --help)",
    });
  const flags = parsed.values;
  if (flags.help) {
    io.stdout.write(EVAL_HELP);
    return 0;
  }
  if (flags.grid !== undefined) return gridCommand(flags.grid, flags, io);
  if (!flags.dataset?.length) {
    throw new RefineryError("invalid_input", "no dataset given", {
      field: "--dataset",
      fix: "pass --dataset datasets/arithmetic.jsonl (a JSONL file, one item per line)",
    });
  }
  const strategies = parseStrategies(flags.strategies);
  const concurrency = intFlag(flags.concurrency, "concurrency", 1, 256);
  const limit = intFlag(flags.limit, "limit", 1, Number.MAX_SAFE_INTEGER);
  const maxIterations = intFlag(flags["max-iterations"], "max-iterations", 1, 50);
  const seed = intFlag(flags.seed, "seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1000);
  const replicates = intFlag(flags.replicates, "replicates", 1, 1000) ?? 1;
  const datasets = flags.dataset.map((path) => loadDataset(path));
  const names = datasets.map((d) => d.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate !== undefined) {
    throw new RefineryError("invalid_input", `two datasets are named "${duplicate}"`, {
      field: "--dataset",
      fix: "give the files different base names",
    });
  }
  if (flags.replay !== undefined) {
    return replayCommand(flags.replay, datasets, {
      out: flags.out ?? "results",
      json: Boolean(flags.json),
      io,
    });
  }

  const settings = settingsFromFlags(io.env, undefined);
  const offline = Boolean(flags.offline) || seed !== undefined || !settings.apiKey;
  const simOptions = parseSimOptions(flags.sim ?? []);
  if (flags.sim?.length && !offline) {
    throw new RefineryError("invalid_input", "simulation parameters need the simulated model", {
      field: "--sim",
      fix: "add --seed N (or --offline), or drop --sim for a real model",
    });
  }
  checkOnlineOptions(flags, offline);
  const decoding = decodingFromFlags(flags);
  const modelNames = modelsFromFlags(flags);
  const perStrategy = strategyModelsFromFlags(flags, strategies);
  // One evaluation per model: the simulated one, the configured one, or each --model.
  const choices: ModelChoice[] = offline
    ? [
        {
          kind: "simulated",
          seed: seed ?? DEFAULT_SIMULATED_OPTIONS.seed,
          ...(simOptions ? { options: simOptions } : {}),
        },
      ]
    : (modelNames ?? [settings.model]).map((m) => ({
        kind: "configured" as const,
        model: m,
        ...(settings.baseURL ? { baseURL: settings.baseURL } : {}),
        ...(Object.keys(decoding).length > 0 ? { decoding } : {}),
        ...(perStrategy ? { perStrategy } : {}),
      }));
  const multi = choices.length > 1;
  const outDir = flags.out ?? "results";
  const name = names.join("+");
  const baseOf = (choice: ModelChoice) =>
    multi && choice.kind === "configured" ? `${name}.${modelSlug(choice.model ?? "")}` : name;
  const recordsPathOf = (choice: ModelChoice, s: number | undefined) =>
    join(
      outDir,
      replicates > 1
        ? `${baseOf(choice)}.seed-${s}.records.jsonl`
        : `${baseOf(choice)}.records.jsonl`,
    );
  const plans = choices.map((choice) => ({
    choice,
    models: replicateModels(choice, replicates, {
      field: "--replicates",
      fix: "add --seed N (or --offline), or drop --replicates for a real model",
    }),
  }));

  if (flags.fresh)
    for (const p of plans)
      for (const m of p.models) rmSync(recordsPathOf(p.choice, seedOf(m)), { force: true });
  const engine = openEngine({ settings, memory: true });
  const judgeModel = flags["judge-model"];
  const judge: EvalJudge | undefined =
    judgeModel === undefined
      ? undefined
      : {
          invoke: bindModel(engine.provider.forRole("judge", { judge: { model: judgeModel } })),
          model: {
            model: judgeModel,
            ...(settings.baseURL ? { baseURL: settings.baseURL } : {}),
          },
          ...(flags["judge-rubric"] ? { rubric: flags["judge-rubric"] } : {}),
        };
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  let recordsPath = recordsPathOf(choices[0] as ModelChoice, undefined);
  let progress: ReturnType<typeof createProgress> | undefined;
  let progressSeed: number | undefined;
  try {
    const results: { choice: ModelChoice; summary: EvalSummary; runs: { seed: number }[] }[] = [];
    for (const plan of plans) {
      // Each model starts its own progress display.
      progressSeed = Number.NaN;
      const { summary, runs } = await runReplicated({
        datasets,
        strategies,
        runner: engineRunner(engine),
        models: plan.models,
        sinkFor: (s) => fileSink((recordsPath = recordsPathOf(plan.choice, s))),
        concurrency,
        limit,
        maxIterations,
        judge,
        signal: abort.signal,
        onProgress: (p, s) => {
          if (!progress || s !== progressSeed) {
            progress?.end();
            const label = multi && plan.choice.kind === "configured" ? `${plan.choice.model} ` : "";
            progress = createProgress(io, `${label}${replicates > 1 ? `seed ${s} ` : ""}`);
            progressSeed = s;
          }
          progress.update(p);
        },
      }).catch((err: unknown) => {
        progress?.end();
        if (
          isRefineryError(err) &&
          err.code !== "invalid_input" &&
          err.code !== "invalid_config" &&
          err.code !== "conflict"
        ) {
          throw new RefineryError(err.code, err.message, {
            field: err.field,
            fix: `${err.fix ? `${err.fix}; ` : ""}finished items are kept in ${recordsPath}: run the same command again to resume`,
          });
        }
        throw err;
      });
      progress?.end();
      results.push({ choice: plan.choice, summary, runs });
      if (summary.status === "interrupted") break;
    }
    mkdirSync(outDir, { recursive: true });
    const summaryPath = join(outDir, `${name}.summary.json`);
    const reports = results.map(({ choice, summary, runs }) => {
      const recordsFiles = runs.map((r) => recordsPathOf(choice, r.seed));
      const recordsNote =
        replicates > 1 ? { records_files: recordsFiles } : { records_file: recordsFiles[0] };
      const chartPath = join(outDir, `${baseOf(choice)}.chart.svg`);
      writeFileSync(chartPath, renderChartSvg(summary));
      const records =
        replicates > 1
          ? join(
              outDir,
              `${baseOf(choice)}.seed-{${seedRange(runs.map((r) => r.seed))}}.records.jsonl`,
            )
          : recordsFiles[0];
      return { summary: { ...summary, ...recordsNote }, chartPath, records };
    });
    // Several models: one report holding each model's summary, in the order given.
    const report = multi ? { models: reports.map((r) => r.summary) } : reports[0]?.summary;
    writeFileSync(summaryPath, `${JSON.stringify(report, null, 2)}\n`);
    if (flags.json) {
      const plain = results.map((r) => r.summary);
      io.stdout.write(`${JSON.stringify(multi ? { models: plain } : plain[0], null, 2)}\n`);
    } else {
      for (const [k, r] of reports.entries()) {
        const summary = results[k]?.summary as EvalSummary;
        if (k > 0) io.stdout.write("\n");
        io.stdout.write(formatTable(summary) + formatJudgeTable(summary));
        io.stdout.write(
          multi
            ? `\nrecords: ${r.records}\nchart:   ${r.chartPath}\n`
            : `\nrecords: ${r.records}\nsummary: ${summaryPath}\nchart:   ${r.chartPath}\n`,
        );
      }
      if (multi) io.stdout.write(`\nsummary: ${summaryPath}\n`);
    }
    const last = results.at(-1) as (typeof results)[number];
    const { summary, runs } = last;
    if (summary.status === "interrupted") {
      const n = summary.evaluated + summary.skipped;
      const where =
        replicates > 1
          ? `${n} item runs (at seed ${runs[runs.length - 1]?.seed})`
          : `${n} of ${summary.items * strategies.length} item runs`;
      io.stderr.write(
        `refinery: interrupted after ${where}; run the same command again to resume\n`,
      );
      return 130;
    }
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    engine.close();
  }
}

/** `--sim NAME=VALUE` flags, checked by the simulation's own option schema. */
function parseSimOptions(raw: string[]): SimulatedParams | undefined {
  if (raw.length === 0) return undefined;
  const options: Record<string, unknown> = {};
  for (const pair of raw) {
    // A family's own rate is a dotted name: families.json.invisibleErrorRate=0.3.
    const m = /^([A-Za-z]+(?:\.[A-Za-z]+)*)=(.+)$/.exec(pair.trim());
    const value = m?.[2]?.trim();
    const parsed =
      value === "true"
        ? true
        : value === "false"
          ? false
          : value === undefined
            ? NaN
            : Number(value);
    if (!m?.[1] || (typeof parsed === "number" && !Number.isFinite(parsed))) {
      throw new RefineryError(
        "invalid_input",
        `expected NAME=VALUE with a number or true/false, got "${pair}"`,
        {
          field: "--sim",
          fix: "e.g. --sim criticCorrelation=0.5 (parameters: docs/simulated-model.md)",
        },
      );
    }
    if (m[1] === "seed" || m[1] === "answerKey" || m[1] === "oracle") {
      throw new RefineryError("invalid_input", `${m[1]} cannot be set with --sim`, {
        field: "--sim",
        fix: m[1] === "seed" ? "use --seed N" : "the answer key is built from the dataset",
      });
    }
    setSimPath(options, m[1], parsed);
  }
  try {
    createSimulatedModel(options);
  } catch (err) {
    if (!isRefineryError(err)) throw err;
    throw new RefineryError("invalid_input", err.message, {
      field: `--sim ${err.field?.replace(/^simulatedModel\.?/, "") ?? ""}`.trim(),
      fix: "see docs/simulated-model.md for the parameters and their ranges",
    });
  }
  return options as SimulatedParams;
}

/** A progress bar on a terminal; elsewhere one plain line per finished item. */
export function createProgress(io: CliIO, prefix = "") {
  const tty = Boolean((io.stderr as { isTTY?: boolean }).isTTY);
  let drawn = false;
  return {
    update(p: EvalProgress) {
      if (!p.last) {
        const line = `eval: ${prefix}${p.total} item run(s)${p.skipped ? `, ${p.skipped} already recorded (resuming)` : ""}\n`;
        io.stderr.write(line);
        return;
      }
      const l = p.last;
      const outcome = `${l.first_correct ? "right" : "wrong"} -> ${l.final_correct ? "right" : "wrong"}`;
      if (!tty) {
        io.stderr.write(
          `eval: ${prefix}${p.done}/${p.total} ${l.strategy} ${l.item_id} ${outcome} ${l.tokens.total} tokens\n`,
        );
        return;
      }
      const width = 30;
      const filled = Math.round((p.done / Math.max(1, p.total)) * width);
      const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
      io.stderr.write(
        `\r\x1b[2K${prefix}${bar} ${p.done}/${p.total}  ${(p.elapsedMs / 1000).toFixed(1)}s  ${l.strategy} ${l.item_id}: ${outcome}`,
      );
      drawn = true;
    },
    end() {
      if (drawn) io.stderr.write("\n");
      drawn = false;
    },
  };
}
