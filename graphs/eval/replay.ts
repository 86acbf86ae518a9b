// `refinery eval --replay`: grades the answers kept in a records file again, with today's grading
// checks and no model call, so a grader fix (or a different grader) is applied to a finished
// evaluation. Token, call and time figures are the recorded ones.
import { RefineryError } from "../../core/errors.ts";
import { SIMULATED_MODEL_NOTICE } from "../../core/models/simulated.ts";
import type { EvalStrategy } from "./baselines.ts";
import { graderFor, type Dataset, type DatasetItem } from "./dataset.ts";
import { provenanceOf } from "./provenance.ts";
import { recordKey, type ItemRecord } from "./records.ts";
import { gradeAnswers, type EvalSummary } from "./run.ts";
import { compareWithSelfRefine, summarize } from "./summary.ts";

export interface ReplayResult {
  summary: EvalSummary & { replay: { source: string; changed: number } };
  records: ItemRecord[];
}

export async function replayRecords(
  source: string,
  records: readonly ItemRecord[],
  datasets: readonly Dataset[],
): Promise<ReplayResult> {
  const started = performance.now();
  if (records.length === 0) {
    throw new RefineryError("invalid_input", `${source} holds no records`, {
      field: "--replay",
      fix: "pass the NAME.records.jsonl file an evaluation wrote",
    });
  }
  const items = new Map<string, DatasetItem>();
  for (const d of datasets)
    for (const item of d.items) items.set(`${d.name}\u0000${item.id}`, item);
  const regraded: ItemRecord[] = [];
  let changed = 0;
  for (const [i, record] of records.entries()) {
    const where = `${source} record ${i + 1} (${record.strategy} ${record.dataset}/${record.item_id})`;
    const item = items.get(`${record.dataset}\u0000${record.item_id}`);
    if (!item) {
      throw new RefineryError(
        "invalid_input",
        `no item ${JSON.stringify(record.item_id)} in a dataset named ${JSON.stringify(record.dataset)}`,
        {
          field: where,
          fix: `pass the dataset the records came from with --dataset (its base name must be ${record.dataset})`,
        },
      );
    }
    if (record.first_answer === undefined || record.final_answer === undefined) {
      throw new RefineryError("invalid_input", "the record keeps no answer texts to grade", {
        field: where,
        fix: "records written before answers were kept cannot be replayed; run the evaluation again",
      });
    }
    const graded = await gradeAnswers(
      item,
      graderFor(item),
      record.first_answer,
      record.final_answer,
    );
    if (graded.first !== record.first_correct || graded.final !== record.final_correct) changed++;
    regraded.push({
      ...record,
      first_correct: graded.first,
      final_correct: graded.final,
      final_score: graded.finalScore,
    });
  }
  const seen = new Set<string>();
  const strategies = regraded
    .map((r) => r.strategy)
    .filter((s) => !seen.has(s) && seen.add(s) !== undefined) as EvalStrategy[];
  const summaries = strategies.map((s) => summarize(s, regraded));
  const simulated = regraded.some((r) => r.simulated);
  const keys = new Set(regraded.map((r) => recordKey("", r.dataset, r.item_id)));
  return {
    summary: {
      label: simulated ? "simulated" : "model",
      simulated,
      ...(simulated ? { notice: SIMULATED_MODEL_NOTICE } : {}),
      status: "complete",
      datasets: datasets.map((d) => ({
        name: d.name,
        sha256: d.sha256,
        items: d.items.filter((item) => keys.has(recordKey("", d.name, item.id))).length,
      })),
      items: keys.size,
      model: { replayed: source },
      max_iterations: 0,
      concurrency: 0,
      strategies: summaries,
      comparisons: compareWithSelfRefine(summaries),
      evaluated: 0,
      skipped: regraded.length,
      elapsed_ms: Math.round(performance.now() - started),
      generated_at: new Date().toISOString(),
      provenance: provenanceOf(strategies, false),
      replay: { source, changed },
    },
    records: regraded,
  };
}
