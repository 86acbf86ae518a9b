// Tests for the webhook verifier against a real HTTP server on 127.0.0.1: the request it sends,
// pass and fail replies, every infrastructure failure turned into a marked failed verdict, and
// the outbound policy: loopback is refused unless allowed, and no verdict carries the reply body.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createOutboundClient } from "../../core/net/outbound.ts";
import { setOutboundPolicy, strictPolicy } from "../../core/net/policy.ts";
import { isVerifierErrorMessage, type WebhookVerifierSpec } from "../../core/verifiers/spec.ts";
import { createWebhookVerifier } from "../../core/verifiers/webhook.ts";

/** In every reply the endpoint sends: no verdict message may contain it. */
const MARKER = "SECRET-REPLY-MARKER-7f3a";
/** The test endpoint listens on loopback, which this client is allowed to call. */
const allowLoopback = createOutboundClient(() => strictPolicy("127.0.0.1"));

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

let server: Server;
let base: string;
const received: Received[] = [];

const routes: Record<string, (respond: (status: number, body: string) => void) => void> = {
  "/pass": (respond) => respond(200, JSON.stringify({ pass: true, score: 0.9, extra: "ignored" })),
  "/fail": (respond) =>
    respond(200, JSON.stringify({ pass: false, feedback: "test_add failed: expected 4, got 5" })),
  "/fail-bare": (respond) => respond(200, JSON.stringify({ pass: false })),
  "/malformed": (respond) => respond(200, JSON.stringify({ pass: MARKER })),
  "/malformed-array": (respond) => respond(200, JSON.stringify([MARKER])),
  "/not-json": (respond) => respond(200, `<html>${MARKER}</html>`),
  "/error": (respond) => respond(500, `database is down: ${MARKER}`),
  "/redirect": (respond) => respond(302, MARKER),
  "/huge": (respond) =>
    respond(200, `{"pass": true, "feedback": "${"x".repeat(2 * 1024 * 1024)}"}`),
  "/slow": (respond) => {
    setTimeout(() => respond(200, JSON.stringify({ pass: true })), 2_000);
  },
};

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk: Buffer) => (raw += chunk.toString("utf8")));
    req.on("end", () => {
      const path = req.url ?? "/";
      received.push({ path, headers: req.headers, body: JSON.parse(raw || "null") as unknown });
      const respond = (status: number, body: string) => {
        if (res.destroyed) return;
        res.writeHead(status, { "content-type": "application/json" });
        res.end(body);
      };
      (routes[path] ?? ((r) => r(404, "not found")))(respond);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received.length = 0;
});

function webhook(path: string, overrides: Partial<WebhookVerifierSpec> = {}) {
  return createWebhookVerifier(
    { kind: "webhook", hard: true, url: `${base}${path}`, timeoutMs: 5_000, ...overrides },
    "tests",
    "verifiers[3]",
    allowLoopback,
  );
}

const ctx = { task: "write add()", context: "python", iteration: 3 };

describe("webhook verifier", () => {
  it("POSTs the draft with task, context, iteration and verifier id, plus custom headers", async () => {
    const v = webhook("/pass", { headers: { "x-api-key": "k1" } });
    const result = await v.verify("def add(a, b): return a + b", ctx);
    expect(result).toEqual({ pass: true, score: 0.9, message: "webhook check passed" });
    expect(received).toHaveLength(1);
    expect(received[0]?.body).toEqual({
      draft: "def add(a, b): return a + b",
      task: "write add()",
      context: "python",
      iteration: 3,
      verifier_id: "tests",
    });
    expect(received[0]?.headers["content-type"]).toBe("application/json");
    expect(received[0]?.headers["x-api-key"]).toBe("k1");
  });

  it("sends context as null when there is none", async () => {
    await webhook("/pass").verify("d", { task: "t", iteration: 1 });
    expect((received[0]?.body as { context: unknown }).context).toBeNull();
  });

  it("returns a failing reply's feedback as the message", async () => {
    const result = await webhook("/fail").verify("def add(a, b): return a + b + 1", ctx);
    expect(result).toEqual({
      pass: false,
      score: 0,
      message: "test_add failed: expected 4, got 5",
    });
    expect(isVerifierErrorMessage(result.message)).toBe(false);
  });

  it("explains a failing reply without feedback", async () => {
    const result = await webhook("/fail-bare").verify("d", ctx);
    expect(result.message).toBe("webhook check failed without feedback");
  });

  it("marks a malformed reply as a verifier error naming the field, not its value", async () => {
    const result = await webhook("/malformed").verify("d", ctx);
    expect(result.pass).toBe(false);
    expect(isVerifierErrorMessage(result.message)).toBe(true);
    expect(result.message).toBe(
      `[verifier error] webhook ${base}/malformed sent a malformed reply (pass: Invalid input: expected boolean, received string); expected {"pass": boolean, "score"?: number 0..1, "feedback"?: string}`,
    );
    const array = await webhook("/malformed-array").verify("d", ctx);
    expect(array.message).toContain("sent a malformed reply (Invalid input: expected object");
    expect(array.message).not.toContain(MARKER);
  });

  it("marks a non-JSON reply as a verifier error with its size only", async () => {
    const result = await webhook("/not-json").verify("d", ctx);
    expect(result.message).toBe(
      `[verifier error] webhook ${base}/not-json sent a reply that is not JSON (${`<html>${MARKER}</html>`.length} bytes); expected {"pass": boolean, "score"?: number 0..1, "feedback"?: string}`,
    );
  });

  it("marks a non-2xx status as a verifier error with the status and size, not the body", async () => {
    const result = await webhook("/error").verify("d", ctx);
    expect(result).toMatchObject({ pass: false, score: 0 });
    expect(result.message).toBe(
      `[verifier error] webhook ${base}/error returned HTTP 500 (${`database is down: ${MARKER}`.length} bytes); expected 2xx with {"pass": boolean, "score"?: number 0..1, "feedback"?: string}`,
    );
    const redirect = await webhook("/redirect").verify("d", ctx);
    expect(redirect.message).toContain("returned HTTP 302");
    expect(redirect.message).toContain("only 307/308 redirects are followed");
    expect(redirect.message).not.toContain(MARKER);
  });

  it("marks a reply past the size cap as a verifier error", async () => {
    const result = await webhook("/huge").verify("d", ctx);
    expect(result.message).toBe(
      `[verifier error] webhook ${base}/huge sent a reply larger than 1048576 bytes; expected a small {"pass": boolean, "score"?: number 0..1, "feedback"?: string}`,
    );
  });

  it("marks a timeout as a verifier error", async () => {
    const started = Date.now();
    const result = await webhook("/slow", { timeoutMs: 100 }).verify("d", ctx);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(result.message).toBe(`[verifier error] webhook ${base}/slow timed out after 100 ms`);
  });

  it("marks an unreachable endpoint as a verifier error", async () => {
    // Bind and release a port so that nothing listens on it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const v = createWebhookVerifier(
      { kind: "webhook", hard: true, url: `http://127.0.0.1:${port}/`, timeoutMs: 2_000 },
      "tests",
      "verifier",
      allowLoopback,
    );
    const result = await v.verify("d", ctx);
    expect(result.message).toBe(
      `[verifier error] webhook http://127.0.0.1:${port}/ failed: 127.0.0.1:${port} could not be reached (ECONNREFUSED)`,
    );
  });

  it("propagates the run's abort instead of returning a verdict", async () => {
    const controller = new AbortController();
    const pending = webhook("/slow").verify("d", { ...ctx, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
  });

  it("rejects an invalid header at construction", () => {
    expect(() => webhook("/pass", { headers: { "bad header": "x" } })).toThrow(
      expect.objectContaining({ code: "invalid_config", field: "verifiers[3].headers" }),
    );
  });
});

describe("webhook verifier under the default outbound policy", () => {
  afterEach(() => setOutboundPolicy(undefined));

  it("refuses a loopback or private literal IP, and localhost, when it is created", () => {
    for (const [url, what] of [
      [`${base}/pass`, "127.0.0.1 is a loopback address"],
      ["http://10.1.2.3/check", "10.1.2.3 is a private address"],
      ["http://[::ffff:169.254.169.254]/latest", "169.254.169.254 is a cloud metadata address"],
      ["http://localhost:9/check", "it resolves to a loopback address"],
    ] as const) {
      const error = (() => {
        try {
          createWebhookVerifier(
            { kind: "webhook", hard: true, url, timeoutMs: 1_000 },
            "w",
            "verifiers[0]",
          );
        } catch (e) {
          return e as { code: string; field: string; message: string; fix: string };
        }
      })();
      expect(error).toMatchObject({ code: "invalid_config", field: "verifiers[0].url" });
      expect(error?.message).toContain(what);
      expect(error?.fix).toContain("REFINERY_OUTBOUND_ALLOW");
    }
    expect(received).toHaveLength(0);
  });

  it("allows loopback when REFINERY_OUTBOUND_ALLOW lists it", async () => {
    setOutboundPolicy(strictPolicy(`127.0.0.1:${new URL(base).port}`));
    const v = createWebhookVerifier(
      { kind: "webhook", hard: true, url: `${base}/pass`, timeoutMs: 5_000 },
      "w",
    );
    expect((await v.verify("d", ctx)).pass).toBe(true);
    expect(received).toHaveLength(1);
  });

  it("refuses at send time a policy that changed since creation, without a request", async () => {
    setOutboundPolicy(strictPolicy("127.0.0.1"));
    const v = createWebhookVerifier(
      { kind: "webhook", hard: true, url: `${base}/pass`, timeoutMs: 5_000 },
      "w",
    );
    setOutboundPolicy(strictPolicy(""));
    const result = await v.verify("d", ctx);
    expect(result.pass).toBe(false);
    expect(result.message).toBe(
      `[verifier error] webhook ${base}/pass failed: ${new URL(base).host} may not be called by this server: 127.0.0.1 is a loopback address. Fix: use a public address, or have the operator list ${new URL(base).host} in REFINERY_OUTBOUND_ALLOW`,
    );
    expect(received).toHaveLength(0);
  });

  it("never puts the reply body in a verdict message", async () => {
    setOutboundPolicy(strictPolicy("127.0.0.1"));
    for (const path of ["/error", "/not-json", "/malformed", "/malformed-array", "/redirect"]) {
      const v = createWebhookVerifier(
        { kind: "webhook", hard: true, url: `${base}${path}`, timeoutMs: 5_000 },
        "w",
      );
      const result = await v.verify("d", ctx);
      expect(result.pass).toBe(false);
      expect(result.message).not.toContain(MARKER);
    }
    expect(received).toHaveLength(5);
  });
});
