// Credentials for auth tests: built-in API keys per tenant and role, HS256 JWTs for the custom
// auth module in test/fixtures/auth, and SDK clients that send them.
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { SignJWT } from "jose";

export const AUTH_FIXTURES = join(import.meta.dirname, "../fixtures/auth");
export const AUTH_CONFIG = join(AUTH_FIXTURES, "langgraph.json");
export const JWT_CONFIG = join(AUTH_FIXTURES, "langgraph.jwt.json");
export const JWT_SECRET = "test-secret-for-refinery-auth-tests-0123456789";

export type Role = "viewer" | "reviewer" | "member" | "admin";

/** A key for `tenant` with `role`: recognisable in failures, long enough to be accepted. */
export const keyOf = (tenant: string, role: Role) => `key-${tenant}-${role}-0123456789abcdef`;

/** REFINERY_API_KEYS for every role of each tenant (plain keys; the file tests use hashes). */
export function keysEnv(tenants: string[]): string {
  const roles: Role[] = ["viewer", "reviewer", "member", "admin"];
  return JSON.stringify(
    tenants.flatMap((tenant) =>
      roles.map((role) => ({
        key: keyOf(tenant, role),
        identity: `${role}@${tenant}`,
        tenant,
        role,
      })),
    ),
  );
}

export function sdkClient(url: string, headers: Record<string, string>): Client {
  return new Client({
    apiUrl: url,
    defaultHeaders: headers,
    callerOptions: { maxRetries: 0, maxConcurrency: 16 },
  });
}

export const keyHeaders = (tenant: string, role: Role = "member") => ({
  "x-api-key": keyOf(tenant, role),
});

export async function jwtFor(
  sub: string,
  permissions: string[] = ["read", "write"],
  secret = JWT_SECRET,
): Promise<string> {
  return new SignJWT({ permissions })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(secret));
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
