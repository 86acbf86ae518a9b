// The run executor: a bounded pool of workers that claim pending runs from storage, stream
// the graph, publish events to the hub, and record the outcome on the run and its thread.
// Runs left `running` by a crash are re-queued at start-up and continue from their last
// checkpoint; steps that were checkpointed are not executed again.
import { Command } from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import type { CheckpointAdmin } from "../core/storage/checkpoint-admin.ts";
import { usageByNodeOf } from "../core/state.ts";
import type { Run, RunStatus, Storage, ThreadStatus } from "../core/storage/types.ts";
import type { LearningLoop } from "../graphs/learning.ts";
import type { GraphRegistry, StateSnapshotLike } from "../graphs/registry.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { interruptsOf, serializeError, toPlain, toStreamChunk } from "./serde.ts";
import type { StreamHub } from "./stream-hub.ts";

export type CancelAction = "interrupt" | "rollback";

export interface ExecutorDeps {
  storage: Storage;
  registry: GraphRegistry;
  hub: StreamHub;
  checkpointer: BaseCheckpointSaver;
  checkpoints: CheckpointAdmin;
  log: Logger;
  metrics?: Metrics;
  /** Maximum runs executing at once in this process. */
  concurrency: number;
  /** Safety poll for runs made due by time (after_seconds) or by another process. */
  pollMs?: number;
  /** POSTs run results to `webhook` URLs; injectable for tests. */
  fetch?: typeof fetch;
  /** Learns from finished runs (lessons, outcomes kept for export). */
  learning?: LearningLoop;
}

interface Active {
  run: Run;
  controller: AbortController;
  cancel?: CancelAction;
  done: Promise<void>;
}

/** Stream modes clients may ask for, and the library mode that produces each. */
const LIB_MODE: Record<string, string> = {
  values: "values",
  updates: "updates",
  "messages-tuple": "messages",
  custom: "custom",
  debug: "debug",
  tasks: "tasks",
  checkpoints: "checkpoints",
};

export class RunExecutor {
  private readonly active = new Map<string, Active>();
  private pumping = false;
  private again = false;
  private stopping = false;
  private timer?: NodeJS.Timeout;

  constructor(private readonly deps: ExecutorDeps) {}

  /** Re-queues runs a crash left running, repairs threads it left busy, then takes runs. */
  async start(): Promise<void> {
    const requeued = await this.deps.storage.runs.requeueRunning();
    for (const run of requeued) {
      this.deps.log("warn", "re-queued run left running by a previous process", {
        run_id: run.run_id,
        thread_id: run.thread_id,
        attempt: run.attempt,
      });
    }
    await this.repairBusyThreads();
    this.timer = setInterval(() => this.notify(), this.deps.pollMs ?? 1000);
    this.timer.unref();
    this.notify();
  }

  /** Wakes the pool: call after creating a run. */
  notify(): void {
    if (this.stopping) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    void this.pump();
  }

  activeCount(): number {
    return this.active.size;
  }

  isActive(runId: string): boolean {
    return this.active.has(runId);
  }

  /**
   * Cancels a run. A running one is aborted (its finished steps stay checkpointed; with
   * `rollback` the thread is restored to its checkpoint before the run and the run deleted).
   * A pending one never starts. Returns false when the run is not in flight.
   */
  async cancel(run: Run, action: CancelAction): Promise<boolean> {
    const active = this.active.get(run.run_id);
    if (active) {
      active.cancel = action;
      active.controller.abort(action);
      await active.done;
      return true;
    }
    if (run.status !== "pending") return false;
    if (action === "rollback") {
      await this.deps.storage.runs.delete(run.run_id, run.thread_id);
    } else {
      await this.deps.storage.runs.setStatus(run.run_id, "interrupted");
    }
    this.deps.hub.close(run.run_id, { status: "interrupted" });
    await this.refreshThread(run.thread_id);
    return true;
  }

  /**
   * Graceful stop: takes no new runs, gives in-flight runs `graceMs` to finish, then aborts
   * the rest and puts them back to pending; they resume from their last checkpoint on the
   * next start.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    const all = [...this.active.values()];
    const finished = Promise.all(all.map((a) => a.done));
    const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
    if ((await Promise.race([finished, timeout])) === "timeout") {
      for (const a of this.active.values()) {
        // A run a user is cancelling keeps that outcome (interrupted, or rolled back).
        if (a.cancel === undefined) a.controller.abort("shutdown");
      }
      await finished;
    }
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      do {
        this.again = false;
        while (!this.stopping && this.active.size < this.deps.concurrency) {
          const run = await this.deps.storage.runs.claimNext();
          if (!run) break;
          this.launch(run);
        }
      } while (this.again && !this.stopping);
    } catch (err) {
      this.deps.log("error", "run queue failed", { error: serializeError(err) });
    } finally {
      this.pumping = false;
    }
  }

  private launch(run: Run): void {
    const controller = new AbortController();
    const entry: Active = { run, controller, done: Promise.resolve() };
    this.active.set(run.run_id, entry);
    this.deps.metrics?.runsActive.set(this.active.size);
    entry.done = this.execute(entry)
      .catch((err) =>
        this.deps.log("error", "run bookkeeping failed", {
          run_id: run.run_id,
          error: serializeError(err),
        }),
      )
      .finally(() => {
        this.active.delete(run.run_id);
        this.deps.metrics?.runsActive.set(this.active.size);
        this.notify();
      });
  }

  private async execute(entry: Active): Promise<void> {
    const { run, controller } = entry;
    const { storage, hub, log } = this.deps;
    const started = Date.now();
    const ids = { run_id: run.run_id, thread_id: run.thread_id, attempt: run.attempt };
    hub.open(run.run_id, run.attempt);
    hub.publish(run.run_id, "metadata", { run_id: run.run_id, attempt: run.attempt });
    log("info", "run started", { ...ids, queue_ms: started - Date.parse(run.created_at) });

    const kwargs = run.kwargs;
    const configurable = kwargs.config.configurable;
    const graphId = String(configurable.graph_id);
    const threadConfig = { configurable: { thread_id: run.thread_id, checkpoint_ns: "" } };
    let status: "success" | "error" | "interrupted" = "success";
    let error: { error: string; message: string } | undefined;
    let before: StateSnapshotLike | undefined;
    let graph;
    try {
      graph = await this.deps.registry.get(graphId, kwargs.config);
      before = await graph.getState(threadConfig);
      const current = before.config.configurable?.checkpoint_id ?? null;
      // Recorded before the graph starts, so a run without it never wrote a checkpoint.
      const started = kwargs.checkpoint_before !== undefined;
      if (!started) {
        kwargs.checkpoint_before = typeof current === "string" ? current : null;
        await this.deps.checkpoints.snapshot(run.run_id, run.thread_id, kwargs.checkpoint_before);
        await storage.runs.setCheckpointBefore(run.run_id, kwargs.checkpoint_before);
      }
      let input: unknown = kwargs.command
        ? new Command(kwargs.command as ConstructorParameters<typeof Command>[0])
        : (kwargs.input ?? null);
      // A re-queued run whose input was already checkpointed continues instead of starting over,
      // from the thread's latest checkpoint (its own progress), not from a checkpoint_id it was
      // created with: that would replay finished steps and drop its input.
      const resumed = started && current !== kwargs.checkpoint_before;
      if (resumed) input = null;
      const modes = [
        ...new Set(
          kwargs.stream_mode.map((m) => LIB_MODE[m]).filter((m): m is string => Boolean(m)),
        ),
      ];
      const stream = await graph.stream(input, {
        configurable: {
          ...(resumed ? withoutCheckpointId(configurable) : configurable),
          thread_id: run.thread_id,
          run_id: run.run_id,
        },
        ...(kwargs.config.tags ? { tags: kwargs.config.tags } : {}),
        ...(kwargs.config.recursion_limit ? { recursionLimit: kwargs.config.recursion_limit } : {}),
        metadata: {
          ...kwargs.config.metadata,
          run_id: run.run_id,
          thread_id: run.thread_id,
          graph_id: graphId,
          run_attempt: run.attempt,
        },
        ...(kwargs.context !== undefined ? { context: kwargs.context } : {}),
        streamMode: modes.length ? modes : ["values"],
        subgraphs: Boolean(kwargs.stream_subgraphs),
        ...(kwargs.interrupt_before ? { interruptBefore: kwargs.interrupt_before } : {}),
        ...(kwargs.interrupt_after ? { interruptAfter: kwargs.interrupt_after } : {}),
        signal: controller.signal,
      });
      const subgraphs = Boolean(kwargs.stream_subgraphs);
      for await (const chunk of stream) {
        const parts = chunk as unknown[];
        const [ns, mode, data] = subgraphs
          ? (parts as [string[], string, unknown])
          : ([[], ...parts] as unknown as [string[], string, unknown]);
        const name = mode === "messages" ? "messages" : mode;
        hub.publish(
          run.run_id,
          ns.length ? `${name}|${ns.join("|")}` : name,
          toStreamChunk(mode, data),
        );
      }
    } catch (err) {
      if (controller.signal.aborted) {
        status = "interrupted";
      } else {
        status = "error";
        error = serializeError(err);
        hub.publish(run.run_id, "error", error);
        log("warn", "run failed", { ...ids, error });
      }
    }

    if (entry.cancel === "rollback") {
      await this.deps.checkpoints.rollback(
        run.thread_id,
        kwargs.checkpoint_before ?? null,
        run.run_id,
      );
      await storage.runs.delete(run.run_id, run.thread_id);
      hub.close(run.run_id, { status: "interrupted" });
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
      log("info", "run rolled back", ids);
      return;
    }
    if (controller.signal.aborted && entry.cancel === undefined) {
      // Shutdown: the run goes back to the queue and resumes from its last checkpoint. Its hub
      // channel stays open: clients waiting on it (join, wait, stream) must not be told it ended;
      // their connections are cut when the server closes, and they can join again after restart.
      await storage.runs.setStatus(run.run_id, "pending");
      log("info", "run paused for shutdown", ids);
      return;
    }

    let after: StateSnapshotLike | undefined;
    try {
      after = graph ? await graph.getState(threadConfig) : undefined;
    } catch (err) {
      log("error", "could not read final state", { ...ids, error: serializeError(err) });
    }
    const values = after ? toPlain<Record<string, unknown>>(after.values) : undefined;
    await storage.runs.setStatus(run.run_id, status, error ?? null);
    await this.deps.checkpoints.discard(run.run_id);
    if (kwargs.temporary) {
      await this.deps.checkpoints.deleteThread(run.thread_id);
      await storage.threads.delete(run.thread_id);
    } else {
      await this.recordThread(
        run.thread_id,
        after,
        status === "error" ? error : undefined,
        status === "interrupted",
        values,
      );
    }
    this.countTokens(before, after);
    const seconds = (Date.now() - started) / 1000;
    this.deps.metrics?.runsFinished.inc({ status });
    this.deps.metrics?.runDuration.observe({ status }, seconds);
    hub.close(run.run_id, { status, values, ...(error ? { error } : {}) });
    log("info", "run finished", { ...ids, status, duration_ms: Math.round(seconds * 1000) });
    if (kwargs.webhook) void this.callWebhook(run, status, values, error);
    // After the clients have the result; awaited so a graceful shutdown lets it finish.
    if (this.deps.learning && status === "success" && values)
      await this.learn(run, graphId, values as Record<string, unknown>);
  }

  private async learn(run: Run, graphId: string, values: Record<string, unknown>): Promise<void> {
    const configurable = run.kwargs.config.configurable;
    const family = run.kwargs.config.metadata?.family;
    try {
      const result = await this.deps.learning!.onRunEnd({
        values,
        run_id: run.run_id,
        thread_id: run.thread_id,
        assistant_id: run.assistant_id,
        graph_id: graphId,
        keep: !run.kwargs.temporary,
        learn: memoryEnabled(configurable) && memoryEnabled(values.options),
        ...(typeof family === "string" ? { family } : {}),
      });
      if (result.lessonsAdded || result.lessonsMerged)
        this.deps.log("info", "lessons learned", {
          run_id: run.run_id,
          thread_id: run.thread_id,
          added: result.lessonsAdded,
          merged: result.lessonsMerged,
        });
    } catch (err) {
      this.deps.log("error", "learning from the run failed", {
        run_id: run.run_id,
        error: serializeError(err),
      });
    }
  }

  private async recordThread(
    threadId: string,
    state: StateSnapshotLike | undefined,
    error?: { error: string; message: string },
    cancelled = false,
    /** `state.values` already made plain, when the caller has it. */
    values: Record<string, unknown> | null = state ? toPlain(state.values) : null,
  ): Promise<void> {
    const pending = (await this.deps.storage.runs.inflight(threadId)).some(
      (r) => r.status === "pending",
    );
    const interrupts = state && !cancelled ? interruptsOf(state) : {};
    let status: ThreadStatus = "idle";
    if (error) status = "error";
    else if (state && !cancelled && state.next.length > 0) status = "interrupted";
    if (pending) status = "busy";
    await this.deps.storage.threads.setSnapshot(threadId, {
      status,
      values,
      interrupts,
      error: error ?? null,
    });
  }

  /**
   * Threads marked busy with no run pending or running: a crash came between recording a run's
   * outcome and its thread's (or a cancel and the thread refresh). Nothing would ever clear them.
   */
  private async repairBusyThreads(): Promise<void> {
    const { storage, log } = this.deps;
    const limit = 100;
    let offset = 0; // busy threads that have runs in flight stay in the result set
    for (;;) {
      const page = await storage.threads.search({
        status: "busy",
        limit,
        offset,
        sort_by: "thread_id",
        sort_order: "asc",
      });
      for (const { thread_id } of page) {
        try {
          if ((await storage.runs.inflight(thread_id)).length > 0) {
            offset += 1;
            continue;
          }
          const [last] = await storage.runs.list(thread_id, { limit: 1 });
          if (last?.kwargs.temporary) {
            await this.deps.checkpoints.deleteThread(thread_id);
            await storage.threads.delete(thread_id);
          } else {
            await this.refreshThread(thread_id, undefined, {
              error: last?.status === "error" ? (last.error ?? undefined) : undefined,
              cancelled: last?.status === "interrupted",
            });
          }
          log("warn", "repaired thread left busy by a previous process", { thread_id });
        } catch (err) {
          offset += 1; // still busy: skip it rather than fail the start-up
          log("error", "could not repair thread left busy", {
            thread_id,
            error: serializeError(err),
          });
        }
      }
      if (page.length < limit) return;
    }
  }

  /** Re-reads a thread's state after a cancel or rollback. */
  private async refreshThread(
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

  private countTokens(
    before: StateSnapshotLike | undefined,
    after: StateSnapshotLike | undefined,
  ): void {
    const metrics = this.deps.metrics;
    if (!metrics) return;
    type Values = Parameters<typeof usageByNodeOf>[0];
    const a = usageByNodeOf((after?.values ?? {}) as Values);
    const b = usageByNodeOf((before?.values ?? {}) as Values);
    for (const [node, u] of Object.entries(a)) {
      const prompt = (u.promptTokens ?? 0) - (b[node]?.promptTokens ?? 0);
      const completion = (u.completionTokens ?? 0) - (b[node]?.completionTokens ?? 0);
      if (prompt > 0) metrics.tokens.inc({ node, kind: "prompt" }, prompt);
      if (completion > 0) metrics.tokens.inc({ node, kind: "completion" }, completion);
    }
  }

  private async callWebhook(
    run: Run,
    status: RunStatus,
    values: unknown,
    error?: { error: string; message: string },
  ): Promise<void> {
    const url = run.kwargs.webhook;
    if (!url) return;
    const doFetch = this.deps.fetch ?? fetch;
    const body = JSON.stringify({ ...run, status, values, error: error ?? null });
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        const res = await doFetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        if (res.ok) return;
        if (res.status < 500 && res.status !== 429) break;
      } catch {
        // retried below
      }
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
    this.deps.log("warn", "run webhook failed", { run_id: run.run_id, url });
  }
}

/** A run's configurable without the checkpoint it was created from. */
function withoutCheckpointId(configurable: Record<string, unknown>): Record<string, unknown> {
  const rest = { ...configurable };
  delete rest.checkpoint_id;
  delete rest.checkpoint_map;
  return rest;
}

/** False when refine options (`memory: {enabled: false}`) switch the lessons memory off. */
function memoryEnabled(options: unknown): boolean {
  const memory = (options as { memory?: { enabled?: unknown } } | null | undefined)?.memory;
  return memory?.enabled !== false;
}
