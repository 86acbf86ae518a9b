// Child processes of the server bench: our server (bench/server-child.ts) and the reference
// server (@langchain/langgraph-api's own entrypoint, as `langgraph dev --no-reload` starts it),
// each a single Node process on 127.0.0.1 whose RSS and CPU time are read from /proc. Every
// child is killed when the bench exits, also on errors and signals. The reference server is not
// a dependency of the project (its UI bundler's platform-specific packages break `npm ci`): the
// bench installs a pinned version into node_modules/.cache on first use.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";

const HOST = "127.0.0.1";
const BENCH_DIR = import.meta.dirname;
/** `node --import <this>` runs TypeScript in the same process (no tsx CLI wrapper process). */
const TSX_LOADER = import.meta.resolve("tsx");
/**
 * The Node flags `npm start` runs the server with (package.json `scripts.start`: `node <flags>
 * scripts/server.mjs`), so a bench's server has the heap settings of a started one.
 */
export const START_FLAGS: string[] = (() => {
  const pkg = JSON.parse(readFileSync(join(BENCH_DIR, "..", "package.json"), "utf8")) as {
    scripts: { start: string };
  };
  const words = pkg.scripts.start.split(/\s+/);
  return words.slice(1, words.indexOf("scripts/server.mjs")).filter((w) => w.startsWith("--"));
})();
/** Linux USER_HZ: /proc/<pid>/stat times are in these ticks. */
const CLOCK_TICKS = 100;
/**
 * The reference server's version: the newest 1.x. (npm's `latest` tag points at a stray older
 * 2.0.0 build, so the version is pinned exactly.)
 */
export const REFERENCE_VERSION = "1.5.1";
const REFERENCE_PACKAGE = "@langchain/langgraph-api";

export interface ServerProc {
  name: string;
  url: string;
  pid: number;
  logFile: string;
  /** Resident set size of the server process, in MiB (VmRSS). */
  rssMiB(): number;
  /** User + system CPU seconds the server process has used so far. */
  cpuSeconds(): number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const children = new Set<ChildProcess>();

function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

function readStatus(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1];
  if (kb === undefined) throw new Error(`no ${field} for pid ${pid}`);
  return Number(kb) / 1024;
}

function readCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** A free loopback port (the kernel's choice; closed again before the child binds it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, HOST, () => {
      const address = s.address();
      const port = typeof address === "object" && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // No tracing or telemetry endpoints, no real model keys: everything stays on loopback.
    if (/^(LANGSMITH_|LANGCHAIN_|OPENAI_|REFINERY_)/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, LOG_LEVEL: "info", ...extra };
}

async function waitUntil<T>(
  what: string,
  child: ChildProcess,
  logFile: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}):\n${tail(logFile)}`);
    }
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start within ${timeoutMs} ms:\n${tail(logFile)}`);
}

function launch(
  name: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  logFile: string,
) {
  const fd = openSync(logFile, "a");
  const child = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  children.add(child);
  child.once("exit", () => children.delete(child));
  if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
  return child;
}

function wrap(name: string, child: ChildProcess, url: string, logFile: string): ServerProc {
  const pid = child.pid as number;
  return {
    name,
    url,
    pid,
    logFile,
    rssMiB: () => readStatus(pid, "VmRSS"),
    cpuSeconds: () => readCpuSeconds(pid),
    stop: async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function ok(url: string): Promise<boolean | undefined> {
  const res = await fetch(`${url}/ok`, { signal: AbortSignal.timeout(2_000) });
  return res.ok ? true : undefined;
}

/** Our server: startServer() with the bench model, SQLite file `dbPath`, `workers` run slots. */
export async function startOurs(options: {
  dir: string;
  dbPath: string;
  latencyMs: number;
  workers: number;
  label?: string;
  /** `--role` of the server (default both). */
  role?: "api" | "worker" | "both";
  /** More environment for the child (e.g. REFINERY_API_KEYS for bench:auth). */
  env?: Record<string, string>;
}): Promise<ServerProc> {
  const name = options.label ?? "ours";
  const logFile = join(options.dir, `${name}.log`);
  // BENCH_CPU_PROF=<dir>: write a V8 CPU profile of our server there when it stops.
  const prof = process.env.BENCH_CPU_PROF;
  const child = launch(
    name,
    [
      ...(prof ? ["--cpu-prof", "--cpu-prof-dir", prof] : []),
      // As `npm start` runs the server (package.json): V8 keeps its heaps' size when idle, and
      // the server thread's heap settings.
      ...START_FLAGS,
      "--import",
      TSX_LOADER,
      join(BENCH_DIR, "server-child.ts"),
      "--db",
      options.dbPath,
      "--latency-ms",
      String(options.latencyMs),
      "--workers",
      String(options.workers),
      ...(options.role ? ["--role", options.role] : []),
    ],
    options.dir,
    // BENCH_RUN_THREADS: our server's REFINERY_RUN_THREADS (REFINERY_* is not passed through).
    cleanEnv({
      ...(process.env.BENCH_RUN_THREADS
        ? { REFINERY_RUN_THREADS: process.env.BENCH_RUN_THREADS }
        : {}),
      ...options.env,
    }),
    logFile,
  );
  const url = await waitUntil(name, child, logFile, async () => {
    const line = /Refinery listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(tail(logFile, 50));
    return line?.[1];
  });
  await waitUntil(name, child, logFile, () => ok(url));
  return wrap(name, child, url, logFile);
}

/**
 * The directory of @langchain/langgraph-api@REFERENCE_VERSION, installed on first use with npm
 * into node_modules/.cache/refinery-bench (BENCH_REFERENCE_DIR overrides the install folder).
 */
export function ensureReferenceServer(log: (msg: string) => void): string {
  const root =
    process.env.BENCH_REFERENCE_DIR ??
    join(
      BENCH_DIR,
      "..",
      "node_modules",
      ".cache",
      "refinery-bench",
      `langgraph-api-${REFERENCE_VERSION}`,
    );
  const pkgDir = join(root, "node_modules", ...REFERENCE_PACKAGE.split("/"));
  const installed = () => {
    try {
      return (
        JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version?: string }
      ).version;
    } catch {
      return undefined;
    }
  };
  if (installed() === REFERENCE_VERSION) return pkgDir;
  log(`installing ${REFERENCE_PACKAGE}@${REFERENCE_VERSION} into ${root} (first run only)`);
  mkdirSync(root, { recursive: true });
  writeFileSync(
    join(root, "package.json"),
    `${JSON.stringify({ private: true, dependencies: { [REFERENCE_PACKAGE]: REFERENCE_VERSION } }, null, 2)}\n`,
  );
  const npm = spawnSync(
    "npm",
    ["install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
    { cwd: root, stdio: ["ignore", "inherit", "inherit"], timeout: 600_000 },
  );
  if (npm.status !== 0 || installed() !== REFERENCE_VERSION) {
    throw new Error(
      `could not install ${REFERENCE_PACKAGE}@${REFERENCE_VERSION} into ${root} ` +
        `(npm exit ${npm.status ?? npm.error?.message})`,
    );
  }
  return pkgDir;
}

/**
 * The reference server, started the way its CLI's `dev --no-reload` starts it (spawnServer:
 * entrypoint.mjs with the API's preload hooks), except that TypeScript is loaded with
 * `--import tsx` in the same process instead of through the tsx CLI, whose wrapper process
 * would hide the server's RSS. Storage (.langgraph_api/*.json) goes to `dir`.
 */
export async function startReference(options: {
  /** From ensureReferenceServer(). */
  packageDir: string;
  dir: string;
  latencyMs: number;
  workers: number;
  /** Graph id → absolute `file.ts:export` (default: the bench's `refine` graph). */
  graphs?: Record<string, string>;
  /** Log file name (default `reference`). */
  label?: string;
  /** langgraph.json `http` and `ui`, passed to the reference as its CLI passes them. */
  http?: Record<string, unknown>;
  ui?: Record<string, string>;
}): Promise<ServerProc> {
  const name = options.label ?? "reference";
  const logFile = join(options.dir, `${name}.log`);
  const port = await freePort();
  const graphFile = join(BENCH_DIR, "server-graph.ts");
  const payload = {
    port,
    nWorkers: options.workers,
    host: HOST,
    cwd: options.dir,
    // Relative to cwd: the preload hook joins cwd and this path to resolve @langchain/langgraph.
    graphs: Object.fromEntries(
      Object.entries(options.graphs ?? { refine: `${graphFile}:graph` }).map(([id, spec]) => [
        id,
        relative(options.dir, spec),
      ]),
    ),
    ...(options.http ? { http: options.http } : {}),
    ...(options.ui ? { ui: options.ui } : {}),
  };
  const dist = join(options.packageDir, "dist");
  const child = launch(
    name,
    [
      "--import",
      TSX_LOADER,
      "--import",
      pathToFileURL(join(dist, "preload.mjs")).href,
      join(dist, "cli", "entrypoint.mjs"),
      String(process.pid),
      JSON.stringify(payload),
    ],
    options.dir,
    cleanEnv({
      NODE_ENV: "development",
      LANGGRAPH_API_URL: `http://${HOST}:${port}`,
      BENCH_MODEL_LATENCY_MS: String(options.latencyMs),
    }),
    logFile,
  );
  const url = `http://${HOST}:${port}`;
  await waitUntil(name, child, logFile, () => ok(url));
  return wrap(name, child, url, logFile);
}

/**
 * Our server exactly as `npm start` runs it (node <start flags> scripts/server.mjs: the bundled
 * dist/ when current), with the built-in OpenAI provider pointed at `modelUrl` (an
 * OpenAI-compatible stub on loopback): the production path, with nothing of the bench's loaded
 * into it. bench:rss and bench:server's RSS figures come from this server.
 */
export async function startNpmServer(options: {
  dir: string;
  dbPath: string;
  modelUrl: string;
  workers: number;
  label?: string;
  env?: Record<string, string>;
}): Promise<ServerProc> {
  const name = options.label ?? "ours (npm start)";
  const logFile = join(options.dir, `${name.replace(/\W+/g, "-")}.log`);
  const port = await freePort();
  const child = launch(
    name,
    [...START_FLAGS, join(BENCH_DIR, "..", "scripts", "server.mjs")],
    options.dir,
    cleanEnv({
      LOG_LEVEL: "warn",
      PORT: String(port),
      HOST,
      REFINERY_DB: options.dbPath,
      REFINERY_WORKERS: String(options.workers),
      OPENAI_API_KEY: "bench-key",
      OPENAI_BASE_URL: options.modelUrl,
      ...(process.env.BENCH_RUN_THREADS
        ? { REFINERY_RUN_THREADS: process.env.BENCH_RUN_THREADS }
        : {}),
      ...options.env,
    }),
    logFile,
  );
  const url = `http://${HOST}:${port}`;
  await waitUntil(name, child, logFile, () => ok(url));
  return wrap(name, child, url, logFile);
}
