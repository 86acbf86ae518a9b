// Composition root of the server process: persistence backend (SQLite file or Postgres),
// graph registry, stream hub, run executor and the Express app. Used by main.ts and by tests.
import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { z } from "zod";
import { checkConfigurableKeys, RefineOptionsSchema } from "../core/config.ts";
import type { GraphSpecService } from "../graphs/declarative/index.ts";
import { platformSectionsOf, systemAssistantId } from "../graphs/registry.ts";
import { createSchemaService } from "../graphs/schemas/service.ts";
import type { ModelProvider } from "../core/models/provider.ts";
import {
  intSetting,
  PORT_SPEC,
  readEnv,
  unknownEnvWarnings,
  type EnvSettings,
} from "../core/env.ts";
import { fromZodError, RefineryError } from "../core/errors.ts";
import { openEngine } from "../graphs/engine.ts";
import { engineRunner } from "../graphs/eval/index.ts";
import { createApp, protocolOf, type AppDeps } from "./app.ts";
import { loadCustomApp } from "./custom-app.ts";
import { handleUpgrades } from "./routes/protocol.ts";
import { bundleUis } from "./ui-bundle.ts";
import { ApprovalWatcher } from "./approval-watcher.ts";
import { CronScheduler } from "./cron-scheduler.ts";
import { checkExposure, hostGuard, loadAuthBackend } from "./auth/index.ts";
import { corsSettings, parseOrigins } from "./auth/cors.ts";
import { RateLimiter } from "./auth/rate-limit.ts";
import type { SecuritySettings, ServerRole } from "./context.ts";
import { InlineEvalTarget } from "./eval-inline.ts";
import { EvalJobs } from "./eval-jobs.ts";
import { EvalThreadPool } from "./eval-threads.ts";
import { trackRequests } from "./drain.ts";
import { DutyLeader } from "./duties.ts";
import { WebhookOutbox } from "./webhook-outbox.ts";
import { LocalSignals } from "./signals/local.ts";
import { RedisRunEvents } from "./signals/redis-events.ts";
import { PostgresSignals } from "./signals/postgres.ts";
import { RedisSignals } from "./signals/redis.ts";
import type { RunSignals } from "./signals/types.ts";
import { RunExecutor } from "./executor.ts";
import { createLogger, type Logger, type LogLevel } from "./log.ts";
import { createMetrics } from "./metrics.ts";
import { RunThreadPool, runThreadCount } from "./run-threads.ts";
import { createRunService } from "./run-service.ts";
import { openRuntime } from "./runtime.ts";
import { StreamHub, type RunEnd } from "./stream-hub.ts";
import { sweepLapsedCancels } from "./signals/cancel-requests.ts";
import { WalCheckpointer } from "./wal-checkpointer.ts";
import type { SqliteBackend } from "../core/storage/sqlite/backend.ts";

export interface StartOptions {
  env?: Record<string, string | undefined>;
  /**
   * "api": serves HTTP and executes no runs (workers elsewhere claim them); "worker": executes
   * runs and serves only /ok, /info and /metrics; "both" (default): one process does everything.
   */
  role?: ServerRole;
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
   * per core but the server thread's, up to 4, when there are several cores. 0 runs graphs in the server thread, as does an
   * injected `provider` (a live object cannot cross threads; REFINERY_PROVIDER_MODULE can).
   */
  runThreads?: number | "auto";
  /** WAL size past which its checkpoint waits for old readers so the WAL starts over (32 MiB). */
  walRestartBytes?: number;
  /** The cron scheduler's clock (ms since the epoch; default Date.now): tests drive it. */
  cronClock?: () => number;
  /** How often the cron scheduler looks for due crons (default 1000 ms). */
  cronPollMs?: number;
}

export interface RunningServer {
  url: string;
  server: Server;
  executor: RunExecutor;
  /** Fires crons; `tick()` makes one pass now. */
  crons: CronScheduler;
  /**
   * Settles once the run threads started so far have opened their runtimes (or failed to; it
   * never rejects): the server listens before that, and runs handed to a thread meanwhile wait
   * for it. While idle the server runs one thread; the others start with the first run.
   */
  runThreadsReady(): Promise<void>;
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
  // Every setting is checked before anything is opened, so a bad one leaves no file behind.
  const envSettings = readEnv(env);
  const log = options.log ?? createLogger({ level: envSettings.LOG_LEVEL as LogLevel });
  for (const warning of unknownEnvWarnings(env)) log("warn", warning);
  const metrics = createMetrics();
  const port = options.port !== undefined ? parsePort(options.port, "PORT") : envSettings.PORT;
  const host = options.host ?? envSettings.HOST ?? "127.0.0.1";
  const limits = serverSettings(envSettings);
  let threads = runThreadCount(options.runThreads ?? envSettings.REFINERY_RUN_THREADS);
  const configPath =
    options.configPath ??
    envSettings.REFINERY_CONFIG ??
    (existsSync("langgraph.json") ? "langgraph.json" : undefined);
  // langgraph.json's http and ui sections, checked before anything is opened.
  const platform = platformSectionsOf(configPath);
  for (const key of platform?.unsupportedHttpKeys ?? [])
    log("warn", `langgraph.json ${key} is not supported by this server; it is ignored`, {
      field: key,
    });
  const auth = await loadAuthBackend({ env, configPath });
  checkExposure(host, auth, envSettings.REFINERY_ALLOW_ANONYMOUS);
  // REFINERY_CORS_ORIGINS and langgraph.json http.cors.
  const cors = corsSettings(parseOrigins(envSettings.REFINERY_CORS_ORIGINS), platform?.http?.cors);
  const security: SecuritySettings = {
    ...(auth ? { auth } : {}),
    corsOrigins: cors.origins,
    corsOptions: cors.options,
    hostGuard: hostGuard({ boundHost: host, allowed: envSettings.REFINERY_ALLOWED_HOSTS }),
    ...(limits.rateLimit(Boolean(auth)) > 0
      ? { rateLimiter: new RateLimiter(limits.rateLimit(Boolean(auth))) }
      : {}),
    ...(limits.tenantRuns(Boolean(auth)) > 0
      ? { partitionRunLimit: limits.tenantRuns(Boolean(auth)) }
      : {}),
    maxRecursionLimit: limits.maxRecursionLimit,
  };
  // The custom HTTP app and the UI bundles load before the database opens: a broken one
  // stops start-up naming its field, leaving nothing behind.
  const customApp = platform?.http?.app
    ? await loadCustomApp(platform.base, platform.http.app)
    : undefined;
  const uiBundles = platform?.ui
    ? await bundleUis({ base: platform.base, ui: platform.ui, shared: platform.uiShared })
    : undefined;
  const runtime = await openRuntime({
    env,
    configPath,
    provider: options.provider,
    log,
  });
  const { settings, engine, backend, saver, storage, inbox, checkpoints, learning, registry } =
    runtime;
  // Finished runs' events stay replayable (join-stream, Last-Event-ID) for 60 s, at most this many.
  // With Redis, run events are mirrored to Redis Streams, so any process serves any run's stream.
  const remoteEvents = envSettings.REFINERY_REDIS_URL
    ? new RedisRunEvents({
        url: envSettings.REFINERY_REDIS_URL,
        prefix: envSettings.REFINERY_REDIS_PREFIX,
        maxLen: REMOTE_EVENTS_PER_RUN,
        ttlSeconds: REMOTE_EVENTS_TTL_S,
      })
    : undefined;
  const hub = new StreamHub({
    maxFinishedRuns: limits.retainRuns,
    ...(remoteEvents
      ? {
          remote: remoteEvents,
          settled: async (runId: string): Promise<RunEnd | undefined> => {
            const run = await storage.runs.get(runId);
            if (!run) return { status: "interrupted" }; // rolled back: deleted
            if (run.status === "pending" || run.status === "running") return undefined;
            return { status: run.status, ...(run.error ? { error: run.error } : {}) };
          },
        }
      : {}),
  });
  const role = options.role ?? "both";
  if (options.provider || settings.dbPath === ":memory:" || role === "api") threads = 0;
  // Run threads open their runtimes in the background: the server listens meanwhile (start-up to
  // /ok is this thread's alone), and a run handed to a thread waits until it is ready.
  const pool =
    threads > 0
      ? RunThreadPool.launch({
          count: threads,
          env: { ...env },
          configPath: runtime.configPath,
          hub,
          log,
          metrics,
          limits: limits.runs,
          heapMb: limits.runThreadHeapMb,
          // One thread while idle (each holds a runtime); the others start with the first run.
          idle: 1,
        })
      : undefined;
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
    // In the database: any process sharing it lists, reads and cancels them.
    store: backend.evalJobs,
    leaseMs: envSettings.REFINERY_RUN_LEASE_MS,
  });
  // No connection checkpoints the WAL on commit (run threads turn it off in run-thread.ts); a
  // thread of its own does, off the path of requests and run steps.
  const wal =
    backend.kind !== "sqlite" || settings.dbPath === ":memory:"
      ? undefined
      : WalCheckpointer.start((backend as SqliteBackend).db, log, {
          restartBytes: options.walRestartBytes,
        });
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
      // LANGGRAPH_CONFIG's config and context for this graph, as the LangGraph server sets them.
      const defaults = registry.entry(graphId)?.defaults;
      await storage.assistants.create(
        {
          assistant_id: systemAssistantId(graphId),
          graph_id: graphId,
          name: graphId,
          metadata: { created_by: "system" },
          ...defaults,
        },
        "do_nothing",
      );
    }
  } catch (err) {
    await abandon(err);
  }

  // Signals between processes sharing the database: Redis when configured, else Postgres
  // LISTEN/NOTIFY when the database is Postgres, else none needed beyond this process (one SQLite
  // file: processes on one machine find new runs by polling). The choice is logged at start.
  const signals: RunSignals = envSettings.REFINERY_REDIS_URL
    ? new RedisSignals({
        url: envSettings.REFINERY_REDIS_URL,
        prefix: envSettings.REFINERY_REDIS_PREFIX,
        log,
      })
    : settings.database
      ? new PostgresSignals({ ...settings.database, log })
      : new LocalSignals();
  if (signals instanceof RedisSignals || signals instanceof PostgresSignals) await signals.start();
  // Duties one process does at a time when several share the database.
  const duties = new DutyLeader(
    storage.duties,
    (name) =>
      Math.max(
        envSettings.REFINERY_RUN_LEASE_MS,
        3 *
          (name === "approvals"
            ? limits.approvalPollMs
            : name === "thread-sweep"
              ? limits.threadSweepMs
              : name === "webhooks"
                ? WEBHOOK_POLL_MS
                : name === "eval-jobs"
                  ? envSettings.REFINERY_RUN_LEASE_MS / 3
                  : STORE_SWEEP_MS),
      ),
    log,
  );
  // Cancels from other processes reach this one's evaluation jobs; jobs whose process went away
  // are resumed by the duty's holder.
  evalJobs.start({ signals, duty: () => duties.holds("eval-jobs") });
  // Run webhooks from the database outbox, delivered by the process holding the duty.
  const webhooks = new WebhookOutbox({
    outbox: storage.webhooks,
    duty: () => duties.holds("webhooks"),
    log,
    metrics,
    pollMs: WEBHOOK_POLL_MS,
  });
  // An api process claims nothing (it still takes back runs of stopped workers for the others).
  const concurrency = role === "api" ? 0 : (options.concurrency ?? limits.workers);
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
    store: runtime.userStore,
    limits: limits.runs,
    leaseMs: envSettings.REFINERY_RUN_LEASE_MS,
    signals,
    webhookQueued: () => webhooks.kick(),
    ...(pool ? { target: pool } : {}),
  });
  // GET /assistants/:id/schemas of langgraph.json graphs (static extraction in a worker, cached).
  const schemaService = createSchemaService({
    timeoutMs: envSettings.REFINERY_SCHEMA_TIMEOUT_MS,
    warn: (message, fields) => log("warn", message, fields),
  });
  const hooks: { resumeApproval?: (threadId: string, decision: unknown) => Promise<unknown> } = {};
  const cronClock = options.cronClock ?? Date.now;
  const appDeps: AppDeps & { graphSpecs: GraphSpecService } = {
    graphSpecs,
    database: backend,
    ...(signals instanceof RedisSignals ? { redis: signals } : {}),
    crons: { now: cronClock, maxPerTenant: limits.tenantCrons },
    learning: learning.loop,
    store: runtime.userStore,
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
    role,
    dev: envSettings.REFINERY_DEV,
    keepAliveMs: options.keepAliveMs ?? limits.keepAliveMs,
    bodyLimit: limits.bodyLimit,
    security,
    ...(platform?.http ? { http: { app: customApp, section: platform.http } } : {}),
    ...(uiBundles ? { ui: uiBundles } : {}),
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
    schemasFor: async (graphId, config) => {
      if (takesRefineInput(graphId)) {
        return {
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
        };
      }
      const entry = registry.entry(graphId);
      if (!entry) return undefined;
      const found = await schemaService.schemasOf(entry, await registry.get(graphId, config));
      if (!found) return undefined;
      // As the reference: a JS graph's context schema is its config schema (one and the same).
      return {
        input_schema: found.input,
        output_schema: found.output,
        state_schema: found.state,
        config_schema: found.config,
        context_schema: found.config,
      };
    },
  };
  const app = createApp(appDeps);

  const server = await new Promise<Server>((resolve, reject) => {
    // A burst of connections (1,000 clients at once) overflows the default backlog of 511, and
    // the kernel then resets some of them; 4096 is the usual somaxconn cap. Express 5 passes a
    // listen error to this callback (and not as an "error" event).
    const s = app.listen({ port, host, backlog: 4096 }, (err?: Error) =>
      err ? reject(err) : resolve(s),
    );
  }).catch((err: unknown) => abandon(listenError(err, host, port)));
  server.keepAliveTimeout = 65_000;
  const requests = trackRequests(server);
  // WebSocket upgrades (the thread protocol) pass through the app's middleware like requests.
  handleUpgrades(server, app);
  try {
    await executor.start();
  } catch (err) {
    await executor.stop(0);
    await new Promise((r) => server.close(r));
    await abandon(err);
  }
  const approvals = new ApprovalWatcher({
    notices: backend.approvalNotices,
    storage,
    log,
    duty: () => duties.holds("approvals"),
    intervalMs: limits.approvalPollMs,
    resume: async (threadId, decision) => {
      if (!hooks.resumeApproval) throw new Error("runs router not mounted");
      return hooks.resumeApproval(threadId, decision);
    },
  });
  // Approval deadlines and crons act through the API's run service: not a worker's duties.
  if (role !== "worker") approvals.start();
  // Crons fire as runs of their creators, through the same run service as POST /runs.
  const crons = new CronScheduler({
    storage,
    runs: createRunService(appDeps),
    auth,
    log,
    now: cronClock,
    pollMs: options.cronPollMs,
  });
  if (role !== "worker") crons.start();
  webhooks.start();
  // Expired store items are already invisible to reads; this deletes them once a minute.
  const storeSweeper = setInterval(() => {
    void duties
      .holds("store-sweep")
      .then((ours) => (ours ? runtime.userStore.sweep() : undefined))
      .catch((err: unknown) => {
        log("warn", "store TTL sweep failed", { error: (err as Error).message });
      });
  }, STORE_SWEEP_MS);
  storeSweeper.unref();
  // Threads whose TTL ran out: deleted with their checkpoints and runs, at most
  // THREAD_SWEEP_BATCH per tick (one tick at a time), so a backlog never stalls the server.
  let sweepingThreads = false;
  const threadSweeper = setInterval(() => {
    if (sweepingThreads) return;
    sweepingThreads = true;
    sweepExpiredThreads()
      .then((n) => {
        if (n > 0) log("info", "expired threads deleted", { threads: n });
      })
      .catch((err: unknown) => {
        log("warn", "thread TTL sweep failed", { error: (err as Error).message });
      })
      .finally(() => {
        sweepingThreads = false;
      });
  }, limits.threadSweepMs);
  threadSweeper.unref();
  async function sweepExpiredThreads(): Promise<number> {
    let deleted = 0;
    if (!(await duties.holds("thread-sweep"))) return 0;
    // The same duty clears the cancel leases of cancellers that died (a minute after they lapsed).
    const cancels = await sweepLapsedCancels(storage.duties, 60_000);
    if (cancels > 0) log("info", "lapsed cancel requests deleted", { cancels });
    for (const threadId of await storage.threads.expired(Date.now(), THREAD_SWEEP_BATCH)) {
      // A run created since the query keeps the thread (it moves the expiry on).
      if ((await storage.runs.inflight(threadId)).length > 0) continue;
      await checkpoints.deleteThread(threadId);
      if (await storage.threads.delete(threadId)) deleted += 1;
    }
    return deleted;
  }
  const address = server.address() as AddressInfo;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
  log("info", "server listening", {
    url,
    db: backend.where,
    graphs: registry.ids(),
    model: engine.provider.offline
      ? "simulated (offline)"
      : env.REFINERY_PROVIDER_MODULE && !options.provider
        ? `provider module ${env.REFINERY_PROVIDER_MODULE}`
        : settings.model,
    role,
    signals: signals.kind,
    workers: concurrency,
    run_threads: pool?.size ?? 0,
    auth: auth?.describe ?? "off (open to every caller that reaches the address)",
    lessons: learning.storeKind ?? "off",
  });
  let closed = false;
  void (pool?.ready() ?? Promise.resolve()).then(
    () =>
      log("info", "run threads ready", {
        started: pool?.started ?? 0,
        run_threads: pool?.size ?? 0,
      }),
    (err: Error) => {
      // Runs handed to a thread that could not start come back lost and fail after their
      // attempts; the server thread opened the same runtime, so this is rare (a thread's own
      // resources: memory, a module that fails only in a worker).
      if (!closed) log("error", "run threads could not start", { error: err.message });
    },
  );
  return {
    url,
    server,
    executor,
    crons,
    runThreadsReady: () => (pool?.ready() ?? Promise.resolve()).catch(() => {}),
    async close(graceMs = 10_000) {
      if (closed) return;
      closed = true;
      approvals.stop();
      await crons.stop();
      clearInterval(storeSweeper);
      clearInterval(threadSweeper);
      await schemaService.close();
      const stopped = requests.stopAccepting();
      // A worker's app has no thread protocol.
      (protocolOf(app) as ReturnType<typeof protocolOf> | undefined)?.close();
      const drainBy = Date.now() + graceMs;
      await executor.stop(graceMs);
      // Requests in flight are answered (a wait whose run another process finishes follows it
      // through the signals, still open) before the connections close.
      await requests.idle(Math.max(0, drainBy - Date.now()));
      await webhooks.stop();
      await duties.releaseAll();
      await signals.close();
      await remoteEvents?.close();
      server.closeAllConnections();
      await stopped;
      await release();
    },
  };
}

/** A port from PORT or --port: 0 (any free port) to 65535; default 8123. */
export function parsePort(raw: string | number | undefined, field: "PORT" | "--port"): number {
  return intSetting(raw, field, PORT_SPEC);
}

/** The server's settings from the environment, read (and all checked) before anything is opened. */
function serverSettings(e: EnvSettings) {
  return {
    bodyLimit: e.REFINERY_BODY_LIMIT,
    workers: e.REFINERY_WORKERS,
    retainRuns: e.REFINERY_STREAM_RETAIN_RUNS,
    evalThreads: e.REFINERY_EVAL_THREADS,
    runThreadHeapMb: e.REFINERY_RUN_THREAD_HEAP_MB,
    evalMaxRuns: e.REFINERY_EVAL_MAX_RUNS,
    evalMaxJobs: e.REFINERY_EVAL_MAX_JOBS,
    keepAliveMs: e.REFINERY_KEEPALIVE_MS,
    /** Requests per minute per caller; default 6000 (100/s) with auth, off without. */
    rateLimit: (authOn: boolean) => e.REFINERY_RATE_LIMIT ?? (authOn ? 6000 : 0),
    maxRecursionLimit: e.REFINERY_MAX_RECURSION_LIMIT,
    /** Runs pending or running per tenant; default 200 with auth, no cap without. */
    tenantRuns: (authOn: boolean) => e.REFINERY_TENANT_MAX_RUNS ?? (authOn ? 200 : 0),
    approvalPollMs: e.REFINERY_APPROVAL_POLL_MS,
    threadSweepMs: e.REFINERY_THREAD_SWEEP_MS,
    tenantCrons: e.REFINERY_TENANT_MAX_CRONS,
    runs: {
      stepTimeoutMs: e.REFINERY_STEP_TIMEOUT_MS,
      runTimeoutMs: e.REFINERY_RUN_TIMEOUT_MS,
    },
  };
}

/** How often the webhooks duty looks for due calls in the outbox (ms). */
const WEBHOOK_POLL_MS = 1000;
/** Run events kept per run in Redis (as the in-process hub's per-run cap). */
const REMOTE_EVENTS_PER_RUN = 2_000;
/** How long a run's events stay in Redis after its last one, in seconds. */
const REMOTE_EVENTS_TTL_S = 600;

/** How often expired store items are deleted. */
const STORE_SWEEP_MS = 60_000;

/** Expired threads deleted per sweep tick, at most. */
const THREAD_SWEEP_BATCH = 100;

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
