// /eval: evaluation jobs of dataset items through refinement strategies on the server's refine
// graph and model. POST /eval starts one (checked against the job limits, run in an eval thread:
// eval-jobs.ts), GET /eval lists the caller's, GET /eval/:id reads one with its progress and
// records, POST /eval/:id/cancel stops it, GET /eval/:id/chart.svg draws it. Jobs live in the
// database: any process sharing it serves every route. A caller sees only the jobs of its own
// partition (authOf(req)); another partition's job is a 404.
import type { Request } from "express";
import { Router } from "express";
import { z } from "zod";
import { RefineryError } from "../../core/errors.ts";
import {
  DEFAULT_CONCURRENCY,
  graphRunner,
  renderChartSvg,
  STRATEGIES,
  type RefineGraphLike,
} from "../../graphs/eval/index.ts";
import { authOf } from "../auth/request.ts";
import type { AppDeps } from "../context.ts";
import { EVAL_LIMITS, EvalJobs, RECORDS_PAGE, type EvalOwner } from "../eval-jobs.ts";
import { InlineEvalTarget } from "../eval-inline.ts";
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

export const EvalListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).default(0),
});

export const EvalGetQuery = z.object({
  records_offset: z.coerce.number().int().min(0).default(0),
  /** 0: no records (a cheap progress poll). */
  records_limit: z.coerce.number().int().min(0).max(RECORDS_PAGE.max).default(RECORDS_PAGE.default),
});

/** The caller, once its role allows `operation` (starting and cancelling jobs is running graphs). */
function ownerOf(req: Request, operation: "read" | "run"): EvalOwner {
  const auth = authOf(req);
  auth.check(operation);
  return { partition: auth.partition, identity: auth.user?.identity ?? null };
}

export function evalRoutes(deps: AppDeps): Router {
  const r = Router();
  // start.ts passes the server's job table; an app built without one runs jobs in this thread.
  const jobs =
    deps.evalJobs ??
    new EvalJobs({
      target: new InlineEvalTarget(async () =>
        graphRunner((await deps.registry.get("refine")) as unknown as RefineGraphLike, {
          validate: (options) => deps.validateConfig?.("refine", { configurable: options }),
          deleteThread: (id) => deps.checkpoints.deleteThread(id),
        }),
      ),
      log: deps.log,
      ...EVAL_LIMITS,
    });

  r.post("/eval", async (req, res) => {
    const owner = ownerOf(req, "run");
    const body = parseBody(EvalCreate, req.body);
    const job = await jobs.create(owner, body);
    res.setHeader("Location", `/eval/${job.eval_id}`);
    sendJson(res, 202, job);
  });

  r.get("/eval", async (req, res) => {
    const page = parseBody(EvalListQuery, req.query);
    sendJson(res, 200, await jobs.list(ownerOf(req, "read").partition, page));
  });

  r.get("/eval/:id", async (req, res) => {
    const q = parseBody(EvalGetQuery, req.query);
    const page = { offset: q.records_offset, limit: q.records_limit };
    sendJson(res, 200, await jobs.get(ownerOf(req, "read").partition, req.params.id, page));
  });

  r.post("/eval/:id/cancel", async (req, res) => {
    sendJson(res, 200, await jobs.cancel(ownerOf(req, "run").partition, req.params.id));
  });

  r.get("/eval/:id/chart.svg", async (req, res) => {
    const job = await jobs.get(ownerOf(req, "read").partition, req.params.id, {
      offset: 0,
      limit: 0,
    });
    if (!job.summary) {
      throw new RefineryError(
        "conflict",
        `evaluation ${job.eval_id} is ${job.status} and has no summary`,
        {
          field: "eval_id",
          fix:
            job.status === "running"
              ? "the chart exists once the evaluation has finished; poll GET /eval/{id}"
              : "this evaluation ended without a summary (see its error); start it again",
        },
      );
    }
    res.type("image/svg+xml").send(renderChartSvg(job.summary));
  });

  return r;
}
