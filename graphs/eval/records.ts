// The per-item results file: one JSON record per (strategy, item), appended the moment the item
// finishes. It is what makes an interrupted evaluation resumable: on restart, items already
// recorded for a strategy under the same configuration are skipped.
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, truncateSync } from "node:fs";
import { dirname } from "node:path";
import { RefineryError } from "../../core/errors.ts";
import type { StopReason } from "../../core/state.ts";
import type { EvalStrategy } from "./baselines.ts";
import type { JudgeVerdicts } from "./judge.ts";

export interface ItemRecord {
  /** Hash of everything that makes results comparable (datasets, strategy, model, limits). */
  config: string;
  strategy: EvalStrategy;
  dataset: string;
  item_id: string;
  first_correct: boolean;
  final_correct: boolean;
  tokens: { prompt: number; completion: number; total: number };
  /** Tokens per node (generate, critique, verify, revise): where the tokens went. */
  tokens_by_node: Record<string, number>;
  calls: number;
  /** Number of revise steps (drafts after the first). */
  refinements: number;
  critiques: number;
  stop_reason: StopReason | null;
  wall_ms: number;
  simulated: boolean;
  /** A model failure that ended the run early (the best draft so far was graded). */
  error?: string;
  /** PASR generations only: `<refine>` segments the model wrote inside its one generation. */
  in_generation_refinements?: number;
  /** PASR generations only: the output was malformed and the run fell back to proactive. */
  pasr_fallback?: boolean;
  /** The texts that were graded, so `refinery eval --replay` can grade them again. */
  first_answer?: string;
  final_answer?: string;
  /** The grading check's score of the final answer (token F1 for qa items; 1/0 otherwise). */
  final_score?: number;
  /** The optional LLM judge's grades (`--judge-model`); absent when no judge was asked for. */
  judge?: JudgeVerdicts;
}

/** Where records go; a file for the CLI, memory for the HTTP job. */
export interface RecordSink {
  /** Records already present (for resume). */
  existing(): ItemRecord[];
  append(record: ItemRecord): void;
}

export function memorySink(initial: ItemRecord[] = []): RecordSink & { records: ItemRecord[] } {
  const records = [...initial];
  return { records, existing: () => [...records], append: (r) => void records.push(r) };
}

/**
 * A JSONL file of records. A line cut short by a crash (no trailing newline, not JSON) is
 * removed before anything is appended, so the file stays one record per line.
 */
export function fileSink(path: string): RecordSink {
  return {
    existing() {
      if (!existsSync(path)) return [];
      const text = readFileSync(path, "utf8");
      const records: ItemRecord[] = [];
      let offset = 0;
      const lines = text.split("\n");
      lines.forEach((line, i) => {
        const last = i === lines.length - 1;
        if (line.trim() !== "") {
          try {
            records.push(JSON.parse(line) as ItemRecord);
            // A whole record whose newline was lost: finish the line before appending more.
            if (last) appendFileSync(path, "\n");
          } catch {
            if (!last) {
              throw new RefineryError(
                "invalid_input",
                `${path} line ${i + 1} is not a JSON record`,
                {
                  field: "--out",
                  fix: "delete the results file (or use another --out directory) to start over",
                },
              );
            }
            truncateSync(path, Buffer.byteLength(text.slice(0, offset)));
          }
        }
        offset += line.length + 1;
      });
      return records;
    },
    append(record) {
      mkdirSync(dirname(path), { recursive: true });
      appendFileSync(path, `${JSON.stringify(record)}\n`);
    },
  };
}

export function recordKey(strategy: string, dataset: string, itemId: string): string {
  return `${strategy}\u0000${dataset}\u0000${itemId}`;
}

/** What identifies one strategy's evaluation; any change means its old records cannot be mixed in. */
export interface ConfigIdentity {
  datasets: { name: string; sha256: string }[];
  strategy: EvalStrategy;
  maxIterations: number;
  model: Record<string, unknown>;
  /** Engine settings the runs depend on but do not pass explicitly (default prompts, limits). */
  engine?: Record<string, unknown>;
  /** The LLM judge's model and rubric, when answers are judged too. */
  judge?: Record<string, unknown>;
}

export function configHash(identity: ConfigIdentity): string {
  return createHash("sha256")
    .update(JSON.stringify({ v: 1, ...identity }))
    .digest("hex")
    .slice(0, 16);
}
