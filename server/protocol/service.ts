// The thread protocol (what the SDK's ThreadStream speaks; the LangGraph server 1.5.1's
// dist/protocol/service.mjs): commands on a thread (run.start, input.respond, state.get,
// agent.getTree, subscription.subscribe / unsubscribe) and its events, fanned out to SSE
// streams (POST /threads/{id}/stream/events, one filter each) and WebSocket connections
// (subscriptions per connection). Runs are created by the run service with the caller's auth and
// their events read from the StreamHub; each thread numbers its events (`seq`, also the
// `event_id`) across its runs and keeps the latest ones for replay.
import { z } from "zod";
import { isAuthMatching } from "../../core/auth-filters.ts";
import { fromZodError, isRefineryError, RefineryError } from "../../core/errors.ts";
import type { Thread } from "../../core/storage/types.ts";
import type { RequestAuth } from "../auth/request.ts";
import type { AppDeps } from "../context.ts";
import { publicValues } from "../redact.ts";
import type { RunService } from "../run-service.ts";
import {
  isSupportedChannel,
  lifecycleOf,
  RunEventConverter,
  type DraftEvent,
  type EventFilter,
  type ProtocolEvent,
} from "./events.ts";

/** Limits that keep one thread or connection from holding unbounded memory. */
export const PROTOCOL_LIMITS = {
  /** Events a thread keeps for replay (older ones are dropped first). */
  eventsPerThread: 2_000,
  /** SSE streams and WebSocket connections open on one thread. */
  sinksPerThread: 64,
  /** Subscriptions on one WebSocket connection. */
  subscriptionsPerConnection: 64,
  /** Commands one WebSocket connection may have in flight. */
  commandsInFlight: 16,
  /** Largest WebSocket message accepted (bytes); the connection closes with 1009 above it. */
  maxMessageBytes: 1024 * 1024,
  /** Bytes queued to a slow client before its connection is dropped. */
  maxBufferedBytes: 16 * 1024 * 1024,
  /** Namespaces, segments and channels one filter may name. */
  maxFilterEntries: 64,
  /** How long a thread with no stream and no run keeps its events. */
  idleMs: 60_000,
  /** Thread records kept (idle ones beyond it are dropped, oldest first). */
  maxThreads: 10_000,
};

export type ProtocolResponse =
  | { type: "success"; id: number; result: unknown; meta?: Record<string, unknown> }
  | { type: "error"; id: number | null; error: string; message: string };

export interface Sink {
  id: string;
  auth: RequestAuth;
  /** True once the caller is known to reach the thread (it may not exist yet when the sink opens). */
  verified: boolean;
  accepts(event: ProtocolEvent): boolean;
  send(event: ProtocolEvent): void;
  /** Ends the stream (the caller may not read the thread it waited on). */
  end(reason: "forbidden" | "closed"): void;
}

interface ThreadRecord {
  threadId: string;
  seq: number;
  events: ProtocolEvent[];
  /** seq before the current run's first event (a WebSocket subscription replays the run's). */
  runStartSeq: number;
  sinks: Map<string, Sink>;
  assistantId?: string;
  graphId?: string;
  currentRunId?: string;
  pump: Promise<void>;
  pumping: number;
  namespaces: Map<string, { namespace: string[]; status: string; graph_name: string }>;
  idleSince: number;
}

const Channels = z
  .array(
    z.string().max(200).refine(isSupportedChannel, {
      message:
        "unsupported channel: use values, updates, messages, tools, lifecycle, input, checkpoints, tasks, custom or custom:<name>",
    }),
  )
  .min(1)
  .max(PROTOCOL_LIMITS.maxFilterEntries);
const Namespaces = z
  .array(z.array(z.string().max(500)).max(PROTOCOL_LIMITS.maxFilterEntries))
  .max(PROTOCOL_LIMITS.maxFilterEntries);

/** Body of POST /threads/{id}/stream/events (the reference's EventsFilterSchema, strict). */
export const EventsFilterBody = z.strictObject({
  channels: Channels,
  namespaces: Namespaces.optional(),
  depth: z.number().int().nonnegative().optional(),
  since: z.number().int().nonnegative().optional(),
});

/** A protocol command (POST /threads/{id}/commands, or one WebSocket message). */
export const ProtocolCommand = z.object({
  id: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  method: z.string().min(1).max(100),
  params: z.record(z.string(), z.unknown()).optional(),
});
export type ProtocolCommandBody = z.infer<typeof ProtocolCommand>;

const SubscribeParams = z.object({
  channels: Channels,
  namespaces: Namespaces.optional(),
  depth: z.number().int().nonnegative().optional(),
});

const Strategy = z.enum(["reject", "rollback", "interrupt", "enqueue"]);
const RunStartParams = z.object({
  assistant_id: z.string().min(1).max(200),
  input: z.unknown().optional(),
  config: z.record(z.string(), z.unknown()).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  context: z.unknown().optional(),
  multitaskStrategy: Strategy.optional(),
  multitask_strategy: Strategy.optional(),
});
const Update = z.union([
  z.record(z.string(), z.unknown()),
  z.array(z.tuple([z.string(), z.unknown()])),
]);
const RespondParams = z.object({
  interrupt_id: z.string().min(1).max(200).optional(),
  response: z.unknown().optional(),
  responses: z
    .array(z.object({ interrupt_id: z.string().min(1).max(200), response: z.unknown() }))
    .min(1)
    .max(100)
    .optional(),
  config: z.record(z.string(), z.unknown()).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  update: Update.optional(),
  goto: z.unknown().optional(),
  strict_resume: z.boolean().optional(),
});
const StateGetParams = z.object({ keys: z.array(z.string()).max(1000).optional() });

/** Stream modes of a protocol run (the channels the events come from; `tools` is added inside). */
const RUN_STREAM_MODES = ["values", "updates", "messages-tuple", "custom", "tasks", "checkpoints"];

export interface ProtocolServiceDeps extends AppDeps {
  runs: RunService;
}

export class ProtocolService {
  private readonly threads = new Map<string, ThreadRecord>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly deps: ProtocolServiceDeps) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), 10_000);
    this.sweeper.unref();
  }

  /**
   * Refuses a caller that cannot read the thread (404, the same answer as a missing thread) and
   * says whether the thread exists: a stream may open before `run.start` creates it.
   */
  async checkThread(auth: RequestAuth, threadId: string): Promise<Thread | undefined> {
    const thread = await this.deps.storage.threads.get(threadId);
    if (!thread) return undefined;
    if (!(await this.canRead(auth, thread))) throw threadNotFound();
    return thread;
  }

  /** The thread, readable by the caller; a missing one answers as another tenant's (404). */
  async requireThread(auth: RequestAuth, threadId: string): Promise<Thread> {
    const thread = await this.checkThread(auth, threadId);
    if (!thread) throw threadNotFound();
    return thread;
  }

  private async canRead(auth: RequestAuth, thread: Thread): Promise<boolean> {
    try {
      const filters = await auth.authorize("threads:read", { thread_id: thread.thread_id }, "read");
      return isAuthMatching(thread.metadata, filters);
    } catch {
      return false;
    }
  }

  private record(threadId: string): ThreadRecord {
    let record = this.threads.get(threadId);
    if (!record) {
      if (this.threads.size >= PROTOCOL_LIMITS.maxThreads) this.sweep(Infinity);
      record = {
        threadId,
        seq: 0,
        events: [],
        runStartSeq: 0,
        sinks: new Map(),
        pump: Promise.resolve(),
        pumping: 0,
        namespaces: new Map(),
        idleSince: Date.now(),
      };
      this.threads.set(threadId, record);
    }
    return record;
  }

  /**
   * Adds a stream to the thread and replays the kept events it accepts (in order, before any live
   * one). `verified`: the caller was checked against the existing thread.
   */
  attach(threadId: string, sink: Sink, replay: (e: ProtocolEvent) => boolean): void {
    if (this.closed) throw new RefineryError("busy", "the server is shutting down");
    const record = this.record(threadId);
    if (record.sinks.size >= PROTOCOL_LIMITS.sinksPerThread) {
      throw new RefineryError(
        "rate_limited",
        `this thread already has ${PROTOCOL_LIMITS.sinksPerThread} event streams open`,
        { field: "thread_id", fix: "close streams you no longer read", retryAfterMs: 1000 },
      );
    }
    record.sinks.set(sink.id, sink);
    if (sink.verified) for (const e of record.events) if (replay(e)) sink.send(e);
  }

  detach(threadId: string, sinkId: string): void {
    const record = this.threads.get(threadId);
    if (!record) return;
    record.sinks.delete(sinkId);
    if (record.sinks.size === 0) record.idleSince = Date.now();
  }

  /** The current run's kept events a new WebSocket subscription replays. */
  runEvents(threadId: string): ProtocolEvent[] {
    const record = this.threads.get(threadId);
    return record ? record.events.filter((e) => e.seq > record.runStartSeq) : [];
  }

  meta(threadId: string): { thread_id: string; applied_through_seq: number } {
    return { thread_id: threadId, applied_through_seq: this.threads.get(threadId)?.seq ?? 0 };
  }

  /** Parses a subscription filter, with the field that is wrong. */
  parseSubscribe(params: unknown): EventFilter {
    const p = SubscribeParams.safeParse(params ?? {});
    if (!p.success) throw fromZodError(p.error, "params", "invalid_input", SubscribeParams);
    return {
      channels: new Set(p.data.channels),
      ...(p.data.namespaces ? { namespaces: p.data.namespaces } : {}),
      ...(p.data.depth !== undefined ? { depth: p.data.depth } : {}),
    };
  }

  /**
   * Runs a command that is not about subscriptions. Throws RefineryError for a request that
   * cannot be served (the HTTP route answers its status; the WebSocket an error message).
   */
  async command(
    auth: RequestAuth,
    threadId: string,
    command: ProtocolCommandBody,
  ): Promise<ProtocolResponse> {
    switch (command.method) {
      case "run.start":
        return this.runStart(auth, threadId, command);
      case "input.respond":
        return this.respond(auth, threadId, command);
      case "state.get":
        return this.stateGet(auth, threadId, command);
      case "agent.getTree":
        await this.requireThread(auth, threadId);
        return this.success(threadId, command.id, { tree: this.tree(threadId) });
      case "subscription.reconnect":
        return protocolError(
          command.id,
          "not_supported",
          "subscription.reconnect is not supported by this server yet.",
        );
      default:
        return protocolError(
          command.id,
          "unknown_command",
          `Unknown protocol command: ${command.method}`,
        );
    }
  }

  private success(threadId: string, id: number, result: unknown): ProtocolResponse {
    return { type: "success", id, result, meta: this.meta(threadId) };
  }

  private async runStart(
    auth: RequestAuth,
    threadId: string,
    command: ProtocolCommandBody,
  ): Promise<ProtocolResponse> {
    const p = RunStartParams.safeParse(command.params ?? {});
    if (!p.success) throw fromZodError(p.error, "params", "invalid_input", RunStartParams);
    const params = p.data;
    const record = this.record(threadId);
    if (record.assistantId !== undefined && record.assistantId !== params.assistant_id) {
      return protocolError(
        command.id,
        "invalid_argument",
        `Thread ${threadId} is bound to assistant ${record.assistantId}; cannot run ${params.assistant_id}.`,
      );
    }
    // Input on a thread waiting at an interrupt answers it (as the reference does).
    const thread = await this.checkThread(auth, threadId);
    const pending = thread ? pendingInterrupts(thread) : [];
    const resume = params.input !== undefined && params.input !== null && pending.length > 0;
    const run = await this.startRun(auth, record, {
      assistant_id: params.assistant_id,
      ...(resume ? { command: { resume: params.input } } : { input: params.input ?? null }),
      ...(params.config ? { config: params.config } : {}),
      ...(params.metadata ? { metadata: params.metadata } : {}),
      ...(params.context !== undefined ? { context: params.context } : {}),
      multitask_strategy: params.multitask_strategy ?? params.multitaskStrategy ?? "enqueue",
    });
    record.assistantId = params.assistant_id;
    return this.success(threadId, command.id, { run_id: run.run_id });
  }

  private async respond(
    auth: RequestAuth,
    threadId: string,
    command: ProtocolCommandBody,
  ): Promise<ProtocolResponse> {
    const p = RespondParams.safeParse(command.params ?? {});
    if (!p.success) throw fromZodError(p.error, "params", "invalid_input", RespondParams);
    const params = p.data;
    const answers = params.responses
      ? params.responses.map((r) => [r.interrupt_id, r.response] as const)
      : params.interrupt_id
        ? [[params.interrupt_id, params.response] as const]
        : [];
    if (answers.length === 0) {
      throw new RefineryError("invalid_input", "input.respond requires an interrupt_id", {
        field: "params.interrupt_id",
        fix: "send {interrupt_id, response} or {responses: [{interrupt_id, response}, ...]}",
      });
    }
    const thread = await this.requireThread(auth, threadId);
    const pending = pendingInterrupts(thread);
    if (pending.length === 0) {
      return protocolError(
        command.id,
        "invalid_argument",
        "input.respond can only be used while the run is interrupted.",
      );
    }
    const ids = new Set(pending.map((i) => i.id));
    const unknown = answers.find(([id]) => !ids.has(id));
    if (unknown) {
      throw new RefineryError("invalid_input", `no pending interrupt has id "${unknown[0]}"`, {
        field: params.responses ? "params.responses" : "params.interrupt_id",
        fix: `answer one of the thread's pending interrupts: ${[...ids].join(", ")}`,
      });
    }
    // One interrupt answered: its value as is (graphs and approvals read it directly); several:
    // LangGraph's map of interrupt id to value.
    const resume =
      pending.length === 1 && answers.length === 1
        ? answers[0]![1]
        : Object.fromEntries(answers.map(([id, value]) => [id, value]));
    const record = this.record(threadId);
    const assistantId =
      record.assistantId ??
      (typeof thread.metadata.assistant_id === "string"
        ? thread.metadata.assistant_id
        : String(thread.metadata.graph_id));
    await this.startRun(auth, record, {
      assistant_id: assistantId,
      command: {
        resume,
        ...(params.update !== undefined ? { update: params.update } : {}),
        ...(params.goto !== undefined ? { goto: params.goto } : {}),
      },
      ...(params.config ? { config: params.config } : {}),
      ...(params.metadata ? { metadata: params.metadata } : {}),
      multitask_strategy: "reject",
    });
    record.assistantId ??= assistantId;
    return this.success(threadId, command.id, {});
  }

  private async stateGet(
    auth: RequestAuth,
    threadId: string,
    command: ProtocolCommandBody,
  ): Promise<ProtocolResponse> {
    const p = StateGetParams.safeParse(command.params ?? {});
    if (!p.success) throw fromZodError(p.error, "params", "invalid_input", StateGetParams);
    const thread = await this.requireThread(auth, threadId);
    const values = publicValues(thread.values ?? {}) as Record<string, unknown>;
    const keys = p.data.keys;
    const filtered =
      keys && values && typeof values === "object"
        ? Object.fromEntries(Object.entries(values).filter(([k]) => keys.includes(k)))
        : values;
    const tuple = await this.deps.checkpointer.getTuple({
      configurable: { thread_id: threadId, checkpoint_ns: "" },
    });
    const id = tuple?.config.configurable?.checkpoint_id;
    return this.success(threadId, command.id, {
      values: filtered,
      ...(typeof id === "string" ? { checkpoint: { id, ns: "" } } : {}),
    });
  }

  /** Creates the run (the run service checks everything), then follows its events. */
  private async startRun(
    auth: RequestAuth,
    record: ThreadRecord,
    body: Record<string, unknown>,
  ): Promise<{ run_id: string }> {
    const { run } = await this.deps.runs.create(
      auth,
      record.threadId,
      { ...body, stream_mode: RUN_STREAM_MODES, stream_subgraphs: true, if_not_exists: "create" },
      { internalStreamModes: ["tools"] },
    );
    record.currentRunId = run.run_id;
    const graphId = run.kwargs.config.configurable?.graph_id;
    record.graphId = typeof graphId === "string" ? graphId : record.graphId;
    const graphName = record.graphId ?? String(body.assistant_id);
    // The run's first event ("running") is out before the command answers, as the reference
    // does, unless an earlier run of the thread is still being followed (it comes after that).
    const announceNow = record.pumping === 0;
    if (announceNow) await this.beginRun(record, graphName);
    record.pumping += 1;
    // Runs of a thread are followed one after another, in the order they were started.
    record.pump = record.pump
      .then(async () => {
        if (!announceNow) await this.beginRun(record, graphName);
        await this.follow(record, run.run_id, graphName);
      })
      .catch((err: unknown) =>
        this.deps.log("warn", "protocol stream failed", {
          thread_id: record.threadId,
          run_id: run.run_id,
          message: (err as Error).message,
        }),
      )
      .finally(() => {
        record.pumping -= 1;
        record.idleSince = Date.now();
      });
    return run;
  }

  /** Checks the thread's streams against it, then announces the run ("running"). */
  private async beginRun(record: ThreadRecord, graphName: string): Promise<void> {
    // Only callers who may read the thread keep their streams: checked again for every run (a
    // stream may have opened before the thread existed, or its metadata may have changed).
    const thread = await this.deps.storage.threads.get(record.threadId);
    for (const sink of [...record.sinks.values()]) {
      if (thread && (await this.canRead(sink.auth, thread))) {
        if (sink.verified) continue;
        sink.verified = true;
        for (const e of record.events) if (sink.accepts(e)) sink.send(e);
      } else {
        record.sinks.delete(sink.id);
        sink.end("forbidden");
      }
    }
    record.runStartSeq = record.seq;
    record.namespaces.clear();
    this.emit(record, [lifecycle([], "running", graphName)]);
  }

  private async follow(record: ThreadRecord, runId: string, name: string): Promise<void> {
    const converter = new RunEventConverter();
    let failed: string | undefined;
    for await (const e of this.deps.hub.subscribe(runId, undefined)) {
      if (e.event === "metadata") continue;
      if (e.event === "error") {
        const data = e.data as { message?: unknown } | null;
        failed = typeof data?.message === "string" ? data.message : "run failed";
        continue;
      }
      this.emit(record, converter.convert(e.event, e.data));
    }
    const tail: DraftEvent[] = converter.finishAll();
    const run = await this.deps.storage.runs.get(runId);
    if (!run) {
      this.emit(record, tail);
      return; // rolled back: the run and its events are gone
    }
    let status = lifecycleOf(run.status);
    if (failed !== undefined || run.status === "error" || run.status === "timeout") {
      status = "failed";
    } else if (status === "completed") {
      const after = await this.deps.storage.threads.get(record.threadId);
      const pending = after ? pendingInterrupts(after) : [];
      if (pending.length > 0) {
        status = "interrupted";
        tail.push(...converter.interrupts([], pending));
      }
    }
    if (status === "running") status = "interrupted";
    const error =
      status === "failed"
        ? (failed ?? (run.error as { message?: string } | undefined)?.message ?? "run failed")
        : undefined;
    tail.push(lifecycle([], status, name, error));
    this.emit(record, tail);
  }

  private emit(record: ThreadRecord, drafts: DraftEvent[]): void {
    for (const draft of drafts) {
      record.seq += 1;
      const event: ProtocolEvent = {
        type: "event",
        event_id: String(record.seq),
        seq: record.seq,
        ...draft,
      };
      this.trackNamespace(record, event);
      record.events.push(event);
      if (record.events.length > PROTOCOL_LIMITS.eventsPerThread)
        record.events.splice(0, record.events.length - PROTOCOL_LIMITS.eventsPerThread);
      for (const sink of record.sinks.values())
        if (sink.verified && sink.accepts(event)) sink.send(event);
    }
  }

  private trackNamespace(record: ThreadRecord, event: ProtocolEvent): void {
    const ns = event.params.namespace;
    for (let n = 1; n <= ns.length; n += 1) {
      const part = ns.slice(0, n);
      const key = part.join("\0");
      if (!record.namespaces.has(key))
        record.namespaces.set(key, {
          namespace: part,
          status: "started",
          graph_name: part.at(-1)!.split(":")[0]!,
        });
    }
    if (event.method === "lifecycle") {
      const data = event.params.data as { event: string; graph_name: string };
      record.namespaces.set(ns.join("\0"), {
        namespace: ns,
        status: data.event,
        graph_name: data.graph_name,
      });
    }
  }

  private tree(threadId: string): unknown {
    const record = this.threads.get(threadId);
    const nodes = record?.namespaces ?? new Map();
    const build = (namespace: string[]): Record<string, unknown> => {
      const key = namespace.join("\0");
      const own = nodes.get(key) ?? {
        namespace,
        status: "started",
        graph_name: namespace.length
          ? namespace.at(-1)!.split(":")[0]!
          : (record?.graphId ?? "root"),
      };
      const children = [...nodes.values()]
        .filter(
          (c: { namespace: string[] }) =>
            c.namespace.length === namespace.length + 1 &&
            namespace.every((s, i) => c.namespace[i] === s),
        )
        .sort((a: { namespace: string[] }, b: { namespace: string[] }) =>
          JSON.stringify(a.namespace).localeCompare(JSON.stringify(b.namespace)),
        )
        .map((c: { namespace: string[] }) => build(c.namespace));
      return { ...own, ...(children.length ? { children } : {}) };
    };
    return build([]);
  }

  /** Drops idle threads' records (no stream, no run) after PROTOCOL_LIMITS.idleMs, or all idle ones. */
  private sweep(now: number): void {
    for (const [id, record] of this.threads) {
      const idle = record.sinks.size === 0 && record.pumping === 0;
      if (idle && (now === Infinity || record.idleSince + PROTOCOL_LIMITS.idleMs <= now))
        this.threads.delete(id);
    }
  }

  /** Threads and streams held (for tests and metrics). */
  stats(): { threads: number; sinks: number } {
    let sinks = 0;
    for (const r of this.threads.values()) sinks += r.sinks.size;
    return { threads: this.threads.size, sinks };
  }

  /** Ends every stream (server shutdown). */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const record of this.threads.values()) {
      for (const sink of record.sinks.values()) sink.end("closed");
      record.sinks.clear();
    }
  }
}

function threadNotFound(): RefineryError {
  return new RefineryError("not_found", "Thread not found", {
    field: "thread_id",
    fix: "no thread with this id that you can reach (run.start creates one)",
  });
}

function lifecycle(
  namespace: string[],
  event: string,
  graphName: string,
  error?: string,
): DraftEvent {
  return {
    method: "lifecycle",
    params: {
      namespace,
      timestamp: Date.now(),
      data: { event, graph_name: graphName, ...(error !== undefined ? { error } : {}) },
    },
  };
}

/** The interrupts a thread waits on (`{id, value}` each). */
function pendingInterrupts(thread: Thread): { id: string; value: unknown }[] {
  if (thread.status !== "interrupted") return [];
  return Object.values(thread.interrupts ?? {})
    .flat()
    .filter(
      (i): i is { id: string; value: unknown } => typeof (i as { id?: unknown })?.id === "string",
    );
}

export function protocolError(id: number | null, error: string, message: string): ProtocolResponse {
  return { type: "error", id, error, message };
}

/** A thrown error as a protocol error message (RefineryError: its code and full sentence). */
export function asProtocolError(id: number | null, err: unknown): ProtocolResponse {
  if (isRefineryError(err)) return protocolError(id, err.code, err.toLine());
  const status = (err as { status?: unknown })?.status;
  if (typeof status === "number" && status >= 400 && status < 500)
    return protocolError(id, "forbidden", (err as Error).message);
  return protocolError(id, "unknown_error", "Internal server error");
}
