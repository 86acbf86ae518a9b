// Composition root of the server process: SQLite file (checkpoints, runs, threads, assistants),
// graph registry, stream hub, run executor and the Express app. Used by main.ts and by tests.
import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { z } from "zod";
import { checkConfigurableKeys, RefineOptionsSchema } from "../core/config.ts";
import type { GraphSpecService } from "../graphs/declarative/index.ts";
import { systemAssistantId } from "../graphs/registry.ts";
import type { ModelProvider } from "../core/models/provider.ts";
import { fromZodError, RefineryError } from "../core/errors.ts";
import { openEngine } from "../graphs/engine.ts";
import { engineRunner } from "../graphs/eval/index.ts";
import { createApp } from "./app.ts";
import { ApprovalWatcher } from "./approval-watcher.ts";
import { checkExposure, hostGuard, loadAuthBackend } from "./auth/index.ts";
import { parseOrigins } from "./auth/cors.ts";
import { RateLimiter } from "./auth/rate-limit.ts";
import type { SecuritySettings } from "./context.ts";
import { InlineEvalTarget } from "./eval-inline.ts";
import { EVAL_LIMITS, EvalJobs } from "./eval-jobs.ts";
import { EvalThreadPool, evalThreadCount } from "./eval-threads.ts";
import { RunExecutor } from "./executor.ts";
import { createLogger, type Logger, type LogLevel } from "./log.ts";
import { createMetrics } from "./metrics.ts";
import { DEFAULT_RUN_LIMITS } from "./run-limits.ts";
import { RunThreadPool, runThreadCount } from "./run-threads.ts";
import { openRuntime } from "./runtime.ts";
import { StreamHub } from "./stream-hub.ts";
import { WalCheckpointer } from "./wal-checkpointer.ts";

export interface StartOptions {
  env?: Record<string, string | undefined>;
  /** langgraph.json; default: REFINERY_CONFIG, else ./langgraph.json when it exists. */
  configPath?: string;
  port?: number;
  host?: string;
  concurrency?: number;
  log?: Logger;
  /** Inject a model provider (tests use scripted models). */
  provider?: ModelProvider;
  keepAliveMs?: number;
  pollMs?: number;
  /**
   * Worker threads that execute graphs: a count, or "auto" (default, REFINERY_RUN_THREADS): one
   * per core up to 4 when there are several cores. 0 runs graphs in the server thread, as does an
   * injected `provider` (a live object cannot cross threads; REFINERY_PROVIDER_MODULE can).
   */
  runThreads?: number | "auto";
  /** WAL size past which its checkpoint waits for old readers so the WAL starts over (32 MiB). */
  walRestartBytes?: number;
}

export interface RunningServer {
  url: string;
  server: Server;
  executor: RunExecutor;
  /** Graceful stop: no new runs, in-flight runs get `graceMs` to finish, then the db closes. */
  close(graceMs?: number): Promise<void>;
}

/** What a run of the refine graph takes as input. */
const RefineInputSchema = z
  .object({
    task: z
      .string({ error: "task is required: the text to refine an answer for" })
      .trim()
      .min(1, "task must not be empty"),
    context: z.string().optional(),
    options: RefineOptionsSchema.optional(),
  })
  .loose();

export const VERSION = "0.1.0";

export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  const env = options.env ?? process.env;
  const log =
    options.log ?? createLogger({ level: (env.LOG_LEVEL as LogLevel | undefined) ?? "info" });
  const metrics = createMetrics();
  // Checked before anything is opened, so a bad setting leaves no file behind.
  const port = parsePort(options.port ?? env.PORT, "PORT");
  const host = options.host ?? env.HOST ?? "127.0.0.1";
  const limits = serverSettings(env);
  let threads = runThreadCount(options.runThreads ?? env.REFINERY_RUN_THREADS);
  const configPath =
    options.configPath ??
    env.REFINERY_CONFIG ??
    (existsSync("langgraph.json") ? "langgraph.json" : undefined);
  const auth = await loadAuthBackend({ env, configPath });
  checkExposure(host, auth, env);
  const security: SecuritySettings = {
    ...(auth ? { auth } : {}),
    corsOrigins: parseOrigins(env.REFINERY_CORS_ORIGINS),
    hostGuard: hostGuard({ boundHost: host, allowed: env.REFINERY_ALLOWED_HOSTS }),
    ...(limits.rateLimit(Boolean(auth)) > 0
      ? { rateLimiter: new RateLimiter(limits.rateLimit(Boolean(auth))) }
      : {}),
    ...(limits.tenantRuns(Boolean(auth)) > 0
      ? { partitionRunLimit: limits.tenantRuns(Boolean(auth)) }
      : {}),
    maxRecursionLimit: limits.maxRecursionLimit,
  };
  const runtime = await openRuntime({
    env,
    configPath,
    provider: options.provider,
    log,
  });
  const { settings, engine, db, saver, storage, inbox, checkpoints, learning, registry } = runtime;
  // Finished runs' events stay replayable (join-stream, Last-Event-ID) for 60 s, at most this many.
  const hub = new StreamHub({ maxFinishedRuns: limits.retainRuns });
  if (options.provider || settings.dbPath === ":memory:") threads = 0;
  let pool: RunThreadPool | undefined;
  try {
    pool =
      threads > 0
        ? await RunThreadPool.start({
            count: threads,
            env: { ...env },
            configPath: runtime.configPath,
            hub,
            log,
            metrics,
            limits: limits.runs,
          })
        : undefined;
  } catch (err) {
    await runtime.close();
    throw err;
  }
  // Evaluation jobs run in eval threads (opened on first use), off the HTTP thread; a provider
  // object cannot cross threads, so with one (tests) they run here, as graphs do.
  const evalJobs = new EvalJobs({
    target:
      options.provider || limits.evalThreads === 0
        ? new InlineEvalTarget(async () =>
            // Eval threads are scratch: an in-memory checkpointer, as in an eval thread.
            engineRunner(openEngine({ settings, provider: engine.provider, memory: true })),
          )
        : new EvalThreadPool({ size: limits.evalThreads, env: { ...env }, log }),
    log,
    maxRuns: limits.evalMaxRuns,
    maxJobs: limits.evalMaxJobs,
  });
  // No connection checkpoints the WAL on commit (run threads turn it off in run-thread.ts); a
  // thread of its own does, off the path of requests and run steps.
  const wal =
    settings.dbPath === ":memory:"
      ? undefined
      : WalCheckpointer.start(db, log, { restartBytes: options.walRestartBytes });
  /** Stops the run threads and the WAL thread, then closes the database. */
  const release = async () => {
    await evalJobs.close();
    await pool?.close();
    await wal?.close();
    await runtime.close();
  };
  /** Start-up failed past this point: nothing is left running or open. */
  const abandon = async (err: unknown): Promise<never> => {
    await release();
    throw err;
  };
  // Run threads re-read lessons, and a declarative graph, when they change here.
  if (pool) learning.memory?.onChange((assistantId) => pool?.lessonsChanged(assistantId));
  const specs = runtime.graphSpecs;
  const graphSpecs: GraphSpecService = {
    ...specs,
    register: async (document, graphId) => {
      const result = await specs.register(document, graphId);
      if (result.created) pool?.graphChanged(result.graph_id);
      return result;
    },
    delete: async (graphId) => {
      const deleted = await specs.delete(graphId);
      if (deleted) pool?.graphChanged(graphId);
      return deleted;
    },
  };
  const takesRefineInput = (graphId: string) => graphId === "refine" || graphSpecs.has(graphId);
  try {
    for (const graphId of registry.ids()) {
      await storage.assistants.create(
        {
          assistant_id: systemAssistantId(graphId),
          graph_id: graphId,
          name: graphId,
          metadata: { created_by: "system" },
        },
        "do_nothing",
      );
    }
  } catch (err) {
    await abandon(err);
  }

  const concurrency = options.concurrency ?? limits.workers;
  const executor = new RunExecutor({
    storage,
    registry,
    hub,
    checkpointer: saver,
    checkpoints,
    log,
    metrics,
    concurrency,
    pollMs: options.pollMs,
    learning: learning.loop,
    limits: limits.runs,
    ...(pool ? { target: pool } : {}),
  });
  const hooks: { resumeApproval?: (threadId: string, decision: unknown) => Promise<unknown> } = {};
  const app = createApp({
    graphSpecs,
    learning: learning.loop,
    inbox,
    hooks,
    storage,
    registry,
    executor,
    evalJobs,
    hub,
    checkpointer: saver,
    checkpoints,
    log,
    metrics,
    version: VERSION,
    keepAliveMs: options.keepAliveMs ?? limits.keepAliveMs,
    bodyLimit: limits.bodyLimit,
    security,
    validateConfig: (graphId, config) => {
      if (takesRefineInput(graphId)) {
        checkConfigurableKeys(config?.configurable as Record<string, unknown> | undefined);
        engine.resolve(config as never);
      }
      graphSpecs.checkConfig(graphId, config);
    },
    validateInput: (graphId, input) => {
      if (!takesRefineInput(graphId)) return;
      const parsed = RefineInputSchema.safeParse(input);
      if (!parsed.success)
        throw fromZodError(parsed.error, "input", "invalid_input", RefineInputSchema);
    },
    schemasFor: (graphId) =>
      takesRefineInput(graphId)
        ? {
            input_schema: z.toJSONSchema(
              z.object({
                task: z.string().min(1),
                context: z.string().optional(),
                options: RefineOptionsSchema.optional(),
              }),
              { io: "input", unrepresentable: "any" },
            ),
            config_schema: z.toJSONSchema(RefineOptionsSchema, {
              io: "input",
              unrepresentable: "any",
            }),
          }
        : undefined,
  });

  const server = await new Promise<Server>((resolve, reject) => {
    // A burst of connections (1,000 clients at once) overflows the default backlog of 511, and
    // the kernel then resets some of them; 4096 is the usual somaxconn cap. Express 5 passes a
    // listen error to this callback (and not as an "error" event).
    const s = app.listen({ port, host, backlog: 4096 }, (err?: Error) =>
      err ? reject(err) : resolve(s),
    );
  }).catch((err: unknown) => abandon(listenError(err, host, port)));
  server.keepAliveTimeout = 65_000;
  try {
    await executor.start();
  } catch (err) {
    await executor.stop(0);
    await new Promise((r) => server.close(r));
    await abandon(err);
  }
  const approvals = new ApprovalWatcher({
    db,
    storage,
    log,
    intervalMs: Number(env.REFINERY_APPROVAL_POLL_MS ?? 1000),
    resume: async (threadId, decision) => {
      if (!hooks.resumeApproval) throw new Error("runs router not mounted");
      return hooks.resumeApproval(threadId, decision);
    },
  });
  approvals.start();
  const address = server.address() as AddressInfo;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
  log("info", "server listening", {
    url,
    db: settings.dbPath,
    graphs: registry.ids(),
    model: engine.provider.offline
      ? "simulated (offline)"
      : env.REFINERY_PROVIDER_MODULE && !options.provider
        ? `provider module ${env.REFINERY_PROVIDER_MODULE}`
        : settings.model,
    workers: concurrency,
    run_threads: pool?.size ?? 0,
    auth: auth?.describe ?? "off (open to every caller that reaches the address)",
    lessons: learning.storeKind ?? "off",
  });

  let closed = false;
  return {
    url,
    server,
    executor,
    async close(graceMs = 10_000) {
      if (closed) return;
      closed = true;
      approvals.stop();
      const stopped = new Promise<void>((r) => server.close(() => r()));
      await executor.stop(graceMs);
      server.closeAllConnections();
      await stopped;
      await release();
    },
  };
}

/**
 * An integer setting (an environment variable, or a flag): `fallback` when unset, else an integer
 * from `min` to `max`. `what` and `example` make the error: "<what> must be an integer from ...".
 */
export function intSetting(
  raw: string | number | undefined,
  field: string,
  spec: { fallback: number; min: number; max: number; what: string; example: string },
): number {
  if (raw === undefined || raw === "") return spec.fallback;
  const n = typeof raw === "number" ? raw : Number(raw);
  if (!Number.isInteger(n) || n < spec.min || n > spec.max) {
    throw new RefineryError(
      "invalid_config",
      `${spec.what} must be an integer from ${spec.min} to ${spec.max}, not ${JSON.stringify(raw)}`,
      { field, fix: `set ${field} to ${spec.example}` },
    );
  }
  return n;
}

/** A port from PORT or --port: 0 (any free port) to 65535; default 8123. */
export function parsePort(raw: string | number | undefined, field: "PORT" | "--port"): number {
  return intSetting(raw, field, {
    fallback: 8123,
    min: 0,
    max: 65535,
    what: "a port",
    example: "a port such as 8123, or 0 for any free port",
  });
}

/** The server's other numeric settings, read before anything is opened. */
function serverSettings(env: Record<string, string | undefined>) {
  const body = env.REFINERY_BODY_LIMIT || "1mb";
  if (!/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i.test(body)) {
    throw new RefineryError(
      "invalid_config",
      `the request body limit must be a size such as 1mb, not ${JSON.stringify(body)}`,
      {
        field: "REFINERY_BODY_LIMIT",
        fix: "set REFINERY_BODY_LIMIT to a number of bytes or a size such as 512kb or 2mb",
      },
    );
  }
  return {
    bodyLimit: body,
    workers: intSetting(env.REFINERY_WORKERS, "REFINERY_WORKERS", {
      fallback: 64,
      min: 1,
      max: 100_000,
      what: "the number of runs executing at once",
      example: "a number such as 64",
    }),
    retainRuns: intSetting(env.REFINERY_STREAM_RETAIN_RUNS, "REFINERY_STREAM_RETAIN_RUNS", {
      fallback: 500,
      min: 0,
      max: 1_000_000,
      what: "the number of finished runs whose events are kept",
      example: "a number such as 500",
    }),
    evalThreads: evalThreadCount(env.REFINERY_EVAL_THREADS),
    evalMaxRuns: intSetting(env.REFINERY_EVAL_MAX_RUNS, "REFINERY_EVAL_MAX_RUNS", {
      fallback: EVAL_LIMITS.maxRuns,
      min: 1,
      max: 10_000_000,
      what: "the number of graph runs one evaluation job may ask for",
      example: `a number such as ${EVAL_LIMITS.maxRuns}`,
    }),
    evalMaxJobs: intSetting(env.REFINERY_EVAL_MAX_JOBS, "REFINERY_EVAL_MAX_JOBS", {
      fallback: EVAL_LIMITS.maxJobs,
      min: 1,
      max: 1000,
      what: "the number of evaluation jobs running at once per caller",
      example: `a number such as ${EVAL_LIMITS.maxJobs}`,
    }),
    keepAliveMs: intSetting(env.REFINERY_KEEPALIVE_MS, "REFINERY_KEEPALIVE_MS", {
      fallback: 15_000,
      min: 100,
      max: 600_000,
      what: "the keep-alive interval in ms",
      example: "a number of milliseconds such as 15000",
    }),
    /** Requests per minute per caller; default 6000 (100/s) with auth, off without. */
    rateLimit: (authOn: boolean) =>
      intSetting(env.REFINERY_RATE_LIMIT, "REFINERY_RATE_LIMIT", {
        fallback: authOn ? 6000 : 0,
        min: 0,
        max: 100_000_000,
        what: "the request rate limit (requests per minute per caller, 0: none)",
        example: "a number such as 6000, or 0 for no limit",
      }),
    maxRecursionLimit: intSetting(
      env.REFINERY_MAX_RECURSION_LIMIT,
      "REFINERY_MAX_RECURSION_LIMIT",
      {
        fallback: 1000,
        min: 1,
        max: 10_000,
        what: "the largest recursion_limit a run may ask for",
        example: "a number such as 1000",
      },
    ),
    /** Runs pending or running per tenant; default 200 with auth, no cap without. */
    tenantRuns: (authOn: boolean) =>
      intSetting(env.REFINERY_TENANT_MAX_RUNS, "REFINERY_TENANT_MAX_RUNS", {
        fallback: authOn ? 200 : 0,
        min: 0,
        max: 10_000_000,
        what: "the runs in flight per tenant (0: no cap)",
        example: "a number such as 200, or 0 for no cap",
      }),
    runs: {
      stepTimeoutMs: intSetting(env.REFINERY_STEP_TIMEOUT_MS, "REFINERY_STEP_TIMEOUT_MS", {
        fallback: DEFAULT_RUN_LIMITS.stepTimeoutMs,
        min: 0,
        max: 2_147_483_647,
        what: "the step time limit in ms",
        example: "a number of milliseconds such as 300000, or 0 for no limit",
      }),
      runTimeoutMs: intSetting(env.REFINERY_RUN_TIMEOUT_MS, "REFINERY_RUN_TIMEOUT_MS", {
        fallback: DEFAULT_RUN_LIMITS.runTimeoutMs,
        min: 0,
        max: 2_147_483_647,
        what: "the run time limit in ms",
        example: "a number of milliseconds such as 1800000, or 0 for no limit",
      }),
    },
  };
}

/** Why the server could not listen, naming the setting to change. */
function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "EADDRINUSE")
    return new RefineryError("invalid_config", `port ${port} on ${host} is already in use`, {
      field: "PORT",
      fix: "stop the process that holds it, or choose another port with PORT or --port",
      cause: err,
    });
  if (code === "EACCES")
    return new RefineryError("invalid_config", `no permission to listen on port ${port}`, {
      field: "PORT",
      fix: "choose a port above 1023 with PORT or --port",
      cause: err,
    });
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN")
    return new RefineryError("invalid_config", `${host} is not an address of this machine`, {
      field: "HOST",
      fix: "use 127.0.0.1, 0.0.0.0 or an address of this machine with HOST or --host",
      cause: err,
    });
  return err;
}
