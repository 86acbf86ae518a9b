// Retained-memory bench (npm run bench:heap): does the server keep memory per finished run? RSS
// alone cannot say: V8 grows and shrinks its heap with the load, so RSS moves with the phase of a
// load test. This bench runs our server in this process (startServer, the bench model of
// bench:server, a SQLite file) and drives it with the official SDK client at 16 concurrent
// runs.wait, in batches of 1,000 runs. After each batch it forces two full GCs (node
// --expose-gc) and records what is still reachable (heapUsed) next to RSS. A leak of anything per
// run (a map entry, a retained state, a listener) shows as heapUsed growing with the run count.
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { startServer } from "../server/start.ts";
import { createBenchModel, createBenchProvider, RUN_OPTIONS, TASK } from "./server-graph.ts";
import { describeMachine, formatMachine, slope } from "./support.ts";

const BATCHES = Number(process.env.BENCH_BATCHES ?? 12);
const BATCH = Number(process.env.BENCH_BATCH ?? 1000);
const CONCURRENCY = 16;
/** Runs after which the stream hub's retention (500 finished runs) is full: the baseline. */
const BASELINE_AFTER = 2000;
const MiB = 1024 * 1024;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error("bench:heap needs node --expose-gc (npm run bench:heap passes it)");
  process.exit(2);
}

async function main(): Promise<void> {
  console.log(formatMachine(describeMachine()));
  const dir = mkdtempSync(join(tmpdir(), "refinery-bench-heap-"));
  const running = await startServer({
    env: { REFINERY_DB: join(dir, "heap.db"), LOG_LEVEL: "error" },
    configPath: undefined,
    port: 0,
    host: "127.0.0.1",
    provider: createBenchProvider(createBenchModel(0)),
  });
  const client = new Client({
    apiUrl: running.url,
    callerOptions: { maxConcurrency: CONCURRENCY, maxRetries: 0 },
  });
  const one = async () => {
    const values = (await client.runs.wait(randomUUID(), "refine", {
      input: { task: TASK },
      config: { configurable: { ...RUN_OPTIONS } },
      ifNotExists: "create",
    })) as { stopReason?: string };
    if (values?.stopReason !== "max_iterations")
      throw new Error(`unexpected run result ${JSON.stringify(values)}`);
  };
  const batch = async () => {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next++ < BATCH) await one();
      }),
    );
  };
  const samples: { runs: number; heap: number; rss: number }[] = [];
  try {
    console.log(
      `${BATCHES} batches of ${BATCH} runs.wait at ${CONCURRENCY} concurrent; two full GCs after each\n`,
    );
    console.log("| finished runs | heapUsed after GC (MiB) | heapTotal (MiB) | RSS (MiB) |");
    console.log("|---|---|---|---|");
    for (let b = 1; b <= BATCHES; b++) {
      await batch();
      gc!();
      gc!();
      const m = process.memoryUsage();
      samples.push({ runs: b * BATCH, heap: m.heapUsed / MiB, rss: m.rss / MiB });
      console.log(
        `| ${b * BATCH} | ${(m.heapUsed / MiB).toFixed(2)} | ${(m.heapTotal / MiB).toFixed(1)} | ${(m.rss / MiB).toFixed(1)} |`,
      );
    }
  } finally {
    await running.close(2_000);
    rmSync(dir, { recursive: true, force: true });
  }
  const steady = samples.filter((s) => s.runs >= BASELINE_AFTER);
  const first = steady[0]!;
  const last = steady[steady.length - 1]!;
  const perRun = (key: "heap" | "rss") => slope(steady.map((s) => [s.runs, s[key]])) * MiB;
  console.log(
    `\nFrom ${first.runs} to ${last.runs} runs: heapUsed after GC ${first.heap.toFixed(2)} -> ` +
      `${last.heap.toFixed(2)} MiB (least-squares slope ${perRun("heap").toFixed(0)} bytes per run); ` +
      `RSS ${first.rss.toFixed(1)} -> ${last.rss.toFixed(1)} MiB (slope ${perRun("rss").toFixed(0)} bytes per run). ` +
      `For scale: one run's checkpoints take about 45 KiB on disk.`,
  );
}

await main();
