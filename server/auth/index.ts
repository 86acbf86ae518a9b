// Authentication at the edge of the app: which backend (built-in API keys, or a LangGraph auth
// module from langgraph.json), the middleware that gives every request its auth context, and
// the guards around it (start-up refusal to serve a public address without auth, the Host check
// against DNS rebinding, CORS and cross-site requests, per-identity rate limits).
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { RefineryError } from "../../core/errors.ts";
import type { CronOwner } from "../../core/storage/types.ts";
import { ApiKeyAuth, loadApiKeys, presentedKey } from "./api-keys.ts";
import { authSectionOf, authenticateWith, customContext, loadAuthModule } from "./custom.ts";
import type { HandlerCache } from "./handlers.ts";
import { OPEN_AUTH, setAuth, type AuthUser, type RequestAuth } from "./request.ts";

export interface AuthBackend {
  kind: "api_keys" | "custom";
  /** For the start-up log line. */
  describe: string;
  authenticate(req: Request): Promise<RequestAuth>;
  /**
   * The auth context of a caller recorded earlier (a cron's creator, `CronOwner`), rebuilt
   * without a request so its runs go through the same handlers, tenant and caps; undefined when
   * that caller is no longer accepted (its API key was revoked).
   */
  restore(owner: CronOwner): RequestAuth | undefined;
}

/** What is recorded of a caller to act for it later (server/cron-scheduler.ts). */
export function ownerOf(auth: RequestAuth): CronOwner {
  return {
    ...(auth.user ? { user: { ...auth.user } } : {}),
    scopes: [...auth.scopes],
    partition: auth.partition,
    ...(auth.storePartition !== undefined ? { storePartition: auth.storePartition } : {}),
  };
}

/** The auth context a recorded caller acts with: without auth, the open one. */
export function restoreAuth(
  backend: AuthBackend | undefined,
  owner: CronOwner,
): RequestAuth | undefined {
  return backend ? backend.restore(owner) : OPEN_AUTH;
}

/**
 * The configured backend: REFINERY_API_KEYS, or langgraph.json `auth.path`; undefined when
 * neither is set. Both at once is a configuration error.
 */
export async function loadAuthBackend(options: {
  env: Record<string, string | undefined>;
  configPath?: string;
}): Promise<AuthBackend | undefined> {
  const keys = loadApiKeys(options.env.REFINERY_API_KEYS);
  const section = authSectionOf(options.configPath);
  if (keys && section) {
    throw new RefineryError(
      "invalid_config",
      "both REFINERY_API_KEYS and langgraph.json auth.path are set",
      {
        field: "REFINERY_API_KEYS",
        fix: "use one: unset REFINERY_API_KEYS to authenticate with the auth module, or remove auth.path",
      },
    );
  }
  if (keys) {
    const auth = new ApiKeyAuth(keys);
    return {
      kind: "api_keys",
      describe: `API keys (${auth.size})`,
      authenticate: async (req) => auth.authenticate(presentedKey(req.headers)),
      restore: (owner) =>
        typeof owner.user?.identity === "string"
          ? auth.contextOf(owner.user.identity, owner.partition)
          : undefined,
    };
  }
  if (section && options.configPath) {
    const cache = await loadAuthModule(options.configPath, section.path);
    return {
      kind: "custom",
      describe: `auth module ${section.path}`,
      authenticate: (req) => authenticateCustom(cache, req),
      // The module's handlers run for the recorded user, as for a request of theirs; a caller
      // the module let through without authenticate() acts openly, as it did.
      restore: (owner) =>
        owner.user && typeof owner.user.identity === "string"
          ? customContext(cache, owner.user as AuthUser, owner.scopes)
          : cache.authenticate
            ? undefined
            : OPEN_AUTH,
    };
  }
  return undefined;
}

async function authenticateCustom(cache: HandlerCache, req: Request): Promise<RequestAuth> {
  const result = await authenticateWith(cache, toFetchRequest(req));
  // An Auth without authenticate(): LangGraph runs no handlers at all, and neither do we.
  if (!result) return OPEN_AUTH;
  return customContext(cache, result.user, result.scopes);
}

/** The request as `authenticate` receives it on the LangGraph server: a Fetch Request, no body. */
function toFetchRequest(req: Request): globalThis.Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  const host = req.headers.host ?? "localhost";
  return new Request(`${req.protocol}://${host}${req.originalUrl}`, {
    method: req.method,
    headers,
  });
}

/**
 * Paths served to anyone: liveness, server info, the API description, the console's files, and
 * (as on the LangGraph server, whose auth skips every GET under /ui) generative UI's bundled
 * assets; `POST /ui/{graph}` is authenticated.
 */
export function isPublicPath(req: Request): boolean {
  const path = req.path;
  if (path === "/ok" || path === "/info" || path === "/docs" || path === "/openapi.json")
    return true;
  const read = req.method === "GET" || req.method === "HEAD";
  return (
    read &&
    (path === "/" ||
      path === "/console" ||
      path.startsWith("/console/") ||
      path === "/ui" ||
      path.startsWith("/ui/"))
  );
}

export function authMiddleware(backend: AuthBackend | undefined): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (!backend || isPublicPath(req)) return next();
    backend.authenticate(req).then(
      (auth) => {
        setAuth(req, auth);
        next();
      },
      (err: unknown) => next(err),
    );
  };
}

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return LOOPBACK_NAMES.has(h) || /^127(\.\d{1,3}){3}$/.test(h) || h.endsWith(".localhost");
}

/**
 * Refuses to serve a non-loopback address without auth: anyone who can reach it could do
 * everything. REFINERY_ALLOW_ANONYMOUS=1 insists.
 */
export function checkExposure(
  host: string,
  backend: AuthBackend | undefined,
  allowAnonymous: boolean,
): void {
  if (backend || isLoopbackHost(host) || allowAnonymous) return;
  throw new RefineryError(
    "invalid_config",
    `refusing to serve ${host} without authentication: anyone who reaches it could run graphs with your model key and read every thread`,
    {
      field: "HOST",
      fix: "set REFINERY_API_KEYS (or auth.path in langgraph.json), bind HOST=127.0.0.1, or set REFINERY_ALLOW_ANONYMOUS=1 to serve it open anyway",
    },
  );
}

/** Names the Host header may carry: loopback names when bound to loopback, plus REFINERY_ALLOWED_HOSTS. */
export function hostGuard(options: {
  boundHost: string;
  allowed?: string;
}): RequestHandler | undefined {
  const extra = (options.allowed ?? "")
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const loopback = isLoopbackHost(options.boundHost);
  if (!loopback && extra.length === 0) return undefined;
  const ok = (name: string) => (loopback && isLoopbackHost(name)) || extra.includes(name);
  return (req, _res, next) => {
    const header = (req.headers.host ?? "").toLowerCase();
    const name = header.startsWith("[")
      ? header.slice(0, header.indexOf("]") + 1)
      : header.split(":")[0]!;
    if (ok(name) || ok(header)) return next();
    next(
      new RefineryError("forbidden", `this server does not answer to the name "${header}"`, {
        field: "Host",
        fix: loopback
          ? "open it as http://127.0.0.1:<port> or http://localhost:<port>, or list the name in REFINERY_ALLOWED_HOSTS"
          : "list the name in REFINERY_ALLOWED_HOSTS",
      }),
    );
  };
}
