// Cluster bench (npm run bench:cluster): our server as separate processes sharing one Postgres
// schema and one Redis prefix, driven through the official SDK (runs.wait on fresh threads) on
// 127.0.0.1. (1) Scale-out: one `--role api` process and 1, 2 or 3 `--role worker` processes, each
// worker capped at BENCH_CLUSTER_CAP concurrent runs, a 200 ms model per call (6 calls per run):
// runs/s with N workers over runs/s with one. (2) One process (`--role both`) on Postgres against
// one on SQLite, zero-latency model: 16-concurrent runs/s and sequential runs.wait p50. Variants
// alternate their order every round; medians over rounds are quoted. Bounded in runs and time;
// children, the schema and the Redis keys are removed when it ends.
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import pg from "pg";
import { Redis } from "ioredis";
import { NO_LATENCY_MARK, RUN_OPTIONS, TASK } from "./server-graph.ts";
import { startOurs, type ServerProc } from "./server-procs.ts";
import { describeMachine, formatMachine, median, percentile } from "./support.ts";

const env = process.env;
const num = (name: string, fallback: number) => Number(env[name] ?? fallback);
const ROUNDS = num("BENCH_ROUNDS", 3);
const PG_URL = env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
/** Scale-out: model latency per call, the per-process cap, runs per measurement, workers. */
const LATENCY_MS = num("BENCH_CLUSTER_LATENCY_MS", 200);
const CAP = num("BENCH_CLUSTER_CAP", 4);
const MAX_WORKERS = num("BENCH_CLUSTER_MAX_WORKERS", 3);
const CLUSTER_RUNS = num("BENCH_CLUSTER_RUNS", 60);
/**
 * Runs per worker, without model latency, before each scale-out measurement: a fresh process
 * spends 2-3 times more CPU a run in its first few hundred runs (V8's JIT warming up: worker CPU
 * 68 ms/run in the first 60 runs, 30 ms by the 600th, bench/RESULTS.md); a worker pool in
 * production has long passed that. 0: no such warm-up (the method before 2026-12-08).
 */
const CLUSTER_WARMUP_RUNS = num("BENCH_CLUSTER_WARMUP_RUNS", 500);
/** Clients in flight: twice what the largest cluster executes at once, so no worker idles. */
const CLUSTER_CLIENTS = num("BENCH_CLUSTER_CLIENTS", 2 * CAP * MAX_WORKERS);
/** Single process: Postgres against SQLite at the server bench's settings (zero latency). */
const SINGLE_LATENCY_MS = num("BENCH_SINGLE_LATENCY_MS", 0);
const SINGLE_WORKERS = num("BENCH_SINGLE_WORKERS", 64);
const SEQ_RUNS = num("BENCH_SEQ_RUNS", 60);
const CONCURRENCY = num("BENCH_CONCURRENCY", 16);
const CONC_RUNS = num("BENCH_CONC_RUNS", 240);
const WARMUP_RUNS = num("BENCH_WARMUP_RUNS", 150);
const TIMEOUT_S = num("BENCH_TIMEOUT_S", 1500);
/** Which parts run: "scale" (api + workers), "single" (Postgres against SQLite), or both. */
const PARTS = new Set((env.BENCH_CLUSTER_PARTS ?? "scale,single").split(","));

const TARGET_2 = 1.8;
const TARGET_3 = 2.5;
const TARGET_CONC = 0.7;
const TARGET_P50 = 1.5;

const log = (msg: string) => process.stderr.write(`[bench:cluster] ${msg}\n`);
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");

type RunOne = () => Promise<void>;

/** Busy and total jiffies of all CPUs (/proc/stat): how busy the whole machine was meanwhile. */
function machineTicks(): { busy: number; total: number } {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "")
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Runs `fn`; the machine's busy share and our processes' CPU ms per run while it ran. */
async function withCpu<T>(
  procs: readonly ServerProc[],
  runs: number,
  fn: () => Promise<T>,
): Promise<{ value: T; busyPct: number; cpuMsPerRun: number; firstCpuMsPerRun: number }> {
  const m0 = machineTicks();
  const each0 = procs.map((p) => p.cpuSeconds());
  const value = await fn();
  const each1 = procs.map((p) => p.cpuSeconds());
  const m1 = machineTicks();
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    value,
    busyPct: (100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total),
    cpuMsPerRun: ((sum(each1) - sum(each0)) * 1000) / runs,
    // The first process's share (the api process in the scale-out part).
    firstCpuMsPerRun: (((each1[0] ?? 0) - (each0[0] ?? 0)) * 1000) / runs,
  };
}

function runner(url: string, task = TASK): RunOne {
  // The SDK's client sends at most 4 requests at once unless told otherwise (its AsyncCaller's
  // default maxConcurrency): without this every batch had 4 runs in flight, whatever its clients.
  // No retries either: a failed request must fail the bench, not be sent again.
  const client = new Client({ apiUrl: url, callerOptions: { maxConcurrency: 256, maxRetries: 0 } });
  return async () => {
    const values = (await client.runs.wait(randomUUID(), "refine", {
      input: { task },
      config: { configurable: { ...RUN_OPTIONS } },
      ifNotExists: "create",
      signal: AbortSignal.timeout(120_000),
    })) as { stopReason?: string; drafts?: unknown[] };
    if (values?.stopReason !== "max_iterations" || values.drafts?.length !== 3) {
      throw new Error(`${url}: unexpected run result ${JSON.stringify(values)}`);
    }
  };
}

/** `runs` runs, `clients` at a time; runs per second over the whole batch's wall time. */
async function throughput(run: RunOne, runs: number, clients: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(clients, runs) }, async () => {
      while (next < runs) {
        next++;
        await run();
      }
    }),
  );
  return runs / ((performance.now() - started) / 1000);
}

/** `runs` sequential runs: median latency in ms. */
async function sequentialP50(run: RunOne, runs: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await run();
    samples.push(performance.now() - t);
  }
  return percentile(samples, 50);
}

const fmt = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "-");
const pass = (ok: boolean) => (ok ? "met" : "MISSED");

async function main(): Promise<void> {
  const timeout = setTimeout(() => {
    log(`timed out after ${TIMEOUT_S} s`);
    process.exit(2);
  }, TIMEOUT_S * 1000);
  timeout.unref();
  const machine = describeMachine();
  const loadStart = load();
  log(`${formatMachine(machine)}; load ${loadStart}`);
  const dir = mkdtempSync(join(tmpdir(), "refinery-bench-cluster-"));
  const tag = `bench_cluster_${process.pid}_${randomBytes(3).toString("hex")}`;
  const clusterSchema = `${tag}_cluster`;
  const singleSchema = `${tag}_single`;
  const redisPrefix = `${tag}:`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  const redis = new Redis(REDIS_URL);
  const procs: ServerProc[] = [];
  const stopAll = async (list: ServerProc[]) => {
    await Promise.all(list.map((p) => p.stop(5_000)));
    for (const p of list) procs.splice(procs.indexOf(p), 1);
  };
  const pgEnv = (schema: string) => ({
    REFINERY_DATABASE_URL: PG_URL,
    REFINERY_DATABASE_SCHEMA: schema,
  });
  const clusterEnv = {
    ...pgEnv(clusterSchema),
    REFINERY_REDIS_URL: REDIS_URL,
    REFINERY_REDIS_PREFIX: redisPrefix,
  };
  const start = async (opts: Parameters<typeof startOurs>[0]) => {
    const p = await startOurs(opts);
    procs.push(p);
    return p;
  };
  const scale = new Map<number, number[]>();
  const busy = new Map<number, number[]>();
  const cpuPerRun = new Map<number, number[]>();
  const single = { pgConc: [] as number[], sqlConc: [] as number[], pgP50: [] as number[] };
  const sqlP50: number[] = [];
  try {
    // ---------------------------------------------------------------------------------------
    // (1) Scale-out. The api process claims nothing; workers start and stop per measurement.
    if (PARTS.has("scale")) {
      const api = await start({
        dir,
        dbPath: join(dir, "cluster-api.db"),
        latencyMs: LATENCY_MS,
        workers: CAP,
        label: "cluster-api",
        role: "api",
        env: clusterEnv,
      });
      const viaApi = runner(api.url);
      const warmViaApi = runner(api.url, `${TASK}\n${NO_LATENCY_MARK}`);
      let launched = 0;
      for (let round = 1; round <= ROUNDS; round++) {
        const counts = Array.from({ length: MAX_WORKERS }, (_, i) => i + 1);
        if (round % 2 === 0) counts.reverse();
        for (const n of counts) {
          const workers = await Promise.all(
            Array.from({ length: n }, () => {
              launched++;
              return start({
                dir,
                dbPath: join(dir, `cluster-worker-${launched}.db`),
                latencyMs: LATENCY_MS,
                workers: CAP,
                label: `cluster-worker-${launched}`,
                role: "worker",
                env: clusterEnv,
              });
            }),
          );
          // Warm-up: first the JIT (runs the model answers at once), then a few runs as timed.
          if (CLUSTER_WARMUP_RUNS > 0) {
            const warm = await throughput(warmViaApi, CLUSTER_WARMUP_RUNS * n, CAP * n);
            log(`round ${round}: ${n} worker(s) warmed up, ${fmt(warm)} runs/s without latency`);
          }
          await throughput(viaApi, 2 * CAP * n, CAP * n);
          const m = await withCpu([api, ...workers], CLUSTER_RUNS, () =>
            throughput(viaApi, CLUSTER_RUNS, CLUSTER_CLIENTS),
          );
          const rps = m.value;
          log(
            `round ${round}: ${n} worker(s) ${fmt(rps)} runs/s; our processes ${fmt(m.cpuMsPerRun, 1)} ` +
              `CPU ms/run (api ${fmt(m.firstCpuMsPerRun, 1)}), machine ${fmt(m.busyPct, 0)}% busy (load ${load()})`,
          );
          scale.set(n, [...(scale.get(n) ?? []), rps]);
          busy.set(n, [...(busy.get(n) ?? []), m.busyPct]);
          cpuPerRun.set(n, [...(cpuPerRun.get(n) ?? []), m.cpuMsPerRun]);
          await stopAll(workers);
        }
      }
      await stopAll([api]);
    }

    // ---------------------------------------------------------------------------------------
    // (2) One process: Postgres (no Redis) against SQLite, both started once, alternating.
    if (PARTS.has("single")) {
      const [pgProc, sqlProc] = await Promise.all([
        start({
          dir,
          dbPath: join(dir, "single-pg.db"),
          latencyMs: SINGLE_LATENCY_MS,
          workers: SINGLE_WORKERS,
          label: "single-postgres",
          env: pgEnv(singleSchema),
        }),
        start({
          dir,
          dbPath: join(dir, "single-sqlite.db"),
          latencyMs: SINGLE_LATENCY_MS,
          workers: SINGLE_WORKERS,
          label: "single-sqlite",
        }),
      ]);
      const variants = [
        { name: "postgres", run: runner(pgProc.url), conc: single.pgConc, p50: single.pgP50 },
        { name: "sqlite", run: runner(sqlProc.url), conc: single.sqlConc, p50: sqlP50 },
      ];
      for (const v of variants) await throughput(v.run, WARMUP_RUNS, CONCURRENCY);
      for (let round = 1; round <= ROUNDS; round++) {
        const order = round % 2 === 0 ? [...variants].reverse() : variants;
        for (const v of order) {
          v.conc.push(await throughput(v.run, CONC_RUNS, CONCURRENCY));
          v.p50.push(await sequentialP50(v.run, SEQ_RUNS));
          log(
            `round ${round}: ${v.name} ${fmt(v.conc.at(-1) as number)} runs/s at ${CONCURRENCY}, ` +
              `sequential p50 ${fmt(v.p50.at(-1) as number, 1)} ms (load ${load()})`,
          );
        }
      }
      await stopAll([pgProc, sqlProc]);
    }
  } finally {
    await stopAll([...procs]).catch(() => undefined);
    for (const schema of [clusterSchema, singleSchema]) {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
    await admin.end();
    const keys = await redis.keys(`${redisPrefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    rmSync(dir, { recursive: true, force: true });
  }
  const loadEnd = load();

  // -----------------------------------------------------------------------------------------
  // Report: per-round figures, the ratios of each round, and medians over rounds.
  const one = scale.get(1) ?? [];
  const ratioOf = (n: number) => (scale.get(n) ?? []).map((x, i) => x / (one[i] as number));
  const rows: string[] = [];
  rows.push(
    `| measure | ${Array.from({ length: ROUNDS }, (_, i) => `round ${i + 1}`).join(" | ")} | median | target |`,
  );
  rows.push(`|---|${"---|".repeat(ROUNDS)}---|---|`);
  const row = (name: string, values: number[], target: string, digits = 2, suffix = "") =>
    rows.push(
      `| ${name} | ${values.map((x) => fmt(x, digits) + suffix).join(" | ")} | **${fmt(median(values), digits)}${suffix}** | ${target} |`,
    );
  if (PARTS.has("scale")) {
    for (let n = 1; n <= MAX_WORKERS; n++) row(`${n} worker(s), runs/s`, scale.get(n) ?? [], "");
    for (let n = 1; n <= MAX_WORKERS; n++)
      row(`${n} worker(s), CPU ms/run (api + workers)`, cpuPerRun.get(n) ?? [], "", 1);
    for (let n = 1; n <= MAX_WORKERS; n++)
      row(`${n} worker(s), machine busy`, busy.get(n) ?? [], "", 0, "%");
    for (let n = 2; n <= MAX_WORKERS; n++) {
      const target = n === 2 ? TARGET_2 : n === 3 ? TARGET_3 : undefined;
      const r = ratioOf(n);
      row(
        `${n} workers / 1`,
        r,
        target ? `≥ ${target}x: ${pass(median(r) >= target)}` : "",
        2,
        "x",
      );
    }
  }
  if (PARTS.has("single")) {
    row(`Postgres, ${CONCURRENCY}-concurrent runs/s`, single.pgConc, "");
    row(`SQLite, ${CONCURRENCY}-concurrent runs/s`, single.sqlConc, "");
    const concRatio = single.pgConc.map((x, i) => x / (single.sqlConc[i] as number));
    row(
      "Postgres / SQLite throughput",
      concRatio,
      `≥ ${TARGET_CONC}: ${pass(median(concRatio) >= TARGET_CONC)}`,
    );
    row("Postgres sequential p50 ms", single.pgP50, "", 1);
    row("SQLite sequential p50 ms", sqlP50, "", 1);
    const p50Ratio = single.pgP50.map((x, i) => x / (sqlP50[i] as number));
    row(
      "Postgres / SQLite p50",
      p50Ratio,
      `≤ ${TARGET_P50}x: ${pass(median(p50Ratio) <= TARGET_P50)}`,
      2,
      "x",
    );
  }

  const out = [
    `Machine: ${formatMachine(machine)}`,
    `Load average (1/5/15 min): start ${loadStart}, end ${loadEnd}`,
    `Scale-out: 1 api process + 1..${MAX_WORKERS} worker processes, Postgres schema + Redis prefix shared; ` +
      `cap ${CAP} concurrent runs per worker process (REFINERY_WORKERS), model ${LATENCY_MS} ms per call ` +
      `(6 calls, 9 nodes per run), ${CLUSTER_RUNS} runs per measurement, ${CLUSTER_CLIENTS} clients in flight, ` +
      `runs.wait through the api process; run threads ${env.BENCH_RUN_THREADS ?? "auto"}.`,
    `Single process: --role both, model ${SINGLE_LATENCY_MS} ms, REFINERY_WORKERS ${SINGLE_WORKERS}; ` +
      `${CONC_RUNS} runs at ${CONCURRENCY} concurrent, then ${SEQ_RUNS} sequential runs.wait, per variant per round ` +
      `(${WARMUP_RUNS} warm-up runs each first; Postgres without Redis).`,
    `${ROUNDS} rounds, variant order reversed every other round; ratios are per round.`,
    "",
    ...rows,
  ];
  process.stdout.write(`${out.join("\n")}\n`);
}

main()
  .then(() => process.exit(0))
  .catch((err: unknown) => {
    log(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  });
