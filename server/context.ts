// What the routes share: the dependencies of the app and the lookups every route needs
// (assistant by id or graph id, thread or 404, the graph of a thread).
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { RefineryError } from "../core/errors.ts";
import type { CheckpointAdmin } from "../core/storage/checkpoint-admin.ts";
import type { FeedbackInbox } from "../core/storage/feedback-inbox.ts";
import type { Assistant, Storage, Thread } from "../core/storage/types.ts";
import { systemAssistantId, type GraphRegistry, type RunnableGraph } from "../graphs/registry.ts";
import type { LearningLoop } from "../graphs/learning.ts";
import type { RunExecutor } from "./executor.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { StreamHub } from "./stream-hub.ts";
import { notFound } from "./http.ts";

export interface AppDeps {
  storage: Storage;
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
  /** Describes a graph's input/config schemas for GET /assistants/:id/schemas. */
  schemasFor?: (graphId: string) => Record<string, unknown> | undefined;
  /** Lessons memory and the records kept with each run (ratings, outcomes for export). */
  learning?: LearningLoop;
  /** Live feedback for running or waiting threads. */
  inbox?: FeedbackInbox;
  /** Filled by the runs router: resumes a thread waiting on an approval with a decision. */
  hooks?: { resumeApproval?: (threadId: string, decision: unknown) => Promise<unknown> };
  bodyLimit?: string;
  keepAliveMs?: number;
  version: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** An assistant by UUID, or the system assistant of a graph id. */
export async function findAssistant(deps: AppDeps, idOrGraph: string): Promise<Assistant> {
  const id = isUuid(idOrGraph)
    ? idOrGraph
    : deps.registry.entry(idOrGraph)
      ? systemAssistantId(idOrGraph)
      : undefined;
  const assistant = id ? await deps.storage.assistants.get(id) : undefined;
  if (!assistant) {
    throw new RefineryError("not_found", "Assistant not found", {
      field: "assistant_id",
      fix: `"${idOrGraph}" is neither an assistant id nor a registered graph (graphs: ${deps.registry.ids().join(", ")})`,
    });
  }
  return assistant;
}

export async function findThread(deps: AppDeps, threadId: string): Promise<Thread> {
  if (!isUuid(threadId)) {
    throw new RefineryError("invalid_input", "thread_id must be a UUID", { field: "thread_id" });
  }
  const thread = await deps.storage.threads.get(threadId);
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
