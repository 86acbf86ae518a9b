// Authentication with the built-in API keys (core/api-keys.ts): a presented key is hashed and
// compared in constant time. Every row a caller creates is stamped with its tenant
// (`metadata.tenant_id`), and every read is filtered by it, so tenants never see each other's
// threads, runs or assistants; the role decides which operations are allowed.
import { timingSafeEqual } from "node:crypto";
import { hashKey, ROLES, type ApiKey, type Role } from "../../core/api-keys.ts";
import { RefineryError } from "../../core/errors.ts";
import type { AuthFilters } from "../../core/storage/types.ts";
import type { AuthEvent, AuthUser, Operation, RequestAuth } from "./request.ts";

export { hashKey, loadApiKeys } from "../../core/api-keys.ts";

/** What each role may do; each role includes the ones before it. */
const ALLOWED: Record<Role, ReadonlySet<Operation>> = {
  viewer: new Set(["read"]),
  reviewer: new Set(["read", "review"]),
  member: new Set(["read", "review", "write", "run"]),
  admin: new Set(["read", "review", "write", "run", "admin"]),
};

/** The metadata key that carries a row's tenant. */
export const TENANT_KEY = "tenant_id";

/** The key a request presents: `x-api-key`, else `Authorization: Bearer <key>`. */
export function presentedKey(headers: {
  "x-api-key"?: string | string[];
  authorization?: string;
}): string | undefined {
  const header = headers["x-api-key"];
  const direct = Array.isArray(header) ? header[0] : header;
  if (direct) return direct.trim();
  const auth = headers.authorization;
  const match = auth ? /^Bearer\s+(.+)$/i.exec(auth.trim()) : null;
  return match?.[1]?.trim() || undefined;
}

export class ApiKeyAuth {
  private readonly byHash = new Map<string, ApiKey>();

  constructor(keys: ApiKey[]) {
    for (const k of keys) this.byHash.set(k.hash, k);
  }

  get size(): number {
    return this.byHash.size;
  }

  /** The key's entry, compared in constant time; undefined for an unknown key. */
  find(key: string): ApiKey | undefined {
    const hash = hashKey(key);
    const entry = this.byHash.get(hash);
    // The map finds the entry by the digest; the comparison itself takes the same time however
    // many leading characters match.
    if (!entry || !timingSafeEqual(Buffer.from(hash, "hex"), Buffer.from(entry.hash, "hex")))
      return undefined;
    return entry;
  }

  /**
   * The auth context of a key's holder without the key (a cron firing for its creator): the
   * current key of that identity in that tenant, so a revoked key's crons make no more runs and
   * a changed role applies. Undefined when there is none.
   */
  contextOf(identity: string, tenant: string): RequestAuth | undefined {
    for (const entry of this.byHash.values())
      if (entry.identity === identity && entry.tenant === tenant) return keyContext(entry);
    return undefined;
  }

  /** The auth context for a request presenting `key`; throws `unauthorized` otherwise. */
  authenticate(key: string | undefined): RequestAuth {
    if (!key) {
      throw new RefineryError("unauthorized", "this server needs an API key", {
        fix: "send your key in the x-api-key header (or Authorization: Bearer <key>); the operator lists keys in REFINERY_API_KEYS",
      });
    }
    const entry = this.find(key);
    if (!entry) {
      throw new RefineryError("unauthorized", "the API key is not valid", {
        fix: "check the key you send in x-api-key (or Authorization: Bearer); ask the operator for a new one if it was revoked",
      });
    }
    return keyContext(entry);
  }
}

function keyContext(entry: ApiKey): RequestAuth {
  const user: AuthUser = {
    identity: entry.identity,
    display_name: entry.identity,
    is_authenticated: true,
    permissions: [entry.role],
    tenant: entry.tenant,
    role: entry.role,
  };
  const filters: AuthFilters = { [TENANT_KEY]: entry.tenant };
  const check = (operation: Operation) => {
    if (!ALLOWED[entry.role].has(operation)) {
      throw new RefineryError(
        "forbidden",
        `the ${entry.role} role may not ${OPERATION_WORDS[operation]}`,
        { fix: `use a key whose role allows it (${rolesFor(operation)})` },
      );
    }
  };
  return {
    user,
    scopes: user.permissions,
    partition: entry.tenant,
    storePartition: entry.tenant,
    check,
    async authorize(event: AuthEvent, value: Record<string, unknown>, operation: Operation) {
      check(operation);
      const action = event.split(":")[1];
      if (action === "create" || action === "update" || action === "create_run") {
        // The tenant is the server's to set: whatever the caller sent is replaced.
        const metadata = (value.metadata ?? {}) as Record<string, unknown>;
        value.metadata = { ...metadata, [TENANT_KEY]: entry.tenant };
      }
      return filters;
    },
  };
}

const OPERATION_WORDS: Record<Operation, string> = {
  read: "read",
  review: "answer approvals or give feedback",
  write: "create, change or delete",
  run: "start or cancel runs",
  admin: "do this (it changes the whole server)",
};

function rolesFor(operation: Operation): string {
  return ROLES.filter((r) => ALLOWED[r].has(operation)).join(", ");
}
