// GET /ok reports the database and, with REFINERY_REDIS_URL, Redis (the real Redis, under a key
// prefix of this file's own): Redis down is degraded, not unhealthy (200, redis.ok false), and
// runs still finish; the database not answering is a 503 (server/routes/meta.ts).
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";
import { TEST_BACKEND } from "../support/test-backend.ts";

const REDIS_URL = process.env.REFINERY_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = `refinery-test-health-${randomBytes(4).toString("hex")}`;
const servers: TestServer[] = [];

afterAll(async () => {
  for (const s of servers) await s.close();
  const { Redis } = await import("ioredis");
  const r = new Redis(REDIS_URL);
  const keys = await r.keys(`${PREFIX}:*`);
  if (keys.length) await r.del(...keys);
  r.disconnect();
});

async function ok(s: TestServer): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${s.url}/ok`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("GET /ok", () => {
  it("without Redis reports the database only", async () => {
    const s = await startTestServer();
    servers.push(s);
    expect(await ok(s)).toEqual({
      status: 200,
      body: { ok: true, database: { kind: TEST_BACKEND, ok: true } },
    });
  });

  it("with Redis up reports it answering", async () => {
    const s = await startTestServer({
      env: { REFINERY_REDIS_URL: REDIS_URL, REFINERY_REDIS_PREFIX: PREFIX },
    });
    servers.push(s);
    expect(await ok(s)).toEqual({
      status: 200,
      body: { ok: true, database: { kind: TEST_BACKEND, ok: true }, redis: { ok: true } },
    });
  });

  it("with Redis unreachable answers 200 with redis.ok false, and runs still finish", async () => {
    const s = await startTestServer({
      env: { REFINERY_REDIS_URL: "redis://127.0.0.1:1", REFINERY_REDIS_PREFIX: PREFIX },
    });
    servers.push(s);
    const { status, body } = await ok(s);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      ok: true,
      database: { kind: TEST_BACKEND, ok: true },
      redis: { ok: false },
    });
    expect((body.redis as { error: string }).error).toMatch(/Redis/);
    const thread = await s.client.threads.create();
    const values = await s.client.runs.wait(thread.thread_id, "slow", {
      input: { topic: "degraded", delayMs: 0 },
    });
    expect(values).toMatchObject({ log: ["one", "two", "three"] });
  });
});
