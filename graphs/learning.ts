// The learning loop around finished runs: when a run ends, its outcome is kept with the run
// (for export), the lessons its prompt carried are credited or blamed, and the `reflect` step
// distils new lessons into the memory. Used by the server's executor and by the CLI.
import type { RunOutcome } from "../core/learning/outcome.ts";
import { outcomeFromValues } from "../core/learning/outcome.ts";
import type { LessonMemory } from "../core/memory/lessons.ts";
import { reflect } from "../core/memory/reflect.ts";
import type { LearningRecords } from "../core/storage/learning-sqlite.ts";

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
      if (outcome.lessons_used.length)
        await deps.memory.recordUse(end.assistant_id, outcome.lessons_used, outcome.first_passed);
      for (const lesson of reflect(outcome)) {
        const { created } = await deps.memory.add(end.assistant_id, {
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
