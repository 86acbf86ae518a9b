// Storage contracts for assistants, threads, runs and crons. The server and the run executor
// only see these interfaces; SQLite (core/storage/sqlite/storage.ts, the embedded default) and Postgres
// (core/storage/postgres/, for several processes on one database; not yet selectable in the
// server) implement them and both run the conformance suite in test/storage. Storage never knows
// HTTP: it returns undefined / false or throws RefineryError, and the server maps codes to statuses.

export type ThreadStatus = "idle" | "busy" | "interrupted" | "error";
export type RunStatus = "pending" | "running" | "error" | "success" | "timeout" | "interrupted";
export type MultitaskStrategy = "reject" | "interrupt" | "rollback" | "enqueue";
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Metadata = Record<string, unknown>;

export interface AssistantConfig {
  tags?: string[];
  recursion_limit?: number;
  configurable?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Assistant {
  assistant_id: string;
  graph_id: string;
  config: AssistantConfig;
  context: Record<string, unknown>;
  metadata: Metadata;
  name: string;
  description: string | null;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface NewAssistant {
  assistant_id: string;
  graph_id: string;
  config?: AssistantConfig;
  context?: Record<string, unknown>;
  metadata?: Metadata;
  name?: string;
  description?: string | null;
}

export interface AssistantPatch {
  graph_id?: string;
  config?: AssistantConfig;
  context?: Record<string, unknown>;
  metadata?: Metadata;
  name?: string;
  description?: string | null;
}

export interface SearchPage {
  limit?: number;
  offset?: number;
  sort_by?: string;
  sort_order?: "asc" | "desc";
}

export interface AssistantQuery extends SearchPage, Access {
  graph_id?: string;
  name?: string;
  metadata?: Metadata;
}

/**
 * Which rows a caller may touch: rows whose metadata matches `filters` (an auth handler's, see
 * AuthFilters); with `system`, assistants made by the server (`metadata.created_by: "system"`)
 * match too (they are readable by everyone). No filters: every row.
 */
export interface Access {
  filters?: AuthFilters;
  system?: boolean;
}

export interface AssistantStore {
  /** Creates version 1. `ifExists: "do_nothing"` returns the existing one instead of failing. */
  create(input: NewAssistant, ifExists?: "raise" | "do_nothing"): Promise<Assistant>;
  /** The assistant, or undefined when it does not exist or `access` does not reach it. */
  get(assistantId: string, access?: Access): Promise<Assistant | undefined>;
  /** Writes a new version (fields not given are carried over) and makes it the latest. */
  update(
    assistantId: string,
    patch: AssistantPatch,
    access?: Access,
  ): Promise<Assistant | undefined>;
  delete(assistantId: string, access?: Access): Promise<boolean>;
  search(query: AssistantQuery): Promise<Assistant[]>;
  count(query: Omit<AssistantQuery, keyof SearchPage>): Promise<number>;
  /** Versions whose metadata matches `query.metadata` and `query.filters`. */
  versions(
    assistantId: string,
    query?: { limit?: number; offset?: number; metadata?: Metadata } & Access,
  ): Promise<Assistant[]>;
  setLatest(assistantId: string, version: number, access?: Access): Promise<Assistant | undefined>;
}

export interface Thread {
  thread_id: string;
  created_at: string;
  updated_at: string;
  metadata: Metadata;
  status: ThreadStatus;
  values: Record<string, unknown> | null;
  interrupts: Record<string, unknown[]>;
  config: Record<string, unknown>;
  error: { error: string; message: string } | null;
}

export interface ThreadQuery extends SearchPage, Access {
  ids?: string[];
  metadata?: Metadata;
  values?: Record<string, unknown>;
  status?: ThreadStatus;
}

export interface ThreadSnapshot {
  status: ThreadStatus;
  values: Record<string, unknown> | null;
  interrupts: Record<string, unknown[]>;
  error?: { error: string; message: string } | null;
}

export interface ThreadStore {
  /** `ttl_ms`: the thread expires that long after its last update (see `expired`). */
  create(
    input: { thread_id: string; metadata?: Metadata; ttl_ms?: number },
    ifExists?: "raise" | "do_nothing",
  ): Promise<Thread>;
  /** The thread, or undefined when it does not exist or `access` does not reach it. */
  get(threadId: string, access?: Access): Promise<Thread | undefined>;
  /** Merges metadata (shallow); `ttl_ms` sets (null: removes) the TTL. Moves the expiry on. */
  update(
    threadId: string,
    patch: { metadata?: Metadata; ttl_ms?: number | null },
    access?: Access,
  ): Promise<Thread | undefined>;
  /** Deletes the thread, its runs and its crons. Checkpoints are deleted by the caller's checkpointer. */
  delete(threadId: string, access?: Access): Promise<boolean>;
  search(query: ThreadQuery): Promise<Thread[]>;
  count(query: Omit<ThreadQuery, keyof SearchPage | "ids">): Promise<number>;
  /** Records the thread's state after a run or a state update. */
  setSnapshot(threadId: string, snapshot: ThreadSnapshot): Promise<void>;
  /**
   * Up to `limit` threads whose TTL ran out by `nowMs` (epoch ms) and that have no run pending or
   * running, oldest expiry first. The caller deletes them (checkpoints, then the thread).
   */
  expired(nowMs: number, limit: number): Promise<string[]>;
}

export interface RunKwargs {
  input?: unknown;
  command?: { resume?: unknown; update?: unknown; goto?: unknown } | null;
  config: {
    tags?: string[];
    recursion_limit?: number;
    configurable: Record<string, unknown>;
    metadata?: Metadata;
  };
  context?: unknown;
  stream_mode: string[];
  /** stream_subgraphs: subgraphs' chunks are streamed too (named as the LangGraph server does). */
  subgraphs?: boolean;
  /** stream_resumable: the client asked for a stream it can reconnect to. */
  resumable?: boolean;
  interrupt_before?: string[] | "*";
  interrupt_after?: string[] | "*";
  on_disconnect?: "cancel" | "continue";
  webhook?: string;
  /** Stateless runs: the thread is deleted when the run ends. */
  temporary?: boolean;
  /** Checkpoint the thread was at when the run was created (for rollback). */
  checkpoint_before?: string | null;
  /** Rating keys accepted by POST .../runs/{run_id}/feedback (any key when absent). */
  feedback_keys?: string[];
}

export interface Run {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  created_at: string;
  updated_at: string;
  status: RunStatus;
  metadata: Metadata;
  multitask_strategy: MultitaskStrategy;
  kwargs: RunKwargs;
  /** How many times a worker has started this run (crash recovery increments it). */
  attempt: number;
  error: { error: string; message: string } | null;
  /**
   * Of those attempts, how many the database's failure cut short (a step or the run's
   * bookkeeping met a retryable storage error): they do not count against the attempt budget.
   * Internal (not in API answers); absent when none.
   */
  lost_to_storage?: number;
}

export interface NewRun {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  graph_id: string;
  metadata?: Metadata;
  multitask_strategy: MultitaskStrategy;
  kwargs: RunKwargs;
  /** Earliest start (ISO time); defaults to now. */
  not_before?: string;
  /** The caller's data partition (its tenant); the per-partition cap counts runs by it. */
  partition?: string;
  /**
   * "running" (attempt 1): a run the caller executes itself, in its own process (the CLI), so
   * no executor ever claims it. Default "pending": queued for an executor.
   */
  status?: "pending" | "running";
  /** Merged over the thread's `config` (key by key at the top level) when the run is inserted. */
  thread_config?: Record<string, unknown>;
}

/** Who executes a claimed run, and for how long without a heartbeat (renewLeases). */
export interface RunLease {
  /** The executor's id: host, process id and a random instance id (see server/leases.ts). */
  owner: string;
  ttlMs: number;
}

/**
 * Named leases for duties exactly one process does at a time (approval deadlines, crons, the
 * thread TTL sweep): whoever holds a name does the duty until it stops renewing.
 */
export interface DutyLeaseStore {
  /**
   * Takes or renews the lease `name` for `owner` for `ttlMs`: true when `owner` holds it now
   * (it was free, lapsed, or already its own), false when another owner holds it.
   */
  acquire(name: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up if `owner` holds it (a graceful stop), so another takes it at once. */
  release(name: string, owner: string): Promise<void>;
  /** The holders of those of `names` whose lease has not lapsed, by name. */
  holders(names: string[]): Promise<Map<string, string>>;
  /**
   * Deletes the leases whose name starts with `prefix` and that lapsed more than `graceMs` ago;
   * returns how many. Leases named per item (a cancel's `cancel:<run_id>`) are released by their
   * holder, so only a holder that died leaves one behind; this keeps those from piling up.
   */
  sweep(prefix: string, graceMs: number): Promise<number>;
}

/** A run webhook call waiting in the outbox: queued with the run's end, delivered by one process. */
export interface WebhookDelivery {
  run_id: string;
  url: string;
  /** The JSON POSTed to `url`. */
  body: string;
  /** Attempts made so far. */
  attempts: number;
}

/**
 * The durable outbox of run webhooks (RunStore.finish queues them): a process that holds the
 * "webhooks" duty delivers due calls and settles each one, so a call survives restarts.
 */
export interface WebhookOutboxStore {
  /** Calls due now (never attempted, or past their retry time), oldest first, at most `limit`. */
  due(limit: number): Promise<WebhookDelivery[]>;
  /** Delivered, or given up: the call leaves the outbox. */
  settle(runId: string): Promise<void>;
  /** This attempt failed: the call is due again `delayMs` from now, with one more attempt counted. */
  retry(runId: string, delayMs: number, error: string): Promise<void>;
  /** Calls in the outbox (due or waiting for a retry). */
  count(): Promise<number>;
}

export type CreateRunResult =
  | { created: true; run: Run; inflight: Run[] }
  | {
      created: false;
      inflight: Run[];
      /**
       * `inflight`: the thread has runs in flight; `partition_limit`: the partition's cap;
       * `not_interrupted`: a resume found the thread no longer waiting (someone answered first).
       */
      reason: "inflight" | "partition_limit" | "not_interrupted";
    };

export interface RunStore {
  /**
   * Atomically: when `rejectIfInflight` and the thread has a pending or running run, inserts
   * nothing and returns those; otherwise inserts the run as pending and marks the thread busy
   * (recording graph_id / assistant_id in the thread's metadata, as the reference server does).
   * With `partitionLimit`, inserts nothing when the run's partition already has that many runs
   * pending or running. With `requireInterrupted` (a resume), inserts nothing unless the thread is
   * interrupted with no run in flight, so of two resumes of one interrupt exactly one is created.
   */
  create(
    run: NewRun,
    options: { rejectIfInflight: boolean; partitionLimit?: number; requireInterrupted?: boolean },
  ): Promise<CreateRunResult>;
  get(runId: string, threadId?: string): Promise<Run | undefined>;
  list(
    threadId: string,
    query?: { limit?: number; offset?: number; status?: RunStatus },
  ): Promise<Run[]>;
  delete(runId: string, threadId: string): Promise<boolean>;
  /**
   * Cancels a run that has not started, in one step: `rollback` deletes it, `interrupt` marks it
   * interrupted. False when it is no longer pending (claimed meanwhile, or ended): a cancel that
   * read it as pending must not delete a run that is executing.
   */
  cancelPending(runId: string, action: "interrupt" | "rollback"): Promise<boolean>;
  inflight(threadId: string): Promise<Run[]>;
  /** Every pending or running run of every thread, oldest first (bulk cancel by status). */
  allInflight(): Promise<Run[]>;
  /**
   * Claims the oldest pending run that is due and whose thread has no running run, marks it
   * running and increments its attempt. Returns undefined when nothing is claimable. With `lease`,
   * the run is leased to `lease.owner` for `lease.ttlMs`: renewLeases keeps it, reclaimRunning
   * takes it back once it lapses. Without, it is leased to nobody (a lease-less running run is
   * reclaimed when reclaimRunning's `gone` says so).
   */
  claimNext(lease?: RunLease): Promise<Run | undefined>;
  /**
   * Heartbeat: moves the lease of each of `runIds` that is running and leased to `owner` to
   * `ttlMs` from now. Returns the ids whose lease `owner` no longer holds (reclaimed by another
   * process, or ended): their executor must stop executing them.
   */
  renewLeases(owner: string, runIds: string[], ttlMs: number): Promise<string[]>;
  /** Sets a terminal or intermediate status; returns the updated run. */
  setStatus(
    runId: string,
    status: RunStatus,
    error?: { error: string; message: string } | null,
  ): Promise<Run | undefined>;
  /**
   * Ends a run in one atomic step: its status and error, and the snapshot of its thread (values,
   * interrupts, error) with the thread's status, which becomes "busy" instead when another run of
   * the thread is pending. Without `thread` (a temporary thread about to be deleted) only the run.
   * With `attempt` (a worker ending the run it executed) nothing changes unless the run is still
   * running as that attempt: another worker may have taken it over after its lease lapsed, and
   * that one ends it. Returns whether the run was ended.
   */
  finish(
    runId: string,
    status: RunStatus,
    error: { error: string; message: string } | null,
    thread?: { threadId: string; snapshot: ThreadSnapshot },
    /** The run's webhook call, queued in the outbox in the same step (webhooks below). */
    webhook?: { url: string; body: string },
    attempt?: number,
  ): Promise<boolean>;
  /** Records the thread's checkpoint when the run first started (used by rollback and crash recovery). */
  setCheckpointBefore(runId: string, checkpointId: string | null): Promise<void>;
  /**
   * Crash recovery, by any process at any time: running runs whose lease lapsed, or for which
   * `gone(run, owner)` is true (`owner`: the lease holder, null for a run leased to nobody, e.g.
   * one the CLI executes), go back to pending, and are returned. A later claim continues them
   * from their last checkpoint as attempt + 1. With `exhausted`, those already on attempt
   * `exhausted.attempts` (or later) end with status "error" and `exhausted.error` instead. Each
   * run is reclaimed by exactly one caller.
   */
  reclaimRunning(options?: {
    gone?: (run: Run, owner: string | null) => boolean;
    /**
     * Of the runs reclaimed, those whose attempt the database's failure cut short: their
     * `lost_to_storage` grows by one (before `exhausted` is checked), so that attempt does not count.
     */
    storageLost?: (run: Run, owner: string | null) => boolean;
    /** Counted attempts are `attempt - lost_to_storage`. */
    exhausted?: { attempts: number; error: { error: string; message: string } };
  }): Promise<Run[]>;
  /**
   * A run lost while running (its thread died, its bookkeeping failed) goes back to pending, to
   * continue from its last checkpoint. With `storageLost` (the database's failure cut the attempt
   * short) its `lost_to_storage` grows by one. Returns false, changing nothing, unless the run is
   * running as `attempt`.
   */
  requeue(runId: string, attempt: number, options?: { storageLost?: boolean }): Promise<boolean>;
  countByStatus(): Promise<Record<RunStatus, number>>;
}

/** What to do with a stateless cron's thread once its run ends. */
export type CronOnRunCompleted = "delete" | "keep";

/** A scheduled run (LangGraph's cron): a run payload fired on a cron schedule. */
export interface Cron {
  cron_id: string;
  assistant_id: string;
  /** The thread every firing runs on; null: a stateless cron (a new thread per firing). */
  thread_id: string | null;
  /** Stateless crons only: the thread of each firing is deleted when its run ends, or kept. */
  on_run_completed: CronOnRunCompleted | null;
  /** No firing after this time (ISO); null: none. */
  end_time: string | null;
  /** A 5-field cron expression (minute hour day-of-month month day-of-week). */
  schedule: string;
  /** IANA time zone the schedule is read in; null: UTC. */
  timezone: string | null;
  created_at: string;
  updated_at: string;
  /** The run create body each firing sends (assistant_id, input, config, …). */
  payload: Record<string, unknown>;
  /** The identity of the user who made it; null without auth. */
  user_id: string | null;
  /** When it fires next (ISO, UTC); null when it never will (past end_time). */
  next_run_date: string | null;
  metadata: Metadata;
  enabled: boolean;
}

/**
 * Who a cron's runs are made for: what a request of its creator carried, so each firing is a
 * run that creator could have made (same auth handler, tenant, partition and caps). Never shown.
 */
export interface CronOwner {
  user?: Record<string, unknown>;
  scopes: string[];
  partition: string;
  storePartition?: string;
}

export interface NewCron extends Omit<Cron, "created_at" | "updated_at"> {
  owner: CronOwner;
}

/** Fields a PATCH may change; `next_run_date` is recomputed by the caller when the schedule moves. */
export type CronPatch = Partial<
  Pick<
    Cron,
    | "schedule"
    | "timezone"
    | "end_time"
    | "payload"
    | "metadata"
    | "enabled"
    | "on_run_completed"
    | "next_run_date"
  >
>;

export interface CronQuery extends SearchPage, Access {
  assistant_id?: string;
  thread_id?: string;
  enabled?: boolean;
  metadata?: Metadata;
}

/** A cron as the scheduler sees it: with its owner. */
export interface DueCron extends Cron {
  owner: CronOwner;
  /** The firing this caller claimed (the next_run_date it advanced from). */
  fire_at: string;
}

export interface CronStore {
  /**
   * Inserts it, unless `partitionLimit` is given and the owner's partition already has that many
   * crons: then inserts nothing and returns undefined.
   */
  create(input: NewCron, options?: { partitionLimit?: number }): Promise<Cron | undefined>;
  /** The cron, or undefined when it does not exist or `access` does not reach it. */
  get(cronId: string, access?: Access): Promise<Cron | undefined>;
  /** Applies the patch (metadata merged, shallow); undefined when `access` does not reach it. */
  update(cronId: string, patch: CronPatch, access?: Access): Promise<Cron | undefined>;
  delete(cronId: string, access?: Access): Promise<boolean>;
  search(query: CronQuery): Promise<Cron[]>;
  count(query: Omit<CronQuery, keyof SearchPage>): Promise<number>;
  /**
   * Claims the firings due at `now` (ISO), at most `limit`: for each enabled cron whose
   * next_run_date is at or before `now`, in one transaction, records the firing (cron_id,
   * fire time) under a unique key and moves next_run_date to `next(cron)` only if it still is the
   * fire time it read. Of several processes sharing the database exactly one claims each
   * firing; a cron due many times over (the server was down) is claimed once. `next` gets the
   * cron and returns its next fire time after `now` (or null: it never fires again).
   */
  claimDue(now: string, limit: number, next: (cron: Cron) => string | null): Promise<DueCron[]>;
  /** Records the run a claimed firing made (or why it made none). */
  recordFiring(
    cronId: string,
    fireAt: string,
    outcome: { run_id?: string; error?: string },
  ): Promise<void>;
}

export interface Storage {
  assistants: AssistantStore;
  threads: ThreadStore;
  runs: RunStore;
  crons: CronStore;
  duties: DutyLeaseStore;
  webhooks: WebhookOutboxStore;
  close(): Promise<void>;
}

/**
 * Row filters from an auth handler (LangGraph semantics, core/auth-filters.ts): every key must
 * match the row's metadata; a plain value or `{$eq}` is strict equality, `{$contains}` asks an
 * array field to hold the value (every value of a list).
 */
export type AuthFilters = Record<string, unknown>;
