// A LangGraph auth module named in langgraph.json (`"auth": {"path": "./auth.ts:auth"}`): an
// `Auth` instance from `@langchain/langgraph-sdk/auth`, loaded and run with the LangGraph
// server's semantics (handlers.ts), so an auth module written for it works unchanged.
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { fromZodError, RefineryError } from "../../core/errors.ts";
import { authenticateWith, runHandler, type HandlerCache } from "./handlers.ts";
import type { AuthUser, Operation, RequestAuth } from "./request.ts";
import { importModuleSpec } from "../../core/import-module.ts";

const AuthSection = z
  .object({
    path: z.string().min(1).optional(),
    disable_studio_auth: z.boolean().optional(),
  })
  .loose();

/** The permission an auth module grants for Refinery's server-wide operations. */
export const ADMIN_PERMISSION = "admin";

/** The `auth` section of a langgraph.json, or undefined when it has none (or no path). */
export function authSectionOf(configPath: string | undefined): { path: string } | undefined {
  if (!configPath) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(configPath, "utf8"));
  } catch {
    return undefined; // the graph registry reports an unreadable langgraph.json
  }
  const raw = (doc as { auth?: unknown } | null)?.auth;
  if (raw === undefined || raw === null) return undefined;
  const parsed = AuthSection.safeParse(raw);
  if (!parsed.success) throw fromZodError(parsed.error, "auth", "invalid_config");
  return parsed.data.path ? { path: parsed.data.path } : undefined;
}

/** Imports `./file.ts:export` (default export without `:`) relative to the langgraph.json. */
export async function loadAuthModule(configPath: string, spec: string): Promise<HandlerCache> {
  const { name, mod } = await importModuleSpec(
    dirname(configPath),
    spec,
    "auth.path",
    "the auth module",
  );
  const auth = mod[name] as { "~handlerCache"?: HandlerCache } | undefined;
  if (!auth || typeof auth !== "object" || !("~handlerCache" in auth)) {
    throw new RefineryError(
      "invalid_config",
      `${spec} is not an Auth instance from @langchain/langgraph-sdk/auth`,
      {
        field: "auth.path",
        fix: `export one, e.g. export const ${name === "default" ? "auth" : name} = new Auth().authenticate(...)`,
      },
    );
  }
  return auth["~handlerCache"]!;
}

/** The request context of a user the module authenticated. */
export function customContext(cache: HandlerCache, user: AuthUser, scopes: string[]): RequestAuth {
  const tenant = [user.tenant, user.tenant_id].find((t) => typeof t === "string" && t !== "");
  const check = (operation: Operation) => {
    if (operation === "admin" && !scopes.includes(ADMIN_PERMISSION)) {
      throw new RefineryError("forbidden", "this operation changes the whole server", {
        fix: `the auth module must grant the "${ADMIN_PERMISSION}" permission to the caller`,
      });
    }
  };
  return {
    user,
    scopes,
    partition: (tenant as string | undefined) ?? user.identity,
    check,
    async authorize(event, value, operation: Operation) {
      check(operation);
      return runHandler(cache, event, value, { user, scopes });
    },
  };
}

export { authenticateWith };
