// createApp(deps) builds the Express app and never listens: tests drive it on an ephemeral
// port, the entry point (server/main.ts) binds the configured one.
import express from "express";
import { RefineryError } from "../core/errors.ts";
import { authMiddleware, isPublicPath } from "./auth/index.ts";
import { corsMiddleware } from "./auth/cors.ts";
import { rateLimitMiddleware } from "./auth/rate-limit.ts";
import type { AppDeps } from "./context.ts";
import { bodyDepthGuard, errorHandler, errorJson, sendJson } from "./http.ts";
import { apiDocsRoutes } from "./routes/docs.ts";
import { assistantRoutes } from "./routes/assistants.ts";
import { bulkRoutes } from "./routes/bulk.ts";
import { cronRoutes } from "./routes/crons.ts";
import { evalRoutes } from "./routes/eval.ts";
import { learningRoutes } from "./routes/learning.ts";
import { graphSpecRoutes, type GraphSpecRouteDeps } from "./routes/graph-specs.ts";
import { metaRoutes } from "./routes/meta.ts";
import { protocolRoutes } from "./routes/protocol.ts";
import type { ProtocolService } from "./protocol/service.ts";
import { runRoutes } from "./routes/runs.ts";
import { storeRoutes } from "./routes/store.ts";
import { threadRoutes } from "./routes/threads.ts";
import { consoleRoutes } from "./routes/console.ts";
import { generativeUiRoutes } from "./routes/generative-ui.ts";
import {
  customAppMiddleware,
  customRouteMatcher,
  deferBodyError,
  disabledRoutes,
} from "./custom-app.ts";
import { setAuth } from "./auth/request.ts";

export type { AppDeps } from "./context.ts";

export function createApp(
  deps: AppDeps & { graphSpecs?: GraphSpecRouteDeps["graphSpecs"] },
): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", "simple");

  app.use((req, res, next) => {
    res.on("finish", () =>
      deps.metrics.httpRequests.inc({ method: req.method, status: String(res.statusCode) }),
    );
    next();
  });
  // The edge, in order: the Host name (DNS rebinding), the origin (CORS, cross-site writes),
  // who is calling (auth), how often (rate limits). Errors go to the one error handler below.
  const security = deps.security ?? {};
  if (security.hostGuard) app.use(security.hostGuard);
  app.use(corsMiddleware(security.corsOrigins ?? new Set(), security.corsOptions));
  app.use(authMiddleware(security.auth));
  if (security.rateLimiter) {
    const limit = rateLimitMiddleware(security.rateLimiter);
    app.use((req, res, next) => (isPublicPath(req) ? next() : limit(req, res, next)));
  }
  const limit = deps.bodyLimit ?? "1mb";
  const customApp = deps.http?.app;
  // With a custom app, the bytes of a body are kept (`rawBody`) for the app's Request.
  const keepRaw = customApp
    ? (req: express.Request, _res: unknown, buf: Buffer) => {
        (req as unknown as { rawBody: Buffer }).rawBody = buf;
      }
    : undefined;
  const jsonBody = express.json({
    limit,
    strict: false,
    type: ["application/json", "application/*+json"],
    ...(keepRaw ? { verify: keepRaw } : {}),
  });
  app.use(
    customApp
      ? (req, res, next) =>
          jsonBody(req, res, (err?: unknown) =>
            next(err && deferBodyError(req, err) ? undefined : err),
          )
      : jsonBody,
  );
  if (customApp) {
    // Other bodies are read within the same limit for the app; the built-in routes take JSON only.
    app.use(express.raw({ limit, type: () => true, verify: keepRaw }));
    app.use((req, _res, next) => {
      // YAML stays text for the routes that read it (POST /graphs); other bodies are the app's.
      if (Buffer.isBuffer(req.body))
        req.body = /yaml/i.test(req.headers["content-type"] ?? "")
          ? req.body.toString("utf8")
          : undefined;
      next();
    });
  }
  app.use(bodyDepthGuard);
  if (deps.role === "worker") return workerApp(app, deps);
  // langgraph.json `http.app`: the user's routes first, then (what they leave) the built-in ones.
  if (customApp) {
    const auth = security.auth;
    if (auth) {
      // A path served without credentials needs them when the app answers it, except those the
      // LangGraph server leaves open too (/info, GET /ui/*).
      const handles = customRouteMatcher(customApp);
      app.use((req, _res, next) => {
        const referenceOpen =
          req.path === "/info" ||
          ((req.method === "GET" || req.method === "HEAD") && /^\/ui(\/|$)/.test(req.path));
        if (!isPublicPath(req) || referenceOpen) return next();
        handles(req.method, req.path)
          .then(async (custom) => {
            if (custom) setAuth(req, await auth.authenticate(req));
          })
          .then(() => next(), next);
      });
    }
    app.use(customAppMiddleware(customApp, deps.log));
  }
  const disabled = disabledRoutes(deps.http?.section);
  if (disabled) app.use(disabled);

  app.use(metaRoutes(deps));
  app.use(apiDocsRoutes(security, Boolean(deps.dev)));
  app.use(assistantRoutes(deps));
  app.use(bulkRoutes(deps));
  app.use(threadRoutes(deps));
  app.use(cronRoutes(deps));
  app.use(runRoutes(deps));
  // The thread protocol (the SDK's ThreadStream): commands, SSE and WebSocket event streams.
  const protocol = protocolRoutes(deps);
  app.use(protocol.router);
  app.locals.protocol = protocol.service;
  app.use(evalRoutes(deps));
  app.use(learningRoutes(deps));
  app.use(storeRoutes(deps));
  if (deps.graphSpecs) app.use(graphSpecRoutes({ ...deps, graphSpecs: deps.graphSpecs }));
  app.use(consoleRoutes());
  app.use(generativeUiRoutes(deps.ui));

  app.use((req, res) => {
    sendJson(
      res,
      404,
      errorJson(
        new RefineryError("not_found", `No route ${req.method} ${req.path}`, {
          fix: "see GET /docs for the API",
        }),
      ),
    );
  });
  app.use(errorHandler(deps.log));
  return app;
}

/** A worker process's HTTP: liveness and metrics only; the API is served by the api processes. */
function workerApp(app: express.Express, deps: AppDeps): express.Express {
  app.use(metaRoutes(deps));
  app.use((req, res) => {
    sendJson(
      res,
      404,
      errorJson(
        new RefineryError(
          "not_found",
          `No route ${req.method} ${req.path}: this process runs with --role worker and serves only /ok, /info and /metrics`,
          { fix: "send API requests to a process started with --role api (or without --role)" },
        ),
      ),
    );
  });
  app.use(errorHandler(deps.log));
  return app;
}

/** The thread protocol's service of an app made by createApp (to end its streams at shutdown). */
export function protocolOf(app: express.Express): ProtocolService {
  return app.locals.protocol as ProtocolService;
}
