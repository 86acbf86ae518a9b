// Every request body and query the HTTP API accepts, as zod schemas in one place. They
// validate requests and generate /openapi.json. Bodies of the LangGraph protocol (assistants,
// threads, state, history, runs, commands) drop fields they do not know (`.strip()`), as the
// LangGraph server does: a client written against it must not be refused here (issue 22,
// npm run diff:langgraph). Refinery's own bodies (lessons, ratings, feedback) are strict: a
// misspelt field is a 422 that names it. Fields the official SDK sends that this server does
// not act on are accepted and documented as ignored.
import { z } from "zod";
import { EXPORT_FORMATS, ISO_DATE_HINT, isoDateFilter } from "../core/learning/export.ts";
import { outbound } from "../core/net/outbound.ts";
import { OUTCOME_VERDICTS } from "../core/storage/sqlite/learning-records.ts";
import {
  ASSISTANT_SORT_FIELDS,
  CRON_SORT_FIELDS,
  THREAD_SORT_FIELDS,
} from "../core/storage/common.ts";

export const Uuid = z.uuid({ error: "must be a UUID" });
const Meta = z.record(z.string(), z.unknown());

/** Fields a search filter may name, counted through nested objects: SQLite's expression depth. */
export const MAX_FILTER_FIELDS = 100;
const countFields = (value: unknown): number =>
  value && typeof value === "object" && !Array.isArray(value)
    ? Object.values(value).reduce<number>((n, v) => n + 1 + countFields(v), 0)
    : 0;
/** A metadata or values filter: at most MAX_FILTER_FIELDS fields. */
const Filter = Meta.refine((f) => countFields(f) <= MAX_FILTER_FIELDS, {
  message: `a filter may name at most ${MAX_FILTER_FIELDS} fields; narrow it`,
});
/** Assistant names searched by substring (SQLite caps LIKE patterns at 50,000 bytes). */
const NameSearch = z.string().max(1000, "name must be at most 1000 characters");
const FEEDBACK_KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const NodeList = z.union([z.literal("*"), z.array(z.string().min(1))]);

/** A webhook to a literal IP or localhost that the outbound policy denies (core/net/policy.ts). */
function refuseDeniedTarget(url: string, ctx: z.RefinementCtx): void {
  const refused = outbound.precheck(url);
  if (refused) ctx.addIssue({ code: "custom", message: `${refused.message}. Fix: ${refused.fix}` });
}

export const STREAM_MODES = [
  "values",
  "updates",
  "messages",
  "messages-tuple",
  "custom",
  "debug",
  "tasks",
  "checkpoints",
  "events",
] as const;
export const StreamMode = z.enum(STREAM_MODES, {
  error: () => `expected one of ${STREAM_MODES.join(", ")}`,
});

export const RunnableConfigSchema = z
  .object({
    tags: z.array(z.string()).optional(),
    recursion_limit: z.number().int().min(1).max(10_000).optional(),
    configurable: Meta.optional(),
    metadata: Meta.optional(),
  })
  .loose();

export const CheckpointSchema = z
  .object({
    thread_id: z.string().optional(),
    checkpoint_ns: z.string().optional(),
    checkpoint_id: z.string().optional(),
    checkpoint_map: Meta.nullish(),
  })
  .loose();

export const CommandSchema = z
  .object({
    resume: z.unknown().optional(),
    update: z.unknown().optional(),
    goto: z.unknown().optional(),
    lg_name: z
      .literal("Command")
      .optional()
      .describe("Sent by Command.toJSON() (RemoteGraph); accepted and dropped."),
  })
  .strip();

export const RunCreate = z
  .object({
    assistant_id: z.string().min(1, "assistant_id is required: a graph id or an assistant UUID"),
    input: z.unknown().optional(),
    command: CommandSchema.nullish(),
    config: RunnableConfigSchema.nullish(),
    context: z.unknown().optional(),
    metadata: Meta.nullish(),
    checkpoint_id: z.string().nullish(),
    checkpoint: CheckpointSchema.nullish(),
    stream_mode: z
      .union([StreamMode, z.array(StreamMode)], {
        // The union's own message ("Invalid input") hides which mode was wrong: surface the
        // innermost one, e.g. the bad element of a list.
        error: (issue) => {
          const nested = (issue as { errors?: { path: PropertyKey[]; message: string }[][] }).errors
            ?.flat()
            .sort((a, b) => b.path.length - a.path.length)[0];
          return nested?.message ?? `expected one of ${STREAM_MODES.join(", ")}, or a list of them`;
        },
      })
      .nullish(),
    stream_subgraphs: z.boolean().nullish(),
    stream_resumable: z
      .boolean()
      .nullish()
      .describe(
        "Every stream is resumable here (Last-Event-ID); true also sends a Location to reconnect to.",
      ),
    interrupt_before: NodeList.nullish(),
    interrupt_after: NodeList.nullish(),
    multitask_strategy: z.enum(["reject", "interrupt", "rollback", "enqueue"]).nullish(),
    on_disconnect: z.enum(["cancel", "continue"]).nullish(),
    on_completion: z.enum(["delete", "keep"]).nullish(),
    if_not_exists: z.enum(["reject", "create"]).nullish(),
    webhook: z
      .url({ protocol: /^https?$/, error: "webhook must be an http(s) URL" })
      .superRefine(refuseDeniedTarget)
      .nullish(),
    after_seconds: z
      .number()
      .min(0)
      .max(7 * 24 * 3600)
      .nullish(),
    feedback_keys: z
      .union([
        z
          .string()
          .regex(FEEDBACK_KEY_PATTERN, "feedback_keys must be 1-64 letters, digits or _ . : -"),
        z
          .array(
            z
              .string()
              .regex(FEEDBACK_KEY_PATTERN, "feedback_keys must be 1-64 letters, digits or _ . : -"),
          )
          .max(32),
      ])
      .nullish()
      .describe(
        "Rating keys POST /threads/{thread_id}/runs/{run_id}/feedback will accept for this run",
      ),
    strict_resume: z.boolean().nullish().describe("Accepted, ignored."),
    checkpoint_during: z.boolean().nullish().describe("Accepted; every step is checkpointed."),
    durability: z
      .enum(["sync", "async", "exit"])
      .nullish()
      .describe("Accepted; steps are always checkpointed synchronously."),
    langsmith_tracer: z.unknown().optional().describe("Accepted, ignored."),
  })
  .strip();
export type RunCreateBody = z.infer<typeof RunCreate>;

export const AssistantCreate = z
  .object({
    graph_id: z.string().min(1),
    assistant_id: Uuid.optional(),
    config: RunnableConfigSchema.nullish(),
    context: Meta.nullish(),
    metadata: Meta.nullish(),
    if_exists: z.enum(["raise", "do_nothing"]).nullish(),
    name: z.string().min(1).max(200).nullish(),
    description: z.string().max(2000).nullish(),
  })
  .strip();

export const AssistantPatch = z
  .object({
    graph_id: z.string().min(1).nullish(),
    config: RunnableConfigSchema.nullish(),
    context: Meta.nullish(),
    metadata: Meta.nullish(),
    name: z.string().min(1).max(200).nullish(),
    description: z.string().max(2000).nullish(),
  })
  .strip();

const Page = {
  limit: z.number().int().min(1).max(1000).nullish(),
  offset: z.number().int().min(0).nullish(),
  sort_order: z.enum(["asc", "desc"]).nullish(),
};

export const AssistantSearch = z
  .object({
    graph_id: z.string().nullish(),
    name: NameSearch.nullish(),
    metadata: Filter.nullish(),
    sort_by: z.enum(ASSISTANT_SORT_FIELDS).nullish(),
    select: z.array(z.string()).nullish(),
    ...Page,
  })
  .strip();

export const AssistantCount = z
  .object({
    graph_id: z.string().nullish(),
    name: NameSearch.nullish(),
    metadata: Filter.nullish(),
  })
  .strip();

export const AssistantVersionsSearch = z
  .object({ metadata: Filter.nullish(), limit: Page.limit, offset: Page.offset })
  .strip();
export const AssistantSetLatest = z.object({ version: z.number().int().min(1) }).strip();

export const ThreadStatus = z.enum(["idle", "busy", "interrupted", "error"]);

/** Bounds of a thread create's `supersteps` (each one is a checkpoint write). */
export const MAX_SUPERSTEPS = 100;
export const MAX_SUPERSTEP_UPDATES = 100;
/** The longest thread TTL: ten years, in minutes. */
export const MAX_THREAD_TTL_MINUTES = 5_256_000;

/**
 * A thread's time to live, as the SDK sends it (`{ttl, strategy: "delete"}`; a bare number is
 * read as minutes too): the thread, its runs and checkpoints are deleted that many minutes
 * after its last update.
 */
export const ThreadTtl = z.preprocess(
  (v) => (typeof v === "number" ? { ttl: v } : v),
  z
    .object(
      {
        strategy: z
          .literal("delete", { error: 'ttl.strategy must be "delete" (the only strategy)' })
          .optional(),
        ttl: z
          .number({
            error: "ttl.ttl is required: the minutes the thread lives after its last update",
          })
          .positive("ttl.ttl must be a positive number of minutes")
          .max(MAX_THREAD_TTL_MINUTES, `ttl.ttl must be at most ${MAX_THREAD_TTL_MINUTES} minutes`),
      },
      { error: 'ttl must be {"ttl": <minutes>, "strategy": "delete"} or a number of minutes' },
    )
    .strict(),
);

export const ThreadCreate = z
  .object({
    thread_id: Uuid.nullish(),
    metadata: Meta.nullish(),
    if_exists: z.enum(["raise", "do_nothing"]).nullish(),
    graph_id: z.string().nullish(),
    supersteps: z
      .array(
        z
          .object({
            updates: z
              .array(
                z
                  .object({
                    values: z.unknown().optional(),
                    command: CommandSchema.nullish(),
                    as_node: z
                      .string()
                      .min(1, "as_node is required: the node the update is made as"),
                  })
                  .strip(),
              )
              .min(1, "a superstep needs at least one update")
              .max(
                MAX_SUPERSTEP_UPDATES,
                `a superstep may hold at most ${MAX_SUPERSTEP_UPDATES} updates`,
              ),
          })
          .strip(),
      )
      .max(MAX_SUPERSTEPS, `at most ${MAX_SUPERSTEPS} supersteps per request`)
      .nullish()
      .describe(
        "State updates applied in order, each superstep's updates together, as the thread's first checkpoints (needs graph_id)",
      ),
    ttl: ThreadTtl.nullish(),
  })
  .strip();

export const ThreadPatch = z.object({ metadata: Meta.nullish(), ttl: ThreadTtl.nullish() }).strip();

export const ThreadSearch = z
  .object({
    ids: z.array(Uuid).max(1000).nullish(),
    metadata: Filter.nullish(),
    values: Filter.nullish(),
    status: ThreadStatus.nullish(),
    sort_by: z.enum(THREAD_SORT_FIELDS).nullish(),
    select: z.array(z.string()).nullish(),
    ...Page,
  })
  .strip();

export const ThreadCount = z
  .object({ metadata: Filter.nullish(), values: Filter.nullish(), status: ThreadStatus.nullish() })
  .strip();

export const ThreadStateUpdate = z
  .object({
    values: z.unknown().optional(),
    as_node: z.string().min(1).nullish(),
    checkpoint_id: z.string().nullish(),
    checkpoint: CheckpointSchema.nullish(),
  })
  .strip();

export const ThreadStateCheckpoint = z
  .object({
    checkpoint: CheckpointSchema.nullish().describe("Absent: the latest state"),
    subgraphs: z.boolean().nullish(),
  })
  .strip();

export const ThreadHistory = z
  .object({
    limit: z.number().int().min(1).max(1000).nullish(),
    before: z.union([z.string(), z.object({ configurable: CheckpointSchema }).loose()]).nullish(),
    metadata: Filter.nullish(),
    checkpoint: CheckpointSchema.nullish(),
  })
  .strip();

export const RunListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  offset: z.coerce.number().int().min(0).optional(),
  status: z.enum(["pending", "running", "error", "success", "timeout", "interrupted"]).optional(),
});

/** A yes/no query parameter: true, false, 1 or 0; absent is false. */
const QueryFlag = z
  .enum(["true", "false", "1", "0"])
  .optional()
  .transform((v) => v === "true" || v === "1");

/** GET .../runs/{run_id}/stream, as the SDK's joinStream (and useStream) sends it. */
export const JoinStreamQuery = z.object({
  cancel_on_disconnect: QueryFlag,
  stream_mode: z
    .union([StreamMode, z.array(StreamMode)])
    .optional()
    .describe("Only these modes' events (metadata and error always); all when absent."),
  namespace: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .describe("Accepted, ignored."),
  checkpoint_id: z.string().optional().describe("Accepted, ignored (useStream sends it)."),
});

export const THREAD_STREAM_MODES = ["run_modes", "lifecycle", "state_update"] as const;
const ThreadStreamMode = z.enum(THREAD_STREAM_MODES, {
  error: `stream_mode must be one of ${THREAD_STREAM_MODES.join(", ")}`,
});

export const ThreadStreamQuery = z.object({
  stream_mode: z
    .union([ThreadStreamMode, z.array(ThreadStreamMode).max(3)])
    .optional()
    .describe(
      "run_modes (default): every event of the thread's runs, and run_done after each; lifecycle: each run's metadata (start) and run_done (end); state_update: the runs' values events",
    ),
});

export const CancelQuery = z.object({
  wait: QueryFlag,
  action: z.enum(["interrupt", "rollback"]).optional().default("interrupt"),
});

export const FeedbackBody = z
  .object({
    text: z
      .string({ error: "text is required: the feedback to apply" })
      .trim()
      .min(1, "text must not be empty")
      .max(10_000),
  })
  .strict();

// ---- Learning loop: lessons, run ratings, training-data export --------------------------------

const LessonText = z
  .string({ error: "text is required: the lesson, one reusable sentence or two" })
  .trim()
  .min(1, "text must not be empty")
  .max(500, "text must be at most 500 characters: keep a lesson to one reusable sentence or two");
const Keywords = z.array(z.string().trim().min(1).max(64)).max(24);
const Family = z.string().trim().min(1).max(120);

export const LessonCreate = z
  .object({
    text: LessonText,
    keywords: Keywords.optional(),
    family: Family.optional(),
    pinned: z.boolean().optional(),
  })
  .strict();

export const LessonPatch = z
  .object({
    text: LessonText.optional(),
    keywords: Keywords.optional(),
    family: Family.optional(),
    pinned: z.boolean().optional(),
    demoted: z.boolean().optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).length > 0, {
    message: "nothing to change: give text, keywords, family, pinned or demoted",
  });

export const LessonListQuery = z.object({
  query: z.string().max(2000).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  offset: z.coerce.number().int().min(0).optional(),
});

export const LessonSearch = z
  .object({
    task: z
      .string({ error: "task is required: the task to find lessons for" })
      .trim()
      .min(1, "task must not be empty")
      .max(100_000),
    limit: z.number().int().min(1).max(50).optional(),
  })
  .strict();

export const FEEDBACK_KEY = FEEDBACK_KEY_PATTERN;

export const RunRatingCreate = z
  .object({
    key: z
      .string()
      .regex(FEEDBACK_KEY, "key must be 1-64 letters, digits or _ . : -")
      .optional()
      .default("user_score"),
    score: z
      .number({ error: "score must be a number from 0 (bad) to 1 (good)" })
      .min(0, "score must be between 0 (bad) and 1 (good)")
      .max(1, "score must be between 0 (bad) and 1 (good)")
      .optional(),
    value: z
      .union([z.string().max(2000), z.number(), z.boolean()])
      .optional()
      .describe("A categorical or free value, e.g. a label"),
    comment: z.string().max(4000, "comment must be at most 4000 characters").optional(),
  })
  .strict()
  .refine((r) => r.score !== undefined || r.value !== undefined || r.comment !== undefined, {
    message: "give at least one of score, value or comment",
  });

const IsoDate = (field: string) =>
  z
    .string()
    .refine((s) => isoDateFilter(s) !== undefined, {
      message: `${field} must be ${ISO_DATE_HINT}`,
    })
    .transform((s) => isoDateFilter(s)!);

export const ExportQuery = z
  .object({
    format: z.enum(EXPORT_FORMATS, {
      error:
        "format must be sft (task -> answer), dpo (preference pairs) or pasr (refinement traces)",
    }),
    graph_id: z.string().min(1).max(200).optional(),
    assistant_id: z.string().min(1).max(200).optional(),
    since: IsoDate("since").optional(),
    until: IsoDate("until").optional(),
    verdict: z
      .enum(OUTCOME_VERDICTS, { error: "verdict must be verified, failed or any" })
      .optional(),
    human_approved_only: z
      .enum(["true", "false", "1", "0"], { error: "human_approved_only must be true or false" })
      .optional()
      .transform((v) => v === "true" || v === "1"),
  })
  .refine((q) => !q.since || !q.until || q.since < q.until, {
    message: "since must be before until",
    path: ["since"],
  });

// ---- Crons (scheduled runs): LangGraph's /runs/crons ------------------------------------------

/** The run fields a cron's payload may carry: a run create's, minus what names one moment. */
const CronRunFields = RunCreate.omit({
  command: true,
  checkpoint_id: true,
  checkpoint: true,
  on_disconnect: true,
  on_completion: true,
  if_not_exists: true,
  after_seconds: true,
  strict_resume: true,
});

const CronSchedule = z
  .string({
    error:
      'schedule is required: a 5-field cron expression such as "*/15 * * * *" (every 15 minutes)',
  })
  .describe(
    "5 fields (minute hour day-of-month month day-of-week) or @hourly/@daily/@weekly/@monthly/@yearly, read in `timezone` (UTC when absent)",
  );
const CronTimezone = z
  .string()
  .max(100)
  .describe('IANA time zone the schedule is read in, e.g. "Europe/Paris"; absent: UTC');
const CronEndTime = z.string().max(100).describe("ISO time after which the cron fires no more");
const OnRunCompleted = z
  .enum(["delete", "keep"])
  .describe(
    "Stateless crons: delete (default) or keep the new thread of each firing once its run ends",
  );

export const CronCreate = CronRunFields.extend({
  schedule: CronSchedule,
  timezone: CronTimezone.nullish(),
  end_time: CronEndTime.nullish(),
  enabled: z.boolean().nullish().describe("false: stored but not fired (default true)"),
  on_run_completed: OnRunCompleted.nullish(),
}).strip();
export type CronCreateBody = z.infer<typeof CronCreate>;

/** The payload fields a PATCH may change (LangGraph's CronUpdate). */
export const CRON_PAYLOAD_PATCH_FIELDS = [
  "input",
  "metadata",
  "config",
  "context",
  "webhook",
  "interrupt_before",
  "interrupt_after",
  "stream_mode",
  "stream_subgraphs",
  "stream_resumable",
  "durability",
] as const;

export const CronPatch = CronRunFields.pick({
  input: true,
  metadata: true,
  config: true,
  context: true,
  webhook: true,
  interrupt_before: true,
  interrupt_after: true,
  stream_mode: true,
  stream_subgraphs: true,
  stream_resumable: true,
  durability: true,
})
  .extend({
    schedule: CronSchedule.nullish(),
    timezone: CronTimezone.nullish(),
    end_time: CronEndTime.nullable()
      .optional()
      .describe("ISO time after which the cron fires no more; null clears it"),
    enabled: z.boolean().nullish(),
    on_run_completed: OnRunCompleted.nullish(),
  })
  .strip();

export const CronSearch = z
  .object({
    assistant_id: z.string().max(200).nullish().describe("An assistant id or a graph id"),
    thread_id: Uuid.nullish(),
    enabled: z.boolean().nullish(),
    metadata: Filter.nullish(),
    sort_by: z.enum(CRON_SORT_FIELDS).nullish(),
    select: z.array(z.string()).nullish(),
    ...Page,
  })
  .strip();

export const CronCount = z
  .object({
    assistant_id: z.string().max(200).nullish(),
    thread_id: Uuid.nullish(),
    metadata: Filter.nullish(),
  })
  .strip();

/** POST /ui/{graph_id}: the component the SDK's LoadExternalComponent asks for. */
export const UiComponentRequest = z
  .object({
    name: z
      .string({ error: "name is required: the component's name in the UI module's default export" })
      .min(1, "name must not be empty")
      .max(200, "name is at most 200 characters"),
  })
  .strip();
