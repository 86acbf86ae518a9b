// Runs: background, streamed (SSE) and waited runs on threads, stateless runs, list/get/
// delete, join, join-stream with Last-Event-ID replay, and cancel.
import { Router, type Request, type Response } from "express";
import {
  ApprovalDecisionSchema,
  isApprovalRequest,
  normalizeDecision,
} from "../../core/approval.ts";
import { isAuthMatching } from "../../core/auth-filters.ts";
import { RefineryError } from "../../core/errors.ts";
import type { Run } from "../../core/storage/types.ts";
import { authOf, OPEN_AUTH } from "../auth/request.ts";
import { accessFor, findThread, isUuid, type AppDeps } from "../context.ts";
import { notFound, parseBody, sendJson, writeJsonWithKeepAlive, writeSse } from "../http.ts";
import {
  CancelQuery,
  FeedbackBody,
  JoinStreamQuery,
  RunListQuery,
  ThreadStreamQuery,
} from "../schemas.ts";
import { publicRun, publicValues } from "../redact.ts";
import { LIB_MODE } from "../run-runner.ts";
import { createRunService } from "../run-service.ts";
import type { RunEnd, RunEvent } from "../stream-hub.ts";

const TERMINAL = new Set(["success", "error", "timeout", "interrupted"]);

export function runRoutes(deps: AppDeps): Router {
  const r = Router();
  const { storage, executor, hub } = deps;
  const keepAliveMs = deps.keepAliveMs ?? 15_000;

  const runs = createRunService(deps);
  const createRun = runs.create;

  const location = (run: Run, stateless: boolean) =>
    stateless ? `/runs/${run.run_id}` : `/threads/${run.thread_id}/runs/${run.run_id}`;

  /** Final values of a run: what /wait and /join answer. */
  async function outcome(run: Run): Promise<unknown> {
    let end: RunEnd | undefined = hub.ended(run.run_id);
    const current = await storage.runs.get(run.run_id);
    if (!end && current && !TERMINAL.has(current.status)) end = await hub.waitForEnd(run.run_id);
    const failed = (status?: string) => status === "error" || status === "timeout";
    const latest =
      failed(end?.status) || failed(current?.status) ? (end?.error ?? current?.error) : undefined;
    if (latest) return { __error__: latest };
    if (end?.values !== undefined) return publicValues(end.values);
    const thread = await storage.threads.get(run.thread_id);
    // A run that stopped at an interrupt answers it, as the LangGraph server does (issue 22).
    if (thread?.status === "interrupted" && current?.status === "success")
      return publicValues({ __interrupt__: Object.values(thread.interrupts).flat() });
    return publicValues(thread?.values ?? null);
  }

  function events(run: Run, req: Request, signal: AbortSignal): AsyncIterable<RunEvent> {
    const lastEventId = req.header("Last-Event-ID") || undefined;
    return hub.subscribe(run.run_id, lastEventId, signal);
  }

  async function stream(
    req: Request,
    res: Response,
    run: Run,
    stateless: boolean,
    cancelOnDisconnect: boolean,
    modes?: Set<string>,
    resumable = false,
  ) {
    const abort = new AbortController();
    res.on("close", () => {
      abort.abort();
      if (cancelOnDisconnect && !res.writableFinished)
        void executor.cancel(run, "interrupt").catch(() => undefined);
    });
    const current = await storage.runs.get(run.run_id);
    const finishedElsewhere = current && TERMINAL.has(current.status) && !hub.ended(run.run_id);
    const source: AsyncIterable<RunEvent> = finishedElsewhere
      ? finishedEvents(current, deps)
      : events(run, req, abort.signal);
    await writeSse(res, onlyModes(source, modes), {
      keepAliveMs,
      // Location (where the SDK reconnects with Last-Event-ID) only for a stream the client
      // asked to be resumable: the SDK asks it whether the run is still active after the stream
      // ends, one more GET per run, and the LangGraph server sends none (issue 22).
      headers: {
        "Content-Location": location(run, stateless),
        ...(resumable ? { Location: `${location(run, stateless)}/stream` } : {}),
      },
    });
  }

  // Runs on a thread
  r.post("/threads/:thread_id/runs", async (req, res) => {
    const { run } = await createRun(authOf(req), req.params.thread_id, req.body);
    res.setHeader("Content-Location", location(run, false));
    sendJson(res, 200, publicRun(run));
  });

  r.post("/threads/:thread_id/runs/stream", async (req, res) => {
    const { run, body } = await createRun(authOf(req), req.params.thread_id, req.body);
    await stream(req, res, run, false, body.on_disconnect === "cancel", undefined, resumable(body));
  });

  r.post("/threads/:thread_id/runs/wait", async (req, res) => {
    const { run, body } = await createRun(authOf(req), req.params.thread_id, req.body);
    if (body.on_disconnect === "cancel") {
      res.on("close", () => {
        if (!res.writableFinished) void executor.cancel(run, "interrupt").catch(() => undefined);
      });
    }
    await writeJsonWithKeepAlive(res, outcome(run), { "Content-Location": location(run, false) });
  });

  r.get("/threads/:thread_id/runs", async (req, res) => {
    const q = parseBody(RunListQuery, req.query);
    const access = await accessFor(
      req,
      "threads:search",
      { thread_id: req.params.thread_id, metadata: {}, status: q.status },
      "read",
    );
    const thread = await findThread(deps, req.params.thread_id, access);
    sendJson(res, 200, (await storage.runs.list(thread.thread_id, q)).map(publicRun));
  });

  /** A run of a thread the caller reaches with `action`; the same 404 as a missing one. */
  const findRun = async (
    req: Request,
    action: "read" | "update" | "delete",
    extra: Record<string, unknown> = {},
  ) => {
    const threadId = req.params.thread_id as string;
    const runId = req.params.run_id as string;
    const access = await accessFor(
      req,
      `threads:${action}`,
      { thread_id: threadId, ...extra },
      action === "read" ? "read" : action === "update" ? "run" : "write",
    );
    await findThread(deps, threadId, access);
    const run = isUuid(runId) ? await storage.runs.get(runId, threadId) : undefined;
    if (!run) throw notFound("Run", runId);
    return run;
  };

  r.get("/threads/:thread_id/runs/:run_id", async (req, res) => {
    sendJson(res, 200, publicRun(await findRun(req, "read")));
  });

  r.delete("/threads/:thread_id/runs/:run_id", async (req, res) => {
    const run = await findRun(req, "delete", { run_id: req.params.run_id });
    if (!TERMINAL.has(run.status)) {
      throw new RefineryError("conflict", "Run is still in flight", {
        field: "run_id",
        fix: "cancel it first (POST .../cancel), then delete it",
      });
    }
    await storage.runs.delete(run.run_id, run.thread_id);
    res.status(204).end();
  });

  r.get("/threads/:thread_id/runs/:run_id/join", async (req, res) => {
    const run = await findRun(req, "read");
    // Joining a run that already stopped at an interrupt answers the thread's values, as the
    // LangGraph server does (it has no live stream left to read the interrupt chunk from);
    // joined while it runs, the interrupt chunk (`__interrupt__`), as /wait answers.
    const thread = TERMINAL.has(run.status) ? await storage.threads.get(run.thread_id) : undefined;
    const result =
      thread?.status === "interrupted" && run.status === "success"
        ? Promise.resolve(publicValues(thread.values))
        : outcome(run);
    await writeJsonWithKeepAlive(res, result, {});
  });

  r.get("/threads/:thread_id/runs/:run_id/stream", async (req, res) => {
    const run = await findRun(req, "read");
    const q = parseBody(JoinStreamQuery, req.query);
    await stream(req, res, run, false, q.cancel_on_disconnect, modeFilter(q.stream_mode));
  });

  // The thread's stream: the events of each run on the thread, one after the other, until the
  // client leaves or the thread is deleted. Event ids are "<run_id>:<run's event id>" (and
  // "<run_id>:done"), so Last-Event-ID resumes inside a run or after it.
  r.get("/threads/:thread_id/stream", async (req, res) => {
    const access = await accessFor(
      req,
      "threads:read",
      { thread_id: req.params.thread_id },
      "read",
    );
    const thread = await findThread(deps, req.params.thread_id, access);
    const q = parseBody(ThreadStreamQuery, req.query, "query");
    const modes = new Set(
      q.stream_mode === undefined
        ? ["run_modes"]
        : Array.isArray(q.stream_mode)
          ? q.stream_mode
          : [q.stream_mode],
    );
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    const lastEventId = req.header("Last-Event-ID") || undefined;
    await writeSse(res, threadEvents(thread.thread_id, access, modes, lastEventId, abort.signal), {
      keepAliveMs,
      headers: { "Content-Location": `/threads/${thread.thread_id}/stream` },
    });
  });

  /**
   * How often a thread stream looks for the thread's next run (and whether it still exists) when
   * nothing wakes it sooner: a run queued on the thread, here or (through signals) in another
   * process, wakes it at once (executor.onQueued).
   */
  const THREAD_STREAM_POLL_MS = 1000;

  async function* threadEvents(
    threadId: string,
    access: Awaited<ReturnType<typeof accessFor>>,
    modes: Set<string>,
    lastEventId: string | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<RunEvent> {
    const keep = (event: string): boolean => {
      if (modes.has("run_modes")) return true;
      const name = event.split("|")[0]!;
      return (
        (modes.has("lifecycle") && name === "metadata") ||
        (modes.has("state_update") && name === "values")
      );
    };
    const resume = /^([0-9a-f-]{36}):(.+)$/i.exec(lastEventId ?? "");
    // Runs already handled: everything the thread had before the stream (or before the run
    // Last-Event-ID names) except what is still in flight.
    const handled = new Set<string>();
    const todo: { run: Run; after?: string }[] = [];
    const initial = (await storage.runs.list(threadId, { limit: 100 })).reverse();
    const resumeAt = resume ? initial.findIndex((run) => run.run_id === resume[1]) : -1;
    initial.forEach((run, i) => {
      if (resumeAt >= 0 ? i < resumeAt : TERMINAL.has(run.status)) handled.add(run.run_id);
      else todo.push(i === resumeAt ? { run, after: resume![2] } : { run });
    });
    // A run queued on the thread (here, or in another process through signals) ends the wait
    // for the next look at its runs; one queued while this stream was busy skips that wait.
    // Woken from the start: a run queued between the list above and this listener is seen.
    let woken = true;
    let wakeUp: (() => void) | undefined;
    const stopWaking = executor.onQueued((queuedOn) => {
      if (queuedOn !== undefined && queuedOn !== threadId) return;
      woken = true;
      wakeUp?.();
    });
    try {
      while (!signal.aborted) {
        for (let next = todo.shift(); next && !signal.aborted; next = todo.shift()) {
          const { run, after } = next;
          handled.add(run.run_id);
          if (after === "done") continue;
          const current = await storage.runs.get(run.run_id, threadId);
          if (!current) continue;
          const gone = TERMINAL.has(current.status) && !hub.ended(run.run_id);
          const source = gone
            ? finishedEvents(current, deps)
            : hub.subscribe(run.run_id, after, signal);
          for await (const e of source) {
            if (keep(e.event)) yield { ...e, id: `${run.run_id}:${e.id}` };
          }
          if (signal.aborted) return;
          const ended = await storage.runs.get(run.run_id, threadId);
          if (modes.has("run_modes") || modes.has("lifecycle"))
            yield {
              id: `${run.run_id}:done`,
              event: "run_done",
              data: { run_id: run.run_id, status: ended?.status ?? hub.ended(run.run_id)?.status },
            };
        }
        if (!woken) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, THREAD_STREAM_POLL_MS);
            signal.addEventListener("abort", done, { once: true });
            wakeUp = done;
            function done() {
              clearTimeout(timer);
              signal.removeEventListener("abort", done);
              wakeUp = undefined;
              resolve();
            }
          });
        }
        woken = false;
        if (signal.aborted) return;
        // The thread is gone (deleted, or no longer the caller's): the stream ends.
        if (!(await storage.threads.get(threadId, access))) return;
        const recent = (await storage.runs.list(threadId, { limit: 20 })).reverse();
        for (const run of recent) if (!handled.has(run.run_id)) todo.push({ run });
        // Forget ids older than what a list can return again.
        if (handled.size > 1000) for (const id of [...handled].slice(0, 500)) handled.delete(id);
      }
    } finally {
      stopWaking();
    }
  }

  r.post("/threads/:thread_id/runs/:run_id/cancel", async (req, res) => {
    const q = parseBody(CancelQuery, req.query);
    const run = await findRun(req, "update", {
      action: q.action,
      metadata: { run_ids: [req.params.run_id], status: "pending" },
    });
    // Cancelling a run that has ended changes nothing: accepted, as the LangGraph server does
    // (issue 22). With wait, the caller is told nothing was cancelled or rolled back (409).
    if (TERMINAL.has(run.status) && !q.wait) {
      res.status(202).end();
      return;
    }
    if (TERMINAL.has(run.status)) {
      throw new RefineryError("conflict", `Run is already ${run.status}`, {
        field: "run_id",
        fix: "only pending or running runs can be cancelled",
      });
    }
    const cancelling = executor.cancel(run, q.action);
    if (q.wait) {
      if (!(await cancelling)) {
        // It ended before the cancel reached it: nothing was cancelled or rolled back.
        const ended = await storage.runs.get(run.run_id, run.thread_id);
        throw new RefineryError("conflict", `Run is already ${ended?.status ?? "gone"}`, {
          field: "run_id",
          fix: "it finished before the cancel reached it; its result stands (delete the run, or update the thread's state, to undo it)",
        });
      }
      res.status(204).end();
    } else {
      void cancelling.catch((err) =>
        deps.log("warn", "cancel failed", { run_id: run.run_id, message: (err as Error).message }),
      );
      res.status(202).end();
    }
  });

  // Human-in-the-loop: the queue of pending approvals, a friendly way to answer one, and live
  // feedback for a running or waiting thread.
  r.get("/approvals", async (req, res) => {
    const limit = Math.min(Math.max(Number(req.query.limit ?? 100) || 100, 1), 1000);
    const access = await accessFor(
      req,
      "threads:search",
      { status: "interrupted", limit, offset: 0 },
      "read",
    );
    const threads = await storage.threads.search({
      ...access,
      status: "interrupted",
      limit,
      sort_by: "updated_at",
      sort_order: "asc",
    });
    const out = [];
    for (const t of threads) {
      for (const [taskId, list] of Object.entries(t.interrupts ?? {})) {
        for (const i of list as { id?: string; value?: unknown }[]) {
          if (!isApprovalRequest(i.value)) continue;
          const values = (t.values ?? {}) as { task?: unknown };
          out.push({
            thread_id: t.thread_id,
            task_id: taskId,
            interrupt_id: i.id ?? null,
            task: typeof values.task === "string" ? values.task : null,
            request: publicValues(i.value),
            updated_at: t.updated_at,
            metadata: t.metadata,
          });
        }
      }
    }
    sendJson(res, 200, out);
  });

  /** Resumes a thread waiting on an approval; `auth` is the reviewer's (the server's own for deadlines). */
  const resumeApproval = async (threadId: string, decision: unknown, auth = OPEN_AUTH) => {
    const thread = await findThread(deps, threadId);
    const assistantId =
      typeof thread.metadata.assistant_id === "string"
        ? thread.metadata.assistant_id
        : String(thread.metadata.graph_id);
    return (
      await createRun(auth, thread.thread_id, {
        assistant_id: assistantId,
        command: { resume: decision },
        stream_mode: ["values", "updates", "custom"],
      })
    ).run;
  };
  if (deps.hooks)
    deps.hooks.resumeApproval = (threadId, decision) => resumeApproval(threadId, decision);

  r.post("/threads/:thread_id/approval", async (req, res) => {
    const access = await accessFor(
      req,
      "threads:read",
      { thread_id: req.params.thread_id },
      "review",
    );
    const thread = await findThread(deps, req.params.thread_id, access);
    const pending = Object.values(thread.interrupts ?? {})
      .flat()
      .some((i) => isApprovalRequest((i as { value?: unknown }).value));
    if (!pending || thread.status !== "interrupted") {
      throw new RefineryError("conflict", "Thread is not waiting for an approval", {
        field: "thread_id",
        fix: "GET /approvals lists the threads that are; someone may have answered already",
      });
    }
    const decision = parseBody(ApprovalDecisionSchema, normalizeDecision(req.body));
    const run = await resumeApproval(thread.thread_id, decision, authOf(req));
    res.setHeader("Content-Location", location(run, false));
    sendJson(res, 200, publicRun(run));
  });

  r.post("/threads/:thread_id/feedback", async (req, res) => {
    const access = await accessFor(
      req,
      "threads:update",
      { thread_id: req.params.thread_id },
      "review",
    );
    const thread = await findThread(deps, req.params.thread_id, access);
    const { text } = parseBody(FeedbackBody, req.body);
    if (!deps.inbox)
      throw new RefineryError("internal", "live feedback is not available on this server");
    const feedback = await deps.inbox.add(thread.thread_id, text);
    sendJson(res, 200, {
      thread_id: thread.thread_id,
      feedback,
      pending: await deps.inbox.pending(thread.thread_id),
    });
  });

  // Stateless runs: a temporary thread, deleted when the run ends unless on_completion "keep".
  r.post("/runs", async (req, res) => {
    const { run } = await createRun(authOf(req), undefined, req.body);
    res.setHeader("Content-Location", location(run, true));
    sendJson(res, 200, publicRun(run));
  });

  r.post("/runs/stream", async (req, res) => {
    const { run, body } = await createRun(authOf(req), undefined, req.body);
    await stream(req, res, run, true, body.on_disconnect === "cancel", undefined, resumable(body));
  });

  // Where a stateless stream's Location points (the SDK reconnects there with Last-Event-ID).
  // A finished temporary run is deleted with its thread, but its events stay in the hub.
  r.get("/runs/:run_id/stream", async (req, res) => {
    const runId = req.params.run_id;
    const q = parseBody(JoinStreamQuery, req.query);
    const modes = modeFilter(q.stream_mode);
    const access = await accessFor(req, "threads:read", { run_id: runId }, "read");
    const run = isUuid(runId) ? await storage.runs.get(runId) : undefined;
    const thread = run ? await storage.threads.get(run.thread_id, access) : undefined;
    if (run && thread) {
      await stream(req, res, run, true, q.cancel_on_disconnect, modes);
      return;
    }
    // The temporary thread is gone with its run: the stream's owner is remembered.
    const owner = runs.statelessOwner(runId);
    if (!isUuid(runId) || !hub.ended(runId) || !owner || !isAuthMatching(owner, access.filters))
      throw notFound("Run", runId);
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    const lastEventId = req.header("Last-Event-ID") || undefined;
    await writeSse(res, onlyModes(hub.subscribe(runId, lastEventId, abort.signal), modes), {
      keepAliveMs,
      headers: { "Content-Location": `/runs/${runId}` },
    });
  });

  r.post("/runs/wait", async (req, res) => {
    const { run } = await createRun(authOf(req), undefined, req.body);
    await writeJsonWithKeepAlive(res, outcome(run), { "Content-Location": location(run, true) });
  });

  return r;
}

/** The SSE event names a join's `stream_mode` keeps (events are named by the library mode). */
/** A stream the client asked to resume after a dropped connection (the SDK's streamResumable). */
const resumable = (body: { stream_resumable?: boolean | null }) => body.stream_resumable === true;

function modeFilter(modes: string | string[] | undefined): Set<string> | undefined {
  if (modes === undefined) return undefined;
  const list = Array.isArray(modes) ? modes : [modes];
  // The older `messages` mode's events are messages/partial, messages/complete, messages/metadata.
  return new Set(list.map((m) => (m === "messages" ? "messages/" : (LIB_MODE[m] ?? m))));
}

/** Events of the given modes (with or without a subgraph namespace), metadata and errors. */
function onlyModes(
  source: AsyncIterable<RunEvent>,
  modes: Set<string> | undefined,
): AsyncIterable<RunEvent> {
  return modes ? filterModes(source, modes) : source;
}

async function* filterModes(
  source: AsyncIterable<RunEvent>,
  modes: Set<string>,
): AsyncGenerator<RunEvent> {
  for await (const e of source) {
    const name = e.event.split("|")[0]!;
    const mode = name.startsWith("messages/") ? "messages/" : name;
    if (mode === "metadata" || mode === "error" || modes.has(mode)) yield e;
  }
}

/** For a run that ended before this process could replay it: its outcome as events. */
async function* finishedEvents(run: Run, deps: AppDeps): AsyncGenerator<RunEvent> {
  yield {
    id: `${run.attempt}-0`,
    event: "metadata",
    data: { run_id: run.run_id, attempt: run.attempt },
  };
  if ((run.status === "error" || run.status === "timeout") && run.error) {
    yield { id: `${run.attempt}-1`, event: "error", data: run.error };
    return;
  }
  const thread = await deps.storage.threads.get(run.thread_id);
  if (thread?.values)
    yield { id: `${run.attempt}-1`, event: "values", data: publicValues(thread.values) };
}
