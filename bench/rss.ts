// RSS of our server under a long load (issue 20). The server runs as `npm start` runs it: a child
// process `node <package.json start flags> scripts/server.mjs` (dist/ when the build is current,
// else the sources through tsx; a variant's flags come after, so they win), a fresh SQLite file,
// and the bench model's replies (bench/server-graph.ts) served by an OpenAI-compatible stub on
// 127.0.0.1 in this process, reached by the server's built-in OpenAI provider as a real endpoint
// would be. BENCH_RSS_MODEL=module passes the bench model as REFINERY_PROVIDER_MODULE instead
// (the earlier setting): that loads bench/server-graph.ts through tsx into the server and each
// run thread, with a second copy of @langchain/core and of the graph's sources beside the bundle,
// so it measures the bench's own module as much as the server (about +45 to +115 MiB). RSS read
// from /proc/<pid>/status. Runs are `runs.wait` on fresh threads through the official SDK.
//
// Default mode: idle RSS, then BENCH_RSS_RUNS runs at BENCH_RSS_CONCURRENCY concurrent, printing
// RSS, the highest RSS sample (read every second) and runs/s at every BENCH_RSS_REPORT_EVERY
// finished runs. A run that has not answered within BENCH_RSS_RUN_TIMEOUT_MS is reported with its
// thread and run ids and status (a stuck run), not retried.
//
// Compare mode, BENCH_RSS_COMPARE="a;b" where each variant is `label VAR=value ... --node-flag ...`
// (e.g. "before ROOT=/tmp/old-checkout;after REFINERY_RUN_THREADS=1"; ROOT= runs another built
// checkout's scripts/server.mjs with `--no-memory-reducer` only): one server per variant, started together,
// then BENCH_RSS_ROUNDS rounds in which each server in turn does BENCH_RSS_BLOCK runs at
// BENCH_RSS_CONCURRENCY concurrent (the others idle), so machine load hits them alike; prints each
// block's runs/s and RSS, the median runs/s ratio of each variant to the first, and idle RSS.
// Usage: npm run bench:rss   (BENCH_RUN_THREADS= sets REFINERY_RUN_THREADS of every server)
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { Client } from "@langchain/langgraph-sdk";
import { RUN_OPTIONS, TASK } from "./server-graph.ts";
import { startBenchStub, type BenchStub } from "./stub-model.ts";
import { freePort, START_FLAGS } from "./server-procs.ts";
import { median } from "./support.ts";

const num = (name: string, fallback: number) => {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number`);
  return value;
};

const RUNS = num("BENCH_RSS_RUNS", 2000);
const CONCURRENCY = num("BENCH_RSS_CONCURRENCY", 32);
const REPORT_EVERY = num("BENCH_RSS_REPORT_EVERY", 1000);
const RUN_TIMEOUT_MS = num("BENCH_RSS_RUN_TIMEOUT_MS", 120_000);
const WORKERS = num("BENCH_WORKERS", 64);
const IDLE_MS = num("BENCH_RSS_IDLE_MS", 8_000);
const ROUNDS = num("BENCH_RSS_ROUNDS", 4);
const BLOCK = num("BENCH_RSS_BLOCK", 300);

const MODEL = process.env.BENCH_RSS_MODEL ?? "stub";
if (MODEL !== "stub" && MODEL !== "module")
  throw new Error("BENCH_RSS_MODEL must be stub or module");

const ROOT = join(import.meta.dirname, "..");

let stub: BenchStub | undefined;
/** The server's model settings: the stub (started once, shared by every server) or the module. */
async function modelEnv(): Promise<Record<string, string>> {
  if (MODEL === "module") {
    return {
      REFINERY_PROVIDER_MODULE: `${join(ROOT, "bench", "server-graph.ts")}#benchProvider`,
      BENCH_MODEL_LATENCY_MS: "0",
    };
  }
  stub ??= await startBenchStub();
  return { OPENAI_API_KEY: "bench-key", OPENAI_BASE_URL: stub.url };
}
const loadAverage = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(" / ");
const log = (msg: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const children: { kill(signal: NodeJS.Signals): void }[] = [];
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));

interface Server {
  label: string;
  pid: number;
  client: Client;
  dir: string;
  rssMiB(): number;
  /** Highest RSS sampled (every second) since the last call. */
  takePeak(): number;
  stop(): Promise<void>;
}

async function startServer(
  label: string,
  extraEnv: Record<string, string>,
  flags: string[],
  /** Another checkout (built) to run instead of this one; it runs with `--no-memory-reducer` only. */
  root = ROOT,
) {
  const dir = mkdtempSync(join(tmpdir(), "refinery-rss-"));
  const port = await freePort();
  const logFile = join(dir, "server.log");
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // No tracing, no real model keys, no REFINERY_* of the caller (BENCH_RUN_THREADS passes).
    if (!/^(LANGSMITH_|LANGCHAIN_|OPENAI_|REFINERY_)/.test(k)) env[k] = v;
  }
  const fd = openSync(logFile, "a");
  // BENCH_NODE_FLAGS: more Node flags for every server (e.g. --heapsnapshot-signal=SIGUSR2).
  const nodeFlags = [...(process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean), ...flags];
  const child = spawn(
    process.execPath,
    [
      ...(root === ROOT ? START_FLAGS : ["--no-memory-reducer"]),
      ...nodeFlags,
      join(root, "scripts", "server.mjs"),
    ],
    {
      cwd: dir,
      stdio: ["ignore", fd, fd],
      env: {
        ...env,
        LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
        PORT: String(port),
        HOST: "127.0.0.1",
        REFINERY_DB: join(dir, "ours.db"),
        REFINERY_WORKERS: String(WORKERS),
        ...(await modelEnv()),
        ...(process.env.BENCH_RUN_THREADS
          ? { REFINERY_RUN_THREADS: process.env.BENCH_RUN_THREADS }
          : {}),
        ...extraEnv,
      },
    },
  );
  closeSync(fd);
  children.push(child);
  const pid = child.pid!;
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null)
      throw new Error(`${label} exited: ${readFileSync(logFile, "utf8")}`);
    if (i > 900) throw new Error(`${label} did not answer /ok within 90 s`);
    if (
      await fetch(`${url}/ok`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await sleep(100);
  }
  const rssMiB = () =>
    Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
  let peak = 0;
  const sampler = setInterval(() => {
    if (child.exitCode === null) peak = Math.max(peak, rssMiB());
  }, 1000);
  const server: Server = {
    label,
    pid,
    dir,
    client: new Client({ apiUrl: url, callerOptions: { maxConcurrency: 64, maxRetries: 0 } }),
    rssMiB,
    takePeak: () => {
      const p = Math.max(peak, rssMiB());
      peak = 0;
      return p;
    },
    stop: async () => {
      clearInterval(sampler);
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
      if (process.env.BENCH_RSS_KEEP_LOG) console.log(readFileSync(logFile, "utf8"));
      if (!process.env.BENCH_RSS_SNAPSHOT) rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** `runs` runs at `concurrency`; `onFinished(n)` after each. Failed runs are logged and counted. */
async function load(
  server: Server,
  runs: number,
  concurrency: number,
  onFinished?: (finished: number) => void,
) {
  let next = 0;
  let finished = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, runs) }, async () => {
      while (next < runs) {
        next++;
        const threadId = randomUUID();
        try {
          const values = (await server.client.runs.wait(threadId, "refine", {
            input: { task: TASK },
            config: { configurable: { ...RUN_OPTIONS } },
            ifNotExists: "create",
            signal: AbortSignal.timeout(RUN_TIMEOUT_MS),
          })) as { stopReason?: string };
          if (values?.stopReason !== "max_iterations")
            throw new Error(`unexpected result ${JSON.stringify(values).slice(0, 300)}`);
        } catch (error) {
          failed++;
          const list = (await server.client.runs.list(threadId).catch(() => [])) as {
            run_id: string;
            status: string;
          }[];
          log(
            `${server.label}: run on thread ${threadId} failed: ${(error as Error).message}; ` +
              `its runs: ${JSON.stringify(list.map((r) => [r.run_id, r.status]))}`,
          );
          continue;
        }
        finished++;
        onFinished?.(finished);
      }
    }),
  );
  return { finished, failed, seconds: (performance.now() - started) / 1000 };
}

async function single(): Promise<void> {
  const server = await startServer("ours", {}, []);
  log(`server pid ${server.pid}; load average ${loadAverage()}`);
  await sleep(IDLE_MS);
  const idle = server.rssMiB();
  server.takePeak();
  log(`RSS idle ${idle.toFixed(0)} MiB`);
  const rows: string[] = [];
  let blockStart = performance.now();
  let peak = 0;
  const result = await load(server, RUNS, CONCURRENCY, (finished) => {
    if (finished % REPORT_EVERY !== 0) return;
    const secs = (performance.now() - blockStart) / 1000;
    const block = server.takePeak();
    peak = Math.max(peak, block);
    const row =
      `${finished} | ${server.rssMiB().toFixed(0)} | ${block.toFixed(0)} | ` +
      `${(REPORT_EVERY / secs).toFixed(1)} | ${loadAverage()}`;
    rows.push(row);
    log(`runs ${row}`);
    blockStart = performance.now();
  });
  peak = Math.max(peak, server.takePeak());
  if (process.env.BENCH_RSS_SNAPSHOT) {
    // With BENCH_NODE_FLAGS=--heapsnapshot-signal=SIGUSR2: the server thread's heap, into its dir.
    process.kill(server.pid, "SIGUSR2");
    await sleep(30_000);
    console.log(`heap snapshot in ${server.dir} (kept)`);
  }
  await sleep(IDLE_MS);
  const after = server.rssMiB();
  await server.stop();
  console.log(`\nRSS under ${RUNS} runs at ${CONCURRENCY} concurrent (server RSS, MiB)`);
  console.log(`idle after start: ${idle.toFixed(0)} MiB`);
  console.log(
    "finished runs | RSS | highest RSS in the block | runs/s in the block | load average",
  );
  for (const row of rows) console.log(row);
  console.log(
    `highest sample ${peak.toFixed(0)} MiB; ${result.finished} finished, ${result.failed} failed, ` +
      `${(result.finished / result.seconds).toFixed(1)} runs/s overall; ` +
      `idle ${(IDLE_MS / 1000).toFixed(0)} s after the load ${after.toFixed(0)} MiB`,
  );
  if (stub)
    console.log(
      `model calls per finished run: ${(stub.calls() / result.finished).toFixed(2)} (6 expected)`,
    );
}

async function compare(spec: string): Promise<void> {
  const variants = spec.split(";").map((v) => {
    const [label, ...rest] = v.trim().split(/\s+/);
    const env = Object.fromEntries(
      rest
        .filter((x) => /^[A-Z_]+=/.test(x))
        .map((x) => [x.split("=")[0]!, x.slice(x.indexOf("=") + 1)]),
    );
    const { ROOT: root, ...rest2 } = env;
    return { label: label!, env: rest2, root, flags: rest.filter((x) => x.startsWith("--")) };
  });
  const servers = await Promise.all(
    variants.map((v) => startServer(v.label, v.env, v.flags, v.root ?? ROOT)),
  );
  await sleep(IDLE_MS);
  const idle = servers.map((s) => s.rssMiB());
  log(`idle RSS ${servers.map((s, i) => `${s.label} ${idle[i]!.toFixed(0)}`).join(", ")} MiB`);
  const rate: number[][] = servers.map(() => []);
  const peaks: number[] = servers.map(() => 0);
  let failed = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate who goes first, so a trend in the machine's load favours nobody.
    const order = servers.map((_, i) => i);
    if (round % 2) order.reverse();
    for (const i of order) {
      const s = servers[i]!;
      s.takePeak();
      const r = await load(s, BLOCK, CONCURRENCY);
      failed += r.failed;
      const peak = s.takePeak();
      peaks[i] = Math.max(peaks[i]!, peak);
      rate[i]!.push(r.finished / r.seconds);
      log(
        `round ${round + 1} ${s.label}: ${(r.finished / r.seconds).toFixed(1)} runs/s, ` +
          `RSS ${s.rssMiB().toFixed(0)} (block high ${peak.toFixed(0)}) MiB, load ${loadAverage()}`,
      );
    }
  }
  await sleep(IDLE_MS);
  const after = servers.map((s) => s.rssMiB());
  await Promise.all(servers.map((s) => s.stop()));
  console.log(
    `\n${ROUNDS} rounds of ${BLOCK} runs at ${CONCURRENCY} concurrent per server, interleaved`,
  );
  console.log("variant | idle RSS | highest RSS | RSS idle after | median runs/s | ratio to first");
  servers.forEach((s, i) => {
    const ratios = rate[i]!.map((x, k) => x / rate[0]![k]!);
    console.log(
      `${s.label} | ${idle[i]!.toFixed(0)} | ${peaks[i]!.toFixed(0)} | ${after[i]!.toFixed(0)} | ` +
        `${median(rate[i]!).toFixed(1)} | ${median(ratios).toFixed(2)}`,
    );
  });
  console.log(`failed runs: ${failed}; load average at the end ${loadAverage()}`);
}

console.log(
  `model: ${MODEL === "stub" ? "OpenAI-compatible stub on 127.0.0.1 (built-in OpenAI provider)" : "REFINERY_PROVIDER_MODULE bench/server-graph.ts"}`,
);
if (process.env.BENCH_RSS_COMPARE) await compare(process.env.BENCH_RSS_COMPARE);
else await single();
await stub?.close();
