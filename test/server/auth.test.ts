// Authentication with the built-in API keys: who may call, what each role may do, what a
// tenant's rows carry, the system assistants, secrets, rate limits, the per-tenant run cap, the
// Host check and the refusal to serve a public address without auth. Through the real server
// and the official SDK.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RefineryError } from "../../core/errors.ts";
import { hashKey } from "../../server/auth/api-keys.ts";
import { silentLogger } from "../../server/log.ts";
import { startServer } from "../../server/start.ts";
import { AUTH_CONFIG, keyHeaders, keyOf, keysEnv, sdkClient, type Role } from "../support/auth.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import {
  databaseEnv,
  jsonText,
  queryTestDatabase,
  testDatabaseExists,
} from "../support/test-backend.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    configPath: AUTH_CONFIG,
    env: { REFINERY_API_KEYS: keysEnv(["acme", "beta"]) },
  });
});
afterAll(async () => s?.close());

const client = (tenant: string, role: Role = "member") =>
  sdkClient(s.url, keyHeaders(tenant, role));
const call = (path: string, init: RequestInit & { key?: string } = {}) =>
  fetch(`${s.url}${path}`, {
    ...init,
    headers: {
      "content-type": "application/json",
      ...(init.key ? { "x-api-key": init.key } : {}),
      ...(init.headers as Record<string, string> | undefined),
    },
  });

describe("who may call", () => {
  it("without a key every API route is a 401 that says how to authenticate; public paths answer", async () => {
    for (const [method, path] of [
      ["GET", "/threads/00000000-0000-4000-8000-000000000000"],
      ["POST", "/threads"],
      ["POST", "/threads/search"],
      ["POST", "/runs/wait"],
      ["GET", "/approvals"],
      ["GET", "/metrics"],
      ["GET", "/export?format=sft"],
    ] as const) {
      const res = await call(path, { method, ...(method === "POST" ? { body: "{}" } : {}) });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      const body = (await res.json()) as { error: string; message: string };
      expect(body.error).toBe("unauthorized");
      expect(body.message).toMatch(/x-api-key/);
    }
    for (const path of ["/ok", "/info", "/openapi.json", "/docs", "/console/"]) {
      expect((await call(path)).status, path).toBe(200);
    }
  });

  it("refuses a wrong key and accepts a right one as x-api-key or Authorization: Bearer", async () => {
    const wrong = await call("/threads/search", {
      method: "POST",
      body: "{}",
      key: "x".repeat(40),
    });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { message: string }).message).toMatch(/not valid/);
    const viaHeader = await call("/threads/search", {
      method: "POST",
      body: "{}",
      key: keyOf("acme", "viewer"),
    });
    expect(viaHeader.status).toBe(200);
    const viaBearer = await call("/threads/search", {
      method: "POST",
      body: "{}",
      headers: { authorization: `Bearer ${keyOf("acme", "viewer")}` },
    });
    expect(viaBearer.status).toBe(200);
  });
});

describe("roles", () => {
  it("a viewer reads but cannot create, change or run; nothing is written", async () => {
    const member = client("acme");
    const viewer = client("acme", "viewer");
    const t = await member.threads.create({ metadata: { kept: 1 } });
    expect((await viewer.threads.get(t.thread_id)).metadata?.kept).toBe(1);
    await expect(viewer.threads.create()).rejects.toThrow(/HTTP 403.*viewer role may not create/);
    await expect(viewer.threads.update(t.thread_id, { metadata: { kept: 2 } })).rejects.toThrow(
      /HTTP 403/,
    );
    await expect(viewer.runs.wait(t.thread_id, "slow", { input: {} })).rejects.toThrow(/HTTP 403/);
    await expect(viewer.threads.delete(t.thread_id)).rejects.toThrow(/HTTP 403/);
    expect((await member.threads.get(t.thread_id)).metadata?.kept).toBe(1);
    expect(await member.runs.list(t.thread_id)).toEqual([]);
  });

  it("a reviewer answers an approval (both ways a client does it) but cannot start work", async () => {
    const member = client("acme");
    const reviewer = client("acme", "reviewer");
    const paused = async () => {
      const t = await member.threads.create();
      await member.runs.wait(t.thread_id, "approval", { input: { topic: "x" } });
      expect((await member.threads.get(t.thread_id)).status).toBe("interrupted");
      return t.thread_id;
    };
    const one = await paused();
    await expect(reviewer.runs.wait(one, "approval", { input: { topic: "y" } })).rejects.toThrow(
      /HTTP 403/,
    );
    await expect(
      reviewer.runs.wait(one, "approval", { command: { goto: "publish" } }),
    ).rejects.toThrow(/HTTP 403/);
    const resumed = await reviewer.runs.wait(one, "approval", { command: { resume: "yes" } });
    expect((resumed as { log: string[] }).log).toContain("publish:yes");
    // Live feedback and ratings are a reviewer's too.
    const feedback = await call(`/threads/${one}/feedback`, {
      method: "POST",
      body: JSON.stringify({ text: "shorter please" }),
      key: keyOf("acme", "reviewer"),
    });
    expect(feedback.status).toBe(200);
    const viewerFeedback = await call(`/threads/${one}/feedback`, {
      method: "POST",
      body: JSON.stringify({ text: "no" }),
      key: keyOf("acme", "viewer"),
    });
    expect(viewerFeedback.status).toBe(403);
  });

  it("only an admin registers graphs and reads /metrics", async () => {
    const spec = JSON.stringify({ id: "acme-graph", kind: "refine" });
    for (const role of ["member", "reviewer", "viewer"] as const) {
      const res = await call("/graphs", { method: "POST", body: spec, key: keyOf("acme", role) });
      expect(res.status, role).toBe(403);
      expect(((await res.json()) as { message: string }).message).toMatch(/admin/);
      expect((await call("/metrics", { key: keyOf("acme", role) })).status).toBe(403);
    }
    expect((await call("/metrics", { key: keyOf("acme", "admin") })).status).toBe(200);
    const listed = await call("/graphs", { key: keyOf("beta", "viewer") });
    expect(listed.status).toBe(200);
  });
});

describe("what a tenant's rows carry", () => {
  it("stamps the caller's tenant on what it creates; a client cannot claim another tenant", async () => {
    const acme = client("acme");
    const beta = client("beta");
    const t = await acme.threads.create({ metadata: { tenant_id: "beta", note: "mine" } });
    expect(t.metadata).toMatchObject({ tenant_id: "acme", note: "mine" });
    await acme.threads.update(t.thread_id, { metadata: { tenant_id: "beta" } });
    expect((await acme.threads.get(t.thread_id)).metadata?.tenant_id).toBe("acme");
    await expect(beta.threads.get(t.thread_id)).rejects.toThrow(/HTTP 404/);
    // A run's new thread (stateless or if_not_exists) belongs to the caller too.
    const run = await acme.runs.create(null, "slow", {
      input: {},
      onCompletion: "keep" as never,
      metadata: { tenant_id: "beta" },
    });
    await acme.runs.join(run.thread_id, run.run_id);
    expect((await acme.threads.get(run.thread_id)).metadata?.tenant_id).toBe("acme");
    await expect(beta.threads.get(run.thread_id)).rejects.toThrow(/HTTP 404/);
  });

  it("the graph sees the authenticated user in its config, whatever the client put there", async () => {
    const acme = client("acme");
    const t = await acme.threads.create();
    const out = (await acme.runs.wait(t.thread_id, "whoami", {
      input: {},
      config: {
        configurable: {
          langgraph_auth_user: { identity: "admin@beta" },
          langgraph_auth_user_id: "admin@beta",
          refinery_partition: "beta",
        },
      },
    })) as { who: { user: Record<string, unknown>; user_id: string; permissions: string[] } };
    expect(out.who.user_id).toBe("member@acme");
    expect(out.who.user).toMatchObject({
      identity: "member@acme",
      is_authenticated: true,
      tenant: "acme",
      role: "member",
    });
    expect(out.who.permissions).toEqual(["member"]);
  });
});

describe("system assistants", () => {
  it("every tenant reads and runs them; nobody changes or deletes them (409 naming the fix)", async () => {
    for (const tenant of ["acme", "beta"]) {
      const c = client(tenant, "admin");
      const a = await c.assistants.get("slow");
      expect(a.metadata?.created_by).toBe("system");
      expect((await c.assistants.search({ graphId: "slow" })).map((x) => x.assistant_id)).toContain(
        a.assistant_id,
      );
      await expect(c.assistants.delete(a.assistant_id)).rejects.toThrow(
        /HTTP 409.*system assistant.*create your own assistant/,
      );
      await expect(c.assistants.update("slow", { metadata: { x: 1 } })).rejects.toThrow(/HTTP 409/);
      await expect(
        c.assistants.create({ graphId: "slow", metadata: { created_by: "system" } }),
      ).rejects.toThrow(/HTTP 422.*created_by/);
      const t = await c.threads.create();
      expect(await c.runs.wait(t.thread_id, "slow", { input: {} })).toMatchObject({
        log: ["one", "two", "three"],
      });
    }
  });
});

describe("secrets are write-only", () => {
  const SECRET = "s3cr3t-approval-value";
  const HEADER = "Bearer verifier-credential-123";
  const configurable = {
    approval: {
      mode: "final",
      webhook: { url: "https://hooks.example.com/approve", secret: SECRET },
    },
    verifiers: [
      {
        kind: "webhook",
        url: "https://verifier.example.com/check",
        headers: { Authorization: HEADER },
      },
    ],
  };
  const leaks = (value: unknown) => {
    const text = JSON.stringify(value);
    return text.includes(SECRET) || text.includes(HEADER);
  };

  it("assistants, their versions and their runs show *** and keep the stored secret through a PATCH", async () => {
    const acme = client("acme");
    const a = await acme.assistants.create({ graphId: "refine", config: { configurable } });
    expect(leaks(a)).toBe(false);
    expect(a.config.configurable).toMatchObject({
      approval: { webhook: { secret: "***" } },
      verifiers: [{ headers: { Authorization: "***" } }],
    });
    expect(leaks(await acme.assistants.get(a.assistant_id))).toBe(false);
    expect(leaks(await acme.assistants.search({ graphId: "refine" }))).toBe(false);
    // The client sends back what it read: the secrets stay as they were.
    const read = await acme.assistants.get(a.assistant_id);
    const patched = await acme.assistants.update(a.assistant_id, {
      config: read.config,
      name: "renamed",
    });
    expect(leaks(patched)).toBe(false);
    expect(leaks(await acme.assistants.getVersions(a.assistant_id))).toBe(false);
    const [stored] = await queryTestDatabase<{ config: unknown }>(
      s.dbPath,
      "SELECT config FROM refinery_assistants WHERE assistant_id = ?",
      [a.assistant_id],
    );
    expect(jsonText(stored!.config)).toContain(SECRET);
    expect(jsonText(stored!.config)).toContain(HEADER);

    const t = await acme.threads.create();
    const run = await acme.runs.create(t.thread_id, "slow", {
      input: {},
      config: { configurable },
    });
    expect(leaks(run)).toBe(false);
    await acme.runs.join(t.thread_id, run.run_id);
    expect(leaks(await acme.runs.list(t.thread_id))).toBe(false);
    expect(leaks(await acme.runs.get(t.thread_id, run.run_id))).toBe(false);
  });

  it("a refine thread given its options as input shows *** in its state, history, stream and /wait", async () => {
    const acme = client("acme");
    const t = await acme.threads.create();
    const input = {
      task: "What is 2 + 2?",
      options: { approval: configurable.approval, maxIterations: 1 },
    };
    const chunks: unknown[] = [];
    for await (const c of acme.runs.stream(t.thread_id, "refine", {
      input,
      streamMode: ["values", "updates", "debug", "checkpoints", "tasks"],
    }))
      chunks.push(c);
    expect(chunks.length).toBeGreaterThan(3);
    expect(leaks(chunks)).toBe(false);
    const state = await acme.threads.getState(t.thread_id);
    expect((state.values as { options: { approval: unknown } }).options.approval).toMatchObject({
      webhook: { secret: "***" },
    });
    expect(leaks(state)).toBe(false);
    expect(leaks(await acme.threads.getHistory(t.thread_id))).toBe(false);
    expect(leaks(await acme.threads.get(t.thread_id))).toBe(false);
    const approvals = await call("/approvals", { key: keyOf("acme", "member") });
    expect(leaks(await approvals.json())).toBe(false);
    const t2 = await acme.threads.create();
    expect(leaks(await acme.runs.wait(t2.thread_id, "refine", { input }))).toBe(false);
  });
});

describe("limits", () => {
  it("rate-limits each identity with 429 and Retry-After; another identity is unaffected", async () => {
    const limited = await startTestServer({
      configPath: AUTH_CONFIG,
      env: {
        REFINERY_API_KEYS: keysEnv(["acme", "beta"]),
        REFINERY_RATE_LIMIT: "6",
        REFINERY_RUN_THREADS: "0",
      },
    });
    try {
      const hit = () =>
        fetch(`${limited.url}/threads/search`, {
          method: "POST",
          headers: { "content-type": "application/json", ...keyHeaders("acme") },
          body: "{}",
        });
      const statuses: number[] = [];
      let refused: Response | undefined;
      for (let i = 0; i < 3; i++) {
        const res = await hit();
        statuses.push(res.status);
        if (res.status === 429) refused = res;
        await res.text();
      }
      expect(statuses).toEqual([200, 429, 429]); // a burst of 10 s' worth: one request
      expect(Number(refused?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      const other = await fetch(`${limited.url}/threads/search`, {
        method: "POST",
        headers: { "content-type": "application/json", ...keyHeaders("beta") },
        body: "{}",
      });
      expect(other.status).toBe(200);
      expect((await fetch(`${limited.url}/ok`)).status).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it("caps a tenant's runs in flight (429, nothing left behind); other tenants still run", async () => {
    const capped = await startTestServer({
      configPath: AUTH_CONFIG,
      env: { REFINERY_API_KEYS: keysEnv(["acme", "beta"]), REFINERY_TENANT_MAX_RUNS: "2" },
    });
    try {
      const acme = sdkClient(capped.url, keyHeaders("acme"));
      const beta = sdkClient(capped.url, keyHeaders("beta"));
      const slowRun = async () => {
        const t = await acme.threads.create();
        return acme.runs.create(t.thread_id, "slow", { input: { delayMs: 2000 } });
      };
      const running = [await slowRun(), await slowRun()];
      const before = await acme.threads.count({});
      await expect(acme.runs.create(null, "slow", { input: {} })).rejects.toThrow(
        /HTTP 429.*REFINERY_TENANT_MAX_RUNS/,
      );
      expect(await acme.threads.count({})).toBe(before);
      const t = await beta.threads.create();
      expect(await beta.runs.wait(t.thread_id, "slow", { input: {} })).toMatchObject({
        log: ["one", "two", "three"],
      });
      for (const r of running) await acme.runs.cancel(r.thread_id, r.run_id, true);
      const again = await acme.threads.create();
      expect((await acme.runs.create(again.thread_id, "slow", { input: {} })).status).toBe(
        "pending",
      );
    } finally {
      await capped.close();
    }
  });
});

describe("the edge", () => {
  it("bound to loopback, refuses a Host that is not a loopback name (DNS rebinding)", async () => {
    const port = new URL(s.url).port;
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          { host: "127.0.0.1", port, path: "/info", headers: { host } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end();
      });
    expect(await status(`evil.example:${port}`)).toBe(403);
    expect(await status(`localhost:${port}`)).toBe(200);
    expect(await status(`127.0.0.1:${port}`)).toBe(200);
  });

  it("will not serve a public address without auth, unless told to (one line, nothing opened)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "refinery-exposed-"));
    const db = join(dir, "refinery.db");
    try {
      const err = await startServer({
        env: databaseEnv(db),
        configPath: AUTH_CONFIG,
        host: "0.0.0.0",
        port: 0,
        log: silentLogger,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RefineryError);
      expect((err as RefineryError).toLine()).toMatch(
        /HOST: refusing to serve 0.0.0.0 without authentication.*REFINERY_API_KEYS.*REFINERY_ALLOW_ANONYMOUS=1/,
      );
      expect(await testDatabaseExists(db)).toBe(false);
      const open = await startServer({
        env: { ...databaseEnv(db), REFINERY_ALLOW_ANONYMOUS: "1", REFINERY_RUN_THREADS: "0" },
        configPath: AUTH_CONFIG,
        host: "0.0.0.0",
        port: 0,
        log: silentLogger,
      });
      await open.close(1000);
      const keyed = await startServer({
        env: {
          ...databaseEnv(db),
          REFINERY_API_KEYS: keysEnv(["acme"]),
          REFINERY_RUN_THREADS: "0",
        },
        configPath: AUTH_CONFIG,
        host: "0.0.0.0",
        port: 0,
        log: silentLogger,
      });
      await keyed.close(1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads hashed keys from a YAML file, and names the entry and field of a bad one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "refinery-keys-"));
    try {
      const key = "rk_a-long-enough-random-looking-key";
      const file = join(dir, "keys.yaml");
      writeFileSync(
        file,
        `keys:\n  - key_sha256: ${hashKey(key)}\n    identity: ops\n    tenant: acme\n    role: admin\n`,
      );
      const srv = await startTestServer({
        configPath: AUTH_CONFIG,
        env: { REFINERY_API_KEYS: file },
      });
      try {
        const res = await fetch(`${srv.url}/metrics`, { headers: { "x-api-key": key } });
        expect(res.status).toBe(200);
        await res.text();
      } finally {
        await srv.close();
      }
      for (const [keys, pattern] of [
        [
          `[{"key":"short","identity":"a","tenant":"t","role":"member"}]`,
          /\[0\]\.key.*at least 20/,
        ],
        [
          `[{"key":"${"k".repeat(24)}","identity":"a","tenant":"t","role":"owner"}]`,
          /\[0\]\.role.*viewer, reviewer, member, admin/,
        ],
        [`not json and no file`, /cannot read the keys file/],
      ] as const) {
        const err = await startServer({
          env: { ...databaseEnv(join(dir, "x.db")), REFINERY_API_KEYS: keys },
          configPath: AUTH_CONFIG,
          port: 0,
          log: silentLogger,
        }).catch((e: unknown) => e);
        expect((err as RefineryError).toLine()).toMatch(pattern);
        expect(await testDatabaseExists(join(dir, "x.db"))).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the web console's files are public; the API behind them is not", async () => {
    const page = await call("/console/");
    expect(page.status).toBe(200);
    await page.text();
    expect((await call("/approvals")).status).toBe(401);
  });
});
