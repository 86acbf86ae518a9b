// The request's auth context: who is calling (identity, permissions), which data partition they
// work in, and the one place routes ask "may this caller do X, and which rows may it see?". The
// auth middleware (server/auth/middleware.ts) attaches it to every request; without auth
// configured every request gets the open context (no filters, partition "").
import type { Request } from "express";
import type { AuthFilters } from "../../core/storage/types.ts";

/** The user as LangGraph's auth returns it (extra fields from `authenticate` are kept). */
export interface AuthUser {
  identity: string;
  display_name: string;
  is_authenticated: boolean;
  permissions: string[];
  [key: string]: unknown;
}

export type AuthResource = "threads" | "assistants" | "crons" | "store";
export type AuthAction =
  | "create"
  | "read"
  | "update"
  | "delete"
  | "search"
  | "create_run"
  | "put"
  | "get"
  | "list_namespaces";
export type AuthEvent = `${AuthResource}:${AuthAction}`;

/**
 * What a caller does, in Refinery's own terms, for the built-in roles (viewer < reviewer <
 * member < admin). A custom auth module sees the LangGraph event instead.
 */
export type Operation = "read" | "write" | "review" | "run" | "admin";

export interface RequestAuth {
  /** The authenticated user; undefined when the server runs without auth. */
  readonly user?: AuthUser;
  readonly scopes: string[];
  /**
   * The data partition of the caller: its tenant with built-in keys, `user.tenant` (else the
   * identity) with a custom auth module, "" without auth. Lessons, eval jobs, exports and the
   * per-tenant run cap are kept per partition.
   */
  readonly partition: string;
  /**
   * The store partition (/store/* and `config.store` in runs): the tenant with built-in keys;
   * absent otherwise, where the store is shared as on LangGraph's server (handlers may narrow it).
   */
  readonly storePartition?: string;
  /**
   * Runs the auth handler for `event` (LangGraph semantics): throws an HttpAuthError to refuse,
   * may change `value` in place (e.g. stamp `metadata.owner`), returns the filters every row the
   * caller touches must match (undefined: no restriction). `operation` is what the built-in
   * roles check.
   */
  authorize(
    event: AuthEvent,
    value: Record<string, unknown>,
    operation: Operation,
  ): Promise<AuthFilters | undefined>;
  /** Throws `forbidden` unless the caller may do `operation` (for routes with no auth event). */
  check(operation: Operation): void;
}

/** Without auth: everyone may do everything and sees everything. */
export const OPEN_AUTH: RequestAuth = {
  scopes: [],
  partition: "",
  authorize: async () => undefined,
  check: () => undefined,
};

const KEY = Symbol.for("refinery.auth");

export function setAuth(req: Request, auth: RequestAuth): void {
  (req as unknown as Record<symbol, RequestAuth>)[KEY] = auth;
}

/** The request's auth context (the open one when no middleware set it). */
export function authOf(req: Request): RequestAuth {
  return (req as unknown as Record<symbol, RequestAuth | undefined>)[KEY] ?? OPEN_AUTH;
}
