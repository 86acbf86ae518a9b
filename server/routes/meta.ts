// Meta endpoints: liveness, server info, Prometheus metrics.
import { Router } from "express";
import type { AppDeps } from "../context.ts";
import { authOf } from "../auth/request.ts";
import { RefineryError } from "../../core/errors.ts";
import { sendJson } from "../http.ts";
import { LANGGRAPH_VERSION } from "../versions.ts";

export function metaRoutes(deps: AppDeps): Router {
  const r = Router();
  r.get("/ok", async (_req, res) => {
    const db = deps.database;
    // Redis down is degraded, not unhealthy: signals fall back to polling (server/signals).
    const redis = deps.redis
      ? await deps.redis.ping().then(
          () => ({ ok: true }),
          (err: Error) => ({ ok: false, error: err.message }),
        )
      : undefined;
    const extra = redis ? { redis } : {};
    if (!db) return sendJson(res, 200, { ok: true, ...extra });
    try {
      await db.ping();
      sendJson(res, 200, { ok: true, database: { kind: db.kind, ok: true }, ...extra });
    } catch (err) {
      const error = new RefineryError(
        "storage_error",
        `the ${db.kind} database does not answer (${(err as Error).message})`,
        { fix: "check that the database is up and reachable; retry", retryable: true },
      );
      sendJson(res, 503, error.toJSON());
    }
  });
  r.get("/info", (_req, res) =>
    sendJson(res, 200, {
      version: deps.version,
      name: "refinery",
      // As the LangGraph server (JS) answers (issue 22).
      langgraph_js_version: LANGGRAPH_VERSION,
      context: "js",
      graphs: deps.registry.ids(),
      flags: {
        assistants: true,
        crons: true,
        langsmith: false,
        langsmith_tracing_replicas: false,
      },
    }),
  );
  // Server-wide figures (every tenant's runs): admins only when auth is on.
  r.get("/metrics", async (req, res) => {
    authOf(req).check("admin");
    const counts = await deps.storage.runs.countByStatus();
    deps.metrics.queueDepth.set(counts.pending);
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return r;
}
