// Entry point of `npm start`: reads flags and environment, starts the server, and shuts down
// gracefully on SIGTERM/SIGINT (no new runs; in-flight steps checkpoint; exit).
import { parseArgs } from "node:util";
import { isRefineryError, RefineryError } from "../core/errors.ts";
import { readEnv } from "../core/env.ts";
import { SERVER_ROLES, type ServerRole } from "./context.ts";
import { parsePort, startServer } from "./start.ts";

async function main(): Promise<void> {
  let values: { config?: string; port?: string; host?: string; role?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        config: { type: "string" },
        port: { type: "string" },
        host: { type: "string" },
        role: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    process.stderr.write(`refinery server: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`npm start -- [--config langgraph.json] [--port 8123] [--host 127.0.0.1]
            [--role api|worker|both]

--role api: serves the HTTP API and executes no runs; --role worker: executes runs and serves only
/ok, /info and /metrics; both (default): one process does everything. Any number of each can
share one database (see README, "Several processes").

Environment: PORT, HOST, REFINERY_DB (SQLite file, ./data/refinery.db), REFINERY_CONFIG,
REFINERY_WORKERS (concurrent runs, 64), REFINERY_RUN_THREADS (threads executing graphs: auto =
one per core but one, up to 4; 0 = the server thread), OPENAI_API_KEY / OPENAI_BASE_URL / REFINERY_MODEL
(without a key the offline simulated model is used), REFINERY_PROVIDER_MODULE
(./file.ts#export: a custom model provider), LOG_LEVEL (info).
`);
    return;
  }
  let port: number | undefined;
  let role: ServerRole | undefined;
  try {
    port = values.port === undefined ? undefined : parsePort(values.port, "--port");
    role = values.role === undefined ? undefined : parseRole(values.role);
  } catch (err) {
    process.stderr.write(`refinery server: ${(err as RefineryError).toLine()}\n`);
    process.exit(2);
  }
  // Read before start-up: a bad value is refused now, not at the first SIGTERM.
  const graceMs = readEnv(process.env).REFINERY_SHUTDOWN_GRACE_MS;
  const running = await startServer({
    configPath: values.config,
    port,
    host: values.host,
    ...(role ? { role } : {}),
  });
  process.stdout.write(`Refinery listening on ${running.url} (API page: ${running.url}/docs)\n`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(
      `${signal}: stopping (in-flight runs finish or pause at their last checkpoint)\n`,
    );
    running
      .close(graceMs)
      .then(() => process.exit(0))
      .catch(() => process.exit(1));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

/** --role: one of SERVER_ROLES. */
function parseRole(raw: string): ServerRole {
  const role = SERVER_ROLES.find((r) => r === raw);
  if (role) return role;
  throw new RefineryError("invalid_config", `--role must be api, worker or both, got "${raw}"`, {
    field: "--role",
    fix: "use --role api (HTTP only), --role worker (runs only) or leave it out (both)",
  });
}

main().catch((err) => {
  process.stderr.write(
    `refinery server: ${isRefineryError(err) ? err.toLine() : (err as Error).message}\n`,
  );
  process.exit(1);
});
