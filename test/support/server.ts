// Starts the real server on an ephemeral loopback port with a temp SQLite file (or a Postgres
// schema of its own with REFINERY_TEST_BACKEND=postgres, see test-backend.ts) and the test graphs
// of test/fixtures/langgraph.json, and returns an official SDK client for it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import type { ModelProvider } from "../../core/models/provider.ts";
import { silentLogger, type Logger } from "../../server/log.ts";
import { startServer, type RunningServer } from "../../server/start.ts";
import { databaseEnv } from "./test-backend.ts";

export const FIXTURE_CONFIG = join(import.meta.dirname, "../fixtures/langgraph.json");

export interface TestServer {
  url: string;
  client: Client;
  running: RunningServer;
  dir: string;
  dbPath: string;
  close(): Promise<void>;
}

export async function startTestServer(
  options: {
    provider?: ModelProvider;
    env?: Record<string, string>;
    concurrency?: number;
    keepAliveMs?: number;
    /** Receives the server's structured log entries (default: silent). */
    log?: Logger;
    /** The langgraph.json to serve (default: test/fixtures/langgraph.json). */
    configPath?: string;
    /** The cron scheduler's clock and poll interval (test/server/crons.test.ts drives them). */
    cronClock?: () => number;
    cronPollMs?: number;
    /** An existing database to open (default: a new SQLite file in a temp folder, or schema). */
    dbPath?: string;
  } = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "refinery-server-"));
  const dbPath = options.dbPath ?? join(dir, "refinery.db");
  const running = await startServer({
    // Graphs run in the server thread unless a test asks for run threads: each run thread loads
    // the graph modules (seconds of CPU on the CI machine); test/server/run-threads.test.ts,
    // stuck-runs and the others that need them set REFINERY_RUN_THREADS themselves.
    env: { ...databaseEnv(dbPath), REFINERY_RUN_THREADS: "0", ...options.env },
    configPath: options.configPath ?? FIXTURE_CONFIG,
    port: 0,
    host: "127.0.0.1",
    log: options.log ?? silentLogger,
    provider: options.provider,
    concurrency: options.concurrency ?? 8,
    keepAliveMs: options.keepAliveMs ?? 15_000,
    pollMs: 200,
    ...(options.cronClock ? { cronClock: options.cronClock } : {}),
    ...(options.cronPollMs ? { cronPollMs: options.cronPollMs } : {}),
  });
  const client = new Client({
    apiUrl: running.url,
    callerOptions: { maxRetries: 0, maxConcurrency: 32 },
  });
  return {
    url: running.url,
    client,
    running,
    dir,
    dbPath,
    async close() {
      await running.close(2_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
