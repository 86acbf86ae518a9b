// HTTP plumbing shared by the routes: request parsing with the zod schemas, the error to
// response mapping (one place), and the SSE writer with keep-alive comments.
import type { NextFunction, Request, Response } from "express";
import type { z } from "zod";
import { fromZodError, isRefineryError, RefineryError } from "../core/errors.ts";
import { isHttpAuthError } from "./auth/handlers.ts";
import type { Logger } from "./log.ts";
import { toJson } from "./serde.ts";
import type { RunEvent } from "./stream-hub.ts";

export function parseBody<S extends z.ZodType>(schema: S, value: unknown, where = ""): z.infer<S> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw fromZodError(result.error, where, "invalid_input", schema);
  return result.data;
}

/** How deep a request body may nest: state and configs stay far below; 10,000 levels blew the stack. */
export const MAX_BODY_DEPTH = 100;

/** True when `value` nests deeper than `max` (walked with a stack of its own, not recursion). */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Refuses a parsed JSON body that nests deeper than MAX_BODY_DEPTH, before any route sees it. */
export function bodyDepthGuard(req: Request, _res: Response, next: NextFunction): void {
  if (req.body !== undefined && nestsDeeperThan(req.body, MAX_BODY_DEPTH)) {
    next(
      new RefineryError("invalid_input", `the body nests deeper than ${MAX_BODY_DEPTH} levels`, {
        field: "body",
        fix: `flatten it: objects and lists may nest at most ${MAX_BODY_DEPTH} levels`,
      }),
    );
    return;
  }
  next();
}

export function sendJson(res: Response, status: number, body: unknown): void {
  res.status(status).type("application/json").send(toJson(body));
}

export function notFound(
  what: "Thread" | "Run" | "Assistant" | "Graph" | "Checkpoint" | "Cron",
  id: string,
): RefineryError {
  return new RefineryError("not_found", `${what} not found`, {
    field: `${what.toLowerCase()}_id`,
    fix: `no ${what.toLowerCase()} with id ${id}`,
  });
}

/**
 * The one error body, whatever the path (a RefineryError, a malformed or oversized body, a
 * router error, a missing route, an unexpected failure). `detail` comes first and holds the
 * reason as the LangGraph server words it ("Assistant not found"): the key its Python server
 * sends and LangGraph clients read (the Python SDK reads `message`, then `detail`); the official
 * JS SDK shows the body's text, so its message begins `HTTP 404: {"detail":"Assistant not found"`.
 * Refinery's own keys follow: `error` (the code), `message` (one line: field, reason, fix),
 * `field`, `fix` and `retryable`.
 */
export function errorJson(err: RefineryError): Record<string, unknown> {
  return {
    detail: err.message,
    error: err.code,
    message: err.toLine(),
    ...(err.field ? { field: err.field } : {}),
    ...(err.fix ? { fix: err.fix } : {}),
    retryable: err.retryable,
  };
}

/** Maps every error to a JSON response; only unexpected errors are 500, and never show a stack. */
export function errorHandler(log: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    if (res.headersSent) {
      res.end();
      return;
    }
    const body = err as { type?: string; status?: number; expose?: boolean; message?: string };
    if (body && body.type === "entity.parse.failed") {
      sendJson(
        res,
        400,
        errorJson(
          new RefineryError(
            "bad_request",
            `Malformed JSON body: ${body.message ?? "parse error"}`,
            {
              field: "body",
              fix: "send valid JSON with Content-Type: application/json",
            },
          ),
        ),
      );
      return;
    }
    if (body && body.type === "entity.too.large") {
      sendJson(
        res,
        413,
        errorJson(
          new RefineryError("payload_too_large", "Request body is too large", {
            field: "body",
            fix: "send a smaller body or raise REFINERY_BODY_LIMIT",
          }),
        ),
      );
      return;
    }
    if (
      body &&
      typeof body.status === "number" &&
      body.status >= 400 &&
      body.status < 500 &&
      // The router's "Failed to decode param" is a 400 URIError that is not marked `expose`.
      (body.expose || err instanceof URIError)
    ) {
      const refused = new RefineryError("bad_request", body.message ?? "bad request");
      sendJson(res, body.status, errorJson(refused));
      return;
    }
    if (isHttpAuthError(err)) {
      // Thrown by a LangGraph auth module: answered as the LangGraph server does, its status,
      // its headers and its message as plain text.
      if (err.status >= 500)
        log("error", "auth module failed", {
          method: req.method,
          path: req.path,
          message: err.message,
        });
      for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
      res.status(err.status).type("text/plain; charset=utf-8").send(err.message);
      return;
    }
    if (isRefineryError(err)) {
      if (err.retryAfterMs !== undefined)
        res.setHeader("Retry-After", String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
      if (err.code === "unauthorized") res.setHeader("WWW-Authenticate", 'Bearer realm="refinery"');
      if (err.status >= 500)
        log("error", "request failed", {
          method: req.method,
          path: req.path,
          error: err.code,
          message: err.message,
        });
      sendJson(res, err.status, errorJson(err));
      return;
    }
    log("error", "unexpected error", {
      method: req.method,
      path: req.path,
      message: (err as Error)?.message,
      stack: (err as Error)?.stack,
    });
    sendJson(res, 500, errorJson(new RefineryError("internal", "Internal server error")));
  };
}

export interface SseOptions {
  keepAliveMs: number;
  headers?: Record<string, string>;
}

/** Writes events as `event/data/id` frames, with `: ping` comments while idle. */
export async function writeSse(
  res: Response,
  events: AsyncIterable<RunEvent>,
  options: SseOptions,
): Promise<void> {
  res.status(200);
  res.setHeader("Content-Type", "text/event-stream");
  res.setHeader("Cache-Control", "no-cache");
  res.setHeader("Connection", "keep-alive");
  res.setHeader("X-Accel-Buffering", "no");
  for (const [k, v] of Object.entries(options.headers ?? {})) res.setHeader(k, v);
  res.flushHeaders();
  const ping = setInterval(() => {
    if (!res.writableEnded) res.write(": ping\n\n");
  }, options.keepAliveMs);
  try {
    for await (const e of events) {
      if (res.writableEnded || res.destroyed) break;
      const ok = res.write(`event: ${e.event}\ndata: ${toJson(e.data)}\nid: ${e.id}\n\n`);
      // A client that goes away while its buffer is full never drains: stop waiting on close.
      if (!ok) await drainedOrClosed(res);
    }
  } finally {
    clearInterval(ping);
    if (!res.writableEnded) res.end();
  }
}

function drainedOrClosed(res: Response): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
}

/** Resolves `work` while sending a newline every `everyMs` so proxies keep the request open. */
export async function writeJsonWithKeepAlive(
  res: Response,
  work: Promise<unknown>,
  headers: Record<string, string>,
  everyMs = 1000,
): Promise<void> {
  res.status(200);
  res.setHeader("Content-Type", "application/json");
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  let timer: NodeJS.Timeout | undefined = setInterval(() => {
    if (!res.headersSent) res.flushHeaders();
    res.write("\n");
  }, everyMs);
  // The connection can go first (client gone, or cut at shutdown while `work` never settles).
  res.once("close", () => {
    clearInterval(timer);
    timer = undefined;
  });
  try {
    const result = await work;
    clearInterval(timer);
    timer = undefined;
    res.end(toJson(result));
  } finally {
    if (timer) clearInterval(timer);
  }
}
