// GET /openapi.json (generated from the same zod schemas that validate requests) and a
// human-readable API page at /docs.
import { Router } from "express";
import { z } from "zod";
import { sendJson } from "../http.ts";
import * as S from "../schemas.ts";
import { ApprovalDecisionSchema } from "../../core/approval.ts";
import { GraphSpecSchema } from "../../graphs/declarative/spec.ts";
import { EvalCreate } from "./eval.ts";

interface Op {
  method: "get" | "post" | "put" | "patch" | "delete";
  path: string;
  summary: string;
  body?: z.ZodType;
  tag: string;
}

const OPS: Op[] = [
  { method: "get", path: "/ok", summary: "Liveness", tag: "meta" },
  { method: "get", path: "/info", summary: "Server information", tag: "meta" },
  { method: "get", path: "/metrics", summary: "Prometheus metrics", tag: "meta" },
  {
    method: "post",
    path: "/assistants",
    summary: "Create an assistant (a graph + a saved config)",
    body: S.AssistantCreate,
    tag: "assistants",
  },
  {
    method: "post",
    path: "/assistants/search",
    summary: "Search assistants",
    body: S.AssistantSearch,
    tag: "assistants",
  },
  {
    method: "post",
    path: "/assistants/count",
    summary: "Count assistants",
    body: S.AssistantCount,
    tag: "assistants",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}",
    summary: "Get an assistant (id or graph id)",
    tag: "assistants",
  },
  {
    method: "patch",
    path: "/assistants/{assistant_id}",
    summary: "Update an assistant (new version)",
    body: S.AssistantPatch,
    tag: "assistants",
  },
  {
    method: "delete",
    path: "/assistants/{assistant_id}",
    summary: "Delete an assistant",
    tag: "assistants",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}/graph",
    summary: "The assistant's graph (nodes and edges)",
    tag: "assistants",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}/schemas",
    summary: "Input and config schemas",
    tag: "assistants",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}/subgraphs",
    summary: "Subgraphs (none: the graphs here have no subgraphs)",
    tag: "assistants",
  },
  {
    method: "post",
    path: "/assistants/{assistant_id}/versions",
    summary: "List versions",
    body: S.AssistantVersionsSearch,
    tag: "assistants",
  },
  {
    method: "post",
    path: "/assistants/{assistant_id}/latest",
    summary: "Make a version the latest",
    body: S.AssistantSetLatest,
    tag: "assistants",
  },
  {
    method: "post",
    path: "/threads",
    summary: "Create a thread",
    body: S.ThreadCreate,
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/search",
    summary: "Search threads",
    body: S.ThreadSearch,
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/count",
    summary: "Count threads",
    body: S.ThreadCount,
    tag: "threads",
  },
  { method: "get", path: "/threads/{thread_id}", summary: "Get a thread", tag: "threads" },
  {
    method: "patch",
    path: "/threads/{thread_id}",
    summary: "Update a thread's metadata",
    body: S.ThreadPatch,
    tag: "threads",
  },
  {
    method: "delete",
    path: "/threads/{thread_id}",
    summary: "Delete a thread, its runs and checkpoints",
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/copy",
    summary: "Copy a thread with its history",
    tag: "threads",
  },
  { method: "get", path: "/threads/{thread_id}/state", summary: "Current state", tag: "threads" },
  {
    method: "post",
    path: "/threads/{thread_id}/state",
    summary: "Update state (409 while busy)",
    body: S.ThreadStateUpdate,
    tag: "threads",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/state/{checkpoint_id}",
    summary: "State at a checkpoint",
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/state/checkpoint",
    summary: "State at a checkpoint",
    body: S.ThreadStateCheckpoint,
    tag: "threads",
  },
  { method: "get", path: "/threads/{thread_id}/history", summary: "State history", tag: "threads" },
  {
    method: "post",
    path: "/threads/{thread_id}/history",
    summary: "State history (filters)",
    body: S.ThreadHistory,
    tag: "threads",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/runs",
    summary: "Create a background run",
    body: S.RunCreate,
    tag: "runs",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/runs/stream",
    summary: "Create a run and stream it (SSE)",
    body: S.RunCreate,
    tag: "runs",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/runs/wait",
    summary: "Create a run and wait for its final state",
    body: S.RunCreate,
    tag: "runs",
  },
  { method: "get", path: "/threads/{thread_id}/runs", summary: "List runs", tag: "runs" },
  { method: "get", path: "/threads/{thread_id}/runs/{run_id}", summary: "Get a run", tag: "runs" },
  {
    method: "delete",
    path: "/threads/{thread_id}/runs/{run_id}",
    summary: "Delete a finished run",
    tag: "runs",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/runs/{run_id}/join",
    summary: "Wait for a run's final state",
    tag: "runs",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/runs/{run_id}/stream",
    summary: "Join a run's stream (?stream_mode=&cancel_on_disconnect=; Last-Event-ID replay)",
    tag: "runs",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/runs/{run_id}/cancel",
    summary: "Cancel a run (?wait=&action=interrupt|rollback)",
    tag: "runs",
  },
  {
    method: "post",
    path: "/runs",
    summary: "Create a stateless background run",
    body: S.RunCreate,
    tag: "runs",
  },
  {
    method: "post",
    path: "/runs/stream",
    summary: "Stream a stateless run",
    body: S.RunCreate,
    tag: "runs",
  },
  {
    method: "post",
    path: "/runs/wait",
    summary: "Wait for a stateless run",
    body: S.RunCreate,
    tag: "runs",
  },
  {
    method: "get",
    path: "/runs/{run_id}/stream",
    summary:
      "Join a stateless run's stream (?stream_mode=&cancel_on_disconnect=; Last-Event-ID replay)",
    tag: "runs",
  },
  {
    method: "post",
    path: "/eval",
    summary:
      "Start an evaluation job of dataset items through refinement strategies, in an eval thread (422 over REFINERY_EVAL_MAX_RUNS graph runs, 429 past REFINERY_EVAL_MAX_JOBS running)",
    body: EvalCreate,
    tag: "eval",
  },
  {
    method: "get",
    path: "/eval",
    summary: "Your evaluation jobs, newest first, without records (?limit=20 &offset=0)",
    tag: "eval",
  },
  {
    method: "get",
    path: "/eval/{id}",
    summary:
      "An evaluation job: progress, summary and a page of its records (?records_offset=0 &records_limit=1000, at most 5000; 0 for none)",
    tag: "eval",
  },
  {
    method: "post",
    path: "/eval/{id}/cancel",
    summary:
      "Cancel a running evaluation job; answers once it ended (cancelled, records so far kept)",
    tag: "eval",
  },
  {
    method: "get",
    path: "/approvals",
    summary: "Pending human approvals (threads interrupted on an approval)",
    tag: "approvals",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/approval",
    summary:
      "Answer a pending approval: approve | reject with feedback | edit | abort (409 if already answered)",
    body: ApprovalDecisionSchema,
    tag: "approvals",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/feedback",
    summary: "Live feedback for a running or waiting thread; the next critique/revise uses it",
    body: S.FeedbackBody,
    tag: "approvals",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}/lessons",
    summary: "The assistant's lessons (?query= ranks them, ?limit= ?offset=)",
    tag: "lessons",
  },
  {
    method: "post",
    path: "/assistants/{assistant_id}/lessons",
    summary: "Add a lesson by hand (merged into an existing one when nearly identical)",
    body: S.LessonCreate,
    tag: "lessons",
  },
  {
    method: "post",
    path: "/assistants/{assistant_id}/lessons/search",
    summary: "The lessons a run of this task would get in its generate prompt, with scores",
    body: S.LessonSearch,
    tag: "lessons",
  },
  {
    method: "get",
    path: "/assistants/{assistant_id}/lessons/{lesson_id}",
    summary: "One lesson, with its evidence and how often it helped",
    tag: "lessons",
  },
  {
    method: "patch",
    path: "/assistants/{assistant_id}/lessons/{lesson_id}",
    summary: "Edit, pin, un-pin, demote or restore a lesson",
    body: S.LessonPatch,
    tag: "lessons",
  },
  {
    method: "delete",
    path: "/assistants/{assistant_id}/lessons/{lesson_id}",
    summary: "Delete a lesson",
    tag: "lessons",
  },
  {
    method: "post",
    path: "/threads/{thread_id}/runs/{run_id}/feedback",
    summary:
      "Rate a run (key, score 0..1, value, comment); keys limited by the run's feedback_keys",
    body: S.RunRatingCreate,
    tag: "feedback",
  },
  {
    method: "get",
    path: "/threads/{thread_id}/runs/{run_id}/feedback",
    summary: "A run's ratings, human decisions and verifier verdicts",
    tag: "feedback",
  },
  {
    method: "get",
    path: "/export",
    summary:
      "Stream training data as JSONL: ?format=sft|dpo|pasr &graph_id &assistant_id &since &until &verdict=verified|failed|any (default verified for sft, any otherwise) &human_approved_only=true",
    tag: "feedback",
  },
  {
    method: "get",
    path: "/eval/{id}/chart.svg",
    summary: "Evaluation chart (SVG), once finished",
    tag: "eval",
  },
  {
    method: "post",
    path: "/graphs",
    summary: "Register a declarative graph (JSON or YAML spec; a new version when the id exists)",
    body: GraphSpecSchema,
    tag: "graphs",
  },
  { method: "get", path: "/graphs", summary: "List declarative graphs", tag: "graphs" },
  {
    method: "get",
    path: "/graphs/{graph_id}",
    summary: "A declarative graph's spec (latest, or ?version=)",
    tag: "graphs",
  },
  {
    method: "put",
    path: "/graphs/{graph_id}",
    summary: "Register a new version of a declarative graph",
    body: GraphSpecSchema,
    tag: "graphs",
  },
  {
    method: "delete",
    path: "/graphs/{graph_id}",
    summary: "Delete a declarative graph (every version) and unregister it",
    tag: "graphs",
  },
];

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPS) {
    const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      summary: op.summary,
      tags: [op.tag],
      ...(params.length ? { parameters: params } : {}),
      ...(op.body
        ? {
            requestBody: {
              required: true,
              content: {
                "application/json": {
                  schema: z.toJSONSchema(op.body, { io: "input", unrepresentable: "any" }),
                },
              },
            },
          }
        : {}),
      responses: {
        "200": { description: "OK" },
        "404": { description: "Not found ({error, message, field})" },
        "409": { description: "Conflict (busy thread, nothing to resume)" },
        "422": { description: "Invalid input; `field` names the offending field" },
      },
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: "Refinery API (LangGraph server protocol)", version: "1" },
    paths,
  };
}

export function apiDocsRoutes(): Router {
  const r = Router();
  const doc = openApiDocument();
  r.get("/openapi.json", (_req, res) => sendJson(res, 200, doc));
  r.get("/docs", (_req, res) => {
    const rows = OPS.map(
      (op) =>
        `<tr><td class="m ${op.method}">${op.method.toUpperCase()}</td><td><code>${op.path}</code></td><td>${op.summary}</td></tr>`,
    ).join("\n");
    res.type("html")
      .send(`<!doctype html><html><head><meta charset="utf-8"><title>Refinery API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td{padding:.35rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
.m{font-weight:600;font-size:12px;width:4rem}.get{color:#0a7}.post{color:#06c}.patch{color:#a60}.delete{color:#c33}
code{font-size:13px}</style></head><body>
<h1>Refinery API</h1>
<p>Speaks the LangGraph server protocol: point <code>@langchain/langgraph-sdk</code>'s <code>Client</code> at this URL.
Request bodies are described in <a href="/openapi.json">/openapi.json</a>. Errors are JSON <code>{error, message, field}</code>.</p>
<table>${rows}</table></body></html>`);
  });
  return r;
}
