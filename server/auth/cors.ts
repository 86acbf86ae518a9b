// Cross-origin access: only origins listed in REFINERY_CORS_ORIGINS get CORS headers (the web
// console is same-origin and needs none), and a browser request that changes something from
// another origin is refused before it runs, so a web page cannot drive the API through the
// user's browser (simple POSTs need no preflight, and without auth nothing else would stop them).
import type { RequestHandler } from "express";
import { RefineryError } from "../../core/errors.ts";

/** Headers a listed origin may send when its preflight names none, and may read. */
const ALLOW_HEADERS = "Content-Type, Last-Event-ID, Authorization, X-Api-Key";
const EXPOSE_HEADERS = "Content-Location, Location, Retry-After, X-Pagination-Total";

export function parseOrigins(raw: string | undefined): Set<string> | "*" {
  const list = (raw ?? "")
    .split(",")
    .map((o) => o.trim().replace(/\/+$/, ""))
    .filter(Boolean);
  if (list.includes("*")) return "*";
  for (const origin of list) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    if (!url || url.origin !== origin) {
      throw new RefineryError("invalid_config", `"${origin}" is not an origin`, {
        field: "REFINERY_CORS_ORIGINS",
        fix: "list origins as scheme://host[:port] separated by commas, e.g. https://app.example.com",
      });
    }
  }
  return new Set(list.map((o) => o.toLowerCase()));
}

export function corsMiddleware(origins: Set<string> | "*"): RequestHandler {
  const listed = (origin: string) => origins === "*" || origins.has(origin.toLowerCase());
  return (req, res, next) => {
    const origin = req.headers.origin;
    const sameOrigin = origin !== undefined && isSameOrigin(origin, req.headers.host);
    if (origin && !sameOrigin && listed(origin)) {
      res.setHeader("Access-Control-Allow-Origin", origins === "*" ? "*" : origin);
      res.setHeader("Access-Control-Expose-Headers", EXPOSE_HEADERS);
      res.vary("Origin");
      if (req.method === "OPTIONS") {
        res.setHeader("Access-Control-Allow-Methods", "GET, POST, PATCH, PUT, DELETE, OPTIONS");
        // A listed origin is trusted: whatever headers its client sends (the SDK's own x-*).
        res.setHeader(
          "Access-Control-Allow-Headers",
          req.header("Access-Control-Request-Headers") ?? ALLOW_HEADERS,
        );
        res.setHeader("Access-Control-Max-Age", "600");
        res.status(204).end();
        return;
      }
      return next();
    }
    if (origin !== undefined && !sameOrigin) {
      // A page of another origin: its preflight gets no CORS headers (the browser stops there),
      // and a request that would change something is refused before it runs.
      if (req.method === "OPTIONS") {
        res.status(204).end();
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        next(
          new RefineryError("forbidden", `requests from the web origin ${origin} are not allowed`, {
            field: "Origin",
            fix: "list the origin in REFINERY_CORS_ORIGINS if this web app should use the API",
          }),
        );
        return;
      }
    }
    next();
  };
}

function isSameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    return new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false;
  }
}
