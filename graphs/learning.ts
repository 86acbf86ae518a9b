// The learning loop around finished runs: when a run ends, its outcome is kept with the run
// (for export), the lessons its prompt carried are credited or blamed, and the `reflect` step
// distils new lessons into the memory. Used by the server's executor and by the CLI.
import type { ProcessSettings } from "../core/config.ts";
import type { RunOutcome } from "../core/learning/outcome.ts";
import { outcomeFromValues } from "../core/learning/outcome.ts";
import { leaseLock } from "../core/memory/lease-lock.ts";
import { LessonMemory, lessonsKey, type LessonMemoryOptions } from "../core/memory/lessons.ts";
import type { LessonSource } from "../nodes/generate.ts";

export type { LessonSource };
import { openStore, type OpenStoreOptions } from "../core/memory/open-store.ts";
import { reflect } from "../core/memory/reflect.ts";
import type { LearningRecords } from "../core/storage/sqlite/learning-records.ts";
import type { DutyLeaseStore } from "../core/storage/types.ts";

export interface RunEnd {
  values: Record<string, unknown> | null | undefined;
  run_id: string;
  thread_id: string;
  assistant_id: string;
  graph_id: string;
  /** Keep the outcome for export (false for stateless runs, whose thread is deleted). */
  keep?: boolean;
  /** The task family, when the run's metadata names one. */
  family?: string;
  /** False when the run's options switched memory off. */
  learn?: boolean;
  /** The data partition (tenant) the run was made in; its lessons are kept apart. */
  partition?: string;
}

export interface LearningResult {
  outcome?: RunOutcome;
  lessonsAdded: number;
  lessonsMerged: number;
}

export interface LearningLoop {
  readonly memory?: LessonMemory;
  readonly records?: LearningRecords;
  onRunEnd(end: RunEnd): Promise<LearningResult>;
}

export function createLearningLoop(deps: {
  memory?: LessonMemory;
  records?: LearningRecords;
}): LearningLoop {
  return {
    ...deps,
    async onRunEnd(end) {
      const result: LearningResult = { lessonsAdded: 0, lessonsMerged: 0 };
      const outcome = outcomeFromValues(end.values, {
        run_id: end.run_id,
        thread_id: end.thread_id,
        assistant_id: end.assistant_id,
        graph_id: end.graph_id,
      });
      if (!outcome) return result;
      result.outcome = outcome;
      // A run stopped by a model failure or an abort says little about what works.
      const settled = outcome.stop_reason !== "model_error" && outcome.stop_reason !== "aborted";
      if (deps.records && end.keep !== false && outcome.stop_reason !== null)
        await deps.records.recordOutcome(outcome);
      if (!deps.memory || end.learn === false || !settled || outcome.stop_reason === null)
        return result;
      const key = lessonsKey(end.assistant_id, end.partition);
      if (outcome.lessons_used.length)
        await deps.memory.recordUse(key, outcome.lessons_used, outcome.first_passed);
      for (const lesson of reflect(outcome)) {
        const { created } = await deps.memory.add(key, {
          text: lesson.text,
          graph_id: end.graph_id,
          task: `${outcome.task} ${outcome.context}`,
          ...(end.family ? { family: end.family } : {}),
          source: lesson.source,
          evidence: { thread_id: end.thread_id, run_id: end.run_id, iteration: lesson.iteration },
        });
        if (created) result.lessonsAdded += 1;
        else result.lessonsMerged += 1;
      }
      return result;
    },
  };
}

export interface OpenedLearning {
  loop: LearningLoop;
  memory?: LessonMemory;
  records: LearningRecords;
  storeKind?: "sqlite" | "postgres";
  close(): Promise<void>;
}

/**
 * Opens the learning loop of one process: run records where the backend keeps them, lessons in
 * the LangGraph store (the backend's, or Postgres when `settings.storeUrl` is set).
 */
export async function openLearning(
  settings: ProcessSettings,
  source: {
    records: LearningRecords;
    store: OpenStoreOptions;
    /** The database's leases: lesson writes are exclusive across processes with them. */
    storage?: { duties: DutyLeaseStore };
  },
  options: LessonMemoryOptions = {},
): Promise<OpenedLearning> {
  const { records } = source;
  if (settings.memory === false) {
    return { loop: createLearningLoop({ records }), records, close: async () => {} };
  }
  const opened = await openStore(
    settings.storeUrl ? { postgresUrl: settings.storeUrl } : source.store,
  );
  const embeddings =
    settings.embeddingsModel && settings.apiKey
      ? new (await import("@langchain/openai")).OpenAIEmbeddings({
          model: settings.embeddingsModel,
          apiKey: settings.apiKey,
          ...(settings.baseURL ? { configuration: { baseURL: settings.baseURL } } : {}),
        })
      : undefined;
  const memory = new LessonMemory(opened.store, {
    ...(embeddings ? { embeddings } : {}),
    ...(source.storage ? { lock: leaseLock(source.storage.duties) } : {}),
    ...options,
  });
  return {
    loop: createLearningLoop({ memory, records }),
    memory,
    records,
    storeKind: opened.kind,
    close: () => opened.close(),
  };
}

/** The generate node's view of the memory; runs outside the server use `defaultAssistant`. */
export function lessonSourceFor(memory: LessonMemory, defaultAssistant: string): LessonSource {
  return {
    retrieve: (assistantId, task, limit) =>
      memory.retrieve(assistantId ?? defaultAssistant, task, limit),
  };
}
