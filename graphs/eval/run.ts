// Runs a dataset through refinement strategies: every (item, strategy) pair on a fresh thread of
// the refine graph, graded afterwards by a check the run never saw, recorded as soon as it ends.
// Pairs already recorded under the same configuration are skipped, so a stopped evaluation
// resumes where it stopped.
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { DEFAULT_LIMITS, type RefineOptions } from "../../core/config.ts";
import { isRefineryError, RefineryError } from "../../core/errors.ts";
import {
  createSimulatedModel,
  DEFAULT_SIMULATED_OPTIONS,
  SIMULATED_MODEL_NOTICE,
  type SimulatedModelOptions,
} from "../../core/models/simulated.ts";
import { DEFAULT_PROMPTS } from "../../core/prompts.ts";
import { usageByNodeOf, type RefineStateType, type Strategy } from "../../core/state.ts";
import { runVerifiers, type Verifier } from "../../core/verifiers/index.ts";
import type { Engine } from "../engine.ts";
import { BASELINES, baselineOptions, graphStrategy, type EvalStrategy } from "./baselines.ts";
import { graderFor, referenceText, type Dataset, type DatasetItem } from "./dataset.ts";
import {
  judgeAnswers,
  summarizeJudge,
  type EvalJudge,
  type JudgeStrategySummary,
} from "./judge.ts";
import { provenanceOf, type Provenance } from "./provenance.ts";
import { runPool } from "./pool.ts";
import { configHash, recordKey, type ItemRecord, type RecordSink } from "./records.ts";
import {
  compareWithSelfRefine,
  summarize,
  type Comparison,
  type StrategySummary,
} from "./summary.ts";

export const STRATEGIES = [
  "vanilla",
  "self-refine",
  "proactive",
  "pasr",
] as const satisfies readonly Strategy[];
/** What an evaluation can compare: the graph's strategies and the papers' baselines. */
export const EVAL_STRATEGIES = [
  ...STRATEGIES,
  ...BASELINES,
] as const satisfies readonly EvalStrategy[];
export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_MAX_ITERATIONS = 3;

export interface RefineInput {
  task: string;
  context: string;
  options: RefineOptions;
}

/** Runs one refinement to its end on a fresh thread; the eval never needs more of the engine. */
export interface RefineRunner {
  run(input: RefineInput, threadId: string, signal?: AbortSignal): Promise<RefineStateType>;
  /** Throws the refine options' configuration error (bad verifier, bad model spec), if any. */
  validate?(options: RefineOptions): void;
}

/** The part of a compiled refine graph (or the server's registry entry) the runner uses. */
export interface RefineGraphLike {
  stream(input: unknown, options?: Record<string, unknown>): Promise<AsyncIterable<unknown>>;
  getState(config: Record<string, unknown>): Promise<{ values: unknown }>;
}

export function graphRunner(
  graph: RefineGraphLike,
  deps: {
    validate?: (options: RefineOptions) => void;
    /** Removes an evaluated thread's checkpoints: eval threads are not kept. */
    deleteThread?: (threadId: string) => Promise<void>;
  } = {},
): RefineRunner {
  return {
    validate: deps.validate,
    async run(input, threadId, signal) {
      const maxIterations = input.options.maxIterations ?? DEFAULT_MAX_ITERATIONS;
      const config = {
        configurable: { thread_id: threadId },
        recursionLimit: 6 * maxIterations + 10,
      };
      try {
        const stream = await graph.stream(input, { ...config, streamMode: "values", signal });
        for await (const _ of stream) signal?.throwIfAborted();
        return (await graph.getState(config)).values as RefineStateType;
      } finally {
        await deps.deleteThread?.(threadId);
      }
    },
  };
}

/** A runner on an engine of this process (the CLI opens one with `memory: true`). */
export function engineRunner(engine: Engine): RefineRunner {
  return graphRunner(engine.graph as unknown as RefineGraphLike, {
    validate: (options) => void engine.resolve(undefined, options),
    deleteThread: (id) => engine.checkpointer.saver.deleteThread(id),
  });
}

/** The simulation's parameters an evaluation may set (the answer key is built from the dataset). */
export type SimulatedParams = Omit<SimulatedModelOptions, "seed" | "answerKey" | "oracle">;

/** Which model answers: the offline simulation (seeded) or the configured endpoint. */
export type ModelChoice =
  | {
      kind: "simulated";
      seed: number;
      /** Parameters of the simulation other than the defaults (docs/simulated-model.md). */
      options?: SimulatedParams;
    }
  /** The configured endpoint; `model` is unknown when the server's default model is used. */
  | {
      kind: "configured";
      model?: string;
      baseURL?: string;
      decoding?: Decoding;
      /** A model of the same endpoint for some strategies (e.g. a larger critic-reviser). */
      perStrategy?: Partial<Record<EvalStrategy, string>>;
    };

/** Decoding parameters sent to the endpoint with every request of the evaluation. */
export interface Decoding {
  temperature?: number;
  maxTokens?: number;
  seed?: number;
  n?: number;
}

export interface EvalProgress {
  total: number;
  done: number;
  /** Pairs found in the records and not run again. */
  skipped: number;
  elapsedMs: number;
  last?: Pick<ItemRecord, "strategy" | "item_id" | "first_correct" | "final_correct" | "tokens">;
}

export interface EvaluationOptions {
  datasets: Dataset[];
  strategies: EvalStrategy[];
  runner: RefineRunner;
  sink: RecordSink;
  model: ModelChoice;
  concurrency?: number;
  /** Evaluate only the first N items (of all datasets, in order). */
  limit?: number;
  maxIterations?: number;
  signal?: AbortSignal;
  onProgress?: (progress: EvalProgress) => void;
  /** An LLM judge grading every answer a second time (reported apart, marked as model-graded). */
  judge?: EvalJudge;
}

export interface EvalSummary {
  /** "simulated" when the offline simulated model produced any result. */
  label: "simulated" | "model";
  simulated: boolean;
  notice?: string;
  status: "complete" | "interrupted";
  datasets: { name: string; sha256: string; items: number }[];
  items: number;
  model: Record<string, unknown>;
  max_iterations: number;
  concurrency: number;
  strategies: StrategySummary[];
  /** Each strategy against self-refine (when self-refine was evaluated). */
  comparisons: Comparison[];
  /** Pairs run by this invocation, and pairs taken from earlier records. */
  evaluated: number;
  skipped: number;
  elapsed_ms: number;
  generated_at: string;
  /** The code version and the prompts each strategy used (hash and text). */
  provenance?: Provenance;
  /** Present when an LLM judge graded the answers too: not deterministic, reported apart. */
  judge?: { model: Record<string, unknown>; strategies: JudgeStrategySummary[] };
}

export interface EvalResult {
  summary: EvalSummary;
  /** The records the summary was computed from: one per selected (strategy, item). */
  records: ItemRecord[];
}

/**
 * What the simulated model "knows": the reference of every item whose answer it cannot compute
 * itself (word problems, extraction). Items with explicit arithmetic are left out, so it works
 * them step by step. This is the simulation's stand-in for a model's knowledge; it reaches the
 * model only, never the run's verifiers.
 */
export function simulatedKnowledge(items: readonly DatasetItem[]): Record<string, string> {
  const probe = createSimulatedModel();
  const key: Record<string, string> = {};
  for (const item of items) {
    const reference = referenceText(item.reference);
    const computed =
      typeof item.reference === "object" ? undefined : probe.expectedAnswer(item.task);
    const same =
      computed !== undefined &&
      (Number.isFinite(Number(computed)) && Number.isFinite(Number(reference))
        ? Math.abs(Number(computed) - Number(reference)) <=
          1e-6 * Math.max(1, Math.abs(Number(reference)))
        : computed.trim().toLowerCase() === reference.trim().toLowerCase());
    if (!same) key[item.task] = reference;
  }
  return key;
}

function modelIdentity(choice: ModelChoice): Record<string, unknown> {
  return choice.kind === "simulated"
    ? { provider: "simulated", ...DEFAULT_SIMULATED_OPTIONS, ...choice.options, seed: choice.seed }
    : {
        provider: "openai",
        ...(choice.model ? { model: choice.model } : {}),
        ...(choice.baseURL ? { baseURL: choice.baseURL } : {}),
        ...(choice.decoding && Object.keys(choice.decoding).length > 0
          ? { decoding: choice.decoding }
          : {}),
        ...(choice.perStrategy && Object.keys(choice.perStrategy).length > 0
          ? { per_strategy: choice.perStrategy }
          : {}),
      };
}

/** The model one strategy runs on: its own under `perStrategy`, else the evaluation's. */
function modelOf(choice: ModelChoice, strategy: EvalStrategy): ModelChoice {
  if (choice.kind !== "configured") return choice;
  const { perStrategy, ...rest } = choice;
  const own = perStrategy?.[strategy];
  return own === undefined ? rest : { ...rest, model: own };
}

export async function runEvaluation(opts: EvaluationOptions): Promise<EvalResult> {
  const started = performance.now();
  const maxIterations = opts.maxIterations ?? DEFAULT_MAX_ITERATIONS;
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  if (opts.strategies.length === 0) {
    throw new RefineryError("invalid_input", "no strategy to evaluate", {
      field: "strategies",
      fix: `name one or more of ${EVAL_STRATEGIES.join(", ")}`,
    });
  }
  const allItems = opts.datasets.flatMap((d) => d.items);
  const items = opts.limit === undefined ? allItems : allItems.slice(0, opts.limit);
  const model = modelIdentity(opts.model);
  const datasets = opts.datasets.map((d) => ({ name: d.name, sha256: d.sha256 }));
  // Prompts and default limits are part of what is measured: changing them changes the config.
  const engine = { prompts: DEFAULT_PROMPTS, limits: DEFAULT_LIMITS };
  const hashes = new Map(
    opts.strategies.map((strategy) => [
      strategy,
      configHash({
        datasets,
        strategy,
        maxIterations,
        model: modelIdentity(modelOf(opts.model, strategy)),
        engine,
        ...(opts.judge
          ? { judge: { ...opts.judge.model, rubric: opts.judge.rubric ?? null } }
          : {}),
      }),
    ]),
  );
  const models: RefineOptions["models"] =
    opts.model.kind === "simulated"
      ? {
          default: {
            provider: "simulated",
            simulated: {
              ...opts.model.options,
              seed: opts.model.seed,
              answerKey: simulatedKnowledge(allItems),
            },
          },
        }
      : undefined;
  const modelsOf = (strategy: EvalStrategy) =>
    models ?? configuredModels(modelOf(opts.model, strategy));
  const optionsFor = (item: DatasetItem, strategy: EvalStrategy): RefineOptions =>
    baselineOptions(strategy, item, {
      strategy: graphStrategy(strategy),
      maxIterations,
      verifiers: item.verifiers,
      ...(modelsOf(strategy) ? { models: modelsOf(strategy) } : {}),
      // Items are independent: no lessons from earlier runs (or other items) in any prompt.
      memory: { enabled: false },
    });

  // Configuration errors surface before anything runs, named by item.
  for (const item of items) {
    try {
      for (const strategy of opts.strategies) opts.runner.validate?.(optionsFor(item, strategy));
    } catch (err) {
      if (!isRefineryError(err)) throw err;
      throw new RefineryError(err.code, err.message, {
        field: `${item.where}${err.field ? `: ${err.field}` : ""}`,
        fix: err.fix,
      });
    }
  }

  const existing = opts.sink.existing();
  for (const record of existing) {
    const hash = hashes.get(record.strategy);
    if (hash !== undefined && record.config !== hash) {
      throw new RefineryError(
        "conflict",
        `the results already hold ${record.strategy} records from a different configuration (dataset, model, seed or max iterations changed)`,
        {
          field: "--out",
          fix: "use another --out directory, or pass --fresh to discard the old records",
        },
      );
    }
  }
  const done = new Map<string, ItemRecord>();
  for (const r of existing) {
    if (hashes.get(r.strategy) === r.config)
      done.set(recordKey(r.strategy, r.dataset, r.item_id), r);
  }

  // Item-major order: an interrupted evaluation has comparable partial results per strategy.
  // Graders are built once per item (a JSON Schema compiles in milliseconds, not microseconds).
  const graders = new Map<DatasetItem, Verifier[]>();
  const gradersOf = (item: DatasetItem) => {
    let built = graders.get(item);
    if (!built) graders.set(item, (built = graderFor(item)));
    return built;
  };

  const pairs = items.flatMap((item) => opts.strategies.map((strategy) => ({ item, strategy })));
  const todo = pairs.filter((p) => !done.has(recordKey(p.strategy, p.item.dataset, p.item.id)));
  const skipped = pairs.length - todo.length;
  let finished = skipped;
  const progress = (last?: ItemRecord) =>
    opts.onProgress?.({
      total: pairs.length,
      done: finished,
      skipped,
      elapsedMs: Math.round(performance.now() - started),
      ...(last
        ? {
            last: {
              strategy: last.strategy,
              item_id: last.item_id,
              first_correct: last.first_correct,
              final_correct: last.final_correct,
              tokens: last.tokens,
            },
          }
        : {}),
    });
  progress();

  let interrupted = false;
  try {
    await runPool(
      todo,
      concurrency,
      async ({ item, strategy }) => {
        // One signal per run: the graph adds abort listeners step by step, and they must not
        // pile up on the evaluation's signal for its whole length.
        const run = new AbortController();
        setMaxListeners(0, run.signal);
        const forward = () => run.abort(opts.signal?.reason);
        opts.signal?.addEventListener("abort", forward, { once: true });
        let record: ItemRecord;
        try {
          record = await evaluateItem(item, strategy, {
            runner: opts.runner,
            options: optionsFor(item, strategy),
            config: hashes.get(strategy) as string,
            graders: gradersOf(item),
            judge: opts.judge,
            signal: run.signal,
          });
        } finally {
          opts.signal?.removeEventListener("abort", forward);
        }
        opts.sink.append(record);
        done.set(recordKey(strategy, item.dataset, item.id), record);
        finished++;
        progress(record);
      },
      opts.signal,
    );
  } catch (err) {
    if (!opts.signal?.aborted) throw err;
    interrupted = true;
  }

  const records = pairs
    .map((p) => done.get(recordKey(p.strategy, p.item.dataset, p.item.id)))
    .filter((r): r is ItemRecord => r !== undefined);
  const strategies = opts.strategies.map((s) => summarize(s, records));
  const simulated = records.some((r) => r.simulated) || opts.model.kind === "simulated";
  const summary: EvalSummary = {
    label: simulated ? "simulated" : "model",
    simulated,
    ...(simulated ? { notice: SIMULATED_MODEL_NOTICE } : {}),
    status: interrupted ? "interrupted" : "complete",
    datasets: opts.datasets.map((d) => ({
      name: d.name,
      sha256: d.sha256,
      items: items.filter((i) => i.dataset === d.name).length,
    })),
    items: items.length,
    model,
    max_iterations: maxIterations,
    concurrency,
    strategies,
    comparisons: compareWithSelfRefine(strategies),
    evaluated: finished - skipped,
    skipped,
    elapsed_ms: Math.round(performance.now() - started),
    generated_at: new Date().toISOString(),
    provenance: provenanceOf(opts.strategies, opts.judge !== undefined),
    ...(opts.judge
      ? { judge: { model: opts.judge.model, strategies: summarizeJudge(opts.strategies, records) } }
      : {}),
  };
  return { summary, records };
}

interface ItemContext {
  runner: RefineRunner;
  options: RefineOptions;
  config: string;
  /** The item's grading verifiers (default: built from the item). */
  graders?: Verifier[];
  judge?: EvalJudge;
  signal?: AbortSignal;
}

/** The `models` option of runs on the configured endpoint: the model name and decoding. */
function configuredModels(choice: ModelChoice): RefineOptions["models"] {
  if (choice.kind !== "configured") return undefined;
  const spec = { ...(choice.model ? { model: choice.model } : {}), ...choice.decoding };
  return Object.keys(spec).length > 0 ? { default: spec } : undefined;
}

/** Runs one item with one strategy and grades its first draft and its final answer. */
export async function evaluateItem(
  item: DatasetItem,
  strategy: EvalStrategy,
  ctx: ItemContext,
): Promise<ItemRecord> {
  const threadId = `eval-${ctx.config}-${strategy}-${randomUUID()}`;
  const started = performance.now();
  let state: RefineStateType;
  try {
    state = await ctx.runner.run(
      { task: item.task, context: item.context, options: ctx.options },
      threadId,
      ctx.signal,
    );
  } catch (err) {
    if (ctx.signal?.aborted) throw err;
    const where = `${item.where} (${strategy})`;
    if (isRefineryError(err)) {
      throw new RefineryError(err.code, err.message, { field: where, fix: err.fix, cause: err });
    }
    throw new RefineryError("internal", (err as Error)?.message ?? String(err), {
      field: where,
      cause: err,
    });
  }
  const wallMs = Math.round(performance.now() - started);
  const graders = ctx.graders ?? graderFor(item);
  const first = state.drafts[0]?.text ?? "";
  const final = state.answer ?? state.best?.text ?? state.drafts.at(-1)?.text ?? "";
  const graded = await gradeAnswers(item, graders, first, final);
  const judged = ctx.judge && (await judgeAnswers(ctx.judge, item, first, final, ctx.signal));
  const tokensByNode: Record<string, number> = {};
  for (const [node, usage] of Object.entries(usageByNodeOf(state)))
    tokensByNode[node] = usage.totalTokens;
  return {
    config: ctx.config,
    strategy,
    dataset: item.dataset,
    item_id: item.id,
    first_correct: graded.first,
    final_correct: graded.final,
    tokens: {
      prompt: state.usage.promptTokens,
      completion: state.usage.completionTokens,
      total: state.usage.totalTokens,
    },
    tokens_by_node: tokensByNode,
    calls: state.usage.calls,
    refinements: state.drafts.filter((d) => d.source === "revise").length,
    critiques: state.critiques.length,
    stop_reason: state.stopReason,
    wall_ms: wallMs,
    simulated: state.simulated,
    ...(state.error ? { error: state.error.message } : {}),
    ...(state.pasr
      ? {
          in_generation_refinements: state.pasr.refinements.length,
          pasr_fallback: state.pasr.fallback,
        }
      : {}),
    first_answer: first,
    final_answer: final,
    final_score: graded.finalScore,
    ...(judged ? { judge: judged } : {}),
  };
}

/** Grades a first draft and a final answer with an item's grading check (no model involved). */
export async function gradeAnswers(
  item: DatasetItem,
  graders: readonly Verifier[],
  first: string,
  final: string,
): Promise<{ first: boolean; final: boolean; finalScore: number }> {
  const grade = (text: string) =>
    runVerifiers(graders, text, { task: item.task, context: item.context, iteration: 0 });
  const firstVerdicts = await grade(first);
  const finalVerdicts = final === first ? firstVerdicts : await grade(final);
  return {
    first: firstVerdicts.every((v) => v.pass),
    final: finalVerdicts.every((v) => v.pass),
    finalScore: Math.min(...finalVerdicts.map((v) => v.score), 1),
  };
}
