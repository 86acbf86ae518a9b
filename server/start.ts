// Composition root of the server process: SQLite file (checkpoints, runs, threads, assistants),
// graph registry, stream hub, run executor and the Express app. Used by main.ts and by tests.
import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { z } from "zod";
import { processSettingsFromEnv, RefineOptionsSchema } from "../core/config.ts";
import { createSqliteCheckpointAdmin, ensureSaverSetup } from "../core/storage/checkpoint-admin.ts";
import { createSqliteFeedbackInbox, type FeedbackInbox } from "../core/storage/feedback-inbox.ts";
import { createSqliteStorage } from "../core/storage/sqlite.ts";
import { startGraphSpecs } from "../graphs/declarative/index.ts";
import { openEngine } from "../graphs/engine.ts";
import type { LessonMemory } from "../core/memory/lessons.ts";
import type { LessonSource } from "../graphs/learning.ts";
import { openLearning } from "../graphs/learning.ts";
import { createGraphRegistry, systemAssistantId, type RunnableGraph } from "../graphs/registry.ts";
import type { ModelProvider } from "../core/models/provider.ts";
import { fromZodError } from "../core/errors.ts";
import { createApp } from "./app.ts";
import { ApprovalWatcher } from "./approval-watcher.ts";
import { RunExecutor } from "./executor.ts";
import { createLogger, type Logger, type LogLevel } from "./log.ts";
import { createMetrics } from "./metrics.ts";
import { StreamHub } from "./stream-hub.ts";

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
  const settings = processSettingsFromEnv(env);
  // The inbox lives in the database the engine opens, so the engine gets a forwarder to it.
  const inboxRef: { current?: FeedbackInbox } = {};
  // Likewise the lessons memory, opened on that database below.
  const lessonsRef: { memory?: LessonMemory } = {};
  const lessons: LessonSource = {
    retrieve: async (assistantId, task, limit) =>
      lessonsRef.memory
        ? lessonsRef.memory.retrieve(assistantId ?? systemAssistantId("refine"), task, limit)
        : [],
  };
  const engine = openEngine({
    settings,
    provider: options.provider,
    lessons,
    inbox: { take: async (threadId) => (inboxRef.current ? inboxRef.current.take(threadId) : []) },
  });
  const db = engine.checkpointer.db;
  if (!db) throw new Error("the server needs the SQLite checkpointer");
  const saver = engine.checkpointer.saver;
  await ensureSaverSetup(saver);
  const storage = createSqliteStorage(db);
  const inbox = createSqliteFeedbackInbox(db);
  inboxRef.current = inbox;
  const checkpoints = createSqliteCheckpointAdmin(db);
  // Lessons memory (the same SQLite file, or Postgres with REFINERY_STORE_URL) and run records.
  const learning = await openLearning(settings, db);
  lessonsRef.memory = learning.memory;

  const configPath =
    options.configPath ??
    env.REFINERY_CONFIG ??
    (existsSync("langgraph.json") ? "langgraph.json" : undefined);
  const registry = await createGraphRegistry({
    builtins: {
      refine: {
        graph: engine.graph as unknown as RunnableGraph,
        description: "generate -> critique -> verify -> revise with a stop policy",
      },
    },
    configPath,
    checkpointer: saver,
    log: (level, msg, fields) => log(level, msg, fields),
  });
  // Declarative graphs: stored ones, then REFINERY_GRAPHS_DIR (default ./graphs.d when present).
  const graphSpecs = await startGraphSpecs({
    db,
    registry,
    checkpointer: saver,
    provider: engine.provider,
    inbox,
    lessons,
    graphsDir: env.REFINERY_GRAPHS_DIR ?? (existsSync("graphs.d") ? "graphs.d" : undefined),
    nodeKindModules: env.REFINERY_NODE_KINDS,
    log: (level, msg, fields) => log(level, msg, fields),
  });
  const takesRefineInput = (graphId: string) => graphId === "refine" || graphSpecs.has(graphId);
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

  // Finished runs' events stay replayable (join-stream, Last-Event-ID) for 60 s, at most this many.
  const hub = new StreamHub({ maxFinishedRuns: Number(env.REFINERY_STREAM_RETAIN_RUNS ?? 500) });
  const metrics = createMetrics();
  const concurrency = options.concurrency ?? Number(env.REFINERY_WORKERS ?? 64);
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
    hub,
    checkpointer: saver,
    checkpoints,
    log,
    metrics,
    version: VERSION,
    keepAliveMs: options.keepAliveMs ?? Number(env.REFINERY_KEEPALIVE_MS ?? 15_000),
    bodyLimit: env.REFINERY_BODY_LIMIT ?? "1mb",
    validateConfig: (graphId, config) => {
      if (takesRefineInput(graphId)) engine.resolve(config as never);
      graphSpecs.checkConfig(graphId, config);
    },
    validateInput: (graphId, input) => {
      if (!takesRefineInput(graphId)) return;
      const parsed = RefineInputSchema.safeParse(input);
      if (!parsed.success) throw fromZodError(parsed.error, "input");
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

  const port = options.port ?? Number(env.PORT ?? 8123);
  const host = options.host ?? env.HOST ?? "127.0.0.1";
  const server = await new Promise<Server>((resolve, reject) => {
    // A burst of connections (1,000 clients at once) overflows the default backlog of 511, and
    // the kernel then resets some of them; 4096 is the usual somaxconn cap.
    const s = app.listen({ port, host, backlog: 4096 }, () => resolve(s));
    s.once("error", reject);
  });
  server.keepAliveTimeout = 65_000;
  await executor.start();
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
    model: engine.provider.offline ? "simulated (offline)" : settings.model,
    workers: concurrency,
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
      await storage.close();
      await learning.close();
      engine.close();
    },
  };
}
