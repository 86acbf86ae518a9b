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
import { runRoutes } from "./routes/runs.ts";
import { storeRoutes } from "./routes/store.ts";
import { threadRoutes } from "./routes/threads.ts";
import { uiRoutes } from "./routes/ui.ts";

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
  app.use(corsMiddleware(security.corsOrigins ?? new Set()));
  app.use(authMiddleware(security.auth));
  if (security.rateLimiter) {
    const limit = rateLimitMiddleware(security.rateLimiter);
    app.use((req, res, next) => (isPublicPath(req) ? next() : limit(req, res, next)));
  }
  app.use(
    express.json({
      limit: deps.bodyLimit ?? "1mb",
      strict: false,
      type: ["application/json", "application/*+json"],
    }),
  );
  app.use(bodyDepthGuard);

  app.use(metaRoutes(deps));
  app.use(apiDocsRoutes(security, Boolean(deps.dev)));
  app.use(assistantRoutes(deps));
  app.use(bulkRoutes(deps));
  app.use(threadRoutes(deps));
  app.use(cronRoutes(deps));
  app.use(runRoutes(deps));
  app.use(evalRoutes(deps));
  app.use(learningRoutes(deps));
  app.use(storeRoutes(deps));
  if (deps.graphSpecs) app.use(graphSpecRoutes({ ...deps, graphSpecs: deps.graphSpecs }));
  app.use(uiRoutes());

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
