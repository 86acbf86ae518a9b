// One evaluation job as the server runs it (server/eval-thread.ts in an eval thread, or
// server/eval-inline.ts in the server thread): the request's items and options in, records and
// progress out as they happen, the summary at the end. Knows no thread and no HTTP.
import { RefineryError } from "../../core/errors.ts";
import { DEFAULT_SIMULATED_OPTIONS } from "../../core/models/simulated.ts";
import type { Strategy } from "../../core/state.ts";
import { parseDatasetItems } from "./dataset.ts";
import type { ItemRecord } from "./records.ts";
import { replicateModels, runReplicated, seedOf } from "./replicates.ts";
import type { EvalSummary, ModelChoice, RefineRunner } from "./run.ts";

/** What a job evaluates: the body of `POST /eval` once parsed (items are checked by the job). */
export interface EvalJobSpec {
  /** Dataset items as JSON values; errors name `items[i]`. */
  items: unknown[];
  name: string;
  strategies: Strategy[];
  concurrency: number;
  limit?: number;
  max_iterations?: number;
  /** The offline simulated model with this seed (implies offline). */
  seed?: number;
  offline?: boolean;
  /** Simulated only: seeds seed, seed+1, ... pooled. */
  replicates: number;
}

export interface EvalJobProgress {
  /** Item runs of all replicates. */
  total: number;
  done: number;
  /** Runs taken from records the job already had (a resumed job). */
  skipped: number;
  elapsed_ms: number;
}

/** A replicate's key in `existing`: its seed, or "" for the configured model. */
export const seedKey = (seed: number | undefined): string =>
  seed === undefined ? "" : String(seed);

/** The model of each replicate; throws (field `replicates`) when replicates ask for a real model. */
export function evalJobModels(spec: EvalJobSpec): ModelChoice[] {
  const offline = spec.offline === true || spec.seed !== undefined;
  return replicateModels(
    offline
      ? { kind: "simulated", seed: spec.seed ?? DEFAULT_SIMULATED_OPTIONS.seed }
      : { kind: "configured" },
    spec.replicates,
    {
      field: "replicates",
      fix: 'add "seed": N (or "offline": true), or drop "replicates" for the configured model',
    },
  );
}

/** Graph runs a job asks for: items (after `limit`) × strategies × replicates. */
export function evalJobSize(spec: EvalJobSpec): number {
  const items = Math.min(spec.items.length, spec.limit ?? Number.POSITIVE_INFINITY);
  return items * spec.strategies.length * spec.replicates;
}

/**
 * Refuses a job larger than `maxRuns` graph runs, naming the input to change (`setting` is where
 * the limit comes from, for the message).
 */
export function checkEvalJobSize(spec: EvalJobSpec, maxRuns: number, setting: string): void {
  const size = evalJobSize(spec);
  if (size <= maxRuns) return;
  const items = Math.min(spec.items.length, spec.limit ?? Number.POSITIVE_INFINITY);
  const perItem = spec.strategies.length * spec.replicates;
  const message =
    `this evaluation would make ${size} graph runs (${items} item(s) × ${spec.strategies.length} ` +
    `strateg${spec.strategies.length === 1 ? "y" : "ies"} × ${spec.replicates} replicate(s)); ` +
    `this server allows at most ${maxRuns} per job (${setting})`;
  if (perItem > maxRuns) {
    const replicates = Math.floor(maxRuns / spec.strategies.length);
    throw new RefineryError("invalid_input", message, {
      field: spec.replicates > 1 && replicates >= 1 ? "replicates" : "strategies",
      fix:
        replicates >= 1
          ? `with ${spec.strategies.length} strateg${spec.strategies.length === 1 ? "y" : "ies"}, ask for at most ${replicates} replicate(s) per job`
          : `name at most ${maxRuns} strateg${maxRuns === 1 ? "y" : "ies"} per job`,
    });
  }
  const most = Math.floor(maxRuns / perItem);
  const byLimit = spec.limit !== undefined && spec.limit < spec.items.length;
  throw new RefineryError("invalid_input", message, {
    field: byLimit ? "limit" : "items",
    fix:
      `send at most ${most} item(s) per job (split the dataset into several jobs, or set ` +
      `"limit": ${most})${spec.replicates > 1 || spec.strategies.length > 1 ? ", or ask for fewer replicates or strategies" : ""}`,
  });
}

export interface EvalJobHooks {
  /** Records the job already holds per replicate (`seedKey`): a resumed job does not run them again. */
  existing?: ReadonlyMap<string, readonly ItemRecord[]>;
  signal?: AbortSignal;
  /** The items and their options are valid: the job is running (configuration errors come before). */
  onAccepted?(): void;
  /** A new record, as soon as its run ends (`seed`: its replicate, undefined for a real model). */
  onRecord?(record: ItemRecord, seed: number | undefined): void;
  onProgress?(progress: EvalJobProgress): void;
}

/**
 * Runs a job to its end (or to the abort of `signal`: the summary is then "interrupted", computed
 * from the records so far). Throws a RefineryError naming `items[i]` for a bad item.
 */
export async function runEvalJob(
  spec: EvalJobSpec,
  runner: RefineRunner,
  hooks: EvalJobHooks = {},
): Promise<EvalSummary> {
  const dataset = parseDatasetItems(spec.items, spec.name);
  const models = evalJobModels(spec);
  let accepted = false;
  // Progress over all replicates: what the finished ones did, plus the running one's.
  let current: EvalJobProgress = { total: 0, done: 0, skipped: 0, elapsed_ms: 0 };
  let before = { seed: seedOf(models[0] as ModelChoice), done: 0, skipped: 0, elapsed: 0 };
  const result = await runReplicated({
    datasets: [dataset],
    strategies: spec.strategies,
    runner,
    models,
    sinkFor: (seed) => ({
      existing: () => [...(hooks.existing?.get(seedKey(seed)) ?? [])],
      append: (record) => hooks.onRecord?.(record, seed),
    }),
    concurrency: spec.concurrency,
    limit: spec.limit,
    maxIterations: spec.max_iterations,
    signal: hooks.signal,
    onProgress: (p, seed) => {
      // The first progress comes once every item's options were checked.
      if (!accepted) {
        accepted = true;
        hooks.onAccepted?.();
      }
      if (seed !== before.seed) {
        before = {
          seed,
          done: current.done,
          skipped: current.skipped,
          elapsed: current.elapsed_ms,
        };
      }
      current = {
        total: p.total * models.length,
        done: before.done + p.done,
        skipped: before.skipped + p.skipped,
        elapsed_ms: before.elapsed + p.elapsedMs,
      };
      hooks.onProgress?.(current);
    },
  });
  return result.summary;
}
