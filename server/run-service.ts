// The run service: creating a run (on a thread, or stateless) for a caller, with the caller's
// auth context. The one place that validates a run against its assistant, its thread and the
// graph, stamps the authenticated user into its config, applies the auth handler's filters to the
// thread it runs on, and inserts it under the multitask, resume and per-tenant rules. The runs
// routes and the approval endpoints (and the approval watcher, as the server) call it.
import { randomUUID } from "node:crypto";
import { interopSafeParse, isInteropZodSchema } from "@langchain/core/utils/types";
import { ApprovalDecisionSchema, isApprovalRequest, normalizeDecision } from "../core/approval.ts";
import { isAuthMatching } from "../core/auth-filters.ts";
import { fromZodError, RefineryError } from "../core/errors.ts";
import type { Access, Assistant, Metadata, Run, RunKwargs, Thread } from "../core/storage/types.ts";
import type { RequestAuth } from "./auth/request.ts";
import {
  assistantIdOf,
  checkRecursionLimit,
  findAssistant,
  isUuid,
  type AppDeps,
} from "./context.ts";
import { parseBody } from "./http.ts";
import { RunCreate, type RunCreateBody } from "./schemas.ts";
import { subgraphNodesOf } from "./subgraphs.ts";

export interface CreateRunOptions {
  /**
   * Stream modes the server itself asks for beyond those the API accepts in `stream_mode`: the
   * thread protocol's runs stream tool calls (`tools`, run-runner.ts's LIB_MODE).
   */
  internalStreamModes?: string[];
}

export interface RunService {
  /** Creates a run for `auth` on `threadId` (undefined: a stateless run on a new thread). */
  create(
    auth: RequestAuth,
    threadId: string | undefined,
    raw: unknown,
    options?: CreateRunOptions,
  ): Promise<{ run: Run; body: RunCreateBody }>;
  /**
   * Checks a run as `create` would (body, assistant, thread, auth handler, config, input,
   * nodes) and creates nothing: a cron's payload is checked so when it is made. Returns the
   * assistant the run would use.
   */
  check(
    auth: RequestAuth,
    threadId: string | undefined,
    raw: unknown,
  ): Promise<{ body: RunCreateBody; assistant: Assistant }>;
  /** The metadata of a stateless run's thread, kept for joining its stream once it is gone. */
  statelessOwner(runId: string): Metadata | undefined;
}

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
  "refinery_store_partition",
  // When the run must end (REFINERY_RUN_TIMEOUT_MS), set by the run runner for model calls.
  "refinery_run_deadline",
];

/** Keys of a run's `configurable` that belong to that run only, never to its thread. */
const PER_RUN_KEYS = [
  "checkpoint_id",
  "checkpoint_ns",
  "checkpoint_map",
  "run_id",
  "thread_id",
  "graph_id",
  "assistant_id",
];

/** A command as stored and run: without the `lg_name` tag that `Command.toJSON()` adds. */
function withoutName(command: NonNullable<RunCreateBody["command"]>): RunKwargs["command"] {
  const { lg_name: _name, ...rest } = command;
  return rest;
}

export function createRunService(deps: AppDeps): RunService {
  const { storage, executor } = deps;

  /** Streams of stateless runs outlive their thread: who may still join them (bounded). */
  const statelessOwners = new Map<string, Metadata>();
  const MAX_STATELESS_OWNERS = 10_000;

  async function createRun(
    auth: RequestAuth,
    threadId: string | undefined,
    raw: unknown,
    options?: CreateRunOptions,
  ): Promise<{ run: Run; body: RunCreateBody }> {
    const { run, body } = await createOrCheck(auth, threadId, raw, false, options);
    return { run: run!, body };
  }

  async function createOrCheck(
    auth: RequestAuth,
    threadId: string | undefined,
    raw: unknown,
    checkOnly: boolean,
    options?: CreateRunOptions,
  ): Promise<{ run?: Run; body: RunCreateBody; assistant: Assistant }> {
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
    if (auth.storePartition) stamped.refinery_store_partition = auth.storePartition;
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
    // As the LangGraph server's runs carry it (after validation: it is no refine option).
    configurable.run_id = runId;
    if (body.input !== undefined && body.input !== null)
      deps.validateInput?.(assistant.graph_id, body.input);
    await checkTargets(assistant.graph_id, body, thread, configurable);
    const context = mergeContext(assistant.context, body.context);
    await checkContext(assistant.graph_id, context, configurable);
    // The run's metadata, as the LangGraph server stamps it: the assistant's, then the thread's
    // (with the graph and assistant this run stamps on it; a thread this run creates adds none),
    // then the caller's.
    const metadata: Metadata = {
      ...(assistant.metadata ?? {}),
      ...(thread
        ? {
            ...thread.metadata,
            graph_id: assistant.graph_id,
            assistant_id: assistant.assistant_id,
          }
        : {}),
      ...runMetadata,
    };
    if (checkOnly) return { body, assistant };
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
      // Absent without a command, as in the LangGraph server's run objects.
      ...(body.command ? { command: withoutName(body.command) } : {}),
      config: {
        ...(assistant.config.tags || body.config?.tags
          ? { tags: [...(assistant.config.tags ?? []), ...(body.config?.tags ?? [])] }
          : {}),
        ...((body.config?.recursion_limit ?? assistant.config.recursion_limit)
          ? { recursion_limit: body.config?.recursion_limit ?? assistant.config.recursion_limit }
          : {}),
        configurable,
        metadata,
      },
      // The assistant's context under the run's, key by key, as the LangGraph server merges them.
      context,
      stream_mode: [
        ...(body.stream_mode === undefined || body.stream_mode === null
          ? ["values"]
          : Array.isArray(body.stream_mode)
            ? body.stream_mode
            : [body.stream_mode]),
        ...(options?.internalStreamModes ?? []),
      ],
      subgraphs: Boolean(body.stream_subgraphs),
      resumable: Boolean(body.stream_resumable),
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
    const targetThread = thread.thread_id;
    let result: Awaited<ReturnType<typeof storage.runs.create>>;
    try {
      result = await storage.runs.create(
        {
          run_id: runId,
          thread_id: targetThread,
          assistant_id: assistant.assistant_id,
          graph_id: assistant.graph_id,
          metadata,
          multitask_strategy: strategy,
          kwargs,
          partition: auth.partition,
          thread_config: threadConfigOf(kwargs.config),
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
    } catch (err) {
      // A stateless run's new thread is only ever its own: a run that could not be inserted
      // leaves none behind.
      if (isNew) await storage.threads.delete(targetThread).catch(() => undefined);
      throw err;
    }
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
    executor.notify(result.run.thread_id);
    if (stateless) {
      statelessOwners.set(result.run.run_id, thread.metadata);
      for (const id of statelessOwners.keys()) {
        if (statelessOwners.size <= MAX_STATELESS_OWNERS) break;
        statelessOwners.delete(id);
      }
    }
    return { run: result.run, body, assistant };
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

  /**
   * What a run leaves in its thread's `config`, as the LangGraph server fills it: its tags,
   * recursion limit and the configurable that sticks to the thread (without the per-run keys —
   * checkpoint, run, thread, graph and assistant ids — and without what only the server sets).
   */
  function threadConfigOf(config: RunKwargs["config"]): Record<string, unknown> {
    const configurable = { ...config.configurable };
    for (const key of [...PER_RUN_KEYS, ...SERVER_KEYS]) delete configurable[key];
    return {
      ...(config.tags ? { tags: config.tags } : {}),
      ...(config.recursion_limit ? { recursion_limit: config.recursion_limit } : {}),
      configurable,
    };
  }

  async function stickyConfigurable(threadId: string): Promise<Record<string, unknown>> {
    const [last] = await storage.runs.list(threadId, { limit: 1 });
    const out = { ...(last?.kwargs.config.configurable ?? {}) };
    for (const key of [...PER_RUN_KEYS, ...SERVER_KEYS]) delete out[key];
    return out;
  }

  /**
   * The run's runtime context: the assistant's `context` defaults under the run's `context`,
   * key by key (LangGraph's merge). A run's context that is not an object is refused.
   */
  function mergeContext(defaults: unknown, given: unknown): Record<string, unknown> {
    if (
      given !== undefined &&
      given !== null &&
      (typeof given !== "object" || Array.isArray(given))
    )
      throw new RefineryError("invalid_input", "context must be an object", {
        field: "context",
        fix: "send the graph's runtime context as a JSON object of its fields (or leave it out)",
      });
    const base =
      defaults && typeof defaults === "object" && !Array.isArray(defaults)
        ? (defaults as Record<string, unknown>)
        : {};
    return { ...base, ...((given as Record<string, unknown> | null | undefined) ?? {}) };
  }

  /**
   * A graph compiled with a context schema (`new StateGraph(State, { context })`) gets the merged
   * context checked now: a 422 naming \`context.<field>\` instead of a run that fails at its first
   * step. A graph that cannot be built here is left to the run to report.
   */
  async function checkContext(
    graphId: string,
    context: Record<string, unknown>,
    configurable: Record<string, unknown>,
  ): Promise<void> {
    let schema: unknown;
    try {
      const graph = (await deps.registry.get(graphId, { configurable })) as {
        builder?: { _configRuntimeSchema?: unknown };
      };
      schema = graph.builder?._configRuntimeSchema;
    } catch {
      return;
    }
    if (!isInteropZodSchema(schema)) return;
    const result = interopSafeParse(schema, context);
    if (!result.success) throw fromZodError(result.error, "context", "invalid_input", schema);
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
    const inSubgraphs = await subgraphNodesOf(graph);
    for (const [field, names] of Object.entries(lists)) {
      if (!Array.isArray(names)) continue;
      names.forEach((name, i) => {
        const ns = inSubgraphs.get(name);
        // LangGraph applies a run's interrupt lists to the root graph's nodes only: a subgraph's
        // node named there never stops the run. The LangGraph server accepts the name, so clients
        // written against it may send one; accepted as there, with a warning that says why the run
        // will not stop at it.
        if (!nodes.includes(name) && ns !== undefined) {
          const owner = ns.split("|")[0];
          deps.log("warn", `${field} names a subgraph's node: the run will not stop there`, {
            field: `${field}[${i}]`,
            graph_id: graphId,
            node: name,
            subgraph: ns,
            fix: `name the subgraph's node "${owner}" to stop before or after the whole subgraph, or compile the subgraph with ${field === "interrupt_before" ? "interruptBefore" : "interruptAfter"}: ["${name}"] (or call interrupt() in its node)`,
          });
          return;
        }
        if (!nodes.includes(name)) {
          throw new RefineryError("invalid_input", `graph "${graphId}" has no node "${name}"`, {
            field: `${field}[${i}]`,
            fix: `use "*" or node names: ${nodes.join(", ")}`,
          });
        }
      });
    }
  }

  return {
    create: createRun,
    check: async (auth, threadId, raw) => createOrCheck(auth, threadId, raw, true),
    statelessOwner: (runId) => statelessOwners.get(runId),
  };
}
