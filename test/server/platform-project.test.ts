// One realistic LangGraph project (test/fixtures/platform-project) run the way a team runs it:
// the server process started as `npm start -- --config langgraph.json` (node with the start
// script's flags, server/main.ts, a port the server picks, a SQLite file of its own, API keys),
// then used as a page and a back end would: plain HTTP to the project's custom Hono routes, the
// body-rewriting middleware in front of the built-in POST /threads (the SDK sees the changed
// thread), `client.crons.*` for the scheduled digest graph, the chat graph streamed through the
// SDK's ThreadStream over SSE and over a WebSocket (reply tokens, an interrupt, the resume, the
// final values), the generative UI fetched as LoadExternalComponent fetches it, and a clean exit
// on SIGTERM.
//
// A cron fires in the spawned process in real time: a sixth schedule field is the seconds (as
// LangGraph's Python server reads it), so a cron every two seconds makes its run on the real
// scheduler, and its result is read back through the SDK. test/server/crons.test.ts drives the
// scheduler's clock in-process for what takes minutes (restarts, once per tick across servers).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Client,
  ProtocolWebSocketTransportAdapter,
  type ThreadStream,
} from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { keyHeaders, keysEnv, sdkClient } from "../support/auth.ts";
import { killChildServers, startChildServer, type ChildServer } from "../support/child-server.ts";
import { eventually, failure } from "../support/wait.ts";
import { databaseEnv } from "../support/test-backend.ts";

const CONFIG = join(import.meta.dirname, "../fixtures/platform-project/langgraph.json");
const KEY = keyHeaders("acme", "member");

let dir: string;
let server: ChildServer;
let client: Client;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "refinery-project-"));
  server = await startChildServer(
    {
      ...databaseEnv(join(dir, "refinery.db")),
      REFINERY_API_KEYS: keysEnv(["acme"]),
    },
    45_000,
    CONFIG,
  );
  client = sdkClient(server.url, KEY);
}, 60_000);

afterAll(async () => {
  await server?.stop("SIGTERM", 10_000);
  await killChildServers();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A request with the caller's key, JSON when `json` is given. */
function call(method: string, path: string, json?: unknown, headers: Record<string, string> = {}) {
  return fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...KEY,
      ...(json !== undefined ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
  });
}

describe("the project's custom routes (plain HTTP)", () => {
  it("serves the app's own routes behind the API's auth, and its middleware tags every answer", async () => {
    const status = await call("GET", "/support/status");
    expect(status.status).toBe(200);
    expect(status.headers.get("x-support-app")).toBe("1");
    expect(await status.json()).toEqual({ service: "support", open: true });
    expect((await fetch(`${server.url}/support/status`)).status).toBe(401);

    const ticket = await call("POST", "/support/tickets", { subject: "broken kettle" });
    expect(ticket.status).toBe(201);
    expect(await ticket.json()).toEqual({ accepted: true, subject: "broken kettle" });
    const bad = await call("POST", "/support/tickets", { subject: 7 });
    expect(bad.status).toBe(422);
    expect(await bad.text()).toBe("subject must be a string");

    // A built-in route passes through the app's middleware too.
    const info = await call("GET", "/info");
    expect(info.status).toBe(200);
    expect(info.headers.get("x-support-app")).toBe("1");
  });

  it("rewrites the body of POST /threads before the built-in route, and the SDK sees the change", async () => {
    const res = await call("POST", "/threads", {
      customer: "  Ada@Example.COM ",
      metadata: { priority: "high" },
    });
    expect(res.status).toBe(200);
    const created = (await res.json()) as { thread_id: string; metadata: unknown };
    const expected = {
      priority: "high",
      channel: "support-app",
      customer: "ada@example.com",
      tenant_id: "acme",
    };
    expect(created.metadata).toEqual(expected);
    // Stored as changed, and found by the metadata the app added.
    expect((await client.threads.get(created.thread_id)).metadata).toEqual(expected);
    const found = await client.threads.search({ metadata: { customer: "ada@example.com" } });
    expect(found.map((t) => t.thread_id)).toEqual([created.thread_id]);
    // The SDK's own create goes through the same middleware.
    const viaSdk = await client.threads.create({ metadata: { priority: "low" } });
    expect(viaSdk.metadata).toEqual({ priority: "low", channel: "support-app", tenant_id: "acme" });
    // The app's refusal stops the request: no thread is made.
    const before = await client.threads.count({ metadata: { channel: "support-app" } });
    const refused = await call("POST", "/threads", { customer: 42 });
    expect(refused.status).toBe(422);
    expect(await client.threads.count({ metadata: { channel: "support-app" } })).toBe(before);
  });
});

describe("the scheduled digest graph (client.crons.*)", () => {
  it("creates, finds, changes and deletes a cron on the running server", async () => {
    const cron = await client.crons.create("digest", {
      schedule: "0 9 * * 1-5",
      timezone: "Europe/Paris",
      input: { team: "support" },
      metadata: { owner: "support-team" },
      onRunCompleted: "keep",
    });
    expect(cron).toMatchObject({
      thread_id: null,
      schedule: "0 9 * * 1-5",
      timezone: "Europe/Paris",
      enabled: true,
      payload: { input: { team: "support" } },
      metadata: { owner: "support-team" },
    });
    // The next run: 09:00 in Paris on a weekday, in the future, within a few days.
    const next = new Date(cron.next_run_date!);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(next.getTime() - Date.now()).toBeLessThan(4 * 24 * 3600_000);
    const paris = new Intl.DateTimeFormat("en-GB", {
      timeZone: "Europe/Paris",
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    }).formatToParts(next);
    const part = (type: string) => paris.find((p) => p.type === type)?.value;
    expect(`${part("hour")}:${part("minute")}`).toBe("09:00");
    expect(["Mon", "Tue", "Wed", "Thu", "Fri"]).toContain(part("weekday"));

    // A thread cron for a thread the custom app made.
    const thread = await client.threads.create({ metadata: { team: "support" } });
    const threadCron = await client.crons.createForThread(thread.thread_id, "digest", {
      schedule: "*/15 * * * *",
      input: { team: "support" },
    });
    expect(threadCron.thread_id).toBe(thread.thread_id);
    const quarter = new Date(threadCron.next_run_date!);
    expect(quarter.getUTCMinutes() % 15).toBe(0);
    expect(quarter.getTime() - Date.now()).toBeLessThanOrEqual(15 * 60_000);

    expect(await client.crons.count({ assistantId: "digest" })).toBe(2);
    const listed = await client.crons.search({ metadata: { owner: "support-team" } });
    expect(listed.map((c) => c.cron_id)).toEqual([cron.cron_id]);

    const off = await client.crons.update(cron.cron_id, { enabled: false, schedule: "0 8 * * *" });
    expect(off).toMatchObject({ enabled: false, schedule: "0 8 * * *" });
    expect((await client.crons.search({ enabled: false })).map((c) => c.cron_id)).toEqual([
      cron.cron_id,
    ]);
    // A bad schedule is refused naming the field, and changes nothing.
    const bad = await failure(client.crons.update(cron.cron_id, { schedule: "every morning" }));
    expect(bad.status).toBe(422);
    expect(bad.body).toMatch(/schedule/);
    const again = (await client.crons.search({ metadata: { owner: "support-team" } }))[0]!;
    expect(again.schedule).toBe("0 8 * * *");

    await client.crons.delete(cron.cron_id);
    await client.crons.delete(threadCron.cron_id);
    expect(await client.crons.count({ assistantId: "digest" })).toBe(0);

    // What the cron would run, run now: the digest graph completes on this server.
    expect(await client.runs.wait(null, "digest", { input: { team: "support" } })).toMatchObject({
      digest: "daily digest for support",
    });
  });
});

describe("a cron firing in the running process", () => {
  it("a thread cron on a seconds schedule makes a run whose result the SDK reads", async () => {
    const thread = await client.threads.create({ metadata: { team: "ops" } });
    const cron = await client.crons.createForThread(thread.thread_id, "digest", {
      schedule: "* * * * * */2",
      input: { team: "ops" },
    });
    const next = new Date(cron.next_run_date!);
    expect(next.getUTCSeconds() % 2).toBe(0);
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(2_000);
    try {
      // The scheduler (once a second) claims the firing and makes an ordinary run on the thread.
      const run = await eventually(
        async () => (await client.runs.list(thread.thread_id)).at(-1),
        "the cron's first run",
        20_000,
        200,
      );
      expect(run).toMatchObject({ thread_id: thread.thread_id, assistant_id: expect.any(String) });
      expect(await client.runs.join(thread.thread_id, run.run_id)).toMatchObject({
        digest: "daily digest for ops",
      });
      expect((await client.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
      const state = await client.threads.getState<{ digest: string }>(thread.thread_id);
      expect(state.values.digest).toBe("daily digest for ops");
      // The cron moved on to a later firing.
      const [after] = await client.crons.search({ threadId: thread.thread_id });
      expect(Date.parse(after!.next_run_date!)).toBeGreaterThan(next.getTime());
    } finally {
      await client.crons.delete(cron.cron_id);
    }
  });
});

interface Ev {
  method: string;
  params: { namespace: string[]; data: Record<string, unknown> };
}

/** Runs the support chat to its interrupt, answers it, and checks what the page saw. */
async function supportChat(thread: ThreadStream): Promise<void> {
  const events: Ev[] = [];
  thread.onEvent((e) => events.push(e as unknown as Ev));
  const lifecycle = () =>
    events
      .filter((e) => e.method === "lifecycle" && e.params.namespace.length === 0)
      .map((e) => e.params.data.event);
  // The projections a page's hooks read, opened before the run (the client receives only the
  // channels something reads).
  const messageHandles = thread.messages;
  void thread.values;
  await thread.run.start({ input: { messages: [{ type: "human", content: "my kettle" }] } });
  await eventually(() => (thread.interrupted ? true : undefined), "the interrupt", 15_000);

  // The reply arrived token by token.
  const deltas = events
    .filter((e) => e.method === "messages" && e.params.data.event === "content-block-delta")
    .map((e) => (e.params.data.delta as { text: string }).text);
  expect(deltas.length).toBeGreaterThan(1);
  expect(deltas.join("")).toBe("let me look into that");
  expect(thread.interrupts).toHaveLength(1);
  expect(thread.interrupts[0]!.payload).toEqual({ question: "What is your order number?" });
  expect(lifecycle()).toEqual(["running", "interrupted"]);

  await thread.input.respond({
    interrupt_id: thread.interrupts[0]!.interruptId,
    namespace: [],
    response: "A-1042",
  });
  await eventually(
    () => (lifecycle().at(-1) === "completed" ? true : undefined),
    "the resumed run to complete",
    15_000,
  );
  const last = events.filter((e) => e.method === "values").at(-1)!.params.data;
  expect(last.order).toBe("A-1042");
  expect(last.component).toBe("Ticket");
  expect((last.messages as { content: string }[]).map((m) => m.content)).toEqual([
    "my kettle",
    "let me look into that",
    "ticket opened for order A-1042",
  ]);
  // The messages projection assembled the streamed reply.
  for await (const m of messageHandles) {
    expect(await (m as unknown as { text: PromiseLike<string> }).text).toBe(
      "let me look into that",
    );
    break;
  }
}

describe("the support chat through ThreadStream", () => {
  it("streams, interrupts and resumes over SSE, on a thread the custom app stamped", async () => {
    const made = await client.threads.create({ metadata: { customer: "ada" } });
    const thread = client.threads.stream(made.thread_id, { assistantId: "support" });
    try {
      await supportChat(thread);
    } finally {
      await thread.close();
    }
    // The thread is an ordinary one: its state and runs through the REST API.
    const state = await client.threads.getState<{ order: string }>(made.thread_id);
    expect(state.values.order).toBe("A-1042");
    const runs = await client.runs.list(made.thread_id);
    expect(runs.map((r) => r.status)).toEqual(["success", "success"]);
    expect((await client.threads.get(made.thread_id)).metadata).toMatchObject({
      channel: "support-app",
    });
  });

  it("streams, interrupts and resumes over a WebSocket", async () => {
    // The key goes on the upgrade request (a browser would use a cookie or a proxy; the SDK's
    // WebSocket transport refuses default headers), so this client has none of its own.
    const transport = new ProtocolWebSocketTransportAdapter({
      apiUrl: server.url,
      webSocketFactory: (url: string) =>
        new WebSocket(url, { headers: KEY }) as unknown as globalThis.WebSocket,
    });
    const bare = new Client({ apiUrl: server.url, callerOptions: { maxRetries: 0 } });
    const thread = bare.threads.stream({ assistantId: "support", transport });
    try {
      await supportChat(thread);
    } finally {
      await thread.close();
    }
    expect((await client.threads.getState<{ order: string }>(thread.threadId)).values.order).toBe(
      "A-1042",
    );
  });
});

describe("the generative UI (as LoadExternalComponent fetches it)", () => {
  it("answers POST /ui/support with the HTML naming the bundle, whose files are served", async () => {
    const res = await call("POST", "/ui/support", { name: "Ticket" });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toBe(
      [
        `<link rel="stylesheet" href="${server.url}/ui/support/entrypoint.css" />`,
        `<script src="${server.url}/ui/support/entrypoint.js" onload='__LGUI_support.render("Ticket", "{{shadowRootId}}")'></script>`,
      ].join("\n"),
    );
    // The page loads what the HTML names, without credentials (a <script> sends none).
    const src = /<script src="([^"]+)"/.exec(html)![1]!;
    const js = await fetch(src);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const code = await js.text();
    expect(code).toMatch(/^var __LGUI_support=/);
    expect(code).toContain('Symbol.for("LGUI_REQUIRE")');
    const href = /<link rel="stylesheet" href="([^"]+)"/.exec(html)![1]!;
    const css = await fetch(href);
    expect(css.status).toBe(200);
    expect(await css.text()).toContain(".ticket");
    // The same HTML through the SDK's own UI client, and a request without a name is refused.
    const ui = (
      client as unknown as { "~ui": { getComponent(ns: string, name: string): Promise<string> } }
    )["~ui"];
    expect(await ui.getComponent("support", "Ticket")).toBe(html);
    const noName = await call("POST", "/ui/support", {});
    expect(noName.status).toBe(422);
    expect(await noName.json()).toMatchObject({ field: "name" });
  });
});

describe("stopping the project's server", () => {
  it("exits cleanly on SIGTERM, as a process manager stops it", async () => {
    const exit = await server.stop("SIGTERM", 15_000);
    expect(exit, server.output()).toEqual({ code: 0, signal: null });
    expect(server.output()).toContain("SIGTERM: stopping");
  });
});
