// The learning loop over HTTP: an assistant's lessons (list, search, create, edit, pin, delete),
// end-user ratings on runs, and streamed training-data export (JSONL).
import { once } from "node:events";
import { Router, type Request } from "express";
import { fromZodError, RefineryError } from "../../core/errors.ts";
import { defaultVerdict, exportJsonl } from "../../core/learning/export.ts";
import { lessonsKey, type LessonMemory } from "../../core/memory/lessons.ts";
import type { LearningRecords } from "../../core/storage/sqlite/learning-records.ts";
import { authOf } from "../auth/request.ts";
import { accessFor, assistantIdOf, findAssistant, findThread, type AppDeps } from "../context.ts";
import { notFound, parseBody, sendJson } from "../http.ts";
import {
  ExportQuery,
  LessonCreate,
  LessonListQuery,
  LessonPatch,
  LessonSearch,
  RunRatingCreate,
} from "../schemas.ts";

function parseQuery<S extends { safeParse(v: unknown): { success: boolean } }>(
  schema: S,
  req: Request,
): S extends { parse(v: unknown): infer T } ? T : never {
  const result = schema.safeParse(req.query) as
    | { success: true; data: unknown }
    | { success: false; error: Parameters<typeof fromZodError>[0] };
  if (!result.success) throw fromZodError(result.error, "query", "invalid_input", schema);
  return result.data as never;
}

function lessonNotFound(id: string): RefineryError {
  return new RefineryError("not_found", "Lesson not found", {
    field: "lesson_id",
    fix: `no lesson with id ${id} for this assistant (list them with GET /assistants/{assistant_id}/lessons)`,
  });
}

export function learningRoutes(deps: AppDeps): Router {
  const r = Router();

  function memory(): LessonMemory {
    const m = deps.learning?.memory;
    if (!m)
      throw new RefineryError("not_found", "The lessons memory is switched off on this server", {
        fix: "start the server without REFINERY_MEMORY=off",
      });
    return m;
  }
  function records(): LearningRecords {
    const rec = deps.learning?.records;
    if (!rec) throw new RefineryError("not_found", "Run records are not kept on this server");
    return rec;
  }

  /**
   * The assistant whose lessons the caller works on (the server's own included: their lessons
   * are kept per partition), and the key its lessons are kept under for the caller's partition.
   */
  async function lessonsOf(req: Request, write: boolean) {
    const idOrGraph = req.params.assistant_id as string;
    const access = await accessFor(
      req,
      write ? "assistants:update" : "assistants:read",
      { assistant_id: assistantIdOf(deps, idOrGraph) ?? idOrGraph },
      write ? "write" : "read",
      { system: true },
    );
    const assistant = await findAssistant(deps, idOrGraph, access);
    return { assistant, key: lessonsKey(assistant.assistant_id, authOf(req).partition) };
  }

  r.get("/assistants/:assistant_id/lessons", async (req, res) => {
    const q = parseQuery(LessonListQuery, req);
    const { assistant, key } = await lessonsOf(req, false);
    const lessons = await memory().list(key, q);
    sendJson(
      res,
      200,
      lessons.map((l) => publicLesson(l, assistant.assistant_id)),
    );
  });

  r.post("/assistants/:assistant_id/lessons/search", async (req, res) => {
    const body = parseBody(LessonSearch, req.body);
    const { key } = await lessonsOf(req, false);
    sendJson(res, 200, await memory().retrieve(key, body.task, body.limit));
  });

  r.post("/assistants/:assistant_id/lessons", async (req, res) => {
    const body = parseBody(LessonCreate, req.body);
    const { assistant, key } = await lessonsOf(req, true);
    const { lesson, created } = await memory().add(key, {
      text: body.text,
      graph_id: assistant.graph_id,
      ...(body.family ? { family: body.family } : {}),
      keywords: body.keywords ?? [],
      task: body.text,
      source: "manual",
      pinned: body.pinned,
    });
    sendJson(res, created ? 201 : 200, publicLesson(lesson, assistant.assistant_id));
  });

  r.get("/assistants/:assistant_id/lessons/:lesson_id", async (req, res) => {
    const { assistant, key } = await lessonsOf(req, false);
    const lesson = await memory().get(key, req.params.lesson_id);
    if (!lesson) throw lessonNotFound(req.params.lesson_id);
    sendJson(res, 200, publicLesson(lesson, assistant.assistant_id));
  });

  r.patch("/assistants/:assistant_id/lessons/:lesson_id", async (req, res) => {
    const body = parseBody(LessonPatch, req.body);
    const { assistant, key } = await lessonsOf(req, true);
    const lesson = await memory().update(key, req.params.lesson_id, body);
    if (!lesson) throw lessonNotFound(req.params.lesson_id);
    sendJson(res, 200, publicLesson(lesson, assistant.assistant_id));
  });

  r.delete("/assistants/:assistant_id/lessons/:lesson_id", async (req, res) => {
    const { key } = await lessonsOf(req, true);
    if (!(await memory().delete(key, req.params.lesson_id)))
      throw lessonNotFound(req.params.lesson_id);
    sendJson(res, 200, {});
  });

  /** A run of a thread the caller reaches; ratings are a reviewer's to give. */
  async function findRun(req: Request, write: boolean) {
    const threadId = req.params.thread_id as string;
    const runId = req.params.run_id as string;
    const access = await accessFor(
      req,
      write ? "threads:update" : "threads:read",
      { thread_id: threadId },
      write ? "review" : "read",
    );
    const thread = await findThread(deps, threadId, access);
    const run = await deps.storage.runs.get(runId, thread.thread_id);
    if (!run) throw notFound("Run", runId);
    return run;
  }

  r.post("/threads/:thread_id/runs/:run_id/feedback", async (req, res) => {
    const body = parseBody(RunRatingCreate, req.body);
    const run = await findRun(req, true);
    const allowed = run.kwargs.feedback_keys;
    if (allowed && allowed.length > 0 && !allowed.includes(body.key)) {
      throw new RefineryError(
        "invalid_input",
        `feedback key "${body.key}" is not accepted for this run`,
        {
          field: "key",
          fix: `the run was created with feedback_keys ${JSON.stringify(allowed)}: use one of them`,
        },
      );
    }
    const rating = await records().addRating({
      run_id: run.run_id,
      thread_id: run.thread_id,
      key: body.key,
      ...(body.score !== undefined ? { score: body.score } : {}),
      ...(body.value !== undefined ? { value: body.value } : {}),
      ...(body.comment !== undefined ? { comment: body.comment } : {}),
    });
    sendJson(res, 201, rating);
  });

  r.get("/threads/:thread_id/runs/:run_id/feedback", async (req, res) => {
    const run = await findRun(req, false);
    const outcome = await records().getOutcome(run.run_id);
    sendJson(res, 200, {
      run_id: run.run_id,
      ratings: await records().ratings(run.run_id),
      human_decisions: outcome?.approvals ?? [],
      verdicts: outcome?.verdicts ?? [],
      lessons_used: outcome?.lessons_used ?? [],
    });
  });

  r.get("/export", async (req, res) => {
    const q = parseQuery(ExportQuery, req);
    const auth = authOf(req);
    auth.check("read");
    let assistantId: string | undefined;
    if (q.assistant_id) {
      const access = await accessFor(
        req,
        "assistants:read",
        { assistant_id: assistantIdOf(deps, q.assistant_id) ?? q.assistant_id },
        "read",
        { system: true },
      );
      assistantId = (await findAssistant(deps, q.assistant_id, access)).assistant_id;
    }
    const outcomes = records().outcomes({
      // With auth, only what was run in the caller's partition (tenant).
      ...(auth.user ? { partition: auth.partition } : {}),
      ...(q.graph_id ? { graph_id: q.graph_id } : {}),
      ...(assistantId ? { assistant_id: assistantId } : {}),
      ...(q.since ? { since: q.since } : {}),
      ...(q.until ? { until: q.until } : {}),
      verdict: q.verdict ?? defaultVerdict(q.format),
      human_approved_only: q.human_approved_only,
    });
    res.status(200);
    res.setHeader("Content-Type", "application/x-ndjson; charset=utf-8");
    res.setHeader("Content-Disposition", `attachment; filename="refinery-${q.format}.jsonl"`);
    res.setHeader("Cache-Control", "no-store");
    let closed = false;
    res.on("close", () => {
      closed = true;
    });
    try {
      for await (const line of exportJsonl(outcomes, q.format)) {
        if (closed) break;
        // Backpressure: a slow reader pauses the export instead of filling memory.
        if (!res.write(line)) await Promise.race([once(res, "drain"), once(res, "close")]);
      }
    } finally {
      if (!closed) res.end();
    }
  });

  return r;
}

/** Lessons go out without their embedding vectors, under the assistant's own id. */
function publicLesson<T extends { embedding?: unknown; assistant_id: string }>(
  lesson: T,
  assistantId: string,
): Omit<T, "embedding"> {
  const { embedding: _embedding, ...rest } = lesson;
  return { ...rest, assistant_id: assistantId };
}
