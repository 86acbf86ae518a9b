// Storage against the text a run produces (npm run bench:storage-linear, issue 20: "storage linear
// in the text actually produced"). For each iteration count (BENCH_LINEAR_ITERATIONS, default
// 1,3,6,10) and each size of new text per model reply (BENCH_LINEAR_PADS, bytes, default 0,1000),
// our server (bench/server-child.ts, the bench model of bench:server with paddedBenchReply) runs
// BENCH_LINEAR_RUNS refine runs (default 200, 16 concurrent, runs.wait on fresh threads) into a
// fresh SQLite file; the closed file's bytes per run are set against the text the runs produced
// (the drafts' text and the critiques' raw replies in their final state, UTF-8 bytes).
//
// The padding is base64 of random bytes, new in every reply, so it compresses to about 3/4 and
// never against earlier text. The figure to read is the marginal cost: extra stored bytes per
// extra produced byte between the smallest and the largest padding, per iteration count. Stored
// linearly (each text kept a fixed number of times), it does not grow with the iteration count;
// stored again in every checkpoint, it grows about in proportion to it, since a run of n
// iterations writes about 3n checkpoints each holding the text so far. The same runs on
// LangGraph's own SqliteSaver (@langchain/langgraph-checkpoint-sqlite, in this process; whole
// checkpoints) give the comparison: its checkpoint and writes tables per run.
// BENCH_STORAGE_POSTGRES=<url>: our server stores in Postgres instead (a schema per cell,
// measured after VACUUM FULL and dropped).
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import { Client } from "@langchain/langgraph-sdk";
import { startOurs } from "./server-procs.ts";
import { createBenchGraph, createBenchModel, RUN_OPTIONS, TASK } from "./server-graph.ts";
import { dropSchema, postgresBreakdown, sqliteBreakdown, vacuum } from "./storage.ts";
import { describeMachine, formatMachine } from "./support.ts";

const env = process.env;
const list = (raw: string) =>
  raw.split(",").map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 0) throw new Error(`not a whole number: ${s}`);
    return n;
  });
const ITERATIONS = list(env.BENCH_LINEAR_ITERATIONS ?? "1,3,6,10");
const PADS = list(env.BENCH_LINEAR_PADS ?? "0,1000");
const RUNS = Number(env.BENCH_LINEAR_RUNS ?? 200);
/** Runs of LangGraph's SqliteSaver per cell (in this process, one at a time). */
const REFERENCE_RUNS = Number(env.BENCH_LINEAR_REFERENCE_RUNS ?? 50);
const CONCURRENCY = 16;
/** BENCH_STORAGE_POSTGRES=<url>: our server stores in Postgres (a schema per cell, dropped after). */
const POSTGRES = env.BENCH_STORAGE_POSTGRES;

interface Values {
  stopReason?: string;
  drafts?: { text: string }[];
  critiques?: { raw: string }[];
}

/** UTF-8 bytes of the text the model produced in a run's final state. */
function produced(values: Values): number {
  let n = 0;
  for (const d of values.drafts ?? []) n += Buffer.byteLength(d.text);
  for (const c of values.critiques ?? []) n += Buffer.byteLength(c.raw);
  return n;
}

function check(values: Values, iterations: number): void {
  if (values?.stopReason !== "max_iterations" || values.drafts?.length !== iterations)
    throw new Error(`unexpected run result ${JSON.stringify(values).slice(0, 300)}`);
}

interface Cell {
  iterations: number;
  pad: number;
  runs: number;
  producedPerRun: number;
  storedPerRun: number;
}

/**
 * Our server: `RUNS` runs into a fresh SQLite file, the closed file's bytes per run; or, with
 * BENCH_STORAGE_POSTGRES=<url>, into a fresh schema there: its tables' bytes per run (heap, TOAST
 * and indexes) after VACUUM FULL, as bench:storage reports them.
 */
async function ours(iterations: number, pad: number): Promise<Cell> {
  const dir = mkdtempSync(join(tmpdir(), "refinery-bench-linear-"));
  const dbPath = join(dir, "linear.db");
  const schema = `bench_linear_${process.pid}_${iterations}_${pad}`;
  const proc = await startOurs({
    dir,
    dbPath,
    latencyMs: 0,
    workers: CONCURRENCY,
    env: {
      BENCH_MODEL_PAD_BYTES: String(pad),
      ...(POSTGRES ? { REFINERY_DATABASE_URL: POSTGRES, REFINERY_DATABASE_SCHEMA: schema } : {}),
    },
  });
  let text = 0;
  let runs = 0;
  try {
    const client = new Client({
      apiUrl: proc.url,
      callerOptions: { maxConcurrency: CONCURRENCY, maxRetries: 0 },
    });
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < RUNS) {
          next++;
          const values = (await client.runs.wait(randomUUID(), "refine", {
            input: { task: TASK },
            // 3 nodes an iteration: 10 iterations pass LangGraph's default limit of 25 steps.
            config: {
              configurable: { ...RUN_OPTIONS, maxIterations: iterations },
              recursion_limit: 10 * iterations + 10,
            },
            ifNotExists: "create",
            signal: AbortSignal.timeout(180_000),
          })) as Values;
          check(values, iterations);
          text += produced(values);
          runs++;
        }
      }),
    );
    await proc.stop();
    let stored: number;
    if (POSTGRES) {
      await vacuum(POSTGRES, schema);
      stored = (await postgresBreakdown(POSTGRES, schema)).reduce((a, t) => a + t.bytes, 0);
    } else {
      stored = sqliteBreakdown(dbPath).fileBytes;
    }
    return { iterations, pad, runs, producedPerRun: text / runs, storedPerRun: stored / runs };
  } finally {
    await proc.stop(3_000).catch(() => undefined);
    if (POSTGRES) await dropSchema(POSTGRES, schema).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** LangGraph's SqliteSaver in this process: its tables' bytes per run (pages, dbstat). */
async function reference(iterations: number, pad: number): Promise<Cell> {
  const dir = mkdtempSync(join(tmpdir(), "refinery-bench-linear-ref-"));
  const dbPath = join(dir, "reference.db");
  const saver = SqliteSaver.fromConnString(dbPath);
  const graph = createBenchGraph(createBenchModel(0, pad), saver);
  let text = 0;
  try {
    for (let i = 0; i < REFERENCE_RUNS; i++) {
      const values = (await graph.invoke(
        { task: TASK },
        {
          configurable: { thread_id: randomUUID(), ...RUN_OPTIONS, maxIterations: iterations },
          recursionLimit: 10 * iterations + 10,
        },
      )) as Values;
      check(values, iterations);
      text += produced(values);
    }
    (saver as unknown as { db: { close(): void } }).db.close();
    const b = sqliteBreakdown(dbPath);
    const tables = b.objects
      .filter((o) => o.table === "checkpoints" || o.table === "writes")
      .reduce((a, o) => a + o.bytes, 0);
    return {
      iterations,
      pad,
      runs: REFERENCE_RUNS,
      producedPerRun: text / REFERENCE_RUNS,
      storedPerRun: tables / REFERENCE_RUNS,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Extra stored bytes per extra produced byte between the smallest and largest padding. */
function marginal(cells: Cell[], iterations: number): number {
  const row = cells.filter((c) => c.iterations === iterations).sort((a, b) => a.pad - b.pad);
  const lo = row[0]!;
  const hi = row.at(-1)!;
  return (hi.storedPerRun - lo.storedPerRun) / (hi.producedPerRun - lo.producedPerRun);
}

async function main(): Promise<void> {
  if (PADS.length < 2) throw new Error("BENCH_LINEAR_PADS needs at least two sizes");
  console.log(formatMachine(describeMachine()));
  console.log(
    `iterations ${ITERATIONS.join(", ")}; new text per model reply ${PADS.join(", ")} bytes; ` +
      `ours ${RUNS} runs a cell (${CONCURRENCY} concurrent), LangGraph's SqliteSaver ` +
      `${REFERENCE_RUNS}; load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
  );
  const mine: Cell[] = [];
  const theirs: Cell[] = [];
  for (const iterations of ITERATIONS) {
    for (const pad of PADS) {
      mine.push(await ours(iterations, pad));
      theirs.push(await reference(iterations, pad));
      const m = mine.at(-1)!;
      const t = theirs.at(-1)!;
      console.log(
        `  ${iterations} iterations, ${pad} B a reply: produced ${m.producedPerRun.toFixed(0)} B a run; ` +
          `ours ${m.storedPerRun.toFixed(0)} B a run (${POSTGRES ? "Postgres schema, after VACUUM FULL" : "whole file"}); SqliteSaver ${t.storedPerRun.toFixed(0)} B a run (checkpoints and writes)`,
      );
    }
  }
  console.log(
    `\niterations | produced B/run (no pad → largest) | ours: extra B stored per extra B produced | SqliteSaver: the same`,
  );
  const ourRatios: number[] = [];
  const theirRatios: number[] = [];
  for (const iterations of ITERATIONS) {
    const row = mine.filter((c) => c.iterations === iterations).sort((a, b) => a.pad - b.pad);
    const o = marginal(mine, iterations);
    const t = marginal(theirs, iterations);
    ourRatios.push(o);
    theirRatios.push(t);
    console.log(
      `${String(iterations).padStart(10)} | ${row[0]!.producedPerRun.toFixed(0)} → ${row.at(-1)!.producedPerRun.toFixed(0)} | ` +
        `${o.toFixed(2)} | ${t.toFixed(2)}`,
    );
  }
  // Each text stored a fixed number of times: the cost per produced byte does not grow with the
  // iteration count (at one iteration it is higher: the best draft and the answer repeat the only
  // draft). Stored again in each checkpoint: it grows about in proportion to the iterations.
  const growth = (r: number[]) => r.at(-1)! / r[0]!;
  const linear = growth(ourRatios) <= 1.25;
  console.log(
    `\nextra bytes stored per extra byte produced, at ${ITERATIONS.at(-1)} iterations against ${ITERATIONS[0]}: ` +
      `ours ${growth(ourRatios).toFixed(2)}x, SqliteSaver's whole checkpoints ${growth(theirRatios).toFixed(2)}x; ` +
      `ours ${linear ? "linear in the text produced" : "NOT linear"} (rule: at most 1.25x)`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
