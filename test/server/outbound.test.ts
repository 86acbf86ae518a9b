// The outbound policy over the real server, driven by the SDK: a run may not point a model at an
// endpoint the operator did not list (the server's API key goes with every model call), and run
// webhooks, approval webhooks and webhook verifiers reach loopback only when REFINERY_OUTBOUND_ALLOW
// lists it. Refused requests are 422s naming the field and the fix, and nothing reaches the
// listener; verdicts never carry the body of the target's reply.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RefineStateType } from "../../core/state.ts";
import type { Logger } from "../../server/log.ts";
import { startServer } from "../../server/start.ts";
import { startOpenAIStub, type OpenAIStub } from "../support/openai-stub.ts";
import { FIXTURE_CONFIG, startTestServer, type TestServer } from "../support/server.ts";
import { databaseEnv } from "../support/test-backend.ts";
import { eventually, failure } from "../support/wait.ts";

/** In every reply the recorder sends: no verdict may contain it. */
const MARKER = "INTERNAL-REPLY-MARKER-5c1d";

interface Hit {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A listener on loopback standing for an internal service: records every request it gets. */
let recorder: Server;
let hook = "";
const hits: Hit[] = [];

beforeAll(async () => {
  recorder = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      const path = req.url ?? "/";
      hits.push({ method: req.method ?? "", path, headers: req.headers, body });
      if (path === "/verify-500") return res.writeHead(500).end(`stack trace: ${MARKER}`);
      if (path === "/verify-html") return res.writeHead(200).end(`<html>${MARKER}</html>`);
      if (path === "/verify-malformed")
        return res.writeHead(200).end(JSON.stringify({ pass: MARKER, feedback: 3 }));
      if (path === "/verify-pass") return res.writeHead(200).end('{"pass": true}');
      res.writeHead(200, { "content-type": "application/json" }).end(`{"secret": "${MARKER}"}`);
    });
  });
  await new Promise<void>((r) => recorder.listen(0, "127.0.0.1", r));
  hook = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
});

afterAll(async () => {
  recorder.closeAllConnections();
  await new Promise((r) => recorder.close(r));
});

beforeEach(() => {
  hits.length = 0;
});

/** The 422 of a refused request: its field and message, parsed from the SDK's error. */
async function refused(promise: Promise<unknown>): Promise<{ field?: string; message: string }> {
  const { status, body } = await failure(promise);
  expect(status).toBe(422);
  return JSON.parse(body.slice(body.indexOf("{"))) as { field?: string; message: string };
}

const TASK = { task: "What is 2 + 2?" };

describe("model endpoints a run may name", () => {
  let operator: OpenAIStub;
  let other: OpenAIStub;
  beforeAll(async () => {
    operator = await startOpenAIStub();
    other = await startOpenAIStub();
    for (const stub of [operator, other])
      stub.setHandler(() => ({ content: '{"verdict":"pass","score":0.95,"issues":[]}' }));
  });
  afterAll(async () => {
    await operator?.close();
    await other?.close();
  });

  const env = (extra: Record<string, string> = {}) => ({
    OPENAI_API_KEY: "sk-server-secret",
    REFINERY_MODEL: "stub-model",
    REFINERY_RUN_THREADS: "1",
    OPENAI_BASE_URL: operator.url,
    ...extra,
  });

  describe("by default", () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startTestServer({ env: env() });
    });
    afterAll(async () => s?.close());

    it("a run naming another baseURL is refused with 422 and the listener gets no request", async () => {
      const thread = await s.client.threads.create();
      const error = await refused(
        s.client.runs.wait(thread.thread_id, "refine", {
          input: TASK,
          config: { configurable: { models: { default: { baseURL: `${hook}/v1` } } } },
        }),
      );
      expect(error.field).toBe("models.default.baseURL");
      expect(error.message).toContain(`${hook}/v1 is not a model endpoint`);
      expect(error.message).toContain("REFINERY_MODEL_ENDPOINTS");
      // Refused before anything was stored: the thread has no run.
      expect(await s.client.runs.list(thread.thread_id)).toEqual([]);
      const judge = await refused(
        s.client.assistants.create({
          graphId: "refine",
          config: { configurable: { models: { judge: { baseURL: other.url } } } },
        }),
      );
      expect(judge.field).toBe("models.judge.baseURL");
      expect(hits).toEqual([]);
      expect(other.requests).toEqual([]);
    });

    it("a baseURL in the run's input options fails the run where the model is built, sending nothing", async () => {
      const thread = await s.client.threads.create();
      await expect(
        s.client.runs.wait(thread.thread_id, "refine", {
          input: { ...TASK, options: { models: { default: { baseURL: `${hook}/v1` } } } },
        }),
      ).rejects.toThrow(`${hook}/v1 is not a model endpoint this server may send its API key to`);
      const [run] = await s.client.runs.list(thread.thread_id);
      expect(run?.status).toBe("error");
      expect(hits).toEqual([]);
    });

    it("the operator's endpoint works, named or not", async () => {
      const thread = await s.client.threads.create();
      const values = (await s.client.runs.wait(thread.thread_id, "refine", {
        input: TASK,
        config: {
          configurable: {
            maxIterations: 1,
            models: { default: { baseURL: `${operator.url}/` } },
          },
        },
      })) as unknown as RefineStateType;
      expect(values.answer).toBeTruthy();
      expect(operator.requests.length).toBeGreaterThan(0);
    });
  });

  describe("with REFINERY_MODEL_ENDPOINTS", () => {
    let s: TestServer;
    beforeAll(async () => {
      // Listed with a trailing slash and an upper-case scheme: compared normalised.
      const listed = `HTTP://${other.url.slice("http://".length)}/`;
      s = await startTestServer({ env: env({ REFINERY_MODEL_ENDPOINTS: listed }) });
    });
    afterAll(async () => s?.close());

    it("a run may name a listed endpoint, and its model calls go there", async () => {
      const before = operator.requests.length;
      const thread = await s.client.threads.create();
      const values = (await s.client.runs.wait(thread.thread_id, "refine", {
        input: TASK,
        config: { configurable: { maxIterations: 1, models: { default: { baseURL: other.url } } } },
      })) as unknown as RefineStateType;
      expect(values.answer).toBeTruthy();
      expect(other.requests.length).toBeGreaterThan(0);
      expect(operator.requests.length).toBe(before);
    });
  });
});

describe("webhooks and webhook verifiers under the default policy", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ env: { REFINERY_RUN_THREADS: "1" } });
  });
  afterAll(async () => s?.close());

  it("are refused with 422 when the run or assistant is created, naming the field", async () => {
    const thread = await s.client.threads.create();
    const run = (extra: Record<string, unknown>) =>
      refused(s.client.runs.create(thread.thread_id, "refine", { input: TASK, ...extra }));

    const webhook = await run({ webhook: `${hook}/run-hook` });
    expect(webhook.field).toBe("webhook");
    expect(webhook.message).toContain("127.0.0.1 is a loopback address");
    expect(webhook.message).toContain("REFINERY_OUTBOUND_ALLOW");

    const verifier = await run({
      config: { configurable: { verifiers: [{ kind: "webhook", url: `${hook}/verify-pass` }] } },
    });
    expect(verifier.field).toBe("verifiers[0].url");
    expect(verifier.message).toContain("REFINERY_OUTBOUND_ALLOW");

    const approval = await run({
      config: {
        configurable: { approval: { mode: "final", webhook: { url: "http://localhost:9/hook" } } },
      },
    });
    expect(approval.field).toBe("approval.webhook.url");
    expect(approval.message).toContain("localhost:9 may not be called by this server");

    const metadata = await refused(
      s.client.assistants.create({
        graphId: "refine",
        config: {
          configurable: {
            verifiers: [
              { kind: "regex", mustMatch: ["4"] },
              { kind: "webhook", url: "http://169.254.169.254/latest/meta-data/" },
            ],
          },
        },
      }),
    );
    expect(metadata.field).toBe("verifiers[1].url");
    expect(metadata.message).toContain("cloud metadata address");

    expect(await s.client.runs.list(thread.thread_id)).toEqual([]);
    expect(hits).toEqual([]);
  });
});

describe("webhooks and webhook verifiers with REFINERY_OUTBOUND_ALLOW=127.0.0.1", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({
      env: {
        REFINERY_RUN_THREADS: "1",
        REFINERY_OUTBOUND_ALLOW: "127.0.0.1",
        REFINERY_APPROVAL_POLL_MS: "100",
      },
    });
  });
  afterAll(async () => s?.close());

  it("calls them; the verdicts name status and size, never the reply body", async () => {
    const thread = await s.client.threads.create();
    const values = (await s.client.runs.wait(thread.thread_id, "refine", {
      input: TASK,
      webhook: `${hook}/run-hook`,
      config: {
        configurable: {
          maxIterations: 1,
          verifiers: [
            { kind: "webhook", id: "err", url: `${hook}/verify-500`, hard: false },
            { kind: "webhook", id: "html", url: `${hook}/verify-html`, hard: false },
            { kind: "webhook", id: "bad", url: `${hook}/verify-malformed`, hard: false },
            { kind: "webhook", id: "ok", url: `${hook}/verify-pass`, hard: false },
          ],
        },
      },
    })) as unknown as RefineStateType;
    const message = (id: string) => values.verdicts.find((v) => v.verifierId === id)?.message;
    expect(message("err")).toMatch(/returned HTTP 500 \(\d+ bytes\)/);
    expect(message("html")).toMatch(/sent a reply that is not JSON \(\d+ bytes\)/);
    expect(message("bad")).toContain(
      "sent a malformed reply (pass: Invalid input: expected boolean",
    );
    expect(values.verdicts.find((v) => v.verifierId === "ok")?.pass).toBe(true);
    expect(JSON.stringify(values)).not.toContain(MARKER);
    const state = await s.client.threads.getState(thread.thread_id);
    expect(JSON.stringify(state)).not.toContain(MARKER);

    const runHook = await eventually(
      () => hits.find((h) => h.path === "/run-hook"),
      "the run webhook",
    );
    expect(JSON.parse(runHook.body)).toMatchObject({
      thread_id: thread.thread_id,
      status: "success",
    });
    expect(hits.filter((h) => h.path.startsWith("/verify-")).map((h) => h.method)).toEqual([
      "POST",
      "POST",
      "POST",
      "POST",
    ]);
  });

  it("delivers the approval webhook", async () => {
    const thread = await s.client.threads.create();
    await s.client.runs.wait(thread.thread_id, "refine", {
      input: TASK,
      config: {
        configurable: { approval: { mode: "final", webhook: { url: `${hook}/approval` } } },
      },
    });
    const delivered = await eventually(
      () => hits.find((h) => h.path === "/approval"),
      "the approval webhook",
    );
    expect(JSON.parse(delivered.body)).toMatchObject({
      event: "approval.pending",
      thread_id: thread.thread_id,
    });
  });
});

describe("a policy tightened across a restart", () => {
  it("stored webhooks are refused when they are sent: nothing reaches the listener", async () => {
    const first = await startTestServer({
      env: {
        REFINERY_RUN_THREADS: "0",
        REFINERY_OUTBOUND_ALLOW: "127.0.0.1",
        REFINERY_APPROVAL_POLL_MS: "60000",
      },
    });
    const waiting = await first.client.threads.create();
    await first.client.runs.wait(waiting.thread_id, "refine", {
      input: TASK,
      config: {
        configurable: { approval: { mode: "final", webhook: { url: `${hook}/approval` } } },
      },
    });
    const later = await first.client.threads.create();
    await first.client.runs.create(later.thread_id, "refine", {
      input: TASK,
      webhook: `${hook}/run-hook`,
      afterSeconds: 1,
    });
    await first.running.close(1_000);

    const logged: { msg: string; fields?: Record<string, unknown> }[] = [];
    const log: Logger = (_level, msg, fields) => void logged.push({ msg, fields });
    const second = await startServer({
      env: {
        ...databaseEnv(first.dbPath),
        REFINERY_RUN_THREADS: "0",
        REFINERY_APPROVAL_POLL_MS: "100",
      },
      configPath: FIXTURE_CONFIG,
      port: 0,
      log,
      pollMs: 100,
    });
    try {
      const runHook = await eventually(
        () => logged.find((l) => l.msg === "run webhook not called"),
        "the refused run webhook",
      );
      expect(String(runHook.fields?.reason)).toContain("127.0.0.1 is a loopback address");
      expect(String(runHook.fields?.fix)).toContain("REFINERY_OUTBOUND_ALLOW");
      const approval = await eventually(
        () => logged.find((l) => l.msg === "approval webhook failed"),
        "the refused approval webhook",
      );
      expect(String(approval.fields?.reason)).toContain("may not be called by this server");
      expect(hits).toEqual([]);
    } finally {
      await second.close(1_000);
      await first.close();
    }
  });
});
