// Child process of the server bench: our server (startServer, the code path of `npm start`) with
// the bench model injected, on a free loopback port, storing into the given SQLite file. Prints
// "Refinery listening on <url>" once it accepts requests; stops gracefully on SIGTERM/SIGINT.
// Usage: tsx bench/server-child.ts --db <file> [--latency-ms 0] [--workers 64] [--role both]
// REFINERY_DATABASE_URL/_SCHEMA and REFINERY_REDIS_URL/_PREFIX pass through (bench:cluster).
import { parseArgs } from "node:util";
import { SERVER_ROLES, type ServerRole } from "../server/context.ts";
import { startServer } from "../server/start.ts";
import { join } from "node:path";

const { values } = parseArgs({
  options: {
    db: { type: "string" },
    "latency-ms": { type: "string", default: "0" },
    workers: { type: "string" },
    role: { type: "string", default: "both" },
  },
});
if (!values.db) throw new Error("--db is required");
if (!SERVER_ROLES.includes(values.role as ServerRole))
  throw new Error(`--role must be one of ${SERVER_ROLES.join(", ")}, not ${values.role}`);

const running = await startServer({
  env: {
    REFINERY_DB: values.db,
    LOG_LEVEL: process.env.LOG_LEVEL,
    REFINERY_RUN_THREADS: process.env.REFINERY_RUN_THREADS,
    // The bench model, as a module: the server thread and every run thread load it.
    REFINERY_PROVIDER_MODULE: `${join(import.meta.dirname, "server-graph.ts")}#benchProvider`,
    BENCH_MODEL_LATENCY_MS: values["latency-ms"],
    // bench:storage-linear: new text in each model reply (bench/server-graph.ts).
    BENCH_MODEL_PAD_BYTES: process.env.BENCH_MODEL_PAD_BYTES,
    // bench:auth runs one server with keys on (startOurs' `env`).
    REFINERY_API_KEYS: process.env.REFINERY_API_KEYS,
    REFINERY_RATE_LIMIT: process.env.REFINERY_RATE_LIMIT,
    REFINERY_TENANT_MAX_RUNS: process.env.REFINERY_TENANT_MAX_RUNS,
    REFINERY_DATABASE_URL: process.env.REFINERY_DATABASE_URL,
    REFINERY_DATABASE_SCHEMA: process.env.REFINERY_DATABASE_SCHEMA,
    REFINERY_REDIS_URL: process.env.REFINERY_REDIS_URL,
    REFINERY_REDIS_PREFIX: process.env.REFINERY_REDIS_PREFIX,
  },
  role: values.role as ServerRole,
  configPath: undefined,
  port: 0,
  host: "127.0.0.1",
  ...(values.workers ? { concurrency: Number(values.workers) } : {}),
});
process.stdout.write(`Refinery listening on ${running.url}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  running
    .close(2_000)
    .then(() => process.exit(0))
    .catch(() => process.exit(1));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
