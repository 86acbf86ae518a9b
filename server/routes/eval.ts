// /eval: starts an evaluation of dataset items through refinement strategies as a background job
// on the server's own refine graph and model (POST /eval), reports progress and results
// (GET /eval/:id) and the chart (GET /eval/:id/chart.svg). Jobs live in memory: for resumable
// evaluations use `refinery eval`, whose records file survives a restart.
import { randomUUID } from "node:crypto";
import { Router } from "express";
import { z } from "zod";
import { RefineryError } from "../../core/errors.ts";
import {
  DEFAULT_CONCURRENCY,
  graphRunner,
  parseDatasetItems,
  renderChartSvg,
  replicateModels,
  runReplicated,
  seedOf,
  STRATEGIES,
  type EvalProgress,
  type EvalSummary,
  type ItemRecord,
  type ModelChoice,
  type RefineGraphLike,
} from "../../graphs/eval/index.ts";
import { DEFAULT_SIMULATED_OPTIONS } from "../../core/models/simulated.ts";
import type { AppDeps } from "../context.ts";
import { parseBody, sendJson } from "../http.ts";

export const EvalCreate = z.strictObject({
  items: z
    .array(z.unknown(), { error: "items must be a list of dataset items" })
    .min(1, "items must hold at least one item")
    .max(5000, "at most 5000 items per evaluation"),
  name: z
    .string()
    .regex(/^[\w.-]{1,100}$/, "name may contain letters, digits, _ . - (at most 100)")
    .default("dataset"),
  strategies: z
    .array(z.enum(STRATEGIES))
    .min(1, "name at least one strategy")
    .default(["vanilla", "self-refine", "proactive"]),
  concurrency: z.number().int().min(1).max(64).default(DEFAULT_CONCURRENCY),
  limit: z.number().int().positive().optional(),
  max_iterations: z.number().int().min(1).max(50).optional(),
  /** Use the offline simulated model with this seed (implies offline). */
  seed: z
    .number()
    .int()
    .min(Number.MIN_SAFE_INTEGER)
    .max(Number.MAX_SAFE_INTEGER - 100)
    .optional(),
  offline: z.boolean().optional(),
  /** Simulated only: seeds seed, seed+1, ... pooled (as `refinery eval --replicates`). */
  replicates: z.number().int().min(1).max(100).default(1),
});

interface EvalJob {
  eval_id: string;
  status: "running" | "succeeded" | "failed" | "interrupted";
  created_at: string;
  updated_at: string;
  progress: { total: number; done: number; skipped: number; elapsed_ms: number };
  summary?: EvalSummary;
  records: ItemRecord[];
  error?: Record<string, unknown>;
}

const MAX_JOBS = 100;

export function evalRoutes(deps: AppDeps): Router {
  const r = Router();
  const jobs = new Map<string, EvalJob>();

  r.post("/eval", async (req, res) => {
    const body = parseBody(EvalCreate, req.body);
    const dataset = parseDatasetItems(body.items, body.name);
    const offline = body.offline === true || body.seed !== undefined;
    const models = replicateModels(
      offline
        ? { kind: "simulated", seed: body.seed ?? DEFAULT_SIMULATED_OPTIONS.seed }
        : { kind: "configured" },
      body.replicates,
      {
        field: "replicates",
        fix: 'add "seed": N (or "offline": true), or drop "replicates" for the configured model',
      },
    );
    const graph = (await deps.registry.get("refine")) as unknown as RefineGraphLike;
    const now = new Date().toISOString();
    const job: EvalJob = {
      eval_id: randomUUID(),
      status: "running",
      created_at: now,
      updated_at: now,
      progress: { total: 0, done: 0, skipped: 0, elapsed_ms: 0 },
      records: [],
    };
    // Progress over all replicates: what the finished ones did, plus the running one's.
    let before = { seed: seedOf(models[0] as ModelChoice), done: 0, elapsed: 0 };
    const started = runReplicated({
      datasets: [dataset],
      strategies: body.strategies,
      runner: graphRunner(graph, {
        validate: (options) => deps.validateConfig?.("refine", { configurable: options }),
        deleteThread: (id) => deps.checkpoints.deleteThread(id),
      }),
      models,
      // Each replicate has its own records (their configurations differ); the job lists all.
      sinkFor: () => ({ existing: () => [], append: (r) => void job.records.push(r) }),
      concurrency: body.concurrency,
      limit: body.limit,
      maxIterations: body.max_iterations,
      onProgress: (p: EvalProgress, seed) => {
        if (seed !== before.seed)
          before = { seed, done: job.progress.done, elapsed: job.progress.elapsed_ms };
        job.progress = {
          total: p.total * models.length,
          done: before.done + p.done,
          skipped: p.skipped,
          elapsed_ms: before.elapsed + p.elapsedMs,
        };
        job.updated_at = new Date().toISOString();
      },
    });
    // Configuration errors (bad verifier in an item) are the client's: answer them now.
    const early = await Promise.race([
      started.then(
        () => undefined,
        (err: unknown) => err,
      ),
      new Promise((resolve) => setImmediate(resolve, undefined)),
    ]);
    if (
      early instanceof RefineryError &&
      (early.code === "invalid_input" || early.code === "invalid_config")
    ) {
      throw early;
    }
    started.then(
      (result) => {
        job.summary = result.summary;
        job.status = result.summary.status === "interrupted" ? "interrupted" : "succeeded";
        job.updated_at = new Date().toISOString();
      },
      (err: unknown) => {
        job.status = "failed";
        job.error =
          err instanceof RefineryError
            ? err.toJSON()
            : { error: "internal", message: (err as Error)?.message ?? String(err) };
        job.updated_at = new Date().toISOString();
        deps.log("warn", "evaluation failed", { eval_id: job.eval_id, ...job.error });
      },
    );
    jobs.set(job.eval_id, job);
    for (const id of jobs.keys()) {
      if (jobs.size <= MAX_JOBS) break;
      if (jobs.get(id)?.status !== "running") jobs.delete(id);
    }
    res.setHeader("Location", `/eval/${job.eval_id}`);
    sendJson(res, 202, job);
  });

  const find = (id: string): EvalJob => {
    const job = jobs.get(id);
    if (!job) {
      throw new RefineryError("not_found", "Evaluation not found", {
        field: "eval_id",
        fix: `no evaluation with id ${id} (jobs are kept in memory until the server restarts)`,
      });
    }
    return job;
  };

  r.get("/eval/:id", (req, res) => sendJson(res, 200, find(req.params.id)));

  r.get("/eval/:id/chart.svg", (req, res) => {
    const job = find(req.params.id);
    if (!job.summary) {
      throw new RefineryError("conflict", `evaluation ${job.eval_id} is ${job.status}`, {
        fix: "the chart exists once the evaluation has finished; poll GET /eval/{id}",
      });
    }
    res.type("image/svg+xml").send(renderChartSvg(job.summary));
  });

  return r;
}
