// Executes one claimed run: streams its graph, publishes every chunk, records the outcome on the
// run and its thread, and rolls the thread back when the run was cancelled with `rollback`. The
// executor calls it in the server thread, or a run thread calls it (run-thread.ts); either way the
// executor does what follows a run (metrics, closing the stream, webhook, learning) in the server
// thread, from the RunOutcome returned here.
import { isStaleRunError } from "../core/checkpointer.ts";
import { isTransientStorageFailure } from "../core/storage/transient.ts";
import { attemptJournalOf } from "../core/models/attempt-journal.ts";
import {
  Command,
  isCheckpointEnvelope,
  Send,
  type BaseCheckpointSaver,
} from "@langchain/langgraph";
import { usageByNodeOf } from "../core/state.ts";
import { continueAfterModelError, recordFailedAttempts } from "../graphs/continue.ts";
import type { CheckpointAdmin } from "../core/storage/checkpoint-admin.ts";
import type { Run, Storage, ThreadSnapshot } from "../core/storage/types.ts";
import type { GraphRegistry, StateSnapshotLike } from "../graphs/registry.ts";
import type { Logger } from "./log.ts";
import type { UserStore } from "../core/memory/user-store.ts";
import { publicChunk, publicEvent, publicRun, publicValues } from "./redact.ts";
import { MessageStream, type CallbackEvent } from "./message-stream.ts";
import {
  DEFAULT_RUN_LIMITS,
  runTimeoutError,
  stepTimeoutError,
  type RunLimits,
} from "./run-limits.ts";
import { interruptsOf, publicError, serializeError, toPlain, toStreamChunk } from "./serde.ts";
import { toolChunk, ToolNamespaces } from "./tool-stream.ts";
import { LANGGRAPH_VERSION } from "./versions.ts";

export type CancelAction = "interrupt" | "rollback";

/**
 * Why a run's signal aborts: a user's cancel, a graceful shutdown (the run goes back to the
 * queue), REFINERY_RUN_TIMEOUT_MS (the run ends with status "timeout"), or its lease lapsed
 * (another worker took it over: nothing more is written for it here).
 */
export type AbortReason = CancelAction | "shutdown" | "timeout" | "lease_lost";

/** Where a run's stream chunks go: the StreamHub, or a run thread's message port. */
export interface RunEventSink {
  open(runId: string, attempt: number): void;
  publish(runId: string, event: string, data: unknown): void;
}

export interface TokenCount {
  node: string;
  kind: "prompt" | "completion";
  tokens: number;
}

export type RunOutcome =
  /** Aborted by a shutdown: back to pending, resumes from its last checkpoint. */
  | { kind: "paused" }
  /** Cancelled with rollback: the run is deleted and its thread restored. */
  | { kind: "rolled_back" }
  | {
      kind: "finished";
      status: "success" | "error" | "interrupted" | "timeout";
      values?: Record<string, unknown>;
      /** What /wait and /join answer when it is not `values` (an interrupt chunk). */
      output?: Record<string, unknown>;
      error?: { error: string; message: string };
      graphId: string;
      /** LLM tokens this run added, by node. */
      tokens: TokenCount[];
    };

/**
 * Stream modes clients may ask for, and the library mode that produces each; a run's SSE events
 * are named by the library mode. `events` and `messages` are not library modes: they come from
 * LangChain's callback events (message-stream.ts).
 */
export const LIB_MODE: Record<string, string> = {
  values: "values",
  updates: "updates",
  "messages-tuple": "messages",
  custom: "custom",
  debug: "debug",
  tasks: "tasks",
  checkpoints: "checkpoints",
  // Not accepted by the API's stream_mode (as the LangGraph server): the thread protocol asks for
  // it (CreateRunOptions.internalStreamModes) for its `tools` channel.
  tools: "tools",
};

export interface RunRunnerDeps {
  storage: Storage;
  /** The saver every registered graph checkpoints to. */
  checkpointer: BaseCheckpointSaver;
  registry: GraphRegistry;
  checkpoints: CheckpointAdmin;
  log: Logger;
  sink: RunEventSink;
  /** Step and run time limits (REFINERY_STEP_TIMEOUT_MS, REFINERY_RUN_TIMEOUT_MS). */
  limits?: RunLimits;
  /** The Store API's store: graphs get the run's partition of it as `config.store`. */
  store?: UserStore;
}

/** The cancel action a run was aborted with, or undefined (not aborted, or shutdown). */
export function cancelActionOf(signal: AbortSignal): CancelAction | undefined {
  const reason: unknown = signal.aborted ? signal.reason : undefined;
  return reason === "interrupt" || reason === "rollback" ? reason : undefined;
}

export class RunRunner {
  constructor(private readonly deps: RunRunnerDeps) {}

  /** Runs `run` to its end (or until `signal` aborts with an AbortReason). */
  async execute(run: Run, signal: AbortSignal): Promise<RunOutcome> {
    const { storage, sink, log } = this.deps;
    const limits = this.deps.limits ?? DEFAULT_RUN_LIMITS;
    const started = Date.now();
    const ids = { run_id: run.run_id, thread_id: run.thread_id, attempt: run.attempt };
    sink.open(run.run_id, run.attempt);
    sink.publish(run.run_id, "metadata", { run_id: run.run_id, attempt: run.attempt });
    log("info", "run started", { ...ids, queue_ms: started - Date.parse(run.created_at) });

    const kwargs = run.kwargs;
    const configurable = kwargs.config.configurable;
    // When the executor will abort this attempt of the run (REFINERY_RUN_TIMEOUT_MS).
    const runDeadline = limits.runTimeoutMs > 0 ? started + limits.runTimeoutMs : undefined;
    const graphId = String(configurable.graph_id);
    // A run of this thread that was rolled back here before has no writes left in flight.
    fencing(this.deps.checkpointer)?.unfence(run.thread_id);
    const threadConfig = { configurable: { thread_id: run.thread_id, checkpoint_ns: "" } };
    let status: "success" | "error" | "interrupted" | "timeout" = "success";
    let error: { error: string; message: string } | undefined;
    let before: Record<string, unknown> | undefined;
    /** The last root `values` chunk, and whether the graph stopped at an interrupt. */
    let lastValues: unknown;
    let interrupted = false;
    /** What failed the run (status "error"). */
    let failure: unknown;
    /**
     * The interrupt chunk (`{__interrupt__: [...]}`) when it is the run's last root values chunk:
     * what /wait answers for this run. A step can interrupt one task and finish another (a
     * `command.goto` while an interrupt is pending): the values after it come last, and /wait
     * answers those, as the LangGraph server does (its last values event).
     */
    let interruptChunk: unknown;
    let graph;
    try {
      graph = await this.deps.registry.get(graphId, kwargs.config);
      applyStepTimeout(graph, limits.stepTimeoutMs);
      // The latest checkpoint is all a run needs before it starts (its id, and the usage so far);
      // the saver reads it without building a state snapshot.
      const latest = await this.deps.checkpointer.getTuple(threadConfig);
      before = latest?.checkpoint.channel_values;
      const current = latest?.config.configurable?.checkpoint_id ?? null;
      // Recorded before the graph starts, so a run without it never wrote a checkpoint.
      const started = kwargs.checkpoint_before !== undefined;
      if (!started) {
        kwargs.checkpoint_before = typeof current === "string" ? current : null;
        await this.deps.checkpoints.snapshot(run.run_id, run.thread_id, kwargs.checkpoint_before);
        await storage.runs.setCheckpointBefore(run.run_id, kwargs.checkpoint_before);
      }
      let input: unknown = kwargs.command ? toCommand(kwargs.command) : (kwargs.input ?? null);
      // A re-queued run whose input was already checkpointed continues instead of starting over,
      // from the thread's latest checkpoint (its own progress), not from a checkpoint_id it was
      // created with: that would replay finished steps and drop its input.
      const resumed = started && current !== kwargs.checkpoint_before;
      if (resumed) input = null;
      // A new run with no input on a thread a model failure stopped mid-run retries that step.
      else if (input === null && before?.stopReason === "model_error") {
        input = (await continueAfterModelError(graph, threadConfig)) ?? null;
      }
      const requested = [
        ...new Set(
          kwargs.stream_mode.map((m) => LIB_MODE[m]).filter((m): m is string => Boolean(m)),
        ),
      ];
      // What is published: the requested library modes (values when the run asked for none).
      const published = new Set(kwargs.stream_mode.length ? requested : ["values"]);
      const wantsEvents = kwargs.stream_mode.includes("events");
      // The older `messages` mode reads whole messages from the values chunks.
      const wantsMessages = kwargs.stream_mode.includes("messages");
      // With events or messages, the library also streams debug chunks (not published unless
      // asked for), as the LangGraph server does: the order of chunks and callback events
      // then matches the reference's.
      const modes = [
        ...new Set([
          ...published,
          ...(wantsMessages ? ["values"] : []),
          ...(wantsEvents || wantsMessages ? ["debug"] : []),
        ]),
      ];
      const subgraphs = Boolean(kwargs.subgraphs);
      // With subgraphs streamed and values among the library modes, the LangGraph server (which
      // always runs streamEvents) also emits LangGraph's checkpoint envelopes ({id, parent_id,
      // step, source}, before each values chunk) as `checkpoints` events, unless the client asked
      // for the full `checkpoints` mode. LangGraph passes them only to stream calls that carry a
      // `version` (streamEvents'): graph.stream gets one too, so they come without the cost of
      // callback events.
      const envelopes = subgraphs && modes.includes("values");
      const toolNamespaces = modes.includes("tools") ? new ToolNamespaces() : undefined;
      const options = {
        ...(toolNamespaces ? { callbacks: [toolNamespaces] } : {}),
        ...(envelopes ? { version: "v2" as const } : {}),
        configurable: {
          ...(resumed ? withoutCheckpointId(configurable) : configurable),
          thread_id: run.thread_id,
          run_id: run.run_id,
          // Model calls wait for a Retry-After only if the run may still be going by then.
          ...(runDeadline !== undefined ? { refinery_run_deadline: runDeadline } : {}),
        },
        ...(kwargs.config.tags ? { tags: kwargs.config.tags } : {}),
        ...(kwargs.config.recursion_limit ? { recursionLimit: kwargs.config.recursion_limit } : {}),
        metadata: {
          ...kwargs.config.metadata,
          run_id: run.run_id,
          thread_id: run.thread_id,
          graph_id: graphId,
          assistant_id: run.assistant_id,
          run_attempt: run.attempt,
          // As the LangGraph server's runs carry it (checkpoint and message metadata, issue 22).
          ...(LANGGRAPH_VERSION ? { langgraph_version: LANGGRAPH_VERSION } : {}),
        },
        ...(kwargs.context !== undefined ? { context: kwargs.context } : {}),
        ...(this.deps.store
          ? { store: this.deps.store.forPartition(partitionOf(configurable)) }
          : {}),
        streamMode: modes.length ? modes : ["values"],
        // Each step is committed before the next one starts, so a crash never redoes a step that
        // finished (LangGraph's default, "async", starts the next step while the write is queued).
        durability: "sync",
        subgraphs: Boolean(kwargs.subgraphs),
        ...(kwargs.interrupt_before ? { interruptBefore: kwargs.interrupt_before } : {}),
        ...(kwargs.interrupt_after ? { interruptAfter: kwargs.interrupt_after } : {}),
        signal,
      };
      const wantsCheckpoints = kwargs.stream_mode.includes("checkpoints");
      const onChunk = (chunk: unknown): void => {
        const parts = chunk as unknown[];
        const [streamNs, mode, raw] = subgraphs
          ? (parts as [string[], string, unknown])
          : ([[], ...parts] as unknown as [string[], string, unknown]);
        const tool = mode === "tools";
        const ns = (tool && toolNamespaces?.namespaceOf(raw)) || streamNs;
        const data = tool ? toolChunk(raw) : raw;
        if (mode === "checkpoints" && isCheckpointEnvelope(data)) {
          if (envelopes && !wantsCheckpoints)
            sink.publish(
              run.run_id,
              ns.length ? `checkpoints|${ns.join("|")}` : "checkpoints",
              data,
            );
          return;
        }
        if (mode === "values" && ns.length === 0) {
          if (isInterruptChunk(data)) {
            interrupted = true;
            interruptChunk = data;
          } else {
            lastValues = data;
            interruptChunk = undefined;
          }
        }
        if (published.has(mode))
          sink.publish(
            run.run_id,
            ns.length ? `${mode}|${ns.join("|")}` : mode,
            publicChunk(mode, toStreamChunk(mode, data)),
          );
        // After the chunk, as the LangGraph server orders them.
        if (mode === "values" && ns.length === 0) messages?.complete(data);
      };
      const messages = wantsMessages
        ? new MessageStream((event, data) => sink.publish(run.run_id, event, data))
        : undefined;
      if (wantsEvents || wantsMessages) {
        if (typeof graph.streamEvents !== "function")
          throw new Error(
            `graph "${graphId}" cannot stream events (stream modes events, messages)`,
          );
        // As the LangGraph server does: the run's own stream chunks are the root's on_chain_stream
        // events (its run_id is the run's); every other callback event is an `events` event.
        const events = graph.streamEvents(input, { ...options, version: "v2", runId: run.run_id });
        for await (const raw of events) {
          const event = raw as CallbackEvent;
          if (event.tags?.includes("langsmith:hidden")) continue;
          if (event.event === "on_chain_stream" && event.run_id === run.run_id) {
            onChunk(event.data?.chunk);
            continue;
          }
          // With stream_subgraphs, subgraphs' chunks are already in the root's (namespaced).
          if (event.event === "on_chain_stream" && subgraphs) continue;
          if (wantsEvents) sink.publish(run.run_id, "events", publicEvent(event));
          if (event.event === "on_chat_model_stream" && !event.tags?.includes("nostream"))
            messages?.partial(event);
        }
      } else {
        for await (const chunk of await graph.stream(input, options)) onChunk(chunk);
      }
    } catch (err) {
      if (isStaleRunError(err)) {
        // Another worker holds the run now (it took it over while this one was frozen past its
        // lease): its checkpoint was refused, and nothing more is written here, as for lease_lost.
        log("warn", "run stopped: another worker took it over; its checkpoint was refused", ids);
        return { kind: "paused" };
      }
      if (!signal.aborted && isTransientStorageFailure(err)) {
        // The database did not answer (a checkpoint could not be written, say): the run did not
        // fail; it is lost here and continues from its last checkpoint (the executor re-queues
        // it, or pauses it until the database answers).
        log("warn", "run stopped: the database did not answer", {
          ...ids,
          error: serializeError(err),
        });
        throw err;
      }
      if (signal.aborted && signal.reason === "timeout") {
        status = "timeout";
        error = runTimeoutError(limits);
        sink.publish(run.run_id, "error", error);
        log("warn", "run timed out", { ...ids, error });
      } else if (signal.aborted) {
        status = "interrupted";
      } else {
        status = "error";
        failure = err;
        error = isStepTimeout(err, limits) ? stepTimeoutError(limits) : publicError(err);
        sink.publish(run.run_id, "error", error);
        log("warn", "run failed", { ...ids, error: serializeError(err) });
      }
    }

    const cancel = cancelActionOf(signal);
    if (cancel === "rollback") {
      await this.rollback(run, graph);
      log("info", "run rolled back", ids);
      return { kind: "rolled_back" };
    }
    if (signal.aborted && cancel === undefined && signal.reason !== "timeout") {
      // Shutdown: the run goes back to the queue and resumes from its last checkpoint. Its stream
      // stays open: clients waiting on it (join, wait, stream) must not be told it ended; their
      // connections are cut when the server closes, and they can join again after restart.
      if (signal.reason === "lease_lost") {
        log("warn", "run stopped: its lease lapsed and another worker continues it", ids);
        return { kind: "paused" };
      }
      await storage.runs.setStatus(run.run_id, "pending");
      log("info", "run paused for shutdown", ids);
      return { kind: "paused" };
    }

    let after: StateSnapshotLike | undefined;
    try {
      // A run that reached its end: its last root values chunk is the state getState would read
      // (the stream emits the same channels, streamChannelsAsIs, also for a graph with a narrower
      // output schema) and nothing runs next, so the checkpoint is not read back (0.9 ms of CPU
      // per run on the bench graph). Every kind of interrupt emits a values chunk of its own.
      after =
        status === "success" && !interrupted && lastValues !== undefined
          ? { values: lastValues, next: [], tasks: [], config: threadConfig }
          : await graph?.getState(threadConfig);
      // A step whose model failed for good threw its writes away: its attempts are counted
      // in the thread's usage now, and the step stays next (a run with input null retries it).
      if (
        status === "error" &&
        graph &&
        after &&
        !kwargs.temporary &&
        (await recordFailedAttempts(graph, threadConfig, failure, after))
      ) {
        after = await graph.getState(threadConfig);
      }
    } catch (err) {
      log("error", "could not read final state", { ...ids, error: serializeError(err) });
    }
    const values = after ? toPlain<Record<string, unknown>>(after.values) : undefined;
    // Every model attempt of a run that reached its end is in a checkpoint now.
    if (status === "success" && !interrupted && after && after.next.length === 0) {
      try {
        await attemptJournalOf(this.deps.checkpointer)?.clear(run.thread_id);
      } catch (err) {
        log("warn", "could not clear the model attempt journal", {
          ...ids,
          error: serializeError(err),
        });
      }
    }
    // The run's webhook call goes to the outbox with its end (webhook-outbox.ts delivers it). The
    // caller's URL gets what the API would show it: no secrets.
    const webhook = kwargs.webhook
      ? {
          url: kwargs.webhook,
          body: JSON.stringify({
            ...publicRun(run),
            status,
            values: publicValues(values),
            error: error ?? null,
          }),
        }
      : undefined;
    // The run's status and its thread's snapshot in one transaction (a temporary thread, deleted
    // next, gets none). Fenced by the attempt, as its checkpoints are: a worker frozen past its
    // lease whose run another worker took over (and ends) records nothing here.
    const ended = await storage.runs.finish(
      run.run_id,
      status,
      error ?? null,
      kwargs.temporary
        ? undefined
        : {
            threadId: run.thread_id,
            snapshot: snapshotOf(
              after,
              status === "error" || status === "timeout" ? error : undefined,
              status === "interrupted",
              values ?? null,
            ),
          },
      webhook,
      run.attempt,
    );
    if (ended && kwargs.temporary) {
      await this.deps.checkpoints.deleteThread(run.thread_id);
      await storage.threads.delete(run.thread_id);
    }
    if (!ended) {
      log("warn", "run's end not recorded: another worker took it over and ends it", ids);
      return { kind: "paused" };
    }
    // A rollback snapshot exists only for a run that started from a checkpoint.
    if (kwargs.checkpoint_before) await this.deps.checkpoints.discard(run.run_id);
    log("info", "run finished", { ...ids, status, duration_ms: Date.now() - started });
    return {
      kind: "finished",
      status,
      ...(values ? { values } : {}),
      // As the LangGraph server answers /wait: a run that stopped at an interrupt answers its
      // last values chunk, the interrupt, not the state (issue 22).
      ...(status === "success" && interrupted && interruptChunk !== undefined
        ? { output: toPlain<Record<string, unknown>>(interruptChunk) }
        : {}),
      ...(error ? { error } : {}),
      graphId,
      tokens: tokensAdded(before, after?.values),
    };
  }

  /**
   * After a run ended and its client has the result: its steps become history, which the backend
   * stores compactly (the checkpoint archive, core/checkpoint-archive.ts). Off the client's path
   * and off the run threads (the executor calls it in the server thread); the thread's next run
   * may already have started, which the archive allows (it moves only checkpoints older than the
   * thread's latest, and a rollback brings archived ones back). A failure only leaves the history
   * uncompacted until the next run. Returns whether it compacted.
   */
  async compactAfter(run: Run, outcome: RunOutcome): Promise<boolean> {
    if (outcome.kind !== "finished" || run.kwargs.temporary) return false;
    try {
      await this.deps.checkpoints.compact(run.thread_id);
      return true;
    } catch (err) {
      this.deps.log("warn", "could not compact the thread's checkpoints", {
        run_id: run.run_id,
        thread_id: run.thread_id,
        error: serializeError(err),
      });
      return false;
    }
  }

  /**
   * Cancel with rollback: restores the thread to its checkpoint from before the run (with the
   * pending writes it had) and deletes the run. The executor calls it too, for a run whose thread
   * had to be terminated (the run's record then comes from storage: its checkpoint_before was
   * recorded there). A run that never recorded checkpoint_before wrote nothing to restore.
   */
  async rollback(
    run: Run,
    graph?: { getState: (c: Record<string, unknown>) => Promise<StateSnapshotLike> },
  ): Promise<void> {
    const { storage } = this.deps;
    // The run's writes still in flight in LangGraph's loop are dropped, not applied after this.
    fencing(this.deps.checkpointer)?.fence(run.thread_id);
    // The run's row goes first: from then on the savers refuse its checkpoints (the run fence,
    // see StaleRunError), so a put still on its way cannot land after the checkpoints are restored.
    await storage.runs.delete(run.run_id, run.thread_id);
    const before = run.kwargs.checkpoint_before;
    if (before !== undefined)
      await this.deps.checkpoints.rollback(run.thread_id, before, run.run_id);
    // The thread goes back to the graph of its previous run, which owns the restored state.
    const [previous] = await storage.runs.list(run.thread_id, { limit: 1 });
    const previousGraph = previous?.kwargs.config.configurable.graph_id;
    if (previous && typeof previousGraph === "string") {
      await storage.threads.update(run.thread_id, {
        metadata: { graph_id: previousGraph, assistant_id: previous.assistant_id },
      });
      await this.refreshThread(run.thread_id);
    } else {
      await this.refreshThread(run.thread_id, graph);
    }
  }

  /** Writes a thread's snapshot (values, interrupts, status) after a cancel or a repair. */
  private async recordThread(
    threadId: string,
    state: StateSnapshotLike | undefined,
    error?: { error: string; message: string },
    cancelled = false,
  ): Promise<void> {
    const snapshot = snapshotOf(state, error, cancelled, state ? toPlain(state.values) : null);
    const pending = (await this.deps.storage.runs.inflight(threadId)).some(
      (r) => r.status === "pending",
    );
    if (pending) snapshot.status = "busy";
    await this.deps.storage.threads.setSnapshot(threadId, snapshot);
  }

  /** Re-reads a thread's state after a cancel or rollback. */
  async refreshThread(
    threadId: string,
    graph?: { getState: (c: Record<string, unknown>) => Promise<StateSnapshotLike> },
    outcome: { error?: { error: string; message: string }; cancelled?: boolean } = {},
  ): Promise<void> {
    let state: StateSnapshotLike | undefined;
    try {
      const thread = await this.deps.storage.threads.get(threadId);
      const graphId = thread?.metadata.graph_id;
      const g =
        graph ?? (typeof graphId === "string" ? await this.deps.registry.get(graphId) : undefined);
      state = g
        ? await g.getState({ configurable: { thread_id: threadId, checkpoint_ns: "" } })
        : undefined;
    } catch {
      state = undefined;
    }
    await this.recordThread(
      threadId,
      state && state.createdAt ? state : undefined,
      outcome.error,
      outcome.cancelled,
    );
  }
}

/**
 * A thread's snapshot after a run: "error" when it failed, "interrupted" when the graph stopped
 * before a node (an interrupt), else "idle" (the store makes it "busy" when a run is pending).
 */
function snapshotOf(
  state: StateSnapshotLike | undefined,
  error: { error: string; message: string } | undefined,
  cancelled: boolean,
  values: Record<string, unknown> | null,
): ThreadSnapshot {
  let status: ThreadSnapshot["status"] = "idle";
  if (error) status = "error";
  else if (state && !cancelled && state.next.length > 0) status = "interrupted";
  return {
    status,
    values,
    interrupts: state && !cancelled ? interruptsOf(state) : {},
    error: error ?? null,
  };
}

/** LLM tokens by node that the state values `after` hold beyond `before`. */
function tokensAdded(before: unknown, after: unknown): TokenCount[] {
  type Values = Parameters<typeof usageByNodeOf>[0];
  const a = usageByNodeOf((after ?? {}) as Values);
  const b = usageByNodeOf((before ?? {}) as Values);
  const out: TokenCount[] = [];
  for (const [node, u] of Object.entries(a)) {
    const prompt = (u.promptTokens ?? 0) - (b[node]?.promptTokens ?? 0);
    const completion = (u.completionTokens ?? 0) - (b[node]?.completionTokens ?? 0);
    if (prompt > 0) out.push({ node, kind: "prompt", tokens: prompt });
    if (completion > 0) out.push({ node, kind: "completion", tokens: completion });
  }
  return out;
}

/**
 * A command as JSON sent it: `goto` may name nodes or be `{node, input}` objects (one or a
 * list), which become `Send`s, as the LangGraph server reads them (issue 22).
 */
export function toCommand(command: NonNullable<Run["kwargs"]["command"]>): Command {
  const asSend = (g: unknown) =>
    g && typeof g === "object" && "node" in g && typeof g.node === "string"
      ? new Send(g.node, (g as { input?: unknown }).input)
      : g;
  const goto = (command as { goto?: unknown }).goto;
  return new Command({
    ...(command as ConstructorParameters<typeof Command>[0]),
    ...(goto === undefined ? {} : { goto: Array.isArray(goto) ? goto.map(asSend) : asSend(goto) }),
  } as ConstructorParameters<typeof Command>[0]);
}

/**
 * A `values` chunk that reports an interrupt: LangGraph emits one for `interrupt()` and for
 * interrupt_before/after, set on the run or compiled into the graph.
 */
function isInterruptChunk(data: unknown): boolean {
  return typeof data === "object" && data !== null && "__interrupt__" in data;
}

/**
 * Sets LangGraph's per-step timeout (Pregel `stepTimeout`) on a compiled graph, keeping a shorter
 * one the graph already has. The registry hands out the same graph object to every run, and every
 * run of this process has the same limit.
 */
function applyStepTimeout(graph: object, ms: number): void {
  if (ms <= 0) return;
  const g = graph as { stepTimeout?: number };
  if (g.stepTimeout === undefined || g.stepTimeout > ms) g.stepTimeout = ms;
}

/**
 * LangGraph ends a step that outlived `stepTimeout` by rejecting it with a plain Error("Abort")
 * (pregel/runner.ts); the run's own signal was not aborted (the caller checked).
 */
function isStepTimeout(err: unknown, limits: RunLimits): boolean {
  return (
    limits.stepTimeoutMs > 0 &&
    err instanceof Error &&
    err.name === "Error" &&
    err.message === "Abort"
  );
}

/** The store partition (tenant, with API keys) the run service stamped on a run; else "". */
function partitionOf(configurable: Record<string, unknown>): string {
  const partition = configurable.refinery_store_partition;
  return typeof partition === "string" ? partition : "";
}

/** A run's configurable without the checkpoint it was created from. */
function withoutCheckpointId(configurable: Record<string, unknown>): Record<string, unknown> {
  const rest = { ...configurable };
  delete rest.checkpoint_id;
  delete rest.checkpoint_map;
  return rest;
}

/** The saver's write fence (PreparedSqliteSaver), when the checkpointer has one. */
function fencing(
  saver: unknown,
): { fence(threadId: string): void; unfence(threadId: string): void } | undefined {
  const s = saver as { fence?: unknown; unfence?: unknown };
  return typeof s.fence === "function" && typeof s.unfence === "function"
    ? (saver as { fence(threadId: string): void; unfence(threadId: string): void })
    : undefined;
}
