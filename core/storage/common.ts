// What the SQLite and Postgres implementations of the storage contracts share: the sortable
// fields (also the enums of the HTTP search bodies), time and access rules, and the shape of a new
// run. Pure: no driver, no SQL.
import { isAuthMatching } from "../auth-filters.ts";
import { RefineryError } from "../errors.ts";
import type { Access, NewRun, Run } from "./types.ts";

export const ASSISTANT_SORT_FIELDS = [
  "assistant_id",
  "graph_id",
  "name",
  "created_at",
  "updated_at",
] as const;
export const THREAD_SORT_FIELDS = ["thread_id", "status", "created_at", "updated_at"] as const;
export const CRON_SORT_FIELDS = [
  "cron_id",
  "assistant_id",
  "thread_id",
  "created_at",
  "updated_at",
  "next_run_date",
] as const;

export const ASSISTANT_SORT: ReadonlySet<string> = new Set(ASSISTANT_SORT_FIELDS);
export const THREAD_SORT: ReadonlySet<string> = new Set(THREAD_SORT_FIELDS);
export const CRON_SORT: ReadonlySet<string> = new Set(CRON_SORT_FIELDS);

export const now = (): string => new Date().toISOString();
export const j = (v: unknown): string => JSON.stringify(v ?? null);

/** A run's `not_before` as UTC ISO (so stored times order as instants); a 422 when it is no time. */
export function toUtcIso(time: string): string {
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) {
    throw new RefineryError(
      "invalid_input",
      `not_before ${JSON.stringify(time)} is not an ISO time`,
      {
        field: "not_before",
        fix: "give an ISO 8601 time such as 2025-01-01T12:00:00Z",
      },
    );
  }
  return new Date(ms).toISOString();
}

/** Whether a row with this metadata is visible to `access` (system rows when it allows them). */
export const reaches = (metadata: Record<string, unknown>, access: Access | undefined): boolean =>
  !access ||
  (access.system === true && metadata.created_by === "system") ||
  isAuthMatching(metadata, access.filters);

/** The run a `create` inserts, created at `t`. */
export function newRun(input: NewRun, t: string): Run {
  return {
    run_id: input.run_id,
    thread_id: input.thread_id,
    assistant_id: input.assistant_id,
    created_at: t,
    updated_at: t,
    status: input.status ?? "pending",
    metadata: input.metadata ?? {},
    multitask_strategy: input.multitask_strategy,
    kwargs: input.kwargs,
    attempt: input.status === "running" ? 1 : 0,
    error: null,
  };
}
