// Built-in API keys for teams without an auth module: REFINERY_API_KEYS (inline JSON, or the
// path of a JSON/YAML file) maps each key to an identity, a tenant and a role. Keys may be
// stored as their SHA-256; a presented key is hashed and compared in constant time. Every row a
// caller creates is stamped with its tenant (`metadata.tenant_id`), and every read is filtered
// by it, so tenants never see each other's threads, runs or assistants.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { fromZodError, RefineryError } from "../../core/errors.ts";
import type { AuthFilters } from "../../core/storage/types.ts";
import type { AuthEvent, AuthUser, Operation, RequestAuth } from "./request.ts";

export const ROLES = ["viewer", "reviewer", "member", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** What each role may do; each role includes the ones before it. */
const ALLOWED: Record<Role, ReadonlySet<Operation>> = {
  viewer: new Set(["read"]),
  reviewer: new Set(["read", "review"]),
  member: new Set(["read", "review", "write", "run"]),
  admin: new Set(["read", "review", "write", "run", "admin"]),
};

/** The metadata key that carries a row's tenant. */
export const TENANT_KEY = "tenant_id";

const MIN_KEY_LENGTH = 20;
const Name = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .regex(/^[^\s"]+$/, "must not contain spaces or quotes");

const KeyEntry = z
  .object({
    key: z
      .string()
      .min(MIN_KEY_LENGTH, `a key must be at least ${MIN_KEY_LENGTH} characters`)
      .optional(),
    key_sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/i, "key_sha256 must be the 64 hex digits of the key's SHA-256")
      .optional(),
    identity: Name,
    tenant: Name,
    role: z.enum(ROLES, { error: `role must be one of ${ROLES.join(", ")}` }),
  })
  .strict()
  .refine((e) => (e.key === undefined) !== (e.key_sha256 === undefined), {
    message: "give exactly one of key or key_sha256",
    path: ["key"],
  });

const KeyList = z.array(KeyEntry).min(1, "list at least one key");
const KeysObject = z.object({ keys: KeyList }).strict();

export interface ApiKey {
  /** Lower-case hex SHA-256 of the key. */
  hash: string;
  identity: string;
  tenant: string;
  role: Role;
}

export function hashKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** A new random key (URL-safe, 192 bits) and its entry for a keys file. */
export function newKey(entry: { identity: string; tenant: string; role: Role }): {
  key: string;
  entry: Record<string, string>;
} {
  const key = `rk_${randomBytes(24).toString("base64url")}`;
  return { key, entry: { key_sha256: hashKey(key), ...entry } };
}

/**
 * Reads REFINERY_API_KEYS: JSON when it starts with `[` or `{`, else the path of a JSON or YAML
 * file. Undefined when unset. Throws a RefineryError naming the entry and field.
 */
export function loadApiKeys(raw: string | undefined, cwd = process.cwd()): ApiKey[] | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const text = raw.trim();
  let doc: unknown;
  let where = "REFINERY_API_KEYS";
  if (text.startsWith("[") || text.startsWith("{")) {
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new RefineryError("invalid_config", `is not valid JSON (${(err as Error).message})`, {
        field: where,
        fix: 'set it to a JSON list such as [{"key_sha256": "...", "identity": "alice", "tenant": "acme", "role": "admin"}], or to the path of a JSON or YAML file',
      });
    }
  } else {
    const path = resolve(cwd, text);
    where = `REFINERY_API_KEYS (${path})`;
    let body: string;
    try {
      body = readFileSync(path, "utf8");
    } catch (err) {
      throw new RefineryError(
        "invalid_config",
        `cannot read the keys file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        {
          field: "REFINERY_API_KEYS",
          fix: "point it at a readable JSON or YAML keys file, or give the keys inline as JSON",
        },
      );
    }
    try {
      doc = parseYaml(body); // YAML is a superset of JSON
    } catch (err) {
      throw new RefineryError("invalid_config", `the keys file is not valid YAML or JSON`, {
        field: where,
        fix: (err as Error).message.split("\n")[0],
      });
    }
  }
  // A list, or {keys: [...]}: parsed as the one it is, so errors name the entry and field.
  const parsed = Array.isArray(doc) ? KeyList.safeParse(doc) : KeysObject.safeParse(doc);
  if (!parsed.success) throw fromZodError(parsed.error, where, "invalid_config");
  const entries = Array.isArray(parsed.data) ? parsed.data : parsed.data.keys;
  const keys = entries.map((e) => ({
    hash: (e.key_sha256 ?? hashKey(e.key!)).toLowerCase(),
    identity: e.identity,
    tenant: e.tenant,
    role: e.role,
  }));
  const seen = new Set<string>();
  keys.forEach((k, i) => {
    if (seen.has(k.hash))
      throw new RefineryError("invalid_config", "the same key is listed twice", {
        field: `${where}[${i}]`,
        fix: "give every identity its own key",
      });
    seen.add(k.hash);
  });
  return keys;
}

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
