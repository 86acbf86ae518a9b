// How the job table (eval-jobs.ts) talks to whatever executes evaluation jobs: an eval thread
// (eval-threads.ts, messages below) or the server thread (eval-inline.ts). One interface, one
// message per line of it.
import { ERROR_CODES, isRefineryError, RefineryError, type ErrorCode } from "../core/errors.ts";
import type {
  EvalJobProgress,
  EvalJobSpec,
  EvalSummary,
  ItemRecord,
} from "../graphs/eval/index.ts";
import type { LogLevel } from "./log.ts";

/** An error crossing threads: a RefineryError keeps its code, field and fix. */
export interface WireError {
  code: ErrorCode | string;
  message: string;
  field?: string;
  fix?: string;
}

export function toWireError(err: unknown): WireError {
  if (isRefineryError(err)) {
    return {
      code: err.code,
      message: err.message,
      ...(err.field ? { field: err.field } : {}),
      ...(err.fix ? { fix: err.fix } : {}),
    };
  }
  return { code: "internal", message: (err as Error)?.message ?? String(err) };
}

export function fromWireError(wire: WireError): RefineryError {
  const code = (Object.hasOwn(ERROR_CODES, wire.code) ? wire.code : "internal") as ErrorCode;
  return new RefineryError(code, wire.message, { field: wire.field, fix: wire.fix });
}

/** What an executor reports about one job it was handed, in this order. */
export interface EvalJobEvents {
  /** The job is in a thread (`threadId`: worker_threads' id, 0 for the server's main thread). */
  started(threadId: number): void;
  /** Its items and options are valid; it runs. */
  accepted(): void;
  record(record: ItemRecord, seed: number | undefined): void;
  progress(progress: EvalJobProgress): void;
  /** It ended in its thread: a summary (complete, or interrupted by cancel), or an error. */
  ended(outcome: { summary?: EvalSummary; error?: WireError }): void;
  /** Its thread went away (terminated to stop a job, crashed, or never started) first. */
  lost(reason: string): void;
}

/** Executes evaluation jobs: in eval threads, or in the server thread. */
export interface EvalTarget {
  readonly kind: "eval_thread" | "server_thread";
  /** Starts a job; `existing` holds the records it already has per replicate (a resumed job). */
  start(
    jobId: string,
    spec: EvalJobSpec,
    existing: Map<string, ItemRecord[]>,
    events: EvalJobEvents,
  ): void;
  /**
   * Stops a job: it should end (`ended`, interrupted summary) within `graceMs`; otherwise an eval
   * thread is terminated (`lost` for every job it had) and replaced, and the server thread
   * gives the job up (`lost`) and discards what its work still reports.
   */
  cancel(jobId: string, graceMs: number): void;
  /** Stops everything at once (shutdown); no event follows. */
  close(): Promise<void>;
}

/** workerData of an eval thread. */
export interface EvalThreadData {
  entry: string;
  /** 1-based; its log entries carry it as `eval_thread`. */
  index: number;
  env: Record<string, string | undefined>;
}

/** Server thread → eval thread. */
export type ToEvalThread =
  | {
      type: "start";
      jobId: string;
      spec: EvalJobSpec;
      existing: [string, ItemRecord[]][];
    }
  | { type: "cancel"; jobId: string }
  | { type: "close" };

/** Eval thread → server thread (sent in batches, one per turn of its event loop). */
export type FromEvalThread =
  | { type: "ready"; threadId: number }
  | { type: "failed"; error: WireError }
  | { type: "accepted"; jobId: string }
  | { type: "record"; jobId: string; seed?: number; record: ItemRecord }
  | { type: "progress"; jobId: string; progress: EvalJobProgress }
  | { type: "ended"; jobId: string; summary?: EvalSummary; error?: WireError }
  | { type: "log"; level: LogLevel; msg: string; fields?: Record<string, unknown> };
