// Runs the real server entry point (server/main.ts) as a child process, for tests that need a
// real SIGKILL or SIGTERM. Every child is tracked so afterAll can kill whatever is still alive.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { FIXTURE_CONFIG } from "./server.ts";

const ROOT = join(import.meta.dirname, "../..");
const live = new Set<ChildProcess>();

/** Node's arguments in `npm start` ("node <these>"), so the children run as production does. */
export const START_ARGS = (() => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    scripts: { start: string };
  };
  const [node, ...args] = pkg.scripts.start.split(/\s+/);
  if (node !== "node") throw new Error(`npm start does not run node: ${pkg.scripts.start}`);
  return args;
})();

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildServer {
  url: string;
  client: Client;
  pid: number;
  /** Everything the child wrote to stdout and stderr so far (for failure messages). */
  output(): string;
  /** Resolves when the child has exited. */
  exited: Promise<ChildExit>;
  /** Sends `signal` and waits for the exit; SIGKILLs the child if it outlives `timeoutMs`. */
  stop(signal: NodeJS.Signals, timeoutMs?: number): Promise<ChildExit>;
}

/**
 * Starts the server as `npm start` does (node with its flags, server/main.ts) on port 0 with the
 * fixture graphs (or the langgraph.json at `configPath`) and only the environment given (plus PATH
 * and HOME), so no OPENAI_API_KEY or REFINERY_* leaks in.
 */
export async function startChildServer(
  env: Record<string, string>,
  timeoutMs = 45_000,
  configPath = FIXTURE_CONFIG,
  /** More flags for server/main.ts (e.g. --role worker). */
  extraArgs: string[] = [],
): Promise<ChildServer> {
  const child = spawn(
    process.execPath,
    [...START_ARGS, "--config", configPath, "--port", "0", "--host", "127.0.0.1", ...extraArgs],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: "warn", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  live.add(child);
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
  const exited = new Promise<ChildExit>((resolve) =>
    child.once("exit", (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }),
  );

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server did not start within ${timeoutMs} ms; output:\n${out}`));
    }, timeoutMs);
    const onData = () => {
      const m = /Refinery listening on (http:\/\/\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off("data", onData);
      resolve(m[1]!);
    };
    child.stdout.on("data", onData);
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`server exited during start-up (${JSON.stringify(e)}); output:\n${out}`));
    });
  });

  return {
    url,
    client: new Client({ apiUrl: url, apiKey: null, callerOptions: { maxRetries: 0 } }),
    pid: child.pid!,
    output: () => out,
    exited,
    async stop(signal, stopTimeoutMs = 30_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs);
      const e = await exited;
      clearTimeout(timer);
      return e;
    },
  };
}

/** SIGKILLs every child this module started that is still running, and waits for the exits. */
export async function killChildServers(): Promise<void> {
  const waits = [...live].map(
    (c) =>
      new Promise<void>((resolve) =>
        c.exitCode !== null ? resolve() : c.once("exit", () => resolve()),
      ),
  );
  for (const c of live) c.kill("SIGKILL");
  await Promise.all(waits);
}

/** Lines "<node> <topic>" that the slow fixture graph appended to COUNT_FILE. */
export function readCounts(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter(Boolean);
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 30_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
