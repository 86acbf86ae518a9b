// Cross-origin access: only origins listed in REFINERY_CORS_ORIGINS get CORS headers (the web
// console is same-origin and needs none), and a browser request that changes something from
// another origin is refused before it runs, so a web page cannot drive the API through the
// user's browser (simple POSTs need no preflight, and without auth nothing else would stop them).
import type { RequestHandler } from "express";
import { RefineryError } from "../../core/errors.ts";
import { compileUserRegex, type UserRegex } from "../../core/verifiers/user-regex.ts";
import type { HttpSection } from "../../graphs/registry.ts";

/** Headers a listed origin may send when its preflight names none, and may read. */
const ALLOW_HEADERS = "Content-Type, Last-Event-ID, Authorization, X-Api-Key";
const EXPOSE_HEADERS = "Content-Location, Location, Retry-After, X-Pagination-Total";

export function parseOrigins(
  raw: string | undefined,
  field = "REFINERY_CORS_ORIGINS",
): Set<string> | "*" {
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
        field,
        fix: "list origins as scheme://host[:port] separated by commas, e.g. https://app.example.com",
      });
    }
  }
  return new Set(list.map((o) => o.toLowerCase()));
}

/**
 * langgraph.json `http.cors`, as the LangGraph server reads it: more origins (a list, or a
 * pattern, run on RE2 and matched anywhere in the origin as the reference's RegExp.test does),
 * and the methods, headers, credentials, exposed headers and preflight lifetime to answer.
 */
export interface CorsOptions {
  originPattern?: UserRegex;
  allowMethods?: string[];
  allowHeaders?: string[];
  allowCredentials?: boolean;
  exposeHeaders?: string[];
  maxAge?: number;
}

/** The origins of REFINERY_CORS_ORIGINS and of langgraph.json `http.cors`, and its options. */
export function corsSettings(
  envOrigins: Set<string> | "*",
  cors: HttpSection["cors"] | undefined,
): { origins: Set<string> | "*"; options: CorsOptions } {
  if (!cors) return { origins: envOrigins, options: {} };
  const fromFile = parseOrigins((cors.allow_origins ?? []).join(","), "http.cors.allow_origins");
  const origins =
    envOrigins === "*" || fromFile === "*" ? "*" : new Set([...envOrigins, ...fromFile]);
  // The reference always exposes these two; so does a list given here.
  const expose = cors.expose_headers
    ? [...new Set([...cors.expose_headers, "Content-Location", "X-Pagination-Total"])]
    : undefined;
  return {
    origins,
    options: {
      ...(cors.allow_origin_regex
        ? {
            originPattern: compileUserRegex(
              cors.allow_origin_regex,
              "",
              "http.cors.allow_origin_regex",
            ),
          }
        : {}),
      ...(cors.allow_methods ? { allowMethods: cors.allow_methods } : {}),
      ...(cors.allow_headers ? { allowHeaders: cors.allow_headers } : {}),
      ...(cors.allow_credentials !== undefined ? { allowCredentials: cors.allow_credentials } : {}),
      ...(expose ? { exposeHeaders: expose } : {}),
      ...(cors.max_age !== undefined ? { maxAge: cors.max_age } : {}),
    },
  };
}

export function corsMiddleware(
  origins: Set<string> | "*",
  options: CorsOptions = {},
): RequestHandler {
  const listed = (origin: string) =>
    origins === "*" ||
    origins.has(origin.toLowerCase()) ||
    (options.originPattern?.test(origin) ?? false);
  // With credentials, "*" is not allowed by browsers: the origin itself is answered.
  const anyOrigin = origins === "*" && !options.allowCredentials;
  const methods = (options.allowMethods ?? ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"])
    .map((m) => m.toUpperCase())
    .join(", ");
  const expose = options.exposeHeaders?.join(", ") ?? EXPOSE_HEADERS;
  return (req, res, next) => {
    const origin = req.headers.origin;
    const sameOrigin = origin !== undefined && isSameOrigin(origin, req.headers.host);
    if (origin && !sameOrigin && listed(origin)) {
      res.setHeader("Access-Control-Allow-Origin", anyOrigin ? "*" : origin);
      if (options.allowCredentials) res.setHeader("Access-Control-Allow-Credentials", "true");
      res.setHeader("Access-Control-Expose-Headers", expose);
      res.vary("Origin");
      if (req.method === "OPTIONS") {
        res.setHeader("Access-Control-Allow-Methods", methods);
        // A listed origin is trusted: whatever headers its client sends (the SDK's own x-*),
        // unless langgraph.json names the headers.
        res.setHeader(
          "Access-Control-Allow-Headers",
          options.allowHeaders?.join(", ") ??
            req.header("Access-Control-Request-Headers") ??
            ALLOW_HEADERS,
        );
        res.setHeader("Access-Control-Max-Age", String(options.maxAge ?? 600));
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
