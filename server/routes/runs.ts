// Runs: background, streamed (SSE) and waited runs on threads, stateless runs, list/get/
// delete, join, join-stream with Last-Event-ID replay, and cancel.
import { randomUUID } from "node:crypto";
import { Router, type Request, type Response } from "express";
import {
  ApprovalDecisionSchema,
  isApprovalRequest,
  normalizeDecision,
} from "../../core/approval.ts";
import { isAuthMatching } from "../../core/auth-filters.ts";
import { fromZodError, RefineryError } from "../../core/errors.ts";
import type { Access, Metadata, Run, RunKwargs, Thread } from "../../core/storage/types.ts";
import { authOf, OPEN_AUTH, type RequestAuth } from "../auth/request.ts";
import {
  accessFor,
  assistantIdOf,
  checkRecursionLimit,
  findAssistant,
  findThread,
  isUuid,
  type AppDeps,
} from "../context.ts";
import { notFound, parseBody, sendJson, writeJsonWithKeepAlive, writeSse } from "../http.ts";
import {
  CancelQuery,
  FeedbackBody,
  JoinStreamQuery,
  RunCreate,
  RunListQuery,
  type RunCreateBody,
} from "../schemas.ts";
import { publicRun, publicValues } from "../redact.ts";
import { LIB_MODE } from "../run-runner.ts";
import type { RunEnd, RunEvent } from "../stream-hub.ts";

const TERMINAL = new Set(["success", "error", "timeout", "interrupted"]);

/**
 * When the thread waits on a human approval, the resume value must be a valid decision: a 422
 * that says what is expected, and the thread stays interrupted.
 */
function checkApprovalDecision(thread: Thread, resume: unknown): void {
  const pending = Object.values(thread.interrupts ?? {})
    .flat()
    .some((i) => isApprovalRequest((i as { value?: unknown }).value));
  if (!pending) return;
  const parsed = ApprovalDecisionSchema.safeParse(normalizeDecision(resume));
  if (!parsed.success) throw fromZodError(parsed.error, "command.resume");
}

/** Keys of `configurable` that only the server sets: whatever a client sends there is dropped. */
const SERVER_KEYS = [
  "langgraph_auth_user",
  "langgraph_auth_user_id",
  "langgraph_auth_permissions",
  "refinery_partition",
];

/** A command as stored and run: without the `lg_name` tag that `Command.toJSON()` adds. */
function withoutName(command: NonNullable<RunCreateBody["command"]>): RunKwargs["command"] {
  const { lg_name: _name, ...rest } = command;
  return rest;
}

export function runRoutes(deps: AppDeps): Router {
  const r = Router();
  const { storage, executor, hub } = deps;
  const keepAliveMs = deps.keepAliveMs ?? 15_000;

  /** Streams of stateless runs outlive their thread: who may still join them (bounded). */
  const statelessOwners = new Map<string, Metadata>();
  const MAX_STATELESS_OWNERS = 10_000;

  async function createRun(
    auth: RequestAuth,
    threadId: string | undefined,
    raw: unknown,
  ): Promise<{ run: Run; body: RunCreateBody }> {
    const parsed = parseBody(RunCreate, raw);
    // With a command the input is ignored, as the LangGraph server does: front ends send
    // `input: {}` alongside `command: {resume}` when a reviewer answers.
    const body = parsed.command ? { ...parsed, input: undefined } : parsed;
    checkRecursionLimit(deps, body.config?.recursion_limit);
    const stateless = threadId === undefined;
    if (threadId && !isUuid(threadId))
      throw new RefineryError("invalid_input", "thread_id must be a UUID", { field: "thread_id" });
    // Answering an approval is a reviewer's act; anything else starts work.
    const operation =
      body.command?.resume !== undefined &&
      (body.input === undefined || body.input === null) &&
      body.command.update === undefined &&
      body.command.goto === undefined
        ? "review"
        : "run";
    // The caller's own assistants and the server's; another tenant's is "not found".
    const assistantAccess = await accessForAuth(
      auth,
      "assistants:read",
      { assistant_id: assistantIdOf(deps, body.assistant_id) ?? body.assistant_id },
      operation,
      true,
    );
    const assistant = await findAssistant(deps, body.assistant_id, assistantAccess);
    const runId = randomUUID();
    const userConfigurable = { ...(body.config?.configurable ?? {}) };
    for (const key of SERVER_KEYS) delete userConfigurable[key];
    const stamped: Record<string, unknown> = auth.user
      ? {
          langgraph_auth_user: auth.user,
          langgraph_auth_user_id: auth.user.identity,
          langgraph_auth_permissions: auth.scopes,
        }
      : {};
    if (auth.partition) stamped.refinery_partition = auth.partition;
    // What a LangGraph auth handler sees for threads:create_run (it may stamp the metadata).
    const value: Record<string, unknown> = {
      thread_id: threadId,
      assistant_id: assistant.assistant_id,
      run_id: runId,
      status: "pending",
      metadata: { ...(body.metadata ?? {}) },
      prevent_insert_if_inflight: (body.multitask_strategy ?? "reject") === "reject",
      multitask_strategy: body.multitask_strategy ?? "reject",
      if_not_exists: body.if_not_exists ?? "reject",
      after_seconds: body.after_seconds ?? null,
      kwargs: {
        input: body.input ?? null,
        command: body.command ?? null,
        config: { ...(body.config ?? {}), configurable: { ...userConfigurable, ...stamped } },
        stream_mode: body.stream_mode ?? ["values"],
      },
    };
    const filters = await auth.authorize("threads:create_run", value, operation);
    const runMetadata = (value.metadata ?? {}) as Metadata;
    let thread = threadId ? await storage.threads.get(threadId) : undefined;
    // Another tenant's thread answers as a missing one.
    if (thread && !isAuthMatching(thread.metadata, filters)) thread = undefined;
    if (
      threadId &&
      !thread &&
      (body.if_not_exists !== "create" || (await storage.threads.get(threadId)))
    ) {
      throw new RefineryError("not_found", "Thread not found", {
        field: "thread_id",
        fix: 'create it first, or pass if_not_exists: "create"',
      });
    }
    // A new thread (stateless, or if_not_exists "create") is only created once the request is
    // valid, so a refused request leaves nothing behind.
    const targetId = thread?.thread_id ?? threadId ?? randomUUID();

    const strategy = body.multitask_strategy ?? "reject";
    if (
      body.command?.resume !== undefined &&
      thread?.status !== "interrupted" &&
      (!thread || (await storage.runs.inflight(thread.thread_id)).length === 0)
    ) {
      throw new RefineryError("conflict", "Thread is not interrupted: there is nothing to resume", {
        field: "command.resume",
        fix: "send command.resume only to a thread whose status is interrupted (see GET /threads/{id})",
      });
    }
    if (body.command?.resume !== undefined && thread)
      checkApprovalDecision(thread, body.command.resume);
    const configurable: Record<string, unknown> = {
      ...(assistant.config.configurable ?? {}),
      // As in the reference server, a thread keeps the configurable its runs were given, so a
      // resume (or any later run) keeps the verifiers, limits and approval policy it started with.
      ...(thread ? await stickyConfigurable(thread.thread_id) : {}),
      ...userConfigurable,
      ...(body.checkpoint ?? {}),
      ...(body.checkpoint_id ? { checkpoint_id: body.checkpoint_id } : {}),
      graph_id: assistant.graph_id,
      assistant_id: assistant.assistant_id,
      thread_id: targetId,
    };
    delete configurable.thread_id_override;
    for (const key of SERVER_KEYS) delete configurable[key];
    Object.assign(configurable, stamped);
    deps.validateConfig?.(assistant.graph_id, { configurable });
    if (body.input !== undefined && body.input !== null)
      deps.validateInput?.(assistant.graph_id, body.input);
    await checkTargets(assistant.graph_id, body, thread, configurable);
    // A new thread belongs to the caller: it gets the run's metadata as the handler left it
    // (with built-in keys, the tenant), as the LangGraph server does.
    const isNew = stateless; // "raise" below: a stateless run's thread is always its own
    thread ??= await storage.threads.create(
      { thread_id: targetId, metadata: { ...runMetadata } },
      stateless ? "raise" : "do_nothing",
    );
    if (!isAuthMatching(thread.metadata, filters)) {
      throw new RefineryError("not_found", "Thread not found", { field: "thread_id" });
    }
    const kwargs: RunKwargs = {
      input: body.input ?? null,
      command: body.command ? withoutName(body.command) : null,
      config: {
        ...(assistant.config.tags || body.config?.tags
          ? { tags: [...(assistant.config.tags ?? []), ...(body.config?.tags ?? [])] }
          : {}),
        ...((body.config?.recursion_limit ?? assistant.config.recursion_limit)
          ? { recursion_limit: body.config?.recursion_limit ?? assistant.config.recursion_limit }
          : {}),
        configurable,
        metadata: { ...(assistant.metadata ?? {}), ...runMetadata },
      },
      ...(body.context !== undefined ? { context: body.context } : {}),
      stream_mode:
        body.stream_mode === undefined || body.stream_mode === null
          ? ["values"]
          : Array.isArray(body.stream_mode)
            ? body.stream_mode
            : [body.stream_mode],
      stream_subgraphs: Boolean(body.stream_subgraphs),
      ...(body.interrupt_before ? { interrupt_before: body.interrupt_before } : {}),
      ...(body.interrupt_after ? { interrupt_after: body.interrupt_after } : {}),
      ...(body.on_disconnect ? { on_disconnect: body.on_disconnect } : {}),
      ...(body.webhook ? { webhook: body.webhook } : {}),
      temporary: stateless && (body.on_completion ?? "delete") === "delete",
      ...(body.feedback_keys
        ? {
            feedback_keys: Array.isArray(body.feedback_keys)
              ? body.feedback_keys
              : [body.feedback_keys],
          }
        : {}),
    };
    const limit = auth.partition ? deps.security?.partitionRunLimit : undefined;
    const result = await storage.runs.create(
      {
        run_id: runId,
        thread_id: thread.thread_id,
        assistant_id: assistant.assistant_id,
        graph_id: assistant.graph_id,
        metadata: runMetadata,
        multitask_strategy: strategy,
        kwargs,
        partition: auth.partition,
        ...(body.after_seconds
          ? { not_before: new Date(Date.now() + body.after_seconds * 1000).toISOString() }
          : {}),
      },
      {
        rejectIfInflight: strategy === "reject",
        // A resume is of the interrupt the caller saw: if another request resumed it first (even
        // one that already finished), this one is refused, checked in the same transaction.
        requireInterrupted: body.command?.resume !== undefined && strategy === "reject",
        ...(limit ? { partitionLimit: limit } : {}),
      },
    );
    if (!result.created && result.reason === "partition_limit") {
      if (isNew) await storage.threads.delete(thread.thread_id);
      throw new RefineryError(
        "rate_limited",
        `your tenant already has ${limit} runs pending or running`,
        {
          fix: "wait for some to finish (or cancel them); the operator sets the cap with REFINERY_TENANT_MAX_RUNS",
          retryAfterMs: 1000,
        },
      );
    }
    if (
      !result.created &&
      (result.reason === "not_interrupted" ||
        (result.reason === "inflight" && body.command?.resume !== undefined))
    ) {
      throw new RefineryError(
        "conflict",
        "This interrupt is already being resumed by another request",
        {
          field: "command.resume",
          fix: "reload the thread: someone else answered first",
        },
      );
    }
    if (!result.created) {
      throw new RefineryError(
        "thread_busy",
        "Thread is already running a task. Wait for it to finish or choose a different multitask strategy.",
        {
          field: "multitask_strategy",
          fix: 'wait for the run to finish, or send multitask_strategy "enqueue", "interrupt" or "rollback"',
        },
      );
    }
    if ((strategy === "interrupt" || strategy === "rollback") && result.inflight.length > 0) {
      await Promise.all(result.inflight.map((run) => executor.cancel(run, strategy)));
    }
    executor.notify();
    if (stateless) {
      statelessOwners.set(result.run.run_id, thread.metadata);
      for (const id of statelessOwners.keys()) {
        if (statelessOwners.size <= MAX_STATELESS_OWNERS) break;
        statelessOwners.delete(id);
      }
    }
    return { run: result.run, body };
  }

  async function accessForAuth(
    auth: RequestAuth,
    event: Parameters<RequestAuth["authorize"]>[0],
    value: Record<string, unknown>,
    operation: Parameters<RequestAuth["authorize"]>[2],
    system = false,
  ): Promise<Access> {
    const filters = await auth.authorize(event, value, operation);
    return { ...(filters ? { filters } : {}), ...(system ? { system: true } : {}) };
  }

  async function stickyConfigurable(threadId: string): Promise<Record<string, unknown>> {
    const [last] = await storage.runs.list(threadId, { limit: 1 });
    const out = { ...(last?.kwargs.config.configurable ?? {}) };
    for (const key of [
      "checkpoint_id",
      "checkpoint_ns",
      "checkpoint_map",
      "run_id",
      "thread_id",
      "graph_id",
      "assistant_id",
      ...SERVER_KEYS,
    ])
      delete out[key];
    return out;
  }

  /** A run must name a checkpoint and nodes that exist: a 404 / 422 now, not a failed run later. */
  async function checkTargets(
    graphId: string,
    body: RunCreateBody,
    thread: Thread | undefined,
    configurable: Record<string, unknown>,
  ): Promise<void> {
    const checkpointId = body.checkpoint_id ?? body.checkpoint?.checkpoint_id;
    if (checkpointId) {
      const found = thread
        ? await deps.checkpointer.getTuple({
            configurable: {
              thread_id: thread.thread_id,
              checkpoint_ns: body.checkpoint?.checkpoint_ns ?? "",
              checkpoint_id: checkpointId,
            },
          })
        : undefined;
      if (!found) {
        throw new RefineryError("not_found", "Checkpoint not found", {
          field: body.checkpoint_id ? "checkpoint_id" : "checkpoint.checkpoint_id",
          fix: `the thread has no checkpoint ${checkpointId}; see GET /threads/{id}/history`,
        });
      }
    }
    const lists = {
      interrupt_before: body.interrupt_before,
      interrupt_after: body.interrupt_after,
    };
    if (!Array.isArray(lists.interrupt_before) && !Array.isArray(lists.interrupt_after)) return;
    const graph = await deps.registry.get(graphId, { configurable });
    const nodes = Object.keys(graph.nodes ?? {}).filter((n) => !n.startsWith("__"));
    if (nodes.length === 0) return;
    for (const [field, names] of Object.entries(lists)) {
      if (!Array.isArray(names)) continue;
      names.forEach((name, i) => {
        if (!nodes.includes(name)) {
          throw new RefineryError("invalid_input", `graph "${graphId}" has no node "${name}"`, {
            field: `${field}[${i}]`,
            fix: `use "*" or node names: ${nodes.join(", ")}`,
          });
        }
      });
    }
  }

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
      headers: {
        "Content-Location": location(run, stateless),
        Location: `${location(run, stateless)}/stream`,
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
    await stream(req, res, run, false, body.on_disconnect === "cancel");
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
    await writeJsonWithKeepAlive(res, outcome(run), {});
  });

  r.get("/threads/:thread_id/runs/:run_id/stream", async (req, res) => {
    const run = await findRun(req, "read");
    const q = parseBody(JoinStreamQuery, req.query);
    await stream(req, res, run, false, q.cancel_on_disconnect, modeFilter(q.stream_mode));
  });

  r.post("/threads/:thread_id/runs/:run_id/cancel", async (req, res) => {
    const q = parseBody(CancelQuery, req.query);
    const run = await findRun(req, "update", {
      action: q.action,
      metadata: { run_ids: [req.params.run_id], status: "pending" },
    });
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
    await stream(req, res, run, true, body.on_disconnect === "cancel");
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
    const owner = statelessOwners.get(runId);
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
function modeFilter(modes: string | string[] | undefined): Set<string> | undefined {
  if (modes === undefined) return undefined;
  const list = Array.isArray(modes) ? modes : [modes];
  return new Set(list.map((m) => LIB_MODE[m] ?? m));
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
    const mode = e.event.split("|")[0]!;
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
