// Server bench (npm run bench:server): the refine graph (9 node executions, 6 model calls per
// run, zero-latency model) (a) in-process, (b) behind our server, (c) behind the reference server
// (@langchain/langgraph-api), both servers as child processes on 127.0.0.1 driven through the
// official SDK with runs.wait. Sequential and 16-concurrent latency and throughput, server CPU per
// run, server RSS against finished runs, storage bytes per run; a long load phase on our server
// as `npm start` runs it (bundled, built-in OpenAI provider calling a loopback stub with the same
// replies), which gives the RSS figures; then batches of 1,000 concurrent runs against a 200 ms
// model on our server. Bounded in runs and time; children die with it.
import { fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import Database from "better-sqlite3";
import { EXPECTED_MODEL_CALLS, EXPECTED_NODE_RUNS, RUN_OPTIONS, TASK } from "./server-graph.ts";
import {
  ensureReferenceServer,
  REFERENCE_VERSION,
  startNpmServer,
  startOurs,
  startReference,
  type ServerProc,
} from "./server-procs.ts";
import { measureOnce, measures } from "./startup-measures.ts";
import { startBenchStub, type BenchStub } from "./stub-model.ts";
import {
  FIGURES,
  machineClass,
  printSummary,
  type FigureKey,
  type FigureRecord,
  type Figures,
} from "./summary.ts";
import {
  describeMachine,
  formatMachine,
  median,
  percentile,
  runInterleaved,
  slope,
  type Variant,
} from "./support.ts";

const env = process.env;
const ROOT = resolve(import.meta.dirname, "..");
const num = (name: string, fallback: number) => Number(env[name] ?? fallback);
const ROUNDS = num("BENCH_ROUNDS", 3);
const WARMUP = num("BENCH_WARMUP", 30);
/**
 * Then each variant runs this many more before round 1: the in-process graph one at a time, each
 * server at BENCH_CONCURRENCY. Our server reaches its working state (both run threads compiled
 * hot, heaps grown to size) only after several hundred concurrent runs; with 64 warm-up runs, round
 * 1's concurrent phase measured that start-up (bench/RESULTS.md, 2026-12-06, "Warm-up").
 */
const WARMUP_RUNS = num("BENCH_WARMUP_RUNS", 800);
const SEQ_RUNS = num("BENCH_SEQ_RUNS", 200);
/** The reference server needs ~0.6 s per sequential run, so it gets fewer sequential runs. */
const REF_SEQ_RUNS = num("BENCH_REF_SEQ_RUNS", 100);
const CONCURRENCY = num("BENCH_CONCURRENCY", 16);
const CONC_RUNS = num("BENCH_CONC_RUNS", 800);
/** The load of issue 20: RSS under it, and whether it stays flat from 1,000 runs to the end. */
const EXTRA_RUNS = num("BENCH_EXTRA_RUNS", 10000);
const LOAD_CONCURRENCY = num("BENCH_LOAD_CONCURRENCY", 32);
/** Repeats of each start-up and CLI measure (bench/startup-measures.ts) before the servers start. */
const STARTUP_REPEATS = num("BENCH_STARTUP_REPEATS", 3);
/** During the extra batch, RSS is also read on a timer, every this many ms. */
const RSS_EVERY_MS = num("BENCH_RSS_EVERY_MS", 250);
const REF_EXTRA_RUNS = num("BENCH_REF_EXTRA_RUNS", 500);
const BLOCK = num("BENCH_BLOCK", 25);
/** Concurrent runs alternate between the servers in blocks of this many runs. */
const CONC_BLOCK = num("BENCH_CONC_BLOCK", 400);
const OUR_WORKERS = num("BENCH_WORKERS", 64);
/** `langgraph dev` default (--n-jobs-per-worker 10). */
const REF_WORKERS = num("BENCH_REF_WORKERS", 10);
const BATCH = num("BENCH_BATCH", 1000);
const BATCH_LATENCY_MS = num("BENCH_BATCH_LATENCY_MS", 200);
const BATCH_WORKERS = (env.BENCH_BATCH_WORKERS ?? "64,256,1000")
  .split(",")
  .filter(Boolean)
  .map(Number);
const TIMEOUT_S = num("BENCH_TIMEOUT_S", 1800);

const TARGET_SEQ = FIGURES.seq_p50_ratio.target;
const TARGET_THROUGHPUT = FIGURES.throughput_ratio.target;
const TARGET_BATCH = 1.3;
/**
 * "Flat": over the extra batch, the median RSS of its last third at most this much above the
 * median of its middle third (the first third is warm-up). Single samples after a phase, which
 * the rules before 2026-12-02 compared, swing by ±50 MiB with V8's collection cycles; they are
 * still printed.
 */
const TARGET_RSS_GROWTH = 0.1;

const log = (msg: string) =>
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

// ---------------------------------------------------------------------------------------------
// Load generation

interface Phase {
  runs: number;
  wallMs: number;
  samples: number[];
  /** CPU ms per run over the phase: the server process's, or this process's in-process. */
  cpuMsPerRun?: number;
  /** CPU ms per run of this process (the SDK client) while it drove a server. */
  clientCpuMsPerRun?: number;
}

const p50 = (s: number[]) => percentile(s, 50);
const p99 = (s: number[]) => percentile(s, 99);
const rate = (p: Phase) => (p.runs / p.wallMs) * 1000;

type RunOne = () => Promise<void>;

async function runConcurrent(runs: number, concurrency: number, one: RunOne): Promise<Phase> {
  const samples: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, runs) }, async () => {
      while (next < runs) {
        next++;
        const t = performance.now();
        await one();
        samples.push(performance.now() - t);
      }
    }),
  );
  return { runs, wallMs: performance.now() - started, samples };
}

/** Concatenates phases run one after another (wall times add up). */
function merge(phases: Phase[]): Phase {
  const runs = phases.reduce((a, p) => a + p.runs, 0);
  const cpu = phases.reduce((a, p) => a + (p.cpuMsPerRun ?? 0) * p.runs, 0);
  const client = phases.reduce((a, p) => a + (p.clientCpuMsPerRun ?? 0) * p.runs, 0);
  return {
    runs,
    wallMs: phases.reduce((a, p) => a + p.wallMs, 0),
    samples: phases.flatMap((p) => p.samples),
    cpuMsPerRun: cpu / runs,
    clientCpuMsPerRun: client / runs,
  };
}

/**
 * `runs` concurrent runs on each target, alternating targets in blocks of CONC_BLOCK (the
 * first target alternates by round) so that load from elsewhere on the machine hits both alike.
 */
async function alternate(targets: Target[], runs: number, round: number): Promise<Phase[]> {
  const phases = targets.map(() => [] as Phase[]);
  for (let done = 0, cycle = round; done < runs; done += CONC_BLOCK, cycle++) {
    const n = Math.min(CONC_BLOCK, runs - done);
    for (let j = 0; j < targets.length; j++) {
      const k = (j + cycle) % targets.length;
      const t = targets[k] as Target;
      phases[k]?.push(await isolated(targets, t, () => runConcurrent(n, CONCURRENCY, t.run)));
    }
  }
  return phases.map(merge);
}

/**
 * Measures `phase` on `target` once every server has gone quiet, and records the CPU the other
 * servers used meanwhile. Without the wait, one server's background work landed in the other's
 * timing: the reference writes its JSON files (every checkpoint so far, hundreds of MB by the
 * later rounds) a few seconds after its last change, i.e. during the next block of ours.
 */
async function isolated(targets: Target[], target: Target, phase: () => Promise<Phase>) {
  const settleMs = await settle(targets);
  const others = targets.filter((t) => t !== target);
  const before = others.map((t) => t.proc.cpuSeconds());
  const result = await target.measure(phase);
  const otherCpuMs = others.reduce((a, t, i) => a + (t.proc.cpuSeconds() - before[i]!) * 1000, 0);
  target.blocks.push({ runs: result.runs, settleMs, otherCpuMs });
  return result;
}

/**
 * Waits until the servers together use under 5% of a core over 500 ms, and at least 3.5 s: the
 * reference's write-behind fires 3 s after its last change, so a shorter quiet spell can end just
 * before it (at most 30 s).
 */
async function settle(targets: Target[], windowMs = 500, minMs = 3_500, maxMs = 30_000) {
  const started = performance.now();
  let last = targets.map((t) => t.proc.cpuSeconds());
  while (performance.now() - started < maxMs) {
    await new Promise((r) => setTimeout(r, windowMs));
    const now = targets.map((t) => t.proc.cpuSeconds());
    const usedMs = now.reduce((a, c, i) => a + (c - last[i]!) * 1000, 0);
    last = now;
    if (usedMs < windowMs * 0.05 && performance.now() - started >= minMs) break;
  }
  return performance.now() - started;
}

/** A server under test: its SDK client, process, and a count of the runs it has finished. */
class Target {
  finished = 0;
  /** When set, RSS is also sampled every this many finished runs. */
  sampleEvery = 0;
  readonly rss: { runs: number; mib: number; after: string }[] = [];
  /** RSS read on a timer during the extra batch, with the runs finished by then. */
  readonly timed: { runs: number; mib: number }[] = [];
  private timer?: NodeJS.Timeout;
  /** Concurrent blocks: the wait for quiet before each, and the other servers' CPU during it. */
  readonly blocks: { runs: number; settleMs: number; otherCpuMs: number }[] = [];
  readonly client: Client;

  constructor(
    readonly proc: ServerProc,
    maxConcurrency: number,
    private readonly timeoutMs = 120_000,
  ) {
    this.client = new Client({
      apiUrl: proc.url,
      callerOptions: { maxConcurrency, maxRetries: 0 },
    });
  }

  /** One run on a fresh thread: POST /threads/{new id}/runs/wait with if_not_exists=create. */
  readonly run: RunOne = async () => {
    const values = (await this.client.runs.wait(randomUUID(), "refine", {
      input: { task: TASK },
      config: { configurable: { ...RUN_OPTIONS } },
      ifNotExists: "create",
      signal: AbortSignal.timeout(this.timeoutMs),
    })) as { stopReason?: string; drafts?: unknown[] };
    if (values?.stopReason !== "max_iterations" || values.drafts?.length !== 3) {
      throw new Error(`${this.proc.name}: unexpected run result ${JSON.stringify(values)}`);
    }
    this.finished++;
    if (this.sampleEvery && this.finished % this.sampleEvery === 0)
      this.sampleRss("during extra batch");
  };

  async measure(phase: () => Promise<Phase>): Promise<Phase> {
    const cpu = this.proc.cpuSeconds();
    const client = process.cpuUsage();
    const result = await phase();
    result.cpuMsPerRun = ((this.proc.cpuSeconds() - cpu) * 1000) / result.runs;
    const used = process.cpuUsage(client);
    result.clientCpuMsPerRun = (used.user + used.system) / 1000 / result.runs;
    return result;
  }

  /** Reads RSS every `everyMs` until stopTimedRss(). */
  startTimedRss(everyMs: number): void {
    const start = this.finished;
    this.timer = setInterval(
      () => this.timed.push({ runs: this.finished - start, mib: this.proc.rssMiB() }),
      everyMs,
    );
  }

  stopTimedRss(): void {
    clearInterval(this.timer);
  }

  sampleRss(after: string): number {
    const mib = this.proc.rssMiB();
    this.rss.push({ runs: this.finished, mib, after });
    return mib;
  }

  /** The run the bench claims to measure: 9 node executions (counted from `updates` events). */
  async checkShape(): Promise<void> {
    const nodes: string[] = [];
    for await (const chunk of this.client.runs.stream(randomUUID(), "refine", {
      input: { task: TASK },
      config: { configurable: { ...RUN_OPTIONS } },
      ifNotExists: "create",
      streamMode: "updates",
    })) {
      if (chunk.event === "updates") nodes.push(...Object.keys(chunk.data as object));
      if (chunk.event === "error") throw new Error(`${this.proc.name}: ${JSON.stringify(chunk)}`);
    }
    this.finished++;
    if (nodes.length !== EXPECTED_NODE_RUNS) {
      throw new Error(`${this.proc.name}: ${nodes.length} node runs (${nodes.join(" ")})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// In-process variants (in-process.ts) in a child process of their own (in-process-child.ts)

/** Each variant's calls; `run` answers the run's wall-clock ms as the child timed it. */
interface InProcessVariant {
  run(): Promise<number>;
  checkShape(): Promise<void>;
  takeCpuMsPerRun(): Promise<number>;
  finished(): Promise<number>;
}

async function startInProcess(
  dir: string,
): Promise<{ raw: InProcessVariant; light: InProcessVariant; close(): Promise<void> }> {
  const child = fork(join(import.meta.dirname, "in-process-child.ts"), [dir], {
    // V8 keeps its heap's size while the child idles between its blocks, as our server does
    // (`npm start`'s --no-memory-reducer): each round's in-process runs follow ~20 s in which
    // only the servers ran, and a heap shrunk meanwhile is regrown during the timed runs.
    execArgv: ["--no-memory-reducer", "--import", import.meta.resolve("tsx")],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  type Waiter = { resolve(value: number): void; reject(err: Error): void };
  const pending = new Map<number, Waiter>();
  let nextId = 1;
  child.on("message", (m: { id: number; value?: number; error?: string }) => {
    const waiter = pending.get(m.id);
    pending.delete(m.id);
    if (m.error !== undefined) waiter?.reject(new Error(`in-process child: ${m.error}`));
    else waiter?.resolve(m.value ?? 0);
  });
  child.on("exit", (code) => {
    for (const w of pending.values()) w.reject(new Error(`in-process child exited (${code})`));
    pending.clear();
  });
  await new Promise<number>((resolve, reject) => pending.set(0, { resolve, reject }));
  const call = (op: string, variant: "raw" | "light") =>
    new Promise<number>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, op, variant });
    });
  const variant = (v: "raw" | "light"): InProcessVariant => ({
    run: () => call("run", v),
    checkShape: async () => void (await call("checkShape", v)),
    takeCpuMsPerRun: () => call("cpu", v),
    finished: () => call("finished", v),
  });
  return {
    raw: variant("raw"),
    light: variant("light"),
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.send({ id: -1, op: "close" });
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Storage per run

/** Bytes of a closed SQLite file by table (indexes counted with their table), via dbstat. */
function sqliteBytes(path: string): { total: number; byTable: Record<string, number> } {
  const db = new Database(path, { readonly: true });
  try {
    const rows = db
      .prepare(
        `SELECT coalesce(m.tbl_name, s.name) AS t, sum(s.pgsize) AS bytes
         FROM dbstat s LEFT JOIN sqlite_schema m ON m.name = s.name GROUP BY t`,
      )
      .all() as { t: string; bytes: number }[];
    const byTable = Object.fromEntries(rows.map((r) => [r.t, r.bytes]));
    return { total: statSync(path).size, byTable };
  } finally {
    db.close();
  }
}

const sizeOf = (path: string) => (existsSync(path) ? statSync(path).size : 0);

/** Size of a file another process writes, once it exists and stays the same for 2 s (max 60 s). */
async function settledSize(path: string): Promise<number> {
  let last = -1;
  let stableSince = Date.now();
  for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
    const size = sizeOf(path);
    if (size !== last) {
      last = size;
      stableSince = Date.now();
    } else if (size > 0 && Date.now() - stableSince >= 2_000) {
      return size;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${path} did not settle`);
}

// ---------------------------------------------------------------------------------------------
// Main

interface Round {
  rawSeq: Phase;
  /** The in-process graph with the light run context, as the server's engine runs it. */
  lightSeq: Phase;
  oursSeq: Phase;
  refSeq: Phase;
  oursConc: Phase;
  refConc: Phase;
}

interface Batch {
  workers: number;
  wallMs: number;
  idealMs: number;
  ratio: number;
  p50: number;
  p99: number;
  cpuMsPerRun: number;
  /** CPU ms per run of this process (the SDK client) during the batch. */
  clientCpuMsPerRun: number;
  rssMiB: number;
  /** Requests that failed (counted in the wall time, not in the percentiles). */
  failed: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "refinery-bench-server-"));
  const deadline = setTimeout(() => {
    log(`time limit of ${TIMEOUT_S} s reached: stopping`);
    process.exit(1);
  }, TIMEOUT_S * 1000);
  deadline.unref();
  const procs: ServerProc[] = [];
  let stub: BenchStub | undefined;
  const machine = describeMachine();
  console.log(`machine: ${formatMachine(machine)}`);
  // The machine is shared: the load average says how much else ran during the bench.
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(", ");
  const loadAtStart = load();
  console.log(`load average (1, 5, 15 min) at start: ${loadAtStart}`);
  console.log(
    `method: warm-up ${WARMUP} sequential runs each, then ${WARMUP_RUNS} more (in-process one ` +
      `at a time, servers at ${CONCURRENCY} concurrent); ${ROUNDS} rounds; each round: ` +
      `in-process (raw, and with the light run context) and ours interleaved in blocks of ${BLOCK} (${SEQ_RUNS} sequential runs.wait each), reference ${REF_SEQ_RUNS} sequential, then ` +
      `${CONC_RUNS} runs at ${CONCURRENCY} concurrent on each server (alternating in blocks of ` +
      `${CONC_BLOCK}); fresh thread per run; ` +
      `${EXPECTED_NODE_RUNS} node runs and ${EXPECTED_MODEL_CALLS} model calls per run; ` +
      `server workers: ours ${OUR_WORKERS}, reference ${REF_WORKERS}; reference: ` +
      `@langchain/langgraph-api ${REFERENCE_VERSION}`,
  );
  try {
    // ---- start-up and CLI, each a child process, before the servers load the machine
    const startup = new Map<string, number[]>();
    for (let i = 0; i < STARTUP_REPEATS; i++) {
      for (const measure of measures) {
        const times = startup.get(measure.key) ?? [];
        times.push(await measureOnce(measure, ROOT));
        startup.set(measure.key, times);
      }
    }
    log(
      `start-up and CLI: ${[...startup].map(([k, t]) => `${k} ${t.map((x) => x.toFixed(0)).join(" ")}`).join("; ")}`,
    );
    // ---- zero-latency model: in-process, ours, reference
    const referenceDir = ensureReferenceServer(log);
    const inProc = await startInProcess(dir);
    const { raw: inProcess, light: inProcessLight } = inProc;
    const oursDb = join(dir, "ours.db");
    const [oursProc, refProc] = await Promise.all([
      startOurs({ dir, dbPath: oursDb, latencyMs: 0, workers: OUR_WORKERS }),
      startReference({ packageDir: referenceDir, dir, latencyMs: 0, workers: REF_WORKERS }),
    ]);
    procs.push(oursProc, refProc);
    log(
      `ours at ${oursProc.url} (pid ${oursProc.pid}), reference at ${refProc.url} (pid ${refProc.pid})`,
    );
    const ours = new Target(oursProc, Math.max(CONCURRENCY, LOAD_CONCURRENCY));
    const ref = new Target(refProc, CONCURRENCY);
    // Idle RSS once start-up is over: our server answers /ok before its run thread has opened
    // its runtime, so a sample right away missed that thread (issue 20's idle figure).
    await settle([ours, ref]);
    ours.sampleRss("start");
    ref.sampleRss("start");

    await inProcess.checkShape();
    await inProcessLight.checkShape();
    await ours.checkShape();
    await ref.checkShape();
    log("shape checked: 9 node runs per run on all three");
    for (const one of [inProcess.run, inProcessLight.run, ours.run, ref.run]) {
      for (let i = 0; i < WARMUP; i++) await one();
    }
    for (let i = 0; i < WARMUP_RUNS; i++) {
      await inProcess.run();
      await inProcessLight.run();
    }
    const warm = [
      await runConcurrent(WARMUP_RUNS, CONCURRENCY, ours.run),
      await runConcurrent(WARMUP_RUNS, CONCURRENCY, ref.run),
    ].map((p) => `${fmt(rate(p), 1)} runs/s`);
    await inProcess.takeCpuMsPerRun();
    await inProcessLight.takeCpuMsPerRun();
    ours.sampleRss("warm-up");
    ref.sampleRss("warm-up");
    log(`warmed up (at ${CONCURRENCY} concurrent: ours ${warm[0]}, reference ${warm[1]})`);

    const rounds: Round[] = [];
    const counters = new Map<string, number>();
    for (let round = 0; round < ROUNDS; round++) {
      await settle([ours, ref]);
      const cpu = oursProc.cpuSeconds();
      const variants: Variant[] = [
        { name: "in-process", run: async () => void (await inProcess.run()), timed: inProcess.run },
        {
          name: "in-process light",
          run: async () => void (await inProcessLight.run()),
          timed: inProcessLight.run,
        },
        { name: "ours", run: () => ours.run() },
      ];
      const [raw, light, oursSeqTiming] = await runInterleaved(
        variants,
        { runs: SEQ_RUNS, warmup: 0, blockSize: BLOCK },
        counters,
      );
      if (!raw || !light || !oursSeqTiming) throw new Error("missing timings");
      const toPhase = (t: typeof raw): Phase => ({
        runs: t.runs,
        wallMs: t.totalMs,
        samples: t.samples,
      });
      const oursSeq = {
        ...toPhase(oursSeqTiming),
        cpuMsPerRun: ((oursProc.cpuSeconds() - cpu) * 1000) / SEQ_RUNS,
      };
      ours.sampleRss(`round ${round + 1} sequential`);
      const refSeq = await isolated([ours, ref], ref, () =>
        runConcurrent(REF_SEQ_RUNS, 1, ref.run),
      );
      ref.sampleRss(`round ${round + 1} sequential`);
      const [oursConc, refConc] = await alternate([ours, ref], CONC_RUNS, round);
      if (!oursConc || !refConc) throw new Error("missing concurrent timings");
      ours.sampleRss(`round ${round + 1} concurrent`);
      ref.sampleRss(`round ${round + 1} concurrent`);
      const rawSeq = { ...toPhase(raw), cpuMsPerRun: await inProcess.takeCpuMsPerRun() };
      const lightSeq = { ...toPhase(light), cpuMsPerRun: await inProcessLight.takeCpuMsPerRun() };
      const r = { rawSeq, lightSeq, oursSeq, refSeq, oursConc, refConc };
      rounds.push(r);
      log(
        `round ${round + 1}/${ROUNDS}: seq p50 in-process ${fmt(p50(r.rawSeq.samples), 2)} ms ` +
          `(light context ${fmt(p50(r.lightSeq.samples), 2)} ms), ` +
          `ours ${fmt(p50(oursSeq.samples), 2)} ms, reference ${fmt(p50(refSeq.samples))} ms; ` +
          `${CONCURRENCY}-concurrent ours ${fmt(rate(oursConc))} runs/s, reference ${fmt(rate(refConc))} runs/s`,
      );
    }

    // The load phase and the RSS figures: our server as `npm start` runs it (the bundled dist/,
    // its built-in OpenAI provider calling the bench replies on a loopback stub), started only
    // now. The child above loads the bench model as a module through tsx, with a second copy of
    // the graph stack: right for comparing speed with the reference, which loads the same
    // module, not for what a deployment's memory is (bench/RESULTS.md, "The ~70 MiB").
    stub = await startBenchStub();
    const deployedProc = await startNpmServer({
      dir,
      dbPath: join(dir, "ours-npm-start.db"),
      modelUrl: stub.url,
      workers: OUR_WORKERS,
    });
    procs.push(deployedProc);
    const deployed = new Target(deployedProc, LOAD_CONCURRENCY);
    await settle([ours, ref, deployed]);
    deployed.sampleRss("start");
    // A final batch: does RSS keep growing with finished runs?
    deployed.sampleEvery = ref.sampleEvery = 500;
    const oursExtra = await isolated([ours, ref, deployed], deployed, async () => {
      deployed.startTimedRss(RSS_EVERY_MS);
      try {
        return await runConcurrent(EXTRA_RUNS, LOAD_CONCURRENCY, deployed.run);
      } finally {
        deployed.stopTimedRss();
      }
    });
    deployed.sampleRss("extra batch");
    const refExtra = await isolated([ours, ref, deployed], ref, () =>
      runConcurrent(REF_EXTRA_RUNS, CONCURRENCY, ref.run),
    );
    ref.sampleRss("extra batch");
    deployed.sampleEvery = ref.sampleEvery = 0;
    log(
      `extra batch: ours ${fmt(rate(oursExtra))} runs/s, reference ${fmt(rate(refExtra))} runs/s`,
    );
    // The reference writes its JSON files 3 s after the last change; wait until they settle.
    const refFiles = {
      checkpoints: await settledSize(
        join(dir, ".langgraph_api", ".langgraphjs_api.checkpointer.json"),
      ),
      ops: await settledSize(join(dir, ".langgraph_api", ".langgraphjs_ops.json")),
    };
    ours.sampleRss("idle");
    ref.sampleRss("idle");
    deployed.sampleRss("idle");
    await Promise.all([oursProc.stop(), refProc.stop(), deployedProc.stop()]);
    await stub.close();
    stub = undefined;
    const rawRuns = await inProcess.finished();
    await inProc.close();
    const oursBytes = sqliteBytes(oursDb);
    const rawBytes = sqliteBytes(join(dir, "in-process.db"));

    const summary = summarize({
      rounds,
      ours,
      deployed,
      oursExtra,
      oursBytes,
      startup,
      machine: formatMachine(machine),
      machineClass: machineClass(machine),
      loadAverage: `${loadAtStart} at start, ${load()} at the end of the load`,
    });
    report({
      rounds,
      ours,
      deployed,
      ref,
      oursExtra,
      refExtra,
      refFiles,
      oursBytes,
      rawBytes,
      rawRuns,
    });
    printSummary(summary);
    if (env.BENCH_JSON) writeFileSync(env.BENCH_JSON, `${JSON.stringify(summary, null, 2)}\n`);
    if (BATCH_WORKERS.length > 0) {
      console.log(`\nload average before the batches: ${load()}`);
      reportBatches(await runBatches(dir, procs));
    }
    console.log(`\nload average at the end: ${load()}`);
  } finally {
    await Promise.all(procs.map((p) => p.stop(3_000).catch(() => undefined)));
    await stub?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// 1,000 concurrent runs against a 200 ms model, on our server

async function runBatches(dir: string, procs: ServerProc[]): Promise<Batch[]> {
  const batches: Batch[] = [];
  for (const workers of BATCH_WORKERS) {
    const proc = await startOurs({
      dir,
      dbPath: join(dir, `ours-batch-${workers}.db`),
      latencyMs: BATCH_LATENCY_MS,
      workers,
      label: `ours-batch-${workers}`,
    });
    procs.push(proc);
    const target = new Target(proc, BATCH, 600_000);
    await runConcurrent(CONCURRENCY, CONCURRENCY, target.run);
    for (let round = 0; round < ROUNDS; round++) {
      // A failed request (e.g. a client connect timeout on a starved machine) is counted, not fatal.
      const errors = new Map<string, number>();
      const tolerant: RunOne = () =>
        target.run().catch((err: Error & { cause?: Error & { cause?: Error } }) => {
          const why = [err.message, err.cause?.message, err.cause?.cause?.message]
            .filter(Boolean)
            .join(" <- ")
            .slice(0, 200);
          errors.set(why, (errors.get(why) ?? 0) + 1);
        });
      const phase = await target.measure(() => runConcurrent(BATCH, BATCH, tolerant));
      const idealMs = EXPECTED_MODEL_CALLS * BATCH_LATENCY_MS * Math.ceil(BATCH / workers);
      const failed = [...errors.values()].reduce((a, b) => a + b, 0);
      const b: Batch = {
        workers,
        wallMs: phase.wallMs,
        idealMs,
        ratio: phase.wallMs / idealMs,
        p50: p50(phase.samples),
        p99: p99(phase.samples),
        cpuMsPerRun: phase.cpuMsPerRun ?? Number.NaN,
        clientCpuMsPerRun: phase.clientCpuMsPerRun ?? Number.NaN,
        rssMiB: target.sampleRss(`batch ${round + 1}`),
        failed,
      };
      batches.push(b);
      log(
        `batch ${BATCH} x ${BATCH_LATENCY_MS} ms model, ${workers} workers, round ${round + 1}: ` +
          `${fmt(b.wallMs / 1000, 2)} s (ideal ${fmt(idealMs / 1000, 1)} s, ${fmt(b.ratio, 2)}x)` +
          (failed ? `, ${failed} failed: ${JSON.stringify([...errors])}` : ""),
      );
    }
    await proc.stop();
  }
  return batches;
}

// ---------------------------------------------------------------------------------------------
// Report

/** The figures of issue 20 from this run (bench/summary.ts). */
function summarize(r: {
  rounds: Round[];
  ours: Target;
  /** The `npm start` server of the load phase (RSS figures). */
  deployed: Target;
  oursExtra: Phase;
  oursBytes: { total: number };
  startup: Map<string, number[]>;
  machine: string;
  machineClass: string;
  loadAverage: string;
}): FigureRecord {
  const med = (f: (x: Round) => number) => median(r.rounds.map(f));
  const timed = r.deployed.timed;
  const near = (runs: number) =>
    median(timed.filter((x) => Math.abs(x.runs - runs) <= 500).map((x) => x.mib));
  const last = timed.at(-1)?.runs ?? 0;
  const from = Math.min(1000, Math.floor(last / 4));
  const figures: Figures = {
    stored_kib_per_run: r.oursBytes.total / r.ours.finished / 1024,
    rss_idle_mib: r.deployed.rss.find((s) => s.after === "start")?.mib,
    rss_load_mib: Math.max(...timed.filter((x) => x.runs <= 2000).map((x) => x.mib)),
    // Windows of ±500 runs around 1,000 and the end overlap on a shorter load: not a measurement.
    ...(last >= 2000 ? { rss_growth: near(last - 500) / near(from) - 1 } : {}),
    seq_p50_ratio: med((x) => p50(x.oursSeq.samples) / p50(x.rawSeq.samples)),
    throughput_ratio: med((x) => rate(x.oursConc) / rate(x.refConc)),
  };
  for (const m of measures) {
    const times = r.startup.get(m.key);
    if (times?.length) figures[m.key as FigureKey] = median(times);
  }
  const startupNote = `median of ${STARTUP_REPEATS} child processes`;
  return {
    machineClass: r.machineClass,
    machine: r.machine,
    loadAverage: r.loadAverage,
    ...(env.BENCH_COMMIT ? { commit: env.BENCH_COMMIT } : {}),
    figures,
    notes: {
      stored_kib_per_run: `SQLite file / ${r.ours.finished} runs`,
      startup_ok_ms: startupNote,
      cli_help_ms: startupNote,
      cli_offline_run_ms: startupNote,
      rss_idle_mib: "one sample, npm start with the OpenAI provider on a loopback stub",
      rss_load_mib: `samples every ${RSS_EVERY_MS} ms, ${LOAD_CONCURRENCY} concurrent, npm start`,
      rss_growth: `runs ${from} → ${last} of ${r.oursExtra.runs} at ${LOAD_CONCURRENCY} concurrent`,
      seq_p50_ratio: `median of ${r.rounds.length} rounds, ${SEQ_RUNS} runs each`,
      throughput_ratio: `median of ${r.rounds.length} rounds, ${CONC_RUNS} runs each`,
    },
  };
}

function report(r: {
  rounds: Round[];
  ours: Target;
  deployed: Target;
  ref: Target;
  oursExtra: Phase;
  refExtra: Phase;
  refFiles: { checkpoints: number; ops: number };
  oursBytes: { total: number; byTable: Record<string, number> };
  rawBytes: { total: number; byTable: Record<string, number> };
  rawRuns: number;
}): void {
  const { rounds } = r;
  const med = (f: (x: Round) => number) => median(rounds.map(f));
  console.log(`\nZero-latency model, per round (ms; runs/s; server CPU ms per run)`);
  console.log(
    "round | variant | seq p50 | seq p99 | seq runs/s | seq CPU | c16 runs/s | c16 p50 | c16 p99 | c16 CPU",
  );
  const line = (i: string, name: string, seq: Phase, conc?: Phase) =>
    console.log(
      `${i} | ${name} | ${fmt(p50(seq.samples), 2)} | ${fmt(p99(seq.samples), 2)} | ` +
        `${fmt(rate(seq))} | ${fmt(seq.cpuMsPerRun ?? Number.NaN, 2)} | ` +
        (conc
          ? `${fmt(rate(conc))} | ${fmt(p50(conc.samples), 1)} | ${fmt(p99(conc.samples), 1)} | ` +
            `${fmt(conc.cpuMsPerRun ?? Number.NaN, 2)}`
          : "- | - | - | -"),
    );
  rounds.forEach((x, i) => {
    line(String(i + 1), "in-process", x.rawSeq);
    line(String(i + 1), "in-process light", x.lightSeq);
    line(String(i + 1), "ours", x.oursSeq, x.oursConc);
    line(String(i + 1), "reference", x.refSeq, x.refConc);
  });
  const medPhase = (pick: (x: Round) => Phase) => ({
    p50: med((x) => p50(pick(x).samples)),
    p99: med((x) => p99(pick(x).samples)),
    rate: med((x) => rate(pick(x))),
    cpu: med((x) => pick(x).cpuMsPerRun ?? Number.NaN),
  });
  const rows = {
    "in-process": { seq: medPhase((x) => x.rawSeq) },
    "in-process light": { seq: medPhase((x) => x.lightSeq) },
    ours: { seq: medPhase((x) => x.oursSeq), conc: medPhase((x) => x.oursConc) },
    reference: { seq: medPhase((x) => x.refSeq), conc: medPhase((x) => x.refConc) },
  };
  for (const [name, m] of Object.entries(rows)) {
    const c = "conc" in m ? m.conc : undefined;
    console.log(
      `median | ${name} | ${fmt(m.seq.p50, 2)} | ${fmt(m.seq.p99, 2)} | ${fmt(m.seq.rate)} | ` +
        `${fmt(m.seq.cpu, 2)} | ` +
        (c
          ? `${fmt(c.rate)} | ${fmt(c.p50, 1)} | ${fmt(c.p99, 1)} | ${fmt(c.cpu, 2)}`
          : "- | - | - | -"),
    );
  }

  console.log(
    `\nIsolation: before each measured block the bench waits until both servers are quiet ` +
      `(under 5% of a core over 500 ms, at least 3.5 s); CPU the other server used during the blocks`,
  );
  console.log("measured | blocks | median wait s | max wait s | other server's CPU ms/run");
  for (const t of [r.ours, r.ref]) {
    const runs = t.blocks.reduce((a, b) => a + b.runs, 0);
    const other = t.blocks.reduce((a, b) => a + b.otherCpuMs, 0);
    const waits = t.blocks.map((b) => b.settleMs / 1000);
    console.log(
      `${t.proc.name} | ${t.blocks.length} | ${fmt(median(waits), 1)} | ` +
        `${fmt(Math.max(...waits), 1)} | ${fmt(runs ? other / runs : 0, 2)}`,
    );
  }

  console.log(`\nServer RSS (MiB) against finished runs`);
  console.log("server | after | finished runs | RSS MiB");
  for (const t of [r.ours, r.deployed, r.ref]) {
    for (const s of t.rss) console.log(`${t.proc.name} | ${s.after} | ${s.runs} | ${fmt(s.mib)}`);
  }
  console.log(
    `extra batch: ours (npm start) ${r.oursExtra.runs} runs at ${fmt(rate(r.oursExtra))} runs/s, ` +
      `reference ${r.refExtra.runs} runs at ${fmt(rate(r.refExtra))} runs/s`,
  );

  console.log(`\nStorage per finished run`);
  const perRun = (bytes: number, runs: number) => `${fmt(bytes / runs / 1024, 1)} KiB`;
  const tables = (b: Record<string, number>, names: string[]) =>
    names.reduce((sum, n) => sum + (b[n] ?? 0), 0);
  const cpTables = ["checkpoints", "writes"];
  console.log(
    `ours: SQLite file ${perRun(r.oursBytes.total, r.ours.finished)} (checkpoint tables ` +
      `${perRun(tables(r.oursBytes.byTable, cpTables), r.ours.finished)}; runs/threads tables ` +
      `${perRun(
        tables(
          r.oursBytes.byTable,
          Object.keys(r.oursBytes.byTable).filter((n) => n.startsWith("refinery_")),
        ),
        r.ours.finished,
      )}) over ${r.ours.finished} runs`,
  );
  console.log(
    `in-process: SQLite file ${perRun(r.rawBytes.total, r.rawRuns)} (checkpoint tables ` +
      `${perRun(tables(r.rawBytes.byTable, cpTables), r.rawRuns)}) over ${r.rawRuns} runs`,
  );
  console.log(
    `reference: checkpointer JSON ${perRun(r.refFiles.checkpoints, r.ref.finished)}, ops JSON ` +
      `${perRun(r.refFiles.ops, r.ref.finished)} over ${r.ref.finished} runs`,
  );

  // Targets
  const seqRatio = med((x) => p50(x.oursSeq.samples) / p50(x.rawSeq.samples));
  const lightRatio = med((x) => p50(x.oursSeq.samples) / p50(x.lightSeq.samples));
  const thrRatio = med((x) => rate(x.oursConc) / rate(x.refConc));
  const firstRound = r.ours.rss.find((s) => s.after.startsWith("round 1 concurrent"));
  // The end of the load, not the idle sample: idle, V8 gives memory back (the bench waits for
  // quiet before the reference's last batch), which would flatter the rule.
  const lastOurs = r.ours.rss.filter((s) => s.after !== "idle").at(-1);
  const atStart = r.ours.rss.find((s) => s.after === "start");
  const idleOurs = r.ours.rss.find((s) => s.after === "idle");
  const growth = firstRound && lastOurs ? lastOurs.mib / firstRound.mib - 1 : Number.NaN;
  const refFirst = r.ref.rss.find((s) => s.after.startsWith("round 1 concurrent"));
  const refLast = r.ref.rss[r.ref.rss.length - 1];
  console.log(`\nTargets (medians over ${rounds.length} rounds)`);
  console.log(
    `sequential p50, ours / in-process: ${fmt(seqRatio, 2)}x (target <= ${TARGET_SEQ}x): ` +
      verdict(seqRatio <= TARGET_SEQ),
  );
  // The server's engine runs graphs with the light run context; the raw graph does not. Against
  // the same graph with it, the ratio is the server's own overhead.
  console.log(
    `(sequential p50, ours / in-process with the light run context the server uses: ` +
      `${fmt(lightRatio, 2)}x)`,
  );
  console.log(
    `${CONCURRENCY}-concurrent throughput, ours / reference: ${fmt(thrRatio, 1)}x ` +
      `(target >= ${TARGET_THROUGHPUT}x): ${verdict(thrRatio >= TARGET_THROUGHPUT)}`,
  );
  // CPU time is less disturbed by other load on the machine than wall time.
  const cpuRatio = med((x) => (x.oursSeq.cpuMsPerRun ?? NaN) / (x.rawSeq.cpuMsPerRun ?? NaN));
  const oursCpu = med((x) => x.oursConc.cpuMsPerRun ?? NaN);
  const clientCpu = med((x) => x.oursConc.clientCpuMsPerRun ?? NaN);
  const cores = availableParallelism();
  console.log(
    `(CPU per sequential run, ours server / in-process: ${fmt(cpuRatio, 2)}x; at ` +
      `${CONCURRENCY}-concurrent ours uses ${fmt(oursCpu, 2)} ms of CPU per run across its threads ` +
      `and the SDK client in this process ${fmt(clientCpu, 2)} ms: together a ceiling of ` +
      `${fmt((1000 * cores) / (oursCpu + clientCpu))} runs/s on the machine's ${cores} cores)`,
  );
  // The target's rule: windows of the timed samples over the long extra batch.
  const timed = r.deployed.timed;
  const third = Math.floor(timed.length / 3);
  if (third >= 3) {
    const middle = timed.slice(third, 2 * third);
    const last = timed.slice(2 * third);
    const mMid = median(middle.map((x) => x.mib));
    const mLast = median(last.map((x) => x.mib));
    const windowGrowth = mLast / mMid - 1;
    const tail = timed.slice(third);
    const perRun = slope(tail.map((x) => [x.runs, x.mib]));
    console.log(
      `RSS flat, ours (npm start): over the extra batch (${r.oursExtra.runs} runs, ${timed.length} samples ` +
        `every ${RSS_EVERY_MS} ms), median ${fmt(mMid)} MiB in its middle third (runs ` +
        `${middle[0]!.runs}-${middle.at(-1)!.runs}) -> ${fmt(mLast)} MiB in its last third (runs ` +
        `${last[0]!.runs}-${last.at(-1)!.runs}), ${fmt(windowGrowth * 100)}% (flat = at most ` +
        `+${TARGET_RSS_GROWTH * 100}%): ${verdict(windowGrowth <= TARGET_RSS_GROWTH)}; ` +
        `least-squares slope over those two thirds ${fmt(perRun * 1000, 1)} MiB per 1,000 runs, ` +
        `min-max ${fmt(Math.min(...tail.map((x) => x.mib)))}-${fmt(Math.max(...tail.map((x) => x.mib)))} MiB`,
    );
  }
  console.log(`(single samples, as the rules before 2026-12-02 compared them:)`);
  console.log(
    `RSS, ours: ${fmt(firstRound?.mib ?? Number.NaN)} MiB after ${firstRound?.runs} runs -> ` +
      `${fmt(lastOurs?.mib ?? Number.NaN)} MiB after ${lastOurs?.runs} runs ` +
      `(${fmt(growth * 100)}%; flat = at most +${TARGET_RSS_GROWTH * 100}%): ` +
      (growth <= TARGET_RSS_GROWTH ? "within +10%" : "above +10%"),
  );
  // The same rule within one phase: the extra batch's samples, from its first (500 runs in, the
  // stream hub's 500-run retention already full) to its last. Across phases RSS also moves with
  // the load pattern (V8 shrinks the heap in the sequential phases).
  const steady = r.deployed.rss.filter((s) => s.after === "during extra batch");
  if (steady.length >= 2) {
    const a = steady[0]!;
    const b = steady[steady.length - 1]!;
    const within = b.mib / a.mib - 1;
    console.log(
      `RSS, ours (npm start), within the extra batch: ${fmt(a.mib)} MiB after ${a.runs} runs -> ` +
        `${fmt(b.mib)} MiB after ${b.runs} runs (${fmt(within * 100)}%; least-squares slope ` +
        `${fmt(slope(steady.map((x) => [x.runs, x.mib])) * 1000, 1)} MiB per 1,000 runs): ` +
        (within <= TARGET_RSS_GROWTH ? "within +10%" : "above +10%"),
    );
  }
  if (atStart && idleOurs)
    console.log(
      `RSS, ours, idle after all ${idleOurs.runs} runs: ${fmt(idleOurs.mib)} MiB ` +
        `(at start, before any run: ${fmt(atStart.mib)} MiB)`,
    );
  console.log(
    `RSS, reference: ${fmt(refFirst?.mib ?? Number.NaN)} MiB after ${refFirst?.runs} runs -> ` +
      `${fmt(refLast?.mib ?? Number.NaN)} MiB after ${refLast?.runs} runs`,
  );
}

function reportBatches(batches: Batch[]): void {
  console.log(
    `\n${BATCH} concurrent runs, model latency ${BATCH_LATENCY_MS} ms per call ` +
      `(ideal = ${EXPECTED_MODEL_CALLS} calls x ${BATCH_LATENCY_MS} ms x ceil(${BATCH} / workers))`,
  );
  console.log(
    "workers | round | wall s | ideal s | wall/ideal | p50 s | p99 s | CPU ms/run | RSS MiB | failed",
  );
  const byWorkers = new Map<number, Batch[]>();
  for (const b of batches) byWorkers.set(b.workers, [...(byWorkers.get(b.workers) ?? []), b]);
  for (const [workers, list] of byWorkers) {
    list.forEach((b, i) =>
      console.log(
        `${workers} | ${i + 1} | ${fmt(b.wallMs / 1000, 2)} | ${fmt(b.idealMs / 1000, 1)} | ` +
          `${fmt(b.ratio, 2)} | ${fmt(b.p50 / 1000, 2)} | ${fmt(b.p99 / 1000, 2)} | ` +
          `${fmt(b.cpuMsPerRun, 2)} | ${fmt(b.rssMiB)} | ${b.failed}`,
      ),
    );
    console.log(
      `${workers} | median | ${fmt(median(list.map((b) => b.wallMs)) / 1000, 2)} | ` +
        `${fmt((list[0]?.idealMs ?? 0) / 1000, 1)} | ${fmt(median(list.map((b) => b.ratio)), 2)} |`,
    );
  }

  // The ideal counts only model latency. The CPU the batch took (server and SDK client), spread
  // over every core, is a second lower bound: above some worker count it is the larger one.
  const cores = availableParallelism();
  const floorMs = (b: Batch) => ((b.cpuMsPerRun + b.clientCpuMsPerRun) * BATCH) / cores;
  console.log(
    `\nCPU floor = (server + SDK client CPU per run) x ${BATCH} runs / ${cores} cores, ` +
      `from the same batch; bound = the larger of ideal and CPU floor`,
  );
  console.log("workers | round | CPU floor s | wall/bound");
  for (const [workers, list] of byWorkers) {
    list.forEach((b, i) =>
      console.log(
        `${workers} | ${i + 1} | ${fmt(floorMs(b) / 1000, 2)} | ` +
          `${fmt(b.wallMs / Math.max(b.idealMs, floorMs(b)), 2)}`,
      ),
    );
    console.log(
      `${workers} | median | ${fmt(median(list.map(floorMs)) / 1000, 2)} | ` +
        `${fmt(median(list.map((b) => b.wallMs / Math.max(b.idealMs, floorMs(b)))), 2)}`,
    );
  }

  console.log(`\nTarget: ${BATCH}-run batch within ${TARGET_BATCH}x its ideal time (medians)`);
  for (const [workers, list] of byWorkers) {
    const ratio = median(list.map((b) => b.ratio));
    const failed = list.reduce((a, b) => a + b.failed, 0);
    console.log(
      `${workers} workers: ${fmt(ratio, 2)}x ideal: ${verdict(ratio <= TARGET_BATCH && failed === 0)}` +
        (failed ? ` (${failed} failed requests)` : ""),
    );
  }
}

await main();
