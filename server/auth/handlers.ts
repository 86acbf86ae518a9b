// Runs a LangGraph `Auth` object (from `@langchain/langgraph-sdk/auth`) exactly as the LangGraph
// server does (libs/langgraph-api/src/auth/index.mts): `authenticate(request)` gives the user,
// and for every resource/action the first handler among "resource:action", "resource",
// "*:action", "*" may refuse, may change the value in place, and may return row filters.
import type { AuthFilters } from "../../core/storage/types.ts";
import type { AuthEvent, AuthUser } from "./request.ts";

/** What an `Auth` instance keeps: the SDK stores its callbacks under "~handlerCache". */
export interface HandlerCache {
  authenticate?: (request: Request) => unknown;
  callbacks?: Record<string, (params: Record<string, unknown>) => unknown>;
}

/**
 * An error an auth module threw with an HTTP status (the SDK's `HTTPException`, or anything with
 * `status` and `headers`): answered as LangGraph does, a plain-text body with its message.
 */
export class HttpAuthError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpAuthError";
  }
}

export function isHttpAuthError(value: unknown): value is HttpAuthError {
  return value instanceof HttpAuthError;
}

/** LangGraph's convertError: a thrown `{status, headers}` keeps its status, others are 500s. */
export function convertAuthError(error: unknown): unknown {
  if (typeof error === "object" && error !== null && "status" in error && "headers" in error) {
    const e = error as { status: unknown; headers: unknown; message?: unknown };
    const status =
      typeof e.status === "number" && e.status >= 400 && e.status < 600 ? e.status : 500;
    const message = typeof e.message === "string" && e.message ? e.message : "Unauthorized";
    return new HttpAuthError(status, message, headersOf(e.headers));
  }
  return error;
}

function headersOf(raw: unknown): Record<string, string> {
  if (!raw || typeof raw !== "object") return {};
  const out: Record<string, string> = {};
  const entries =
    raw instanceof Headers
      ? [...raw.entries()]
      : Array.isArray(raw)
        ? (raw as [string, string][])
        : Object.entries(raw as Record<string, unknown>);
  for (const [k, v] of entries) if (typeof v === "string") out[k] = v;
  return out;
}

/** Calls `authenticate` and normalises what it returns, as LangGraph does. */
export async function authenticateWith(
  cache: HandlerCache,
  request: Request,
): Promise<{ user: AuthUser; scopes: string[] } | undefined> {
  if (!cache.authenticate) return undefined;
  let response: unknown;
  try {
    response = await cache.authenticate(request);
  } catch (error) {
    throw convertAuthError(error);
  }
  if (typeof response === "string") {
    return {
      scopes: [],
      user: { permissions: [], identity: response, display_name: response, is_authenticated: true },
    };
  }
  if (
    typeof response === "object" &&
    response !== null &&
    typeof (response as { identity?: unknown }).identity === "string"
  ) {
    const r = response as Record<string, unknown> & { identity: string };
    const scopes = Array.isArray(r.permissions)
      ? (r.permissions as unknown[]).filter((p): p is string => typeof p === "string")
      : [];
    return {
      scopes,
      user: {
        ...r,
        permissions: scopes,
        is_authenticated: typeof r.is_authenticated === "boolean" ? r.is_authenticated : true,
        display_name: typeof r.display_name === "string" ? r.display_name : r.identity,
      },
    };
  }
  throw new Error(
    "Invalid auth response received. Make sure to either return a `string` or an object with `identity` property.",
  );
}

/** The handler for an event: the first of "resource:action", "resource", "*:action", "*". */
export function handlerFor(cache: HandlerCache, event: AuthEvent) {
  const [resource, action] = event.split(":") as [string, string];
  const key = [`${resource}:${action}`, resource, `*:${action}`, "*"].find(
    (k) => cache.callbacks?.[k],
  );
  return key ? cache.callbacks![key] : undefined;
}

/**
 * Runs the event's handler: undefined / null / true allow, false is a 403, an object is the
 * filters, anything else is a 500. The handler may change `value` in place.
 */
export async function runHandler(
  cache: HandlerCache,
  event: AuthEvent,
  value: Record<string, unknown>,
  context: { user: AuthUser; scopes: string[] },
): Promise<AuthFilters | undefined> {
  const handler = handlerFor(cache, event);
  if (!handler) return undefined;
  const [resource, action] = event.split(":");
  let result: unknown;
  try {
    result = await handler({
      event,
      resource,
      action,
      value,
      permissions: context.scopes,
      user: context.user,
    });
  } catch (error) {
    throw convertAuthError(error);
  }
  if (result == null || result === true) return undefined;
  if (result === false) throw new HttpAuthError(403, "");
  if (typeof result !== "object" || Array.isArray(result)) {
    throw new HttpAuthError(
      500,
      `Auth handler returned invalid result. Expected filter object, null, undefined or boolean. Got "${typeof result}" instead.`,
    );
  }
  return result as AuthFilters;
}
