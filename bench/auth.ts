// Auth bench (npm run bench:auth): what authentication costs. Two of our servers as child
// processes on 127.0.0.1, the same bench graph and zero-latency model as bench:server (9 node
// executions, 6 model calls per run): one open, one with built-in API keys on (key lookup,
// per-identity rate limit, tenant filters on every read, tenant stamping, the per-tenant run cap
// on every run). Driven through the official SDK with runs.wait on a new thread per run, blocks
// alternating between the servers so load from elsewhere on the machine hits both alike.
// Targets: sequential p50 with keys at most 1 ms above the open server's; 16-concurrent
// throughput with keys at least 95% of the open server's. Bounded in runs and time.
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { RUN_OPTIONS, TASK } from "./server-graph.ts";
import { startOurs, type ServerProc } from "./server-procs.ts";
import { describeMachine, formatMachine, median, percentile } from "./support.ts";

const env = process.env;
const num = (name: string, fallback: number) => Number(env[name] ?? fallback);
const ROUNDS = num("BENCH_ROUNDS", 3);
const WARMUP_RUNS = num("BENCH_WARMUP_RUNS", 600);
const SEQ_RUNS = num("BENCH_SEQ_RUNS", 300);
const SEQ_BLOCK = num("BENCH_BLOCK", 25);
const CONCURRENCY = num("BENCH_CONCURRENCY", 16);
const CONC_RUNS = num("BENCH_CONC_RUNS", 800);
const CONC_BLOCK = num("BENCH_CONC_BLOCK", 200);
const TIMEOUT_S = num("BENCH_TIMEOUT_S", 1500);

/**
 * BENCH_AUTH_CONTROL=1: an A/A run, the second server open too (still labelled "keys"): how far
 * two identical servers differ on this machine, the noise floor the targets are read against.
 */
const CONTROL = env.BENCH_AUTH_CONTROL === "1";

const TARGET_SEQ_MS = 1;
const TARGET_THROUGHPUT = 0.95;

const KEY = `bench-key-${randomUUID()}`;

interface Variant {
  name: "open" | "keys";
  proc: ServerProc;
  client: Client;
  seq: number[][];
  conc: Block[][];
}

/** A block of concurrent runs: how many, how long, and the server's CPU (all threads) meanwhile. */
interface Block {
  runs: number;
  ms: number;
  cpuMs: number;
}

async function oneRun(v: Variant): Promise<number> {
  const t = performance.now();
  const values = (await v.client.runs.wait(randomUUID(), "refine", {
    input: { task: TASK },
    config: { configurable: { ...RUN_OPTIONS } },
    ifNotExists: "create",
    signal: AbortSignal.timeout(120_000),
  })) as { stopReason?: string; drafts?: unknown[] };
  if (values?.stopReason !== "max_iterations" || values.drafts?.length !== 3)
    throw new Error(`${v.name}: unexpected run result ${JSON.stringify(values)}`);
  return performance.now() - t;
}

async function concurrent(v: Variant, runs: number): Promise<Block> {
  let next = 0;
  const cpu = v.proc.cpuSeconds();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, runs) }, async () => {
      while (next < runs) {
        next++;
        await oneRun(v);
      }
    }),
  );
  return { runs, ms: performance.now() - started, cpuMs: (v.proc.cpuSeconds() - cpu) * 1000 };
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    console.error(`bench:auth: stopped after ${TIMEOUT_S} s`);
    process.exit(2);
  }, TIMEOUT_S * 1000);
  deadline.unref();
  const machine = describeMachine();
  console.log(formatMachine(machine));
  const dir = mkdtempSync(join(tmpdir(), "refinery-bench-auth-"));
  const procs: ServerProc[] = [];
  try {
    const open = await startOurs({
      dir,
      dbPath: join(dir, "open.db"),
      latencyMs: 0,
      workers: 64,
      label: "open",
    });
    procs.push(open);
    const keyed = await startOurs({
      dir,
      dbPath: join(dir, "keys.db"),
      latencyMs: 0,
      workers: 64,
      label: "keys",
      env: CONTROL
        ? {}
        : {
            REFINERY_API_KEYS: JSON.stringify([
              { key: KEY, identity: "bench", tenant: "bench", role: "member" },
            ]),
            // High enough never to refuse the bench, low enough to be counted on every request.
            REFINERY_RATE_LIMIT: "100000000",
            REFINERY_TENANT_MAX_RUNS: "1000",
          },
    });
    procs.push(keyed);
    const client = (url: string, headers: Record<string, string> = {}) =>
      new Client({
        apiUrl: url,
        defaultHeaders: headers,
        callerOptions: { maxConcurrency: CONCURRENCY, maxRetries: 0 },
      });
    const variants: Variant[] = [
      { name: "open", proc: open, client: client(open.url), seq: [], conc: [] },
      {
        name: "keys",
        proc: keyed,
        client: client(keyed.url, { "x-api-key": KEY }),
        seq: [],
        conc: [],
      },
    ];
    // The keyed server really refuses a request without the key.
    const refused = await fetch(`${keyed.url}/threads/search`, { method: "POST", body: "{}" });
    if (CONTROL) console.log("A/A control run: both servers are open");
    else if (refused.status !== 401)
      throw new Error(`keys server answered ${refused.status} without a key`);

    console.log(`warm-up: ${WARMUP_RUNS} runs per server at ${CONCURRENCY} concurrent`);
    for (const v of variants) await concurrent(v, WARMUP_RUNS);

    for (let round = 0; round < ROUNDS; round++) {
      const seq: number[][] = variants.map(() => []);
      for (let done = 0, cycle = round; done < SEQ_RUNS; done += SEQ_BLOCK, cycle++) {
        for (let j = 0; j < variants.length; j++) {
          const k = (j + cycle) % variants.length;
          for (let i = 0; i < Math.min(SEQ_BLOCK, SEQ_RUNS - done); i++)
            seq[k]!.push(await oneRun(variants[k]!));
        }
      }
      const conc: Block[][] = variants.map(() => []);
      for (let done = 0, cycle = round; done < CONC_RUNS; done += CONC_BLOCK, cycle++) {
        for (let j = 0; j < variants.length; j++) {
          const k = (j + cycle) % variants.length;
          conc[k]!.push(await concurrent(variants[k]!, Math.min(CONC_BLOCK, CONC_RUNS - done)));
        }
      }
      variants.forEach((v, i) => {
        v.seq.push(seq[i]!);
        v.conc.push(conc[i]!);
      });
      const [o, k] = variants as [Variant, Variant];
      console.log(
        `round ${round + 1}: sequential p50 open ${percentile(o.seq[round]!, 50).toFixed(2)} ms, keys ${percentile(k.seq[round]!, 50).toFixed(2)} ms; ` +
          `${CONCURRENCY} concurrent open ${rate(o.conc[round]!).toFixed(1)} runs/s, keys ${rate(k.conc[round]!).toFixed(1)} runs/s; load ${loadavg()[0]!.toFixed(2)}`,
      );
    }
    report(variants as [Variant, Variant]);
  } finally {
    for (const p of procs) await p.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Server CPU per run over the blocks, in ms. */
function cpuPerRun(blocks: Block[]): number {
  return blocks.reduce((a, b) => a + b.cpuMs, 0) / blocks.reduce((a, b) => a + b.runs, 0);
}

function rate(blocks: Block[]): number {
  const runs = blocks.reduce((a, b) => a + b.runs, 0);
  const ms = blocks.reduce((a, b) => a + b.ms, 0);
  return (runs / ms) * 1000;
}

function report([open, keys]: [Variant, Variant]): void {
  const rounds = open.seq.map((_, r) => ({
    openP50: percentile(open.seq[r]!, 50),
    keysP50: percentile(keys.seq[r]!, 50),
    openRate: rate(open.conc[r]!),
    keysRate: rate(keys.conc[r]!),
    openCpu: cpuPerRun(open.conc[r]!),
    keysCpu: cpuPerRun(keys.conc[r]!),
  }));
  const deltas = rounds.map((r) => r.keysP50 - r.openP50);
  const ratios = rounds.map((r) => r.keysRate / r.openRate);
  const delta = median(deltas);
  const ratio = median(ratios);
  console.log(
    "\n| round | seq p50 open | seq p50 keys | keys - open | 16-conc open | 16-conc keys | keys / open | CPU/run open | CPU/run keys |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  rounds.forEach((r, i) =>
    console.log(
      `| ${i + 1} | ${r.openP50.toFixed(2)} ms | ${r.keysP50.toFixed(2)} ms | ${deltas[i]!.toFixed(2)} ms | ${r.openRate.toFixed(1)} runs/s | ${r.keysRate.toFixed(1)} runs/s | ${ratios[i]!.toFixed(3)} | ${r.openCpu.toFixed(2)} ms | ${r.keysCpu.toFixed(2)} ms |`,
    ),
  );
  const cpuRatio = median(rounds.map((r) => r.keysCpu / r.openCpu));
  console.log(
    `\nserver CPU per run at ${CONCURRENCY} concurrent (all its threads), keys / open: median of rounds ${cpuRatio.toFixed(3)}`,
  );
  console.log(
    `\nsequential runs.wait p50, keys - open: median of rounds ${delta.toFixed(2)} ms (target <= ${TARGET_SEQ_MS} ms): ${delta <= TARGET_SEQ_MS ? "met" : "MISSED"}`,
  );
  console.log(
    `${CONCURRENCY}-concurrent throughput, keys / open: median of rounds ${ratio.toFixed(3)} (target >= ${TARGET_THROUGHPUT}): ${ratio >= TARGET_THROUGHPUT ? "met" : "MISSED"}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
