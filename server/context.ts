// What the routes share: the dependencies of the app and the lookups every route needs
// (assistant by id or graph id, thread or 404, the graph of a thread).
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import type { Request, RequestHandler } from "express";
import { RefineryError } from "../core/errors.ts";
import type { CheckpointAdmin } from "../core/storage/checkpoint-admin.ts";
import type { FeedbackInbox } from "../core/storage/feedback-inbox.ts";
import type { Access, Assistant, Storage, Thread } from "../core/storage/types.ts";
import {
  systemAssistantId,
  type GraphRegistry,
  type HttpSection,
  type RunnableGraph,
} from "../graphs/registry.ts";
import type { LearningLoop } from "../graphs/learning.ts";
import type { UserStore } from "../core/memory/user-store.ts";
import type { EvalJobs } from "./eval-jobs.ts";
import type { RunExecutor } from "./executor.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { AuthBackend } from "./auth/index.ts";
import type { RateLimiter } from "./auth/rate-limit.ts";
import type { CorsOptions } from "./auth/cors.ts";
import { authOf, type AuthEvent, type Operation } from "./auth/request.ts";
import type { StreamHub } from "./stream-hub.ts";
import type { HonoLike } from "./custom-app.ts";
import type { UiBundles } from "./ui-bundle.ts";
import { notFound } from "./http.ts";

/** api: serves HTTP, executes no runs; worker: executes runs, serves /ok and /metrics; both. */
export type ServerRole = "api" | "worker" | "both";

export const SERVER_ROLES: readonly ServerRole[] = ["api", "worker", "both"];

export interface AppDeps {
  storage: Storage;
  /** The persistence backend's kind and a query that proves it answers (GET /ok). */
  database?: { kind: "sqlite" | "postgres"; ping(): Promise<void> };
  /** Redis when REFINERY_REDIS_URL is set: a PING that rejects when it does not answer (GET /ok). */
  redis?: { ping(): Promise<void> };
  registry: GraphRegistry;
  executor: RunExecutor;
  hub: StreamHub;
  checkpointer: BaseCheckpointSaver;
  checkpoints: CheckpointAdmin;
  log: Logger;
  metrics: Metrics;
  /** Validates an assistant/run config for a graph (e.g. the refine options); throws RefineryError. */
  validateConfig?: (graphId: string, config: Record<string, unknown> | undefined) => void;
  /** Validates a run's input for a graph (e.g. the refine task); throws RefineryError. */
  validateInput?: (graphId: string, input: unknown) => void;
  /**
   * A graph's JSON Schemas for GET /assistants/:id/schemas (`input_schema`, `state_schema`, …),
   * given the assistant's config (a graph factory is called with it).
   */
  schemasFor?: (
    graphId: string,
    config: Record<string, unknown>,
  ) => Promise<Record<string, unknown> | undefined>;
  /** Lessons memory and the records kept with each run (ratings, outcomes for export). */
  learning?: LearningLoop;
  /** The Store API's store (/store/*); absent: those routes answer 404. */
  store?: UserStore;
  /** Live feedback for running or waiting threads. */
  inbox?: FeedbackInbox;
  /**
   * What this process does (`npm start -- --role`): "worker" serves only /ok, /info and /metrics
   * (every other path answers 404 naming the role); default "both".
   */
  role?: ServerRole;
  /** Filled by the runs router: resumes a thread waiting on an approval with a decision. */
  hooks?: { resumeApproval?: (threadId: string, decision: unknown) => Promise<unknown> };
  /** Evaluation jobs (start.ts); without it /eval runs jobs in the server thread. */
  evalJobs?: EvalJobs;
  bodyLimit?: string;
  keepAliveMs?: number;
  version: string;
  /** REFINERY_DEV=1: the dev server's routes (POST /internal/truncate) exist. */
  dev?: boolean;
  /** Crons: the scheduler's clock (tests drive it) and the cap per tenant (0 or absent: none). */
  crons?: { now: () => number; maxPerTenant?: number };
  /** Authentication and the guards at the edge; absent: open, loopback development mode. */
  security?: SecuritySettings;
  /** langgraph.json `http`: the custom Hono app (loaded) and the built-in route groups off. */
  http?: { app?: HonoLike; section?: HttpSection };
  /** langgraph.json `ui`: the bundled generative UI components. */
  ui?: UiBundles;
}

export interface SecuritySettings {
  auth?: AuthBackend;
  /** Origins that get CORS headers ("*": any); none by default. */
  corsOrigins?: Set<string> | "*";
  /** langgraph.json `http.cors`: origin pattern, methods, headers, credentials, max age. */
  corsOptions?: CorsOptions;
  /** Refuses requests whose Host is not a name of this server (DNS rebinding). */
  hostGuard?: RequestHandler;
  rateLimiter?: RateLimiter;
  /** Runs pending or running per partition (tenant) at most; absent: no cap. */
  partitionRunLimit?: number;
  /** The largest `recursion_limit` a run or assistant may ask for (default 1000). */
  maxRecursionLimit?: number;
}

/** A run's or assistant's `recursion_limit` within the server's cap, or a 422 naming both. */
export function checkRecursionLimit(
  deps: AppDeps,
  value: number | undefined,
  field = "config.recursion_limit",
): void {
  const cap = deps.security?.maxRecursionLimit ?? 1000;
  if (value !== undefined && value > cap) {
    throw new RefineryError(
      "invalid_input",
      `recursion_limit ${value} is above this server's cap of ${cap} steps`,
      {
        field,
        fix: `ask for at most ${cap} (the operator sets the cap with REFINERY_MAX_RECURSION_LIMIT)`,
      },
    );
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/**
 * Asks the request's auth for `event` on `value` (which its handler may change in place) and
 * returns what storage applies: the filters, and with `system` the server's own assistants.
 */
export async function accessFor(
  req: Request,
  event: AuthEvent,
  value: Record<string, unknown>,
  operation: Operation,
  options: { system?: boolean } = {},
): Promise<Access> {
  const filters = await authOf(req).authorize(event, value, operation);
  return {
    ...(filters ? { filters } : {}),
    ...(options.system ? { system: true } : {}),
  };
}

/** The assistant id a graph id or assistant UUID names (undefined when it names neither). */
export function assistantIdOf(deps: AppDeps, idOrGraph: string): string | undefined {
  return isUuid(idOrGraph)
    ? idOrGraph
    : deps.registry.entry(idOrGraph)
      ? systemAssistantId(idOrGraph)
      : undefined;
}

/** An assistant by UUID, or the system assistant of a graph id; 404 when `access` does not reach it. */
export async function findAssistant(
  deps: AppDeps,
  idOrGraph: string,
  access?: Access,
): Promise<Assistant> {
  const id = assistantIdOf(deps, idOrGraph);
  const assistant = id ? await deps.storage.assistants.get(id, access) : undefined;
  if (!assistant) {
    throw new RefineryError("not_found", "Assistant not found", {
      field: "assistant_id",
      fix: `"${idOrGraph}" is neither an assistant id nor a registered graph (graphs: ${deps.registry.ids().join(", ")})`,
    });
  }
  return assistant;
}

/** A thread by id; 404 when it does not exist or `access` does not reach it (the same answer). */
export async function findThread(
  deps: AppDeps,
  threadId: string,
  access?: Access,
): Promise<Thread> {
  if (!isUuid(threadId)) {
    throw new RefineryError("invalid_input", "thread_id must be a UUID", { field: "thread_id" });
  }
  const thread = await deps.storage.threads.get(threadId, access);
  if (!thread) throw notFound("Thread", threadId);
  return thread;
}

/** The graph that owns a thread's checkpoints, or undefined when the thread never ran. */
export async function graphOfThread(
  deps: AppDeps,
  thread: Thread,
): Promise<RunnableGraph | undefined> {
  const graphId = thread.metadata.graph_id;
  if (typeof graphId !== "string" || !deps.registry.entry(graphId)) return undefined;
  return deps.registry.get(graphId, thread.config);
}

export const EMPTY_STATE = {
  values: {},
  next: [],
  tasks: [],
  metadata: {},
  created_at: null,
  checkpoint: null,
  parent_checkpoint: null,
};
