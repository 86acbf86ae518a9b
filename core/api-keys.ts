// Built-in API keys: the keys document (REFINERY_API_KEYS, inline JSON or a JSON/YAML file) that
// maps each key to an identity, a tenant and a role. Keys may be stored as their SHA-256 only.
// The server authenticates with them (server/auth/api-keys.ts); `refinery keys` makes them.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { fromZodError, RefineryError } from "./errors.ts";

export const ROLES = ["viewer", "reviewer", "member", "admin"] as const;
export type Role = (typeof ROLES)[number];

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
