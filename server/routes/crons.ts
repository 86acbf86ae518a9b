// Crons: runs made on a schedule (LangGraph's /runs/crons; the LangGraph JS server has none,
// shapes and semantics follow LangGraph Python's). A cron stores a run payload, checked when it
// is made exactly as that run would be (server/run-service.ts), and who made it; the scheduler
// (server/cron-scheduler.ts) fires it as that caller. Access goes through the auth handler's
// `crons:*` events, whose filters apply to the cron's metadata (with API keys: the tenant).
import { randomUUID } from "node:crypto";
import { Router, type Request } from "express";
import { firstFireTime, isoTime } from "../../core/cron.ts";
import { RefineryError } from "../../core/errors.ts";
import { redactSecrets } from "../../core/secrets.ts";
import type { Cron, CronPatch as CronPatchFields } from "../../core/storage/types.ts";
import { ownerOf } from "../auth/index.ts";
import { authOf } from "../auth/request.ts";
import { accessFor, assistantIdOf, isUuid, type AppDeps } from "../context.ts";
import { notFound, parseBody, sendJson } from "../http.ts";
import { createRunService } from "../run-service.ts";
import {
  CRON_PAYLOAD_PATCH_FIELDS,
  CronCount,
  CronCreate,
  CronPatch,
  CronSearch,
  type CronCreateBody,
} from "../schemas.ts";

/** Fields of a create body that describe the schedule, not the run. */
const SCHEDULE_FIELDS = new Set([
  "schedule",
  "timezone",
  "end_time",
  "enabled",
  "on_run_completed",
]);

/** A cron as it leaves the server: no secret of its payload's config shows. */
export function publicCron(cron: Cron): Cron {
  const payload = redactSecrets(cron.payload);
  return payload === cron.payload ? cron : { ...cron, payload };
}

/** The run create body a cron fires with: the given run fields, nulls left out. */
function payloadOf(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(body).filter(
      ([k, v]) => !SCHEDULE_FIELDS.has(k) && v !== undefined && v !== null,
    ),
  );
}

export function cronRoutes(deps: AppDeps): Router {
  const r = Router();
  const { storage } = deps;
  const runs = createRunService(deps);
  const clock = () => new Date(deps.crons?.now() ?? Date.now());

  /** A future end_time as UTC ISO (a past one would never let the cron fire). */
  function endTimeOf(raw: string | null | undefined, now: Date): string | null {
    if (raw === undefined || raw === null) return null;
    const end = isoTime(raw, "end_time");
    if (Date.parse(end) <= now.getTime()) {
      throw new RefineryError("invalid_input", `end_time ${raw} is not in the future`, {
        field: "end_time",
        fix: "give a later time, or leave end_time out to fire until the cron is deleted",
      });
    }
    return end;
  }

  async function create(req: Request, threadId: string | undefined): Promise<Cron> {
    const auth = authOf(req);
    const body: CronCreateBody = parseBody(CronCreate, req.body);
    if (threadId !== undefined && !isUuid(threadId))
      throw new RefineryError("invalid_input", "thread_id must be a UUID", { field: "thread_id" });
    if (threadId !== undefined && body.on_run_completed) {
      throw new RefineryError(
        "invalid_input",
        "on_run_completed is for stateless crons: a thread's cron runs on that thread",
        {
          field: "on_run_completed",
          fix: "leave it out, or create the cron with POST /runs/crons",
        },
      );
    }
    const cronId = randomUUID();
    const now = clock();
    const endTime = endTimeOf(body.end_time, now);
    const timezone = body.timezone ?? null;
    const nextRun = firstFireTime(body.schedule, timezone, now, endTime);
    if (nextRun === null) {
      throw new RefineryError("invalid_input", "the schedule never fires before end_time", {
        field: "end_time",
        fix: "give a later end_time, or a schedule that fires sooner",
      });
    }
    const payload = payloadOf(body);
    // What a LangGraph auth handler sees for crons:create (it may stamp the metadata).
    const value: Record<string, unknown> = {
      cron_id: cronId,
      thread_id: threadId ?? null,
      user_id: auth.user?.identity ?? null,
      schedule: body.schedule,
      end_time: endTime,
      payload,
      metadata: { ...(body.metadata ?? {}) },
    };
    await auth.authorize("crons:create", value, "run");
    // The run it will make, checked now as POST /runs would check it (assistant, thread, config,
    // input, nodes, the auth handler's threads:create_run): a 404 or 422 now, not a failed firing.
    const { assistant } = await runs.check(auth, threadId, payload);
    const limit = deps.crons?.maxPerTenant;
    const cron = await storage.crons.create(
      {
        cron_id: cronId,
        assistant_id: assistant.assistant_id,
        thread_id: threadId ?? null,
        on_run_completed: threadId === undefined ? (body.on_run_completed ?? "delete") : null,
        end_time: endTime,
        schedule: body.schedule.trim(),
        timezone,
        payload,
        user_id: auth.user?.identity ?? null,
        next_run_date: nextRun,
        metadata: (value.metadata ?? {}) as Record<string, unknown>,
        enabled: body.enabled ?? true,
        owner: ownerOf(auth),
      },
      limit ? { partitionLimit: limit } : {},
    );
    if (!cron) {
      throw new RefineryError(
        "conflict",
        `${auth.partition ? "your tenant" : "this server"} already has ${limit} crons`,
        {
          fix: "delete some (DELETE /runs/crons/{cron_id}); the operator sets the cap with REFINERY_TENANT_MAX_CRONS",
        },
      );
    }
    return cron;
  }

  r.post("/runs/crons", async (req, res) => {
    sendJson(res, 200, publicCron(await create(req, undefined)));
  });

  r.post("/threads/:thread_id/runs/crons", async (req, res) => {
    sendJson(res, 200, publicCron(await create(req, req.params.thread_id)));
  });

  const cronIdOf = (req: Request): string => {
    const id = req.params.cron_id as string;
    if (!isUuid(id))
      throw new RefineryError("invalid_input", "cron_id must be a UUID", { field: "cron_id" });
    return id;
  };

  r.patch("/runs/crons/:cron_id", async (req, res) => {
    const cronId = cronIdOf(req);
    const auth = authOf(req);
    const patch = parseBody(CronPatch, req.body);
    // What a LangGraph auth handler sees for crons:update; it may stamp the metadata (with API
    // keys: the tenant, whatever the caller sent), which is what is merged into the cron's.
    const value: Record<string, unknown> = {
      cron_id: cronId,
      schedule: patch.schedule ?? null,
      payload: payloadOf(patch),
      metadata: patch.metadata ?? undefined,
    };
    const access = await accessFor(req, "crons:update", value, "run");
    const cur = await storage.crons.get(cronId, access);
    if (!cur) throw notFound("Cron", cronId);
    if (cur.thread_id !== null && patch.on_run_completed) {
      throw new RefineryError(
        "invalid_input",
        "on_run_completed is for stateless crons: this cron runs on a thread",
        { field: "on_run_completed", fix: "leave it out" },
      );
    }
    const fields: CronPatchFields = {};
    const given = (k: string) => (patch as Record<string, unknown>)[k] !== undefined;
    if (CRON_PAYLOAD_PATCH_FIELDS.some(given)) {
      const payload = { ...cur.payload };
      for (const k of CRON_PAYLOAD_PATCH_FIELDS) {
        const v = (patch as Record<string, unknown>)[k];
        if (v === null) delete payload[k];
        else if (v !== undefined) payload[k] = v;
      }
      // Checked as the run it will make, with the caller's rights.
      await runs.check(auth, cur.thread_id ?? undefined, {
        ...payload,
        assistant_id: cur.assistant_id,
      });
      fields.payload = payload;
    }
    if (value.metadata) fields.metadata = value.metadata as Record<string, unknown>;
    if (patch.on_run_completed) fields.on_run_completed = patch.on_run_completed;
    if (typeof patch.enabled === "boolean") fields.enabled = patch.enabled;
    const now = clock();
    if (patch.schedule) fields.schedule = patch.schedule.trim();
    if (patch.timezone) fields.timezone = patch.timezone;
    if (patch.end_time !== undefined) fields.end_time = endTimeOf(patch.end_time, now);
    // When it fires next is computed again from now when the schedule, its zone, its end or
    // whether it is on changes (a cron switched back on does not fire for the time it was off).
    if (
      fields.schedule !== undefined ||
      fields.timezone !== undefined ||
      fields.end_time !== undefined ||
      fields.enabled === true
    ) {
      const endTime = fields.end_time !== undefined ? fields.end_time : cur.end_time;
      fields.next_run_date = firstFireTime(
        fields.schedule ?? cur.schedule,
        fields.timezone ?? cur.timezone,
        now,
        endTime,
      );
    }
    const updated = await storage.crons.update(cronId, fields, access);
    if (!updated) throw notFound("Cron", cronId);
    sendJson(res, 200, publicCron(updated));
  });

  r.delete("/runs/crons/:cron_id", async (req, res) => {
    const cronId = cronIdOf(req);
    const access = await accessFor(req, "crons:delete", { cron_id: cronId }, "write");
    if (!(await storage.crons.delete(cronId, access))) throw notFound("Cron", cronId);
    res.status(204).end();
  });

  /** An assistant filter: a graph id names its system assistant, as in runs. */
  const assistantFilter = (value: string | null | undefined) =>
    value ? (assistantIdOf(deps, value) ?? value) : undefined;

  r.post("/runs/crons/search", async (req, res) => {
    const q = parseBody(CronSearch, req.body ?? {});
    const access = await accessFor(
      req,
      "crons:search",
      {
        assistant_id: q.assistant_id ?? null,
        thread_id: q.thread_id ?? null,
        limit: q.limit ?? 10,
        offset: q.offset ?? 0,
      },
      "read",
    );
    const rows = await storage.crons.search({
      ...access,
      assistant_id: assistantFilter(q.assistant_id),
      thread_id: q.thread_id ?? undefined,
      enabled: q.enabled ?? undefined,
      metadata: q.metadata ?? undefined,
      limit: q.limit ?? 10,
      offset: q.offset ?? 0,
      sort_by: q.sort_by ?? undefined,
      sort_order: q.sort_order ?? undefined,
    });
    const select = q.select;
    sendJson(
      res,
      200,
      rows
        .map(publicCron)
        .map((c) =>
          select?.length
            ? Object.fromEntries(Object.entries(c).filter(([k]) => select.includes(k)))
            : c,
        ),
    );
  });

  r.post("/runs/crons/count", async (req, res) => {
    const q = parseBody(CronCount, req.body ?? {});
    const access = await accessFor(
      req,
      "crons:search",
      { assistant_id: q.assistant_id ?? null, thread_id: q.thread_id ?? null },
      "read",
    );
    sendJson(
      res,
      200,
      await storage.crons.count({
        ...access,
        assistant_id: assistantFilter(q.assistant_id),
        thread_id: q.thread_id ?? undefined,
        metadata: q.metadata ?? undefined,
      }),
    );
  });

  return r;
}
