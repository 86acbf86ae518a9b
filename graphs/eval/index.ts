// The evaluation harness: datasets, runs per strategy, per-item records, summaries and reports.
// The CLI (cli/eval.ts) and the HTTP route (server/routes/eval.ts) are thin adapters over it.
export * from "./baselines.ts";
export * from "./benchmarks.ts";
export * from "./dataset.ts";
export * from "./job.ts";
export * from "./judge.ts";
export * from "./pool.ts";
export * from "./provenance.ts";
export * from "./records.ts";
export * from "./replay.ts";
export * from "./replicates.ts";
export * from "./report.ts";
export * from "./run.ts";
export * from "./summary.ts";
export * from "./grid.ts";
export * from "./grid-report.ts";
export * from "./stats.ts";
