// GET /openapi.json (generated from the same zod schemas that validate requests) and a
// human-readable API page at /docs.
import { Router } from "express";
import { z } from "zod";
import { sendJson } from "../http.ts";
import * as S from "../schemas.ts";
import * as Store from "../store-schemas.ts";
import { ApprovalDecisionSchema } from "../../core/approval.ts";
import { GraphSpecSchema } from "../../graphs/declarative/spec.ts";
import { EvalCreate } from "./eval.ts";
import { RunBatchBody, RunsCancelBody, ThreadPruneBody, TruncateBody } from "./bulk.ts";
import { RESPONSE_SCHEMAS, type ResponseSchemaName } from "../response-schemas.ts";
import { EventsFilterBody, ProtocolCommand } from "../protocol/service.ts";
import type { SecuritySettings } from "../context.ts";

/** One success response: a named schema (or a list of it), another media type, or no body. */
interface Out {
  description: string;
  json?: ResponseSchemaName;
  list?: ResponseSchemaName;
  /** With `list`: each item may also be this full schema (search with `select`). */
  or?: ResponseSchemaName;
  count?: true;
  media?: string | string[];
  sse?: true;
}

interface Op {
  method: "get" | "post" | "put" | "patch" | "delete";
  path: string;
  summary: string;
  body?: z.ZodType;
  tag: string;
  /** Success statuses and their bodies. */
  ok: Record<number, Out>;
  /** Error statuses of this operation beyond those every operation of its kind gets. */
  errors?: Record<number, string>;
  /** Served without credentials (no 401, no rate limit). */
  public?: true;
  /** Creates a run: 429 when a per-tenant run cap is set. */
  runs?: true;
  /** The body may also be YAML. */
  yaml?: true;
  /** Served only by a dev server (REFINERY_DEV=1). */
  dev?: true;
}

const json = (name: ResponseSchemaName, description = "OK"): Out => ({ description, json: name });
const list = (name: ResponseSchemaName, description = "OK", or?: ResponseSchemaName): Out => ({
  description,
  list: name,
  ...(or ? { or } : {}),
});
const count = (description: string): Out => ({ description, count: true });
const media = (type: string | string[], description: string): Out => ({
  description,
  media: type,
});
const none = (description: string): Out => ({ description });
const sse: Out = { description: "The run's events as they happen", sse: true };

const RUN_ERRORS = {
  404: "The thread (unless if_not_exists is create), the assistant or the checkpoint does not exist",
  409: "command.resume on a thread that is not interrupted",
  422: "Invalid body, config or input for the graph; or the thread is busy and multitask_strategy is reject (error thread_busy)",
};
const STATELESS_RUN_ERRORS = {
  404: "The assistant does not exist",
  409: "command.resume: a new thread has nothing to resume",
  422: RUN_ERRORS[422],
};
const GRAPH_WRITE_ERRORS = {
  409: "The id belongs to a graph that is not declarative, or to one defined by a file",
  422: "The spec is invalid; field names the offending path",
};

const OPS: Op[] = [
  {
    method: "get",
    path: "/ok",
    summary: "Liveness and the database's and Redis's state",
    ok: {
      200: json("Health", "Alive; the database answers (Redis down: redis.ok false, still 200)"),
    },
    errors: { 503: "The database does not answer (error storage_error, retryable)" },
    public: true,
    tag: "meta",
  },
  {
    method: "get",
    path: "/info",
    summary: "Server information",
    ok: { 200: json("Info", "Version, graphs and feature flags") },
    public: true,
    tag: "meta",
  },
  {
    method: "get",
    path: "/metrics",
    summary: "Prometheus metrics",
    ok: { 200: media("text/plain", "Prometheus text format (admins only when auth is on)") },
    tag: "meta",
  },
  {
    method: "post",
    path: "/assistants",
    summary: "Create an assistant (a graph + a saved config)",
    body: S.AssistantCreate,
    ok: {
      200: json("Assistant", "The new assistant (or the existing one with if_exists do_nothing)"),
    },
    errors: { 409: "An assistant with this assistant_id exists" },
    tag: "assistants",
  },
  {
    method: "post",
    path: "/assistants/search",
    summary: "Search assistants",
    body: S.AssistantSearch,
    ok: {
      200: list(
        "AssistantSelected",
        "Matching assistants; with select, only the selected fields",
        "Assistant",
      ),
    },
    tag: "assistants",
  },
  {
    method: "post",
    path: "/assistants/count",
    summary: "Count assistants",
    body: S.AssistantCount,
    ok: { 200: count("How many assistants match") },
    tag: "assistants",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}",
    summary: "Get an assistant (id or graph id)",
    ok: { 200: json("Assistant") },
    tag: "assistants",
  },
  {
    method: "patch",
    path: "/assistants/{assistant_id}",
    summary: "Update an assistant (new version)",
    body: S.AssistantPatch,
    ok: { 200: json("Assistant", "The new version") },
    errors: { 409: "A system assistant cannot be changed" },
    tag: "assistants",
  },
  {
    method: "delete",
    path: "/assistants/{assistant_id}",
    summary: "Delete an assistant (?delete_threads=true: and its threads)",
    ok: { 200: json("DeletedIds", "Deleted: the assistant's id") },
    errors: { 409: "A system assistant cannot be deleted" },
    tag: "assistants",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}/graph",
    summary: "The assistant's graph (nodes and edges)",
    ok: { 200: json("AssistantGraph") },
    tag: "assistants",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}/schemas",
    summary: "Input and config schemas",
    ok: { 200: json("AssistantSchemas") },
    tag: "assistants",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}/subgraphs",
    summary:
      "The graph's subgraphs by namespace, with their schemas (?recurse=true: nested ones too)",
    ok: { 200: json("Subgraphs") },
    errors: { 422: "recurse is not a boolean" },
    tag: "assistants",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}/subgraphs/{namespace}",
    summary:
      "The subgraph at a namespace (`node`, or `node|inner` with ?recurse=true), with its schemas",
    ok: { 200: json("Subgraphs") },
    errors: { 422: "recurse is not a boolean" },
    tag: "assistants",
  },
  {
    method: "post",
    path: "/assistants/{assistant_id}/versions",
    summary: "List versions",
    body: S.AssistantVersionsSearch,
    ok: { 200: list("Assistant", "Versions, newest first") },
    tag: "assistants",
  },
  {
    method: "post",
    path: "/assistants/{assistant_id}/latest",
    summary: "Make a version the latest",
    body: S.AssistantSetLatest,
    ok: { 200: json("Assistant", "The version now latest") },
    errors: { 409: "A system assistant cannot be changed" },
    tag: "assistants",
  },
  {
    method: "post",
    path: "/threads",
    summary: "Create a thread",
    body: S.ThreadCreate,
    ok: { 200: json("Thread", "The new thread (or the existing one with if_exists do_nothing)") },
    errors: { 409: "A thread with this thread_id exists" },
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/search",
    summary: "Search threads",
    body: S.ThreadSearch,
    ok: {
      200: list(
        "ThreadSelected",
        "Matching threads; with select, only the selected fields",
        "Thread",
      ),
    },
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/count",
    summary: "Count threads",
    body: S.ThreadCount,
    ok: { 200: count("How many threads match") },
    tag: "threads",
  },
  {
    method: "get",
    path: "/threads/{thread_id}",
    summary: "Get a thread",
    ok: { 200: json("Thread") },
    tag: "threads",
  },
  {
    method: "patch",
    path: "/threads/{thread_id}",
    summary:
      "Update a thread's metadata and TTL (ttl: {ttl: minutes, strategy: delete}; null removes it)",
    body: S.ThreadPatch,
    ok: { 200: json("Thread") },
    tag: "threads",
  },
  {
    method: "delete",
    path: "/threads/{thread_id}",
    summary: "Delete a thread, its runs and checkpoints",
    ok: { 204: none("Deleted, with its runs and checkpoints") },
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/prune",
    summary:
      "Prune threads: strategy delete (default) deletes them, keep_latest keeps each one's latest checkpoint only (a thread with a run in flight is skipped); threads you cannot reach are not counted",
    body: ThreadPruneBody,
    ok: { 200: json("PrunedCount", "How many threads were pruned") },
    errors: { 422: "thread_ids is not a list of UUIDs (at most 1000), or strategy is invalid" },
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/copy",
    summary: "Copy a thread with its history",
    ok: { 200: json("Thread", "The copy") },
    tag: "threads",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/state",
    summary: "Current state",
    ok: { 200: json("ThreadState") },
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/state",
    summary: "Update state (409 while busy)",
    body: S.ThreadStateUpdate,
    ok: { 200: json("ThreadStateUpdated") },
    errors: { 409: "The thread has a run in flight" },
    tag: "threads",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/state/{checkpoint_id}",
    summary: "State at a checkpoint",
    ok: { 200: json("ThreadState") },
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/state/checkpoint",
    summary: "State at a checkpoint",
    body: S.ThreadStateCheckpoint,
    ok: { 200: json("ThreadState") },
    tag: "threads",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/history",
    summary: "State history",
    ok: { 200: list("ThreadState", "States, newest first") },
    errors: { 422: "limit is not an integer from 1 to 1000" },
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/history",
    summary: "State history (filters)",
    body: S.ThreadHistory,
    ok: { 200: list("ThreadState", "States, newest first") },
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/runs",
    summary: "Create a background run",
    body: S.RunCreate,
    ok: { 200: json("Run", "The run, pending (Content-Location: the run)") },
    errors: RUN_ERRORS,
    runs: true,
    tag: "runs",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/runs/stream",
    summary: "Create a run and stream it (SSE)",
    body: S.RunCreate,
    ok: { 200: sse },
    errors: RUN_ERRORS,
    runs: true,
    tag: "runs",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/runs/wait",
    summary: "Create a run and wait for its final state",
    body: S.RunCreate,
    ok: { 200: json("RunResult") },
    errors: RUN_ERRORS,
    runs: true,
    tag: "runs",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/runs",
    summary: "List runs",
    ok: { 200: list("Run", "Runs, newest first") },
    errors: { 422: "A query parameter (limit, offset, status) is invalid" },
    tag: "runs",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/runs/{run_id}",
    summary: "Get a run",
    ok: { 200: json("Run") },
    tag: "runs",
  },
  {
    method: "delete",
    path: "/threads/{thread_id}/runs/{run_id}",
    summary: "Delete a finished run",
    ok: { 204: none("Deleted") },
    errors: { 409: "The run is still in flight: cancel it first" },
    tag: "runs",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/runs/{run_id}/join",
    summary: "Wait for a run's final state",
    ok: { 200: json("RunResult") },
    tag: "runs",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/runs/{run_id}/stream",
    summary: "Join a run's stream (?stream_mode=&cancel_on_disconnect=; Last-Event-ID replay)",
    ok: { 200: sse },
    errors: { 422: "stream_mode or cancel_on_disconnect is invalid" },
    tag: "runs",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/stream",
    summary:
      "Join a thread's stream: each run's events as they happen, run after run, until you leave or the thread is deleted (?stream_mode=run_modes|lifecycle|state_update; ids <run_id>:<event id>, Last-Event-ID resumes)",
    ok: { 200: { description: "The thread's runs' events, and run_done after each", sse: true } },
    errors: { 422: "stream_mode is not run_modes, lifecycle or state_update" },
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/runs/{run_id}/cancel",
    summary: "Cancel a run (?wait=&action=interrupt|rollback)",
    ok: {
      202: none("Cancelling (without ?wait=true); a run that has ended is left as it is"),
      204: none("Cancelled (with ?wait=true)"),
    },
    errors: { 409: "With ?wait=true: the run has already ended", 422: "wait or action is invalid" },
    tag: "runs",
  },
  {
    method: "post",
    path: "/runs",
    summary: "Create a stateless background run",
    body: S.RunCreate,
    ok: { 200: json("Run", "The run, pending, on a new thread") },
    errors: STATELESS_RUN_ERRORS,
    runs: true,
    tag: "runs",
  },
  {
    method: "post",
    path: "/runs/stream",
    summary: "Stream a stateless run",
    body: S.RunCreate,
    ok: { 200: sse },
    errors: STATELESS_RUN_ERRORS,
    runs: true,
    tag: "runs",
  },
  {
    method: "post",
    path: "/runs/wait",
    summary: "Wait for a stateless run",
    body: S.RunCreate,
    ok: { 200: json("RunResult") },
    errors: STATELESS_RUN_ERRORS,
    runs: true,
    tag: "runs",
  },
  {
    method: "post",
    path: "/runs/batch",
    summary: "Create a batch of stateless background runs (a list of run creates, at most 1000)",
    body: RunBatchBody,
    ok: { 200: list("Run", "The runs, pending, each on a new thread, in the order asked") },
    errors: {
      ...STATELESS_RUN_ERRORS,
      422: "The body is not a list, or an item is invalid (field starts with its index, e.g. [2].assistant_id); no run is created",
    },
    runs: true,
    tag: "runs",
  },
  {
    method: "post",
    path: "/runs/cancel",
    summary:
      "Cancel many runs: {thread_id, run_ids} or {status: pending|running|all} (?action=interrupt|rollback); runs that have ended are left as they are",
    body: RunsCancelBody,
    ok: { 204: none("Cancelling every run named, or every run of yours in that status") },
    errors: {
      404: "thread_id or one of run_ids names nothing the caller can reach; nothing is cancelled",
      422: "Neither thread_id with run_ids nor status, both, or action is invalid",
    },
    tag: "runs",
  },
  {
    method: "get",
    path: "/runs/{run_id}/stream",
    summary:
      "Join a stateless run's stream (?stream_mode=&cancel_on_disconnect=; Last-Event-ID replay)",
    ok: { 200: sse },
    errors: { 422: "stream_mode or cancel_on_disconnect is invalid" },
    tag: "runs",
  },
  {
    method: "post",
    path: "/runs/crons",
    summary:
      "Create a stateless cron: a run (on a new thread each time) made on a cron schedule (5 fields, or 6 with the seconds last), in timezone, until end_time",
    body: S.CronCreate,
    ok: { 200: json("Cron", "The cron, with its next_run_date") },
    errors: {
      404: "The assistant does not exist",
      409: "Your tenant already has REFINERY_TENANT_MAX_CRONS crons",
      422: "Invalid body: schedule, timezone or end_time, or the run it would make (config, input, nodes)",
    },
    tag: "crons",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/runs/crons",
    summary: "Create a cron on a thread: each firing is a run on that thread",
    body: S.CronCreate,
    ok: { 200: json("Cron", "The cron, with its next_run_date") },
    errors: {
      404: "The thread or the assistant does not exist",
      409: "Your tenant already has REFINERY_TENANT_MAX_CRONS crons",
      422: "Invalid body: schedule, timezone or end_time, or the run it would make (config, input, nodes)",
    },
    tag: "crons",
  },
  {
    method: "patch",
    path: "/runs/crons/{cron_id}",
    summary:
      "Update a cron: its schedule, timezone, end_time (null clears), enabled, metadata or run payload",
    body: S.CronPatch,
    ok: { 200: json("Cron", "The cron as updated") },
    errors: { 422: "Invalid body, or the run the new payload would make is invalid" },
    tag: "crons",
  },
  {
    method: "delete",
    path: "/runs/crons/{cron_id}",
    summary: "Delete a cron: it fires no more (runs it made are left as they are)",
    ok: { 204: none("Deleted") },
    errors: { 422: "cron_id is not a UUID" },
    tag: "crons",
  },
  {
    method: "post",
    path: "/runs/crons/search",
    summary: "Search crons (assistant_id, thread_id, enabled, metadata; sort, paging, select)",
    body: S.CronSearch,
    ok: {
      200: list("CronSelected", "Matching crons; with select, only the selected fields", "Cron"),
    },
    tag: "crons",
  },
  {
    method: "post",
    path: "/runs/crons/count",
    summary: "Count crons",
    body: S.CronCount,
    ok: { 200: count("How many crons match") },
    tag: "crons",
  },
  {
    method: "post",
    path: "/eval",
    summary:
      "Start an evaluation job of dataset items through refinement strategies, in an eval thread (422 over REFINERY_EVAL_MAX_RUNS graph runs, 429 past REFINERY_EVAL_MAX_JOBS running)",
    body: EvalCreate,
    ok: { 202: json("EvalJobWithRecords", "Started (Location: the job)") },
    errors: {
      409: "The server is shutting down",
      429: "Too many of your jobs are running (REFINERY_EVAL_MAX_JOBS)",
    },
    tag: "eval",
  },
  {
    method: "get",
    path: "/eval",
    summary: "Your evaluation jobs, newest first, without records (?limit=20 &offset=0)",
    ok: { 200: list("EvalJob", "Your jobs, newest first") },
    errors: { 422: "limit or offset is invalid" },
    tag: "eval",
  },
  {
    method: "get",
    path: "/eval/{id}",
    summary:
      "An evaluation job: progress, summary and a page of its records (?records_offset=0 &records_limit=1000, at most 5000; 0 for none)",
    ok: { 200: json("EvalJobWithRecords") },
    errors: { 422: "records_offset or records_limit is invalid" },
    tag: "eval",
  },
  {
    method: "post",
    path: "/eval/{id}/cancel",
    summary:
      "Cancel a running evaluation job; answers once it ended (cancelled, records so far kept)",
    ok: { 200: json("EvalJobWithRecords", "The job, cancelled") },
    errors: { 409: "The job is not running" },
    tag: "eval",
  },
  {
    method: "get",
    path: "/approvals",
    summary: "Pending human approvals (threads interrupted on an approval)",
    ok: { 200: list("Approval", "Pending approvals, oldest first") },
    tag: "approvals",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/approval",
    summary:
      "Answer a pending approval: approve | reject with feedback | edit | abort (409 if already answered)",
    body: ApprovalDecisionSchema,
    ok: { 200: json("Run", "The run resuming the thread with the decision") },
    errors: { 409: "The thread is not waiting for an approval" },
    tag: "approvals",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/feedback",
    summary: "Live feedback for a running or waiting thread; the next critique/revise uses it",
    body: S.FeedbackBody,
    ok: { 200: json("FeedbackQueued") },
    tag: "approvals",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/commands",
    summary:
      "Thread protocol (the SDK's ThreadStream): one command — run.start, input.respond, state.get, agent.getTree",
    body: ProtocolCommand,
    ok: { 200: json("ProtocolResponse", "The command's response ({type: success|error, id, …})") },
    errors: { 422: "The command or its params are invalid (`field` names which)" },
    runs: true,
    tag: "protocol",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/stream/events",
    summary:
      "Thread protocol: the thread's events on the given channels (SSE; GET with a WebSocket upgrade for the bidirectional transport)",
    body: EventsFilterBody,
    ok: {
      200: media(
        "text/event-stream",
        "Protocol events `id: <seq>`, `event: <method>`, `data: {type: event, seq, event_id, method, params}`, kept ones replayed first (after `since`); open until the client leaves",
      ),
    },
    errors: {
      422: "A channel, namespace, depth or since is invalid",
      429: "The thread already has 64 event streams open",
    },
    tag: "protocol",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}/lessons",
    summary: "The assistant's lessons (?query= ranks them, ?limit= ?offset=)",
    ok: { 200: list("Lesson") },
    errors: { 422: "A query parameter (query, limit, offset) is invalid" },
    tag: "lessons",
  },
  {
    method: "post",
    path: "/assistants/{assistant_id}/lessons",
    summary: "Add a lesson by hand (merged into an existing one when nearly identical)",
    body: S.LessonCreate,
    ok: {
      201: json("Lesson", "Added"),
      200: json("Lesson", "Merged into a nearly identical lesson"),
    },
    tag: "lessons",
  },
  {
    method: "post",
    path: "/assistants/{assistant_id}/lessons/search",
    summary: "The lessons a run of this task would get in its generate prompt, with scores",
    body: S.LessonSearch,
    ok: { 200: list("RetrievedLesson", "Best first") },
    tag: "lessons",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}/lessons/{lesson_id}",
    summary: "One lesson, with its evidence and how often it helped",
    ok: { 200: json("Lesson") },
    tag: "lessons",
  },
  {
    method: "patch",
    path: "/assistants/{assistant_id}/lessons/{lesson_id}",
    summary: "Edit, pin, un-pin, demote or restore a lesson",
    body: S.LessonPatch,
    ok: { 200: json("Lesson") },
    tag: "lessons",
  },
  {
    method: "delete",
    path: "/assistants/{assistant_id}/lessons/{lesson_id}",
    summary: "Delete a lesson",
    ok: { 200: json("Empty", "Deleted") },
    tag: "lessons",
  },
  {
    method: "put",
    path: "/store/items",
    summary: "Store or replace an item (ttl in minutes; index is accepted and ignored)",
    body: Store.StorePutItem,
    ok: { 204: none("Stored") },
    tag: "store",
  },
  {
    method: "get",
    path: "/store/items",
    summary: "Get an item: ?namespace=<labels joined by '.'>&key=&refresh_ttl=true|false",
    ok: { 200: json("StoreItemOrNull", "The item, or null") },
    errors: { 422: "namespace or key is missing or invalid" },
    tag: "store",
  },
  {
    method: "delete",
    path: "/store/items",
    summary: "Delete an item (nothing to delete is not an error)",
    body: Store.StoreDeleteItem,
    ok: { 204: none("Deleted") },
    tag: "store",
  },
  {
    method: "post",
    path: "/store/items/search",
    summary: "Search items under a namespace prefix (filter on top-level fields; query is ignored)",
    body: Store.StoreSearchItems,
    ok: { 200: json("StoreSearchResult") },
    tag: "store",
  },
  {
    method: "post",
    path: "/store/namespaces",
    summary: "List namespaces (prefix, suffix, max_depth, limit, offset)",
    body: Store.StoreListNamespaces,
    ok: { 200: json("StoreNamespaces") },
    tag: "store",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/runs/{run_id}/feedback",
    summary:
      "Rate a run (key, score 0..1, value, comment); keys limited by the run's feedback_keys",
    body: S.RunRatingCreate,
    ok: { 201: json("RunRating", "Recorded") },
    tag: "feedback",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/runs/{run_id}/feedback",
    summary: "A run's ratings, human decisions and verifier verdicts",
    ok: { 200: json("RunFeedback") },
    tag: "feedback",
  },
  {
    method: "get",
    path: "/export",
    summary:
      "Stream training data as JSONL: ?format=sft|dpo|pasr &graph_id &assistant_id &since &until &verdict=verified|failed|any (default verified for sft, any otherwise) &human_approved_only=true",
    ok: { 200: media("application/x-ndjson", "One JSON object per line (an attachment)") },
    errors: {
      404: "assistant_id names no assistant you can reach, or run records are off",
      422: "A query parameter is invalid",
    },
    tag: "feedback",
  },
  {
    method: "get",
    path: "/eval/{id}/chart.svg",
    summary: "Evaluation chart (SVG), once finished",
    ok: { 200: media("image/svg+xml", "The chart") },
    errors: { 409: "The job has no summary yet (running) or ended without one" },
    tag: "eval",
  },
  {
    method: "post",
    path: "/graphs",
    summary: "Register a declarative graph (JSON or YAML spec; a new version when the id exists)",
    body: GraphSpecSchema,
    ok: {
      201: json("GraphSpecRegistered", "Registered (a new graph or a new version)"),
      200: json("GraphSpecRegistered", "Unchanged: the same spec is the latest version"),
    },
    errors: GRAPH_WRITE_ERRORS,
    yaml: true,
    tag: "graphs",
  },
  {
    method: "get",
    path: "/graphs",
    summary: "List declarative graphs",
    ok: { 200: list("GraphSpecInfo") },
    tag: "graphs",
  },
  {
    method: "get",
    path: "/graphs/{graph_id}",
    summary: "A declarative graph's spec (latest, or ?version=)",
    ok: { 200: json("GraphSpecDetail") },
    errors: { 422: "version is not a positive integer" },
    tag: "graphs",
  },
  {
    method: "put",
    path: "/graphs/{graph_id}",
    summary: "Register a new version of a declarative graph",
    body: GraphSpecSchema,
    ok: {
      201: json("GraphSpecRegistered", "Registered (a new graph or a new version)"),
      200: json("GraphSpecRegistered", "Unchanged: the same spec is the latest version"),
    },
    errors: GRAPH_WRITE_ERRORS,
    yaml: true,
    tag: "graphs",
  },
  {
    method: "delete",
    path: "/graphs/{graph_id}",
    summary: "Delete a declarative graph (every version) and unregister it",
    ok: { 204: none("Deleted with every version") },
    errors: { 409: "The graph is defined by a file, not registered over HTTP" },
    tag: "graphs",
  },
  {
    method: "post",
    path: "/ui/{graph_id}",
    summary:
      "Generative UI: the HTML that loads a component of the graph's UI module (langgraph.json ui), as the SDK's LoadExternalComponent fetches it",
    body: S.UiComponentRequest,
    ok: {
      200: media(
        "text/plain",
        "A <link> per stylesheet and a <script> whose onload renders the component into the SDK's shadow root",
      ),
    },
    errors: { 404: "langgraph.json declares no UI for this graph" },
    tag: "ui",
  },
  {
    method: "get",
    path: "/ui/{graph_id}/{file}",
    summary:
      "A bundled file of the graph's UI (the JavaScript or the stylesheet POST /ui/{graph_id} names)",
    ok: {
      200: media(["text/javascript", "text/css"], "The file, bundled at start-up"),
    },
    public: true,
    tag: "ui",
  },
  {
    method: "post",
    path: "/internal/truncate",
    summary:
      "Dev servers only (REFINERY_DEV=1; admins): delete every run, thread, assistant (the graphs' own stay), checkpoint or store item, as the body's flags say",
    body: TruncateBody,
    ok: { 200: json("Ok", "Deleted") },
    errors: { 422: "A flag is not a boolean, or an unknown one" },
    dev: true,
    tag: "dev",
  },
];

/** What the server was started with that adds statuses to operations. */
export interface DocumentOptions {
  /** Credentials are needed (REFINERY_API_KEYS or an auth module): 401, and 403 by role. */
  auth?: boolean;
  /** Requests per caller are limited (REFINERY_RATE_LIMIT): 429. */
  rateLimit?: boolean;
  /** Runs pending or running per tenant are capped (REFINERY_TENANT_MAX_RUNS): 429 on run creation. */
  runLimit?: boolean;
  /** The dev routes are served (REFINERY_DEV=1). */
  dev?: boolean;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "Malformed JSON body or path parameter",
  401: "No credentials, or credentials this server does not accept",
  403: "Refused: the Host header is not a name of this server, a write from a web origin not in REFINERY_CORS_ORIGINS, or (with auth) the caller's role or auth handler does not allow it",
  404: "Not found: an id names nothing the caller can reach (another tenant's object answers the same)",
  413: "The body is larger than REFINERY_BODY_LIMIT",
  422: "Invalid input: `field` names the offending field, `message` says how to fix it",
};

const ref = (name: ResponseSchemaName) => ({ $ref: `#/components/schemas/${name}` });

function successResponse(out: Out): Record<string, unknown> {
  const schema = out.json
    ? ref(out.json)
    : out.list
      ? { type: "array", items: out.or ? { anyOf: [ref(out.or), ref(out.list)] } : ref(out.list) }
      : out.count
        ? { type: "integer", minimum: 0 }
        : undefined;
  if (schema) return { description: out.description, content: { "application/json": { schema } } };
  if (out.sse)
    return {
      description: out.description,
      content: { "text/event-stream": { schema: ref("SseStream") } },
    };
  if (out.media)
    return {
      description: out.description,
      content: Object.fromEntries(
        [out.media].flat().map((type) => [type, { schema: { type: "string" } }]),
      ),
    };
  return { description: out.description };
}

function errorResponse(
  status: number,
  description: string,
  authChecked: boolean,
): Record<string, unknown> {
  const content: Record<string, unknown> = { "application/json": { schema: ref("Error") } };
  // A LangGraph auth module's own refusals are its message as plain text.
  if (authChecked && (status === 401 || status === 403))
    content["text/plain"] = { schema: { type: "string" } };
  return { description, content };
}

/** The error statuses of an operation, each with what causes it. */
function errorsOf(op: Op, options: DocumentOptions): Record<number, string> {
  const hasParams = op.path.includes("{");
  const out: Record<number, string> = {};
  if (op.body || hasParams) out[400] = ERROR_DESCRIPTIONS[400]!;
  if (options.auth && !op.public) out[401] = ERROR_DESCRIPTIONS[401]!;
  out[403] = ERROR_DESCRIPTIONS[403]!;
  if (hasParams) out[404] = ERROR_DESCRIPTIONS[404]!;
  if (op.body) out[413] = ERROR_DESCRIPTIONS[413]!;
  if (op.body) out[422] = ERROR_DESCRIPTIONS[422]!;
  Object.assign(out, op.errors ?? {});
  const limits = [
    options.rateLimit && !op.public ? "Too many requests (REFINERY_RATE_LIMIT)" : undefined,
    options.runLimit && op.runs
      ? "Your tenant has REFINERY_TENANT_MAX_RUNS runs in flight"
      : undefined,
    op.errors?.[429],
  ].filter(Boolean);
  if (limits.length) out[429] = `${limits.join("; or: ")}. Retry-After says when to retry`;
  else delete out[429];
  return out;
}

let components: Record<string, Record<string, unknown>> | undefined;

/** The response schemas as JSON Schema, referring to each other by #/components/schemas/<name>. */
function componentSchemas(): Record<string, Record<string, unknown>> {
  if (components) return components;
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(RESPONSE_SCHEMAS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    io: "output",
    unrepresentable: "any",
    uri: (id) => `#/components/schemas/${id}`,
  });
  components = {};
  for (const [id, schema] of Object.entries(schemas)) {
    const { $schema: _s, $id: _i, ...rest } = schema as Record<string, unknown>;
    components[id] = rest;
  }
  return components;
}

export function openApiDocument(options: DocumentOptions = {}): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPS) {
    if (op.dev && !options.dev) continue;
    const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    const responses: Record<string, unknown> = {};
    for (const [status, out] of Object.entries(op.ok)) responses[status] = successResponse(out);
    for (const [status, description] of Object.entries(errorsOf(op, options)))
      responses[status] = errorResponse(
        Number(status),
        description,
        Boolean(options.auth && !op.public),
      );
    const bodySchema = op.body
      ? z.toJSONSchema(op.body, { io: "input", unrepresentable: "any" })
      : undefined;
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      summary: op.summary,
      tags: [op.tag],
      ...(params.length ? { parameters: params } : {}),
      ...(bodySchema
        ? {
            requestBody: {
              required: true,
              content: {
                "application/json": { schema: bodySchema },
                ...(op.yaml ? { "application/yaml": { schema: { type: "string" } } } : {}),
              },
            },
          }
        : {}),
      ...(options.auth && op.public ? { security: [] } : {}),
      responses,
    };
  }
  const schemas = componentSchemas();
  return {
    openapi: "3.1.0",
    info: { title: "Refinery API (LangGraph server protocol)", version: "1" },
    ...(options.auth ? { security: [{ bearer: [] }, { apiKey: [] }] } : {}),
    paths,
    components: {
      schemas,
      ...(options.auth
        ? {
            securitySchemes: {
              bearer: { type: "http", scheme: "bearer" },
              apiKey: { type: "apiKey", in: "header", name: "x-api-key" },
            },
          }
        : {}),
    },
  };
}

export function apiDocsRoutes(security: SecuritySettings = {}, dev = false): Router {
  const r = Router();
  const doc = openApiDocument({
    auth: Boolean(security.auth),
    rateLimit: Boolean(security.rateLimiter),
    runLimit: Boolean(security.partitionRunLimit),
    dev,
  });
  r.get("/openapi.json", (_req, res) => sendJson(res, 200, doc));
  r.get("/docs", (_req, res) => {
    const rows = OPS.filter((op) => dev || !op.dev)
      .map(
        (op) =>
          `<tr><td class="m ${op.method}">${op.method.toUpperCase()}</td><td><code>${op.path}</code></td><td>${op.summary}</td></tr>`,
      )
      .join("\n");
    res.type("html")
      .send(`<!doctype html><html><head><meta charset="utf-8"><title>Refinery API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td{padding:.35rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
.m{font-weight:600;font-size:12px;width:4rem}.get{color:#0a7}.post{color:#06c}.patch{color:#a60}.delete{color:#c33}
code{font-size:13px}</style></head><body>
<h1>Refinery API</h1>
<p>Speaks the LangGraph server protocol: point <code>@langchain/langgraph-sdk</code>'s <code>Client</code> at this URL.
Request bodies, responses and the statuses of each operation are described in <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). Errors are JSON <code>{error, message, field, retryable}</code>.</p>
<table>${rows}</table></body></html>`);
  });
  return r;
}
