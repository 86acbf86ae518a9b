// Custom routes: langgraph.json `"http": {"app": "./app.ts:app"}` names a Hono app that the
// server mounts beside the API, as the LangGraph server (JS) does. The app sees every request
// after the edge (Host check, CORS, auth, rate limit, body size): its routes win over the
// built-in ones, and its middleware wraps them. A request none of its routes answers goes on to
// the built-in routes with the body as the app leaves it (a middleware may read the body with
// `c.req.json()` and replace `c.req.raw` with a changed one). `http.disable_*` turns built-in
// route groups off.
import type { IncomingMessage, ServerResponse } from "node:http";
import { getRequestListener } from "@hono/node-server";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { Hono, type Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { RefineryError } from "../core/errors.ts";
import type { HttpSection } from "../graphs/registry.ts";
import { authOf } from "./auth/request.ts";
import { errorJson, sendJson } from "./http.ts";
import type { Logger } from "./log.ts";
import { importModuleSpec } from "../core/import-module.ts";

/** What the server needs of a Hono app (duck-typed: the user's copy of hono may differ). */
export interface HonoLike {
  fetch: (request: globalThis.Request, env?: unknown) => unknown;
  routes: unknown[];
}

function isHonoApp(x: unknown): x is HonoLike {
  return (
    typeof x === "object" &&
    x !== null &&
    typeof (x as HonoLike).fetch === "function" &&
    Array.isArray((x as HonoLike).routes)
  );
}

/** Imports the app named by `http.app` ("./file.ts:export", default export without ":"). */
export async function loadCustomApp(base: string, spec: string): Promise<HonoLike> {
  const { abs, name, mod } = await importModuleSpec(base, spec, "http.app", "the HTTP app");
  const app = mod[name];
  if (!isHonoApp(app)) {
    throw new RefineryError(
      "invalid_config",
      app === undefined ? `${abs} has no export "${name}"` : `${spec} is not a Hono app`,
      {
        field: "http.app",
        fix: `export one: import { Hono } from "hono"; export const ${name === "default" ? "app" : name} = new Hono();`,
      },
    );
  }
  return app;
}

/**
 * Whether the app has a route (or a middleware narrower than "*") for this method and path.
 * Paths the server serves without credentials (the console, /ok, /docs, ...) need them when
 * the app answers there instead: the app's code must not run for anonymous callers where the
 * LangGraph server would authenticate them.
 */
export function customRouteMatcher(
  user: HonoLike,
): (method: string, path: string) => Promise<boolean> {
  const probe = new Hono();
  let any = false;
  for (const route of user.routes as { method: string; path: string }[]) {
    if (route.method === "ALL" && (route.path === "*" || route.path === "/*")) continue;
    const ok = () => new Response(null, { status: 204 });
    if (route.method === "ALL") probe.all(route.path, ok);
    else probe.on(route.method, route.path, ok);
    any = true;
  }
  return async (method, path) => {
    if (!any) return false;
    const res = await probe.fetch(new Request(`http://probe${path}`, { method }));
    return res.status === 204;
  };
}

interface Pending {
  next: NextFunction;
  /** The Request the app received, to tell whether it replaced it. */
  raw?: globalThis.Request;
}

type Env = { Bindings: { incoming: IncomingMessage; outgoing: ServerResponse } };

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * Express middleware running the user's Hono app in front of the built-in routes. Mount it after
 * the edge and the body parsers: the app gets the body from `rawBody` (parsed within the body
 * limit), the built-in routes get `req.body`.
 */
export function customAppMiddleware(user: HonoLike, log: Logger): RequestHandler {
  const pending = new WeakMap<IncomingMessage, Pending>();
  const front = new Hono<Env>();
  front.use(async (c, next) => {
    const entry = pending.get(c.env.incoming);
    // The app gets a standard Request (node-server's own lazy one cannot be passed to
    // `new Request(c.req.raw, {...})` outside node-server's globals), its body already read.
    c.req.raw = standardRequest(c.env.incoming, c.req.raw);
    if (entry) entry.raw = c.req.raw;
    // As on the LangGraph server, the app's handlers read the caller with c.get("auth").
    const auth = authOf(c.env.incoming as Request);
    if (auth.user) c.set("auth" as never, { user: auth.user, scopes: auth.scopes } as never);
    await next();
  });
  front.route("/", user as unknown as Hono);
  front.all("*", (c) => passThrough(c, pending));
  front.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse();
    // c.req.json() on a body that is no JSON: the caller's mistake, not the app's.
    if (err instanceof SyntaxError)
      return c.json(
        {
          error: "bad_request",
          message: `Malformed JSON body: ${err.message}. Fix: send valid JSON with Content-Type: application/json`,
        },
        400,
      );
    log("error", "custom HTTP app failed", {
      method: c.req.method,
      path: c.req.path,
      message: err?.message,
      stack: err?.stack,
    });
    return c.json({ error: "internal", message: "Internal server error" }, 500);
  });
  // The process's Request and Response stay Node's own (node-server would swap in its own).
  const listener = getRequestListener(front.fetch, {
    overrideGlobalObjects: false,
    autoCleanupIncoming: false,
  });
  return (req, res, next) => {
    pending.set(req, { next });
    listener(req, res).catch((err: unknown) => next(err));
  };
}

const BODY_ERROR = Symbol.for("refinery.deferredBodyError");

/**
 * With a custom app, a body the JSON parser refused is the app's to judge (its routes may read
 * it as they like); the error is kept and reaches a built-in route only if nothing answers first.
 */
export function deferBodyError(req: Request, err: unknown): boolean {
  if ((err as { type?: string } | undefined)?.type !== "entity.parse.failed") return false;
  (req as unknown as Record<symbol, unknown>)[BODY_ERROR] = err;
  return true;
}

function standardRequest(incoming: IncomingMessage, lazy: globalThis.Request): globalThis.Request {
  const headers = new Headers();
  const raw = incoming.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i]!, raw[i + 1]!);
    } catch {
      // A header the Fetch API refuses is left out, as node-server does.
    }
  }
  const method = incoming.method ?? "GET";
  const body = (incoming as { rawBody?: Buffer }).rawBody;
  return new Request(lazy.url, {
    method,
    headers,
    signal: lazy.signal,
    ...(method !== "GET" && method !== "HEAD" && body ? { body: new Uint8Array(body) } : {}),
  });
}

/** Nothing in the app answered: the built-in routes do, with the body as the app left it. */
async function passThrough(c: Context<Env>, pending: WeakMap<IncomingMessage, Pending>) {
  const { incoming, outgoing } = c.env;
  const entry = pending.get(incoming);
  if (!entry) return c.json({ error: "internal", message: "Internal server error" }, 500);
  pending.delete(incoming);
  // Headers the app's middleware set before `await next()` go out with the built-in answer.
  const headers = c.res.headers;
  for (const [name, value] of headers) if (name !== "set-cookie") outgoing.setHeader(name, value);
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) outgoing.setHeader("set-cookie", cookies);

  let error: unknown = (incoming as unknown as Record<symbol, unknown>)[BODY_ERROR];
  const touched = Object.keys(c.req.bodyCache).length > 0 || c.req.raw !== entry.raw;
  if (touched && incoming.method !== "GET" && incoming.method !== "HEAD") {
    // The app read the body, or replaced the request: the route sees what c.req.json() would
    // give it now, as on the LangGraph server.
    try {
      const text = await c.req.text();
      const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim();
      (incoming as Request).body = JSON_TYPE.test(type)
        ? text.trim() === ""
          ? undefined
          : JSON.parse(text)
        : /yaml/i.test(type)
          ? text
          : undefined;
      error = undefined;
    } catch (err) {
      error = Object.assign(new Error((err as Error).message), {
        type: "entity.parse.failed",
        status: 400,
      });
    }
  }
  const done = new Promise<void>((resolveDone) => {
    const end = () => resolveDone();
    outgoing.once("finish", end);
    outgoing.once("close", end);
  });
  entry.next(error);
  await done;
  // The built-in route has answered on the socket; node-server writes nothing more.
  return new Response(null, { headers: { "x-hono-already-sent": "true" } });
}

const GROUPS: { flag: keyof HttpSection; test: (path: string) => boolean }[] = [
  { flag: "disable_meta", test: (p) => p === "/ok" || p === "/info" || p === "/metrics" },
  { flag: "disable_assistants", test: (p) => /^\/assistants(\/|$)/.test(p) },
  {
    flag: "disable_runs",
    test: (p) => /^\/runs(\/|$)/.test(p) || /^\/threads\/[^/]+\/runs(\/|$)/.test(p),
  },
  {
    flag: "disable_threads",
    test: (p) => /^\/threads(\/|$)/.test(p) && !/^\/threads\/[^/]+\/runs(\/|$)/.test(p),
  },
  { flag: "disable_store", test: (p) => /^\/store(\/|$)/.test(p) },
];

/**
 * `http.disable_*`: the built-in routes of a group answer 404, as on the LangGraph server, whose
 * route groups are then not mounted (a custom route at the same path still answers).
 */
export function disabledRoutes(http: HttpSection | undefined): RequestHandler | undefined {
  const off = GROUPS.filter((g) => http?.[g.flag] === true);
  if (off.length === 0) return undefined;
  return (req: Request, res: Response, next: NextFunction) => {
    const group = off.find((g) => g.test(req.path));
    if (!group) return next();
    sendJson(
      res,
      404,
      errorJson(
        new RefineryError("not_found", `No route ${req.method} ${req.path}`, {
          field: `http.${group.flag}`,
          fix: `langgraph.json turns these routes off (http.${group.flag}: true)`,
        }),
      ),
    );
  };
}
