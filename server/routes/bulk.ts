// Bulk operations of the LangGraph server protocol: a batch of stateless runs, cancelling many
// runs at once, pruning threads, and the dev server's truncate (REFINERY_DEV=1 only). Each
// applies the caller's auth like its one-object counterpart: another tenant's runs and threads
// are neither touched nor counted.
import { Router, type Request } from "express";
import { z } from "zod";
import { RefineryError } from "../../core/errors.ts";
import type { Access, Run, Thread } from "../../core/storage/types.ts";
import { authOf } from "../auth/request.ts";
import { accessFor, type AppDeps } from "../context.ts";
import { notFound, parseBody, sendJson } from "../http.ts";
import { publicRun } from "../redact.ts";
import { createRunService } from "../run-service.ts";
import { RunCreate, Uuid } from "../schemas.ts";

/** The most runs one POST /runs/batch creates, and thread ids one prune takes. */
export const MAX_BATCH = 1000;

export const RunBatchBody = z
  .array(z.unknown(), { error: "the body must be a list of run creates" })
  .min(1, { error: "the batch is empty: send at least one run create" })
  .max(MAX_BATCH, { error: `at most ${MAX_BATCH} runs per batch` });

export const RunsCancelBody = z
  .object({
    thread_id: Uuid.optional(),
    run_ids: z.array(Uuid).max(MAX_BATCH).optional(),
    status: z
      .enum(["pending", "running", "all"], {
        error: 'status must be "pending", "running" or "all"',
      })
      .optional(),
  })
  .strip();

export const RunsCancelQuery = z.object({
  action: z
    .enum(["interrupt", "rollback"], { error: 'action must be "interrupt" or "rollback"' })
    .optional()
    .default("interrupt"),
});

export const ThreadPruneBody = z
  .object({
    thread_ids: z
      .array(Uuid, { error: "thread_ids is required: a list of thread ids" })
      .max(MAX_BATCH),
    strategy: z
      .enum(["delete", "keep_latest"], { error: 'strategy must be "delete" or "keep_latest"' })
      .optional()
      .default("delete"),
  })
  .strip();

export const TruncateBody = z
  .object({
    runs: z.boolean().optional(),
    threads: z.boolean().optional(),
    assistants: z.boolean().optional(),
    checkpointer: z.boolean().optional(),
    store: z.boolean().optional(),
  })
  .strict();

const INFLIGHT = new Set(["pending", "running"]);
const PAGE = 500;

export function bulkRoutes(deps: AppDeps): Router {
  const r = Router();
  const { storage, executor } = deps;
  const runs = createRunService(deps);

  /** Every thread `access` reaches, read page by page before any change. */
  async function allThreads(access: Access): Promise<Thread[]> {
    const out: Thread[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await storage.threads.search({
        ...access,
        limit: PAGE,
        offset,
        sort_by: "created_at",
        sort_order: "asc",
      });
      out.push(...page);
      if (page.length < PAGE) return out;
    }
  }

  const cancel = (run: Run, action: "interrupt" | "rollback") =>
    executor.cancel(run, action).catch((err) => {
      deps.log("warn", "cancel failed", { run_id: run.run_id, message: (err as Error).message });
      return false;
    });

  /** Deletes a thread as DELETE /threads/{id} does: its runs cancelled, its checkpoints gone. */
  async function deleteThread(thread: Thread, access?: Access): Promise<boolean> {
    for (const run of await storage.runs.inflight(thread.thread_id)) await cancel(run, "interrupt");
    await deps.checkpoints.deleteThread(thread.thread_id);
    return storage.threads.delete(thread.thread_id, access);
  }

  r.post("/runs/batch", async (req, res) => {
    const items = parseBody(RunBatchBody, req.body);
    // Every item is checked before any run is created: a bad one creates none.
    items.forEach((item, i) => parseBody(RunCreate, item, `[${i}]`));
    const auth = authOf(req);
    const created: Run[] = [];
    for (const item of items) created.push((await runs.create(auth, undefined, item)).run);
    sendJson(res, 200, created.map(publicRun));
  });

  r.post("/runs/cancel", async (req, res) => {
    const body = parseBody(RunsCancelBody, req.body);
    const { action } = parseBody(RunsCancelQuery, req.query);
    if (body.status && (body.thread_id || body.run_ids)) {
      throw new RefineryError(
        "invalid_input",
        "status cannot be combined with thread_id or run_ids",
        {
          field: "status",
          fix: "send either status, or thread_id with run_ids",
        },
      );
    }
    if (!body.status && (!body.thread_id || !body.run_ids?.length)) {
      throw new RefineryError(
        "invalid_input",
        "Either thread_id and run_ids, or status, must be given",
        {
          field: body.thread_id ? "run_ids" : "thread_id",
          fix: 'send {"thread_id": ..., "run_ids": [...]} or {"status": "pending" | "running" | "all"}',
        },
      );
    }
    const access = await accessFor(
      req,
      "threads:update",
      {
        ...(body.thread_id ? { thread_id: body.thread_id } : {}),
        action,
        metadata: { run_ids: body.run_ids ?? null, status: body.status ?? null },
      },
      "run",
    );
    const targets: Run[] = [];
    if (body.status) {
      // Only runs on threads the caller reaches (another tenant's are not touched).
      const reachable = new Map<string, boolean>();
      for (const run of await storage.runs.allInflight()) {
        if (body.status !== "all" && run.status !== body.status) continue;
        let ok = reachable.get(run.thread_id);
        if (ok === undefined) {
          ok = Boolean(await storage.threads.get(run.thread_id, access));
          reachable.set(run.thread_id, ok);
        }
        if (ok) targets.push(run);
      }
    } else {
      const threadId = body.thread_id!;
      if (!(await storage.threads.get(threadId, access))) throw notFound("Thread", threadId);
      for (const runId of new Set(body.run_ids)) {
        const run = await storage.runs.get(runId, threadId);
        if (!run) throw notFound("Run", runId);
        targets.push(run);
      }
    }
    await Promise.all(
      targets.filter((run) => INFLIGHT.has(run.status)).map((run) => cancel(run, action)),
    );
    res.status(204).end();
  });

  r.post("/threads/prune", async (req, res) => {
    const body = parseBody(ThreadPruneBody, req.body);
    const deleting = body.strategy === "delete";
    const access = await accessFor(
      req,
      deleting ? "threads:delete" : "threads:update",
      { thread_ids: body.thread_ids, strategy: body.strategy },
      "write",
    );
    let pruned = 0;
    for (const threadId of new Set(body.thread_ids)) {
      const thread = await storage.threads.get(threadId, access);
      if (!thread) continue;
      if (deleting) {
        if (await deleteThread(thread, access)) pruned++;
      } else if ((await storage.runs.inflight(threadId)).length === 0) {
        // A thread with a run in flight keeps its history: that run still writes to it.
        await deps.checkpoints.keepLatest(threadId);
        pruned++;
      }
    }
    sendJson(res, 200, { pruned_count: pruned });
  });

  // The dev server's reset between tests (langgraph dev's /internal/truncate). Absent, so a 404,
  // unless the server runs with REFINERY_DEV=1; admins only when auth is on.
  if (deps.dev) {
    r.post("/internal/truncate", async (req: Request, res) => {
      authOf(req).check("admin");
      const flags = parseBody(TruncateBody, req.body);
      if (flags.threads) {
        for (const thread of await allThreads({})) await deleteThread(thread);
      } else if (flags.runs) {
        for (const thread of await allThreads({})) {
          for (const run of await storage.runs.inflight(thread.thread_id))
            await cancel(run, "interrupt");
          for (
            let page;
            (page = await storage.runs.list(thread.thread_id, { limit: PAGE })).length;
          )
            for (const run of page) await storage.runs.delete(run.run_id, run.thread_id);
        }
      }
      if (flags.assistants) {
        // The server's own assistants (one per graph) stay, as in langgraph dev.
        for (let offset = 0; ;) {
          const page = await storage.assistants.search({ limit: PAGE, offset });
          const mine = page.filter((a) => a.metadata.created_by !== "system");
          for (const a of mine) await storage.assistants.delete(a.assistant_id);
          if (page.length < PAGE) break;
          offset += page.length - mine.length;
        }
      }
      if (flags.checkpointer) await deps.checkpoints.truncate();
      if (flags.store) await deps.store?.clear();
      sendJson(res, 200, { ok: true });
    });
  }

  return r;
}
