// Regression guard (npm run bench:check; not part of npm test): runs bench:server in a shorter
// profile (or reads a run's figures with --from), and compares its figures with those recorded for
// this machine's class in bench/baseline.<class>.json (bench/summary.ts: machineClass, FIGURES and
// their tolerances). Exits 1 naming each regressed figure, 2 when nothing is recorded for the class.
//
//   npm run bench:check                      measure, then compare
//   npm run bench:check -- --from run.json   compare a run bench:server wrote (BENCH_JSON=run.json)
//   npm run bench:check -- --record          measure (or --from) and record as this class's figures
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { machineClass, printSummary, regressions, type FigureRecord } from "./summary.ts";
import { describeMachine } from "./support.ts";

const { values } = parseArgs({
  options: { from: { type: "string" }, record: { type: "boolean", default: false } },
});
const ROOT = resolve(import.meta.dirname, "..");

/**
 * The check's profile of bench:server: fewer rounds and runs (about 10 minutes on the 2-core
 * machine), no 200 ms-model batches. Any BENCH_* variable set by the caller wins.
 */
const PROFILE: Record<string, string> = {
  BENCH_ROUNDS: "3",
  BENCH_WARMUP: "10",
  BENCH_WARMUP_RUNS: "300",
  BENCH_SEQ_RUNS: "100",
  BENCH_REF_SEQ_RUNS: "30",
  BENCH_CONC_RUNS: "300",
  BENCH_CONC_BLOCK: "150",
  BENCH_EXTRA_RUNS: "4000",
  BENCH_REF_EXTRA_RUNS: "100",
  BENCH_BATCH_WORKERS: "",
  BENCH_STARTUP_REPEATS: "3",
};

function measure(): FigureRecord {
  const dir = mkdtempSync(join(tmpdir(), "refinery-bench-check-"));
  try {
    const out = join(dir, "figures.json");
    const res = spawnSync("npx", ["tsx", join(ROOT, "bench/server.ts")], {
      cwd: ROOT,
      env: { ...PROFILE, ...process.env, BENCH_JSON: out },
      stdio: ["ignore", "inherit", "inherit"],
    });
    if (res.status !== 0 || !existsSync(out)) {
      console.error(`bench:check: bench:server failed (exit ${res.status}); nothing compared`);
      process.exit(1);
    }
    return JSON.parse(readFileSync(out, "utf8")) as FigureRecord;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const run = values.from
  ? (JSON.parse(readFileSync(values.from, "utf8")) as FigureRecord)
  : measure();
const cls = machineClass(describeMachine());
const baselineFile = join(ROOT, "bench", `baseline.${cls}.json`);
if (run.machineClass !== cls) {
  console.error(`bench:check: the run is from machine class ${run.machineClass}, this is ${cls}`);
  process.exit(2);
}
if (values.record) {
  writeFileSync(baselineFile, `${JSON.stringify(run, null, 2)}\n`);
  console.log(`recorded the figures for ${cls} in ${baselineFile}`);
  process.exit(0);
}
if (!existsSync(baselineFile)) {
  console.error(
    `bench:check: no figures recorded for machine class ${cls} (${baselineFile}); ` +
      "record a run on a quiet machine with `npm run bench:check -- --record`",
  );
  process.exit(2);
}
const recorded = JSON.parse(readFileSync(baselineFile, "utf8")) as FigureRecord;
printSummary(run);
const worse = regressions(recorded.figures, run.figures);
console.log(
  `\nrecorded for ${cls}: ${recorded.machine} (load average ${recorded.loadAverage}` +
    `${recorded.commit ? `, commit ${recorded.commit}` : ""})`,
);
if (worse.length > 0) {
  console.log(`${worse.length} figure(s) regressed:`);
  for (const line of worse) console.log(`  ${line}`);
  process.exit(1);
}
console.log("no figure regressed beyond its tolerance");
