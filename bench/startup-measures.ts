// The start-up measures of bench:startup, shared with bench:server's summary table: wall-clock
// milliseconds of `refinery --help`, of an offline `refinery run` to its answer, and of
// `npm start` to the first 200 from GET /ok, each a child process of the checkout at `root` on a
// fresh temporary database.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { freePort } from "./server-procs.ts";

export interface Measure {
  /** Short key for JSON figures. */
  key: string;
  name: string;
  /** Milliseconds from spawn to done, for the checkout at root. */
  once(root: string, scratch: string): Promise<number>;
}

/** Runs a command to its exit; fails on a non-zero exit (a broken command is no measurement). */
function timeExit(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  return new Promise<number>((done, fail) => {
    const start = performance.now();
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout.resume();
    child.on("error", fail);
    child.on("exit", (code) => {
      const ms = performance.now() - start;
      if (code === 0) done(ms);
      else fail(new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited ${code}: ${err.trim()}`));
    });
  });
}

export const childEnv = (scratch: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, REFINERY_DB: join(scratch, "refinery.db") };
  delete env.OPENAI_API_KEY;
  return env;
};

/** `npm start` in `root`, in a process group of its own, on a free loopback port. */
export interface NpmServer {
  child: ChildProcess;
  url: string;
  /** performance.now() at spawn. */
  startedAt: number;
  /** The last 4,000 characters of its stderr. */
  stderr(): string;
  exited: Promise<void>;
}

export async function startNpm(root: string, env: NodeJS.ProcessEnv): Promise<NpmServer> {
  const port = await freePort();
  const startedAt = performance.now();
  const child = spawn("npm", ["start", "--", "--port", String(port)], {
    cwd: root,
    env,
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return { child, url: `http://127.0.0.1:${port}`, startedAt, stderr: () => err, exited };
}

/** Milliseconds from spawn to the first 200 from GET /ok (polled every 10 ms). */
export async function untilOk(server: NpmServer, limitMs = 120_000): Promise<number> {
  for (;;) {
    if (server.child.exitCode !== null || server.child.signalCode !== null)
      throw new Error(`npm start exited: ${server.stderr().trim()}`);
    if (performance.now() - server.startedAt > limitMs)
      throw new Error(`no 200 from /ok in ${limitMs / 1000} s`);
    try {
      const res = await fetch(`${server.url}/ok`);
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - server.startedAt;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Signals the whole process group (npm and the server); SIGKILL after 10 s; resolves at exit. */
export async function stopNpm(server: NpmServer, signal: NodeJS.Signals): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  process.kill(-server.child.pid!, signal);
  const timer = setTimeout(() => process.kill(-server.child.pid!, "SIGKILL"), 10_000);
  await server.exited;
  clearTimeout(timer);
}

export const measures: Measure[] = [
  {
    key: "cli_help_ms",
    name: "refinery --help",
    once: (root, scratch) =>
      timeExit(process.execPath, [join(root, "cli/bin.mjs"), "--help"], root, childEnv(scratch)),
  },
  {
    key: "cli_offline_run_ms",
    name: 'refinery run "What is 2+2?" --expect-number 4 --offline',
    once: (root, scratch) =>
      timeExit(
        process.execPath,
        [join(root, "cli/bin.mjs"), "run", "What is 2+2?", "--expect-number", "4", "--offline"],
        root,
        childEnv(scratch),
      ),
  },
  {
    key: "startup_ok_ms",
    name: "npm start → first 200 from GET /ok",
    async once(root, scratch) {
      const server = await startNpm(root, childEnv(scratch));
      try {
        return await untilOk(server);
      } finally {
        await stopNpm(server, "SIGKILL");
      }
    },
  },
];

/**
 * The run-thread warm-up (bench:startup only, not in bench:server's summary): `npm start` to the
 * answer of the first `runs.wait` (refine graph, offline model), sent as soon as /ok answers. The
 * run is executed in a run thread, which imports the graph stack once more after the server
 * listens, so this is what the first client after a start or a restart waits.
 */
export const firstRunMeasure: Measure = {
  key: "startup_first_run_ms",
  name: "npm start → first runs.wait answered",
  async once(root, scratch) {
    const server = await startNpm(root, childEnv(scratch));
    try {
      await untilOk(server);
      const client = new Client({ apiUrl: server.url });
      const result = (await client.runs.wait(crypto.randomUUID(), "refine", {
        input: { task: "What is 2+2?" },
        ifNotExists: "create",
        signal: AbortSignal.timeout(120_000),
      })) as { answer?: unknown };
      const ms = performance.now() - server.startedAt;
      if (typeof result?.answer !== "string") {
        throw new Error(`runs.wait gave no answer: ${JSON.stringify(result).slice(0, 300)}`);
      }
      return ms;
    } finally {
      await stopNpm(server, "SIGKILL");
    }
  },
};

/** One repeat of `measure` for the checkout at `root`, on a scratch directory deleted after. */
export async function measureOnce(measure: Measure, root: string): Promise<number> {
  const scratch = mkdtempSync(join(tmpdir(), "refinery-startup-"));
  try {
    return await measure.once(root, scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
