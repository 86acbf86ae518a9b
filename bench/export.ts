// Export bench (npm run bench:export): does the JSONL export stream with bounded memory? Fills a
// SQLite file with N run outcomes (realistic two-draft refinements with critiques and verdicts),
// then exports them as SFT, DPO and PASR through the same generator the CLI and HTTP use, into a
// sink that honours backpressure. Each export runs in a fresh child process whose peak RSS
// (getrusage maxRSS) and sampled peak heap are reported: if the export loaded rows into memory,
// peak memory would grow with N.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import Database from "better-sqlite3";
import { exportJsonl, type ExportFormat } from "../core/learning/export.ts";
import { outcomeFromValues } from "../core/learning/outcome.ts";
import { createSqliteLearningRecords } from "../core/storage/sqlite/learning-records.ts";
import { describeMachine, formatMachine } from "./support.ts";

const SIZES = (process.env.BENCH_SIZES ?? "100000,1000000").split(",").map(Number);
const FORMATS: ExportFormat[] = ["sft", "dpo", "pasr"];
const MiB = 1024 * 1024;

function values(i: number): Record<string, unknown> {
  const a = 17 + (i % 83);
  const b = 3 + (i % 29);
  const wrong = a * b + 1 + (i % 5);
  return {
    task: `Run ${i}: a warehouse ships ${a} boxes a day, each holding ${b} items. How many items ship per day? Show the arithmetic.`,
    context: "",
    drafts: [
      { iteration: 1, text: `${a} * ${b} = ${wrong}\nAnswer: ${wrong}`, source: "generate" },
      { iteration: 2, text: `${a} * ${b} = ${a * b}\nAnswer: ${a * b}`, source: "revise" },
    ],
    critiques: [
      { iteration: 1, verdict: "revise", score: 0.3, issues: [`${a} * ${b} is not ${wrong}.`] },
      { iteration: 2, verdict: "pass", score: 0.95, issues: [] },
    ],
    verdicts: [
      {
        iteration: 1,
        verifierId: "steps",
        hard: true,
        pass: false,
        score: 0,
        message: `step 1: ${a} * ${b} = ${a * b}, not ${wrong}`,
      },
      { iteration: 2, verifierId: "steps", hard: true, pass: true, score: 1, message: "" },
    ],
    approvals: [],
    feedback: [],
    answer: `${a} * ${b} = ${a * b}\nAnswer: ${a * b}`,
    stopReason: "accepted",
    strategy: "self-refine",
    usage: { promptTokens: 400, completionTokens: 120, totalTokens: 520, calls: 4 },
  };
}

async function fill(path: string, n: number): Promise<void> {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  const records = createSqliteLearningRecords(db);
  const start = Date.UTC(2026, 0, 1);
  for (let i = 0; i < n; i += 10_000) {
    db.exec("BEGIN");
    for (let j = i; j < Math.min(n, i + 10_000); j += 1) {
      await records.recordOutcome(
        outcomeFromValues(values(j), {
          run_id: `run-${String(j).padStart(8, "0")}`,
          thread_id: `thread-${j}`,
          assistant_id: "bench",
          graph_id: "refine",
          finished_at: new Date(start + j * 1000).toISOString(),
        })!,
      );
    }
    db.exec("COMMIT");
  }
  db.close();
}

interface Measured {
  lines: number;
  bytes: number;
  seconds: number;
  peakRssMiB: number;
  peakHeapMiB: number;
}

async function exportOnce(path: string, format: ExportFormat): Promise<Measured> {
  const db = new Database(path, { readonly: true });
  const records = createSqliteLearningRecords(db);
  let peakRss = process.memoryUsage().rss;
  let peakHeap = process.memoryUsage().heapUsed;
  const sample = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 50);
  let lines = 0;
  let bytes = 0;
  // A sink with a small buffer, so backpressure is exercised as with a slow client or disk.
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      setImmediate(cb);
    },
  });
  const t0 = process.hrtime.bigint();
  for await (const line of exportJsonl(records.outcomes(), format)) {
    lines += 1;
    if (!sink.write(line)) await new Promise((r) => sink.once("drain", r));
  }
  await new Promise<void>((r) => sink.end(r));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  clearInterval(sample);
  db.close();
  const maxRss = process.resourceUsage().maxRSS * 1024;
  return {
    lines,
    bytes,
    seconds,
    peakRssMiB: Math.max(peakRss, maxRss) / MiB,
    peakHeapMiB: peakHeap / MiB,
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "refinery-bench-export-"));
  console.log("## Export (npm run bench:export)\n");
  console.log(formatMachine(describeMachine()));
  console.log(
    "\n| outcomes in db | db size | format | lines | MiB out | seconds | rows/s | peak RSS MiB | peak heap MiB |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  try {
    for (const n of SIZES) {
      const path = join(dir, `export-${n}.db`);
      await fill(path, n);
      const size = statSync(path).size / MiB;
      for (const format of FORMATS) {
        const m = JSON.parse(
          execFileSync(
            process.execPath,
            ["--import", "tsx", import.meta.filename, "--export", path, format],
            { encoding: "utf8" },
          ),
        ) as Measured;
        console.log(
          `| ${n.toLocaleString("en-US")} | ${size.toFixed(0)} MiB | ${format} | ${m.lines.toLocaleString("en-US")} | ${(m.bytes / MiB).toFixed(0)} | ${m.seconds.toFixed(1)} | ${Math.round(n / m.seconds).toLocaleString("en-US")} | ${m.peakRssMiB.toFixed(0)} | ${m.peakHeapMiB.toFixed(0)} |`,
        );
      }
      rmSync(path, { force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--export") {
  const m = await exportOnce(process.argv[3]!, process.argv[4] as ExportFormat);
  process.stdout.write(JSON.stringify(m));
} else {
  await main();
}
