// Every request body and query the HTTP API accepts, as zod schemas in one place. They
// validate requests and generate /openapi.json. Bodies are strict: a misspelt field is a 422
// that names it, not a silently ignored option. Fields the official SDK sends that this
// server does not act on are accepted and documented as ignored.
import { z } from "zod";

export const Uuid = z.uuid({ error: "must be a UUID" });
const Meta = z.record(z.string(), z.unknown());
const NodeList = z.union([z.literal("*"), z.array(z.string().min(1))]);

export const STREAM_MODES = [
  "values",
  "updates",
  "messages-tuple",
  "custom",
  "debug",
  "tasks",
  "checkpoints",
] as const;
export const StreamMode = z.enum(STREAM_MODES, {
  error: (issue) =>
    issue.input === "messages" || issue.input === "events"
      ? `stream mode "${String(issue.input)}" is not supported by this server; use one of ${STREAM_MODES.join(", ")} ("messages-tuple" streams LLM tokens)`
      : `expected one of ${STREAM_MODES.join(", ")}`,
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
  })
  .strict();

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
      .describe("Accepted; every stream is resumable here (Last-Event-ID)."),
    interrupt_before: NodeList.nullish(),
    interrupt_after: NodeList.nullish(),
    multitask_strategy: z.enum(["reject", "interrupt", "rollback", "enqueue"]).nullish(),
    on_disconnect: z.enum(["cancel", "continue"]).nullish(),
    on_completion: z.enum(["delete", "keep"]).nullish(),
    if_not_exists: z.enum(["reject", "create"]).nullish(),
    webhook: z.url({ protocol: /^https?$/, error: "webhook must be an http(s) URL" }).nullish(),
    after_seconds: z
      .number()
      .min(0)
      .max(7 * 24 * 3600)
      .nullish(),
    feedback_keys: z
      .union([z.string(), z.array(z.string())])
      .nullish()
      .describe("Accepted, ignored."),
    strict_resume: z.boolean().nullish().describe("Accepted, ignored."),
    checkpoint_during: z.boolean().nullish().describe("Accepted; every step is checkpointed."),
    durability: z
      .enum(["sync", "async", "exit"])
      .nullish()
      .describe("Accepted; steps are always checkpointed synchronously."),
    langsmith_tracer: z.unknown().optional().describe("Accepted, ignored."),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.input !== undefined && body.input !== null && body.command) {
      ctx.addIssue({
        code: "custom",
        path: ["command"],
        message: "send either input or command, not both",
      });
    }
  });
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
  .strict();

export const AssistantPatch = z
  .object({
    graph_id: z.string().min(1).nullish(),
    config: RunnableConfigSchema.nullish(),
    context: Meta.nullish(),
    metadata: Meta.nullish(),
    name: z.string().min(1).max(200).nullish(),
    description: z.string().max(2000).nullish(),
  })
  .strict();

const Page = {
  limit: z.number().int().min(1).max(1000).nullish(),
  offset: z.number().int().min(0).nullish(),
  sort_order: z.enum(["asc", "desc"]).nullish(),
};

export const AssistantSearch = z
  .object({
    graph_id: z.string().nullish(),
    name: z.string().nullish(),
    metadata: Meta.nullish(),
    sort_by: z.enum(["assistant_id", "graph_id", "name", "created_at", "updated_at"]).nullish(),
    select: z.array(z.string()).nullish(),
    ...Page,
  })
  .strict();

export const AssistantCount = z
  .object({ graph_id: z.string().nullish(), name: z.string().nullish(), metadata: Meta.nullish() })
  .strict();

export const AssistantVersionsSearch = z
  .object({ metadata: Meta.nullish(), limit: Page.limit, offset: Page.offset })
  .strict();
export const AssistantSetLatest = z.object({ version: z.number().int().min(1) }).strict();

export const ThreadStatus = z.enum(["idle", "busy", "interrupted", "error"]);

export const ThreadCreate = z
  .object({
    thread_id: Uuid.nullish(),
    metadata: Meta.nullish(),
    if_exists: z.enum(["raise", "do_nothing"]).nullish(),
    graph_id: z.string().nullish(),
    supersteps: z.unknown().optional(),
    ttl: z.unknown().optional().describe("Accepted, ignored."),
  })
  .strict();

export const ThreadPatch = z
  .object({ metadata: Meta.nullish(), ttl: z.unknown().optional() })
  .strict();

export const ThreadSearch = z
  .object({
    ids: z.array(Uuid).nullish(),
    metadata: Meta.nullish(),
    values: Meta.nullish(),
    status: ThreadStatus.nullish(),
    sort_by: z.enum(["thread_id", "status", "created_at", "updated_at"]).nullish(),
    select: z.array(z.string()).nullish(),
    ...Page,
  })
  .strict();

export const ThreadCount = z
  .object({ metadata: Meta.nullish(), values: Meta.nullish(), status: ThreadStatus.nullish() })
  .strict();

export const ThreadStateUpdate = z
  .object({
    values: z.unknown().optional(),
    as_node: z.string().min(1).nullish(),
    checkpoint_id: z.string().nullish(),
    checkpoint: CheckpointSchema.nullish(),
  })
  .strict();

export const ThreadStateCheckpoint = z
  .object({ checkpoint: CheckpointSchema, subgraphs: z.boolean().nullish() })
  .strict();

export const ThreadHistory = z
  .object({
    limit: z.number().int().min(1).max(1000).nullish(),
    before: z.union([z.string(), z.object({ configurable: CheckpointSchema }).loose()]).nullish(),
    metadata: Meta.nullish(),
    checkpoint: CheckpointSchema.nullish(),
  })
  .strict();

export const RunListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  offset: z.coerce.number().int().min(0).optional(),
  status: z.enum(["pending", "running", "error", "success", "timeout", "interrupted"]).optional(),
});

export const CancelQuery = z.object({
  wait: z
    .enum(["true", "false", "1", "0"])
    .optional()
    .transform((v) => v === "true" || v === "1"),
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
