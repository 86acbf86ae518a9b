// What the HTTP API answers, as zod schemas: the source of /openapi.json's `components.schemas`
// (server/routes/docs.ts) so generated clients get real types. They describe the public shapes
// (server/redact.ts) the routes send; test/server/openapi.test.ts validates real responses
// against them. Request bodies live in server/schemas.ts.
import { z } from "zod";

const Json = z.unknown();
const Meta = z.record(z.string(), z.unknown());
const Time = z.string().describe("ISO 8601 time");
const ErrorInfo = z.object({ error: z.string(), message: z.string() });

export const ErrorBody = z
  .object({
    detail: z
      .string()
      .describe(
        'The reason as the LangGraph server words it (e.g. "Assistant not found"): the key LangGraph clients read',
      ),
    error: z
      .string()
      .describe(
        "Error code: invalid_input, invalid_config, bad_request, unauthorized, forbidden, not_found, conflict, busy, thread_busy, payload_too_large, rate_limited, internal, …",
      ),
    message: z.string().describe("One line: the field, what was wrong and the fix"),
    field: z.string().optional().describe("Dotted path of the offending field"),
    fix: z.string().optional().describe("What to do about it"),
    retryable: z.boolean(),
  })
  .describe("Every error. A LangGraph auth module's own errors are plain text instead.");

export const Ok = z.object({ ok: z.literal(true) });

export const Health = z
  .object({
    ok: z.literal(true),
    database: z
      .object({ kind: z.enum(["sqlite", "postgres"]), ok: z.literal(true) })
      .optional()
      .describe("The backend holding the state; it answered a query"),
    redis: z
      .object({
        ok: z.boolean(),
        error: z.string().optional().describe("Why Redis did not answer (ok false)"),
      })
      .optional()
      .describe(
        "Redis (REFINERY_REDIS_URL only): down is degraded, not unhealthy: runs go on, found by polling",
      ),
  })
  .describe(
    "Liveness, with the database's and Redis's state (503 and an error when the database does not answer)",
  );

export const Info = z.object({
  version: z.string().describe("Refinery's version"),
  name: z.string(),
  langgraph_js_version: z.string().optional().describe("The @langchain/langgraph graphs run on"),
  context: z.literal("js"),
  graphs: z.array(z.string()),
  flags: z.record(z.string(), z.boolean()),
});

export const Assistant = z.object({
  assistant_id: z.string(),
  graph_id: z.string(),
  config: z
    .object({
      tags: z.array(z.string()).optional(),
      recursion_limit: z.number().int().optional(),
      configurable: Meta.optional(),
    })
    .loose(),
  context: Meta,
  metadata: Meta,
  name: z.string(),
  description: z.string().nullable(),
  version: z.number().int(),
  created_at: Time,
  updated_at: Time,
});

/** A search with `select` answers only the selected fields. */
export const AssistantSelected = Assistant.partial().describe(
  "An assistant with only the fields named in `select`",
);

export const AssistantGraph = z
  .object({
    nodes: z.array(z.object({ id: z.union([z.string(), z.number()]) }).loose()),
    edges: z.array(
      z
        .object({
          source: z.union([z.string(), z.number()]),
          target: z.union([z.string(), z.number()]),
        })
        .loose(),
    ),
  })
  .describe("The graph as LangChain's drawable JSON");

// Absent when the graph does not declare one (as the LangGraph server answers), null when Refinery
// has none for the graph.
const SchemaOrNull = z.record(z.string(), z.unknown()).nullable().optional();
export const AssistantSchemas = z.object({
  graph_id: z.string(),
  input_schema: SchemaOrNull,
  output_schema: SchemaOrNull,
  state_schema: SchemaOrNull,
  config_schema: SchemaOrNull,
  context_schema: SchemaOrNull,
});

export const Subgraphs = z
  .record(
    z.string(),
    z
      .object({
        state: z.unknown().optional(),
        input: z.unknown().optional(),
        output: z.unknown().optional(),
        config: z.unknown().optional(),
      })
      .loose(),
  )
  .describe("Namespace (`node` or `node|inner`) -> the subgraph's JSON schemas");

export const ThreadStatus = z.enum(["idle", "busy", "interrupted", "error"]);

export const Interrupt = z.object({ id: z.string().optional(), value: Json }).loose();

export const Thread = z.object({
  thread_id: z.string(),
  created_at: Time,
  updated_at: Time,
  metadata: Meta,
  status: ThreadStatus,
  values: Meta.optional().describe("Absent until the thread has run"),
  interrupts: z
    .record(z.string(), z.array(Interrupt))
    .optional()
    .describe("Task id -> its interrupts; absent until the thread has run"),
  config: Meta,
  error: ErrorInfo.optional().describe("Present when the thread's last run failed"),
});

export const ThreadSelected = Thread.partial().describe(
  "A thread with only the fields named in `select`",
);

export const Checkpoint = z.object({
  thread_id: z.string(),
  checkpoint_ns: z.string(),
  checkpoint_id: z.string(),
  checkpoint_map: Meta.nullable(),
});

const ThreadTask: z.ZodType = z.object({
  id: z.string(),
  name: z.string(),
  path: z.array(z.unknown()),
  error: z.string().nullable(),
  interrupts: z.array(Interrupt),
  checkpoint: Checkpoint.nullable(),
  get state() {
    return ThreadState.nullable();
  },
  result: Json,
});

export const ThreadState = z.object({
  values: z.union([Meta, z.array(z.unknown())]),
  next: z.array(z.string()),
  get tasks() {
    return z.array(ThreadTask);
  },
  metadata: Meta,
  created_at: Time.nullable(),
  checkpoint: Checkpoint.nullable(),
  parent_checkpoint: Checkpoint.nullable(),
});

export const ThreadStateUpdated = z.object({
  checkpoint: z
    .object({ thread_id: z.string(), checkpoint_ns: z.string(), checkpoint_id: z.string() })
    .loose()
    .nullable()
    .describe("The checkpoint the update wrote"),
});

export const RunStatus = z.enum([
  "pending",
  "running",
  "error",
  "success",
  "timeout",
  "interrupted",
]);

export const Run = z.object({
  run_id: z.string(),
  thread_id: z.string(),
  assistant_id: z.string(),
  created_at: Time,
  updated_at: Time,
  status: RunStatus,
  metadata: Meta,
  multitask_strategy: z.enum(["reject", "interrupt", "rollback", "enqueue"]),
  kwargs: z
    .object({
      input: Json,
      command: z.record(z.string(), z.unknown()).nullable().optional(),
      config: z.object({ configurable: Meta }).loose(),
      stream_mode: z.array(z.string()),
    })
    .loose(),
  attempt: z.number().int(),
  error: ErrorInfo.nullable(),
});

export const RunResult = z
  .union([Meta, z.null()])
  .describe(
    "The run's final state values; {__error__: {error, message}} when it failed or timed out",
  );

export const SseStream = z
  .string()
  .describe(
    "Server-sent events `event: <mode>[|namespace]`, `data: <JSON>`, `id: <attempt>-<n>`: first `metadata` ({run_id, attempt}), then one event per chunk of each stream mode, `error` ({error, message}) when the run fails; `: ping` comments while idle. Reconnect with Last-Event-ID to replay.",
  );

export const ProtocolResponse = z
  .union([
    z.object({
      type: z.literal("success"),
      id: z.number().int(),
      result: Json.describe("run.start: {run_id}; state.get: {values, checkpoint}; …"),
      meta: z.object({ thread_id: z.string(), applied_through_seq: z.number().int() }).optional(),
    }),
    z.object({
      type: z.literal("error"),
      id: z.number().int().nullable(),
      error: z.string().describe("unknown_command, invalid_argument, not_supported, …"),
      message: z.string(),
    }),
  ])
  .describe("A thread protocol command's response");

export const Approval = z.object({
  thread_id: z.string(),
  task_id: z.string(),
  interrupt_id: z.string().nullable(),
  task: z.string().nullable(),
  request: Json.describe("The approval request the graph interrupted with"),
  updated_at: Time,
  metadata: Meta,
});

const LiveFeedback = z.object({
  text: z.string(),
  source: z.enum(["human", "system"]),
  at: Time,
});
export const FeedbackQueued = z.object({
  thread_id: z.string(),
  feedback: LiveFeedback,
  pending: z.array(LiveFeedback).describe("Feedback not yet taken by a step, oldest first"),
});

export const Lesson = z.object({
  id: z.string(),
  assistant_id: z.string(),
  text: z.string(),
  graph_id: z.string(),
  family: z.string(),
  keywords: z.array(z.string()),
  source: z.enum(["critique", "verifier", "human", "feedback", "manual"]),
  evidence: z.array(
    z.object({
      thread_id: z.string().optional(),
      run_id: z.string().optional(),
      iteration: z.number().optional(),
    }),
  ),
  pinned: z.boolean(),
  uses: z.number().int(),
  helped: z.number().int(),
  failed: z.number().int(),
  demoted: z.boolean(),
  created_at: Time,
  updated_at: Time,
});

export const RetrievedLesson = z.object({
  id: z.string(),
  text: z.string(),
  score: z.number(),
  about: z.string(),
});

export const Empty = z.object({}).describe("An empty object");

export const DeletedIds = z.array(z.string()).describe("The ids deleted");

export const RunRating = z.object({
  feedback_id: z.string(),
  run_id: z.string(),
  thread_id: z.string(),
  key: z.string(),
  score: z.number().nullable(),
  value: Json,
  comment: z.string().nullable(),
  created_at: Time,
});

export const RunFeedback = z.object({
  run_id: z.string(),
  ratings: z.array(RunRating),
  human_decisions: z.array(Meta),
  verdicts: z.array(Meta),
  lessons_used: z.array(z.string()),
});

const EvalJobStatus = z.enum(["running", "succeeded", "failed", "interrupted", "cancelled"]);
export const EvalJob = z.object({
  eval_id: z.string(),
  status: EvalJobStatus,
  created_at: Time,
  updated_at: Time,
  owner: z.object({ partition: z.string(), identity: z.string().nullable() }),
  size: z.number().int().describe("Graph runs: items × strategies × replicates"),
  runs_in: z.string(),
  worker_thread_id: z.number().int().nullable(),
  attempts: z.number().int(),
  progress: z.object({
    total: z.number(),
    done: z.number(),
    skipped: z.number(),
    elapsed_ms: z.number(),
  }),
  records_total: z.number().int(),
  summary: Meta.optional().describe("Once finished: the evaluation's summary"),
  error: z
    .object({ error: z.string(), message: z.string(), field: z.string().optional() })
    .optional(),
});

export const EvalJobWithRecords = EvalJob.extend({
  records: z.array(Meta).describe("The page of item records asked for"),
});

export const GraphSpecInfo = z.object({
  graph_id: z.string(),
  version: z.number().int(),
  versions: z.array(z.number().int()),
  description: z.string().nullable(),
  source: z.enum(["api", "file"]),
  file: z.string().optional(),
  created_at: Time,
  nodes: z.record(z.string(), z.string()).describe("Node name -> kind"),
});

export const GraphSpecDetail = GraphSpecInfo.extend({ spec: Meta });

export const GraphSpecRegistered = GraphSpecDetail.extend({
  created: z.boolean().describe("false: the same spec was already the latest version"),
  assistant_id: z.string().describe("The graph's system assistant"),
});

export const StoreItem = z.object({
  namespace: z.array(z.string()),
  key: z.string(),
  value: Meta,
  created_at: Time,
  updated_at: Time,
  score: z.number().nullable().optional(),
});
export const StoreItemOrNull = StoreItem.nullable().describe(
  "The item, or null when there is none",
);
export const StoreSearchResult = z.object({ items: z.array(StoreItem) });
export const StoreNamespaces = z.object({ namespaces: z.array(z.array(z.string())) });

export const Cron = z
  .object({
    cron_id: z.string(),
    assistant_id: z.string(),
    thread_id: z.string().nullable().describe("null: a stateless cron (a new thread per firing)"),
    on_run_completed: z
      .enum(["delete", "keep"])
      .nullable()
      .describe("Stateless crons: the thread of each firing is deleted or kept once its run ends"),
    end_time: Time.nullable(),
    schedule: z.string().describe("5-field cron expression"),
    timezone: z.string().nullable().describe("IANA time zone; null: UTC"),
    created_at: Time,
    updated_at: Time,
    payload: Meta.describe("The run create body each firing sends"),
    user_id: z.string().nullable().describe("Who made it (null without auth)"),
    next_run_date: Time.nullable().describe("When it fires next; null: never again (end_time)"),
    metadata: Meta,
    enabled: z.boolean(),
  })
  .describe("A cron: a run made on a schedule");

export const CronSelected = Cron.partial().describe(
  "A cron with only the fields named in `select`",
);

export const PrunedCount = z.object({ pruned_count: z.number().int().min(0) });

/** Every named response schema, as /openapi.json's components.schemas. */
export const RESPONSE_SCHEMAS = {
  Error: ErrorBody,
  Ok,
  Health,
  Info,
  Assistant,
  AssistantSelected,
  AssistantGraph,
  AssistantSchemas,
  Subgraphs,
  Thread,
  ThreadSelected,
  ThreadState,
  ThreadStateUpdated,
  Checkpoint,
  Run,
  RunResult,
  SseStream,
  ProtocolResponse,
  Approval,
  FeedbackQueued,
  Lesson,
  RetrievedLesson,
  Empty,
  DeletedIds,
  RunRating,
  RunFeedback,
  EvalJob,
  EvalJobWithRecords,
  GraphSpecInfo,
  GraphSpecDetail,
  GraphSpecRegistered,
  StoreItem,
  StoreItemOrNull,
  StoreSearchResult,
  StoreNamespaces,
  PrunedCount,
  Cron,
  CronSelected,
} as const;

export type ResponseSchemaName = keyof typeof RESPONSE_SCHEMAS;
