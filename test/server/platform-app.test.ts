// A project using the LangGraph server's HTTP features (test/fixtures/platform-app): a custom
// Hono app (`http.app`) beside the API, a built-in route group turned off (`http.disable_store`)
// and a generative UI module (`ui`). One real server with built-in API keys: custom routes go
// through the same edge as the API (Host check, CORS, auth, body limit), the app wraps and
// overrides built-in routes and changes a body before the built-in route sees it (checked
// through the official SDK), and /ui/{graph} answers what the SDK's LoadExternalComponent
// fetches (called through the SDK's own UI client). Start-up refuses a broken `http` or `ui`
// section naming the field.
import { request as httpRequest } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemAssistantId } from "../../graphs/registry.ts";
import { keyHeaders, keysEnv, sdkClient } from "../support/auth.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const APP = join(import.meta.dirname, "../fixtures/platform-app");
const KEY = keyHeaders("acme", "member");

let s: TestServer;
let client: Client;
const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];

beforeAll(async () => {
  s = await startTestServer({
    configPath: join(APP, "langgraph.json"),
    env: { REFINERY_API_KEYS: keysEnv(["acme"]), REFINERY_BODY_LIMIT: "16kb" },
    log: (level, msg, fields) => logs.push({ level, msg, fields }),
  });
  client = sdkClient(s.url, KEY);
}, 60_000);
afterAll(async () => {
  await s?.close();
});

async function call(
  method: string,
  path: string,
  options: {
    body?: string | ReadableStream<Uint8Array>;
    headers?: Record<string, string>;
    json?: unknown;
  } = {},
): Promise<Response> {
  return fetch(`${s.url}${path}`, {
    method,
    headers: {
      ...KEY,
      ...(options.json !== undefined ? { "content-type": "application/json" } : {}),
      ...options.headers,
    },
    ...(options.json !== undefined ? { body: JSON.stringify(options.json) } : {}),
    ...(options.body !== undefined ? { body: options.body, duplex: "half" } : {}),
  } as RequestInit);
}

describe("custom routes (http.app)", () => {
  it("serves the app's own routes, which see the authenticated caller", async () => {
    const res = await call("GET", "/custom/hello");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ hello: "world", identity: "member@acme" });
  });

  it("puts the app's routes behind the same auth as the API", async () => {
    const anonymous = await fetch(`${s.url}/custom/hello`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: "unauthorized" });
    const wrong = await fetch(`${s.url}/custom/hello`, { headers: { "x-api-key": "nope" } });
    expect(wrong.status).toBe(401);
  });

  it("keeps the Host check and the cross-site write refusal in front of the app", async () => {
    const port = new URL(s.url).port;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port,
          path: "/custom/hello",
          headers: { host: `evil.example:${port}`, ...KEY },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(403);
    const crossSite = await call("POST", "/custom/echo", {
      json: { a: 1 },
      headers: { origin: "https://evil.example" },
    });
    expect(crossSite.status).toBe(403);
    expect(await crossSite.json()).toMatchObject({ error: "forbidden", field: "Origin" });
  });

  it("answers CORS as http.cors says: listed origins, an origin pattern, credentials, max age", async () => {
    const preflight = (origin: string) =>
      fetch(`${s.url}/custom/echo`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type, x-api-key",
        },
      });
    for (const origin of ["https://app.example.com", "https://pr-7.preview.example"]) {
      const res = await preflight(origin);
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe(origin);
      expect(res.headers.get("access-control-allow-credentials")).toBe("true");
      expect(res.headers.get("access-control-max-age")).toBe("120");
    }
    const refused = await preflight("https://evil.example");
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();
    // A listed origin may write, to custom and built-in routes alike, and reads what is exposed.
    const res = await call("POST", "/custom/echo", {
      json: { a: 1 },
      headers: { origin: "https://app.example.com" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-expose-headers")).toBe(
      "X-Custom-App, Content-Location, X-Pagination-Total",
    );
  });

  it("a custom route wins over the built-in one at the same path, and needs credentials there", async () => {
    const res = await call("GET", "/ok");
    expect(await res.json()).toEqual({ ok: true, from: "custom-app" });
    // /ok is open on its own; the app's route at that path is the app's code: authenticated.
    expect((await fetch(`${s.url}/ok`)).status).toBe(401);
    // What the app does not answer stays open: the console's files, /info, the UI's assets.
    expect((await fetch(`${s.url}/console/`)).status).toBe(200);
    expect((await fetch(`${s.url}/info`)).status).toBe(200);
    expect((await fetch(`${s.url}/ui/echo/entrypoint.js`)).status).toBe(200);
  });

  it("the app's middleware wraps the built-in routes", async () => {
    const res = await call("GET", "/info");
    expect(res.status).toBe(200);
    expect(res.headers.get("x-custom-app")).toBe("seen");
    expect(await res.json()).toMatchObject({ name: "refinery" });
  });

  it("a middleware reads and changes a body before the built-in route sees it (through the SDK)", async () => {
    const thread = await client.threads.create({ metadata: { team: "blue" } });
    // (tenant_id: the built-in keys stamp the caller's tenant, after the app's change.)
    expect(thread.metadata).toEqual({ team: "blue", stamped_by: "custom-app", tenant_id: "acme" });
    // Stored as changed: the built-in route received the changed body.
    expect((await client.threads.get(thread.thread_id)).metadata).toEqual(thread.metadata);
    const found = await client.threads.search({ metadata: { stamped_by: "custom-app" } });
    expect(found.map((t) => t.thread_id)).toContain(thread.thread_id);
    // A field the API does not know becomes metadata on the way.
    const raw = await call("POST", "/threads", { json: { title: "quarterly report" } });
    expect(raw.status).toBe(200);
    expect(((await raw.json()) as { metadata: unknown }).metadata).toEqual({
      stamped_by: "custom-app",
      title: "QUARTERLY REPORT",
      tenant_id: "acme",
    });
    // Runs go through the wrapped routes too, waited for and streamed (SSE passes through).
    const out = await client.runs.wait(thread.thread_id, "echo", { input: { topic: "hi" } });
    expect(out).toMatchObject({ reply: "echo:hi" });
    const events: string[] = [];
    for await (const chunk of client.runs.stream(thread.thread_id, "echo", {
      input: { topic: "again" },
      streamMode: ["values"],
    }))
      events.push(`${chunk.event}:${JSON.stringify(chunk.data)}`);
    expect(events[0]).toMatch(/^metadata:/);
    expect(events.at(-1)).toContain('"reply":"echo:again"');
  });

  it("answers bad bodies with 4xx, never a crash: malformed JSON, too large, non-JSON to the app", async () => {
    const malformed = await call("POST", "/threads", {
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ error: "bad_request" });
    // The same body to a built-in route the app does not touch: the API's own 400.
    const builtIn = await call("POST", "/assistants/search", {
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(builtIn.status).toBe(400);
    const big = "x".repeat(20_000);
    const tooLarge = await call("POST", "/custom/echo", { json: { big } });
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toMatchObject({ error: "payload_too_large" });
    // Chunked, without a Content-Length: counted as it arrives.
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 5; i++)
          controller.enqueue(new TextEncoder().encode(big.slice(0, 5000)));
        controller.close();
      },
    });
    const chunked = await call("POST", "/custom/echo", {
      body: chunks,
      headers: { "content-type": "text/plain" },
    });
    expect(chunked.status).toBe(413);
    const text = await call("POST", "/custom/echo", {
      body: "plain words",
      headers: { "content-type": "text/plain" },
    });
    expect(await text.json()).toEqual({ length: 11, type: "text/plain" });
  });

  it("built-in routes that take other media still get their bodies (a YAML graph spec)", async () => {
    const yaml = [
      "id: yaml-graph",
      "start: write",
      "nodes:",
      "  write: { kind: generate, prompt: { system: Answer. } }",
      "edges:",
      "  - { from: write, to: END }",
      "",
    ].join("\n");
    const res = await call("POST", "/graphs", {
      body: yaml,
      headers: { "content-type": "application/yaml", ...keyHeaders("acme", "admin") },
    });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json()).toMatchObject({ graph_id: "yaml-graph" });
  });

  it("an app error is its status (HTTPException) or a logged 500, and the server goes on", async () => {
    const teapot = await call("GET", "/custom/teapot");
    expect(teapot.status).toBe(418);
    expect(await teapot.text()).toBe("short and stout");
    const broken = await call("GET", "/custom/broken");
    expect(broken.status).toBe(500);
    expect(await broken.json()).toEqual({ error: "internal", message: "Internal server error" });
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: "error",
        msg: "custom HTTP app failed",
        fields: expect.objectContaining({ message: "the custom route failed" }),
      }),
    );
    expect((await call("GET", "/custom/hello")).status).toBe(200);
  });

  it("http.disable_store turns the Store API off; the app may still answer its paths", async () => {
    const err = await client.store.searchItems(["notes"]).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 404 });
    const res = await call("POST", "/store/items/search", { json: {} });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "not_found", field: "http.disable_store" });
    const own = await call("GET", "/store/items?namespace=a&key=b");
    expect(await own.json()).toEqual({ from: "custom-app" });
    // The other groups stay on.
    expect((await client.assistants.search({ graphId: "echo" })).length).toBe(1);
  });

  it("API clients at the console's old address get a 404, not the console", async () => {
    const res = await call("GET", "/ui/", { headers: { accept: "application/json" } });
    expect(res.status).toBe(404);
  });
});

describe("generative UI (ui)", () => {
  it("answers what LoadExternalComponent fetches: the SDK's UI client gets HTML naming the bundle", async () => {
    const ui = (
      client as unknown as {
        "~ui": { getComponent(ns: string, name: string): Promise<string> };
      }
    )["~ui"];
    const html = await ui.getComponent("echo", "Greeting");
    const origin = s.url; // loopback: plain http
    expect(html).toBe(
      [
        `<link rel="stylesheet" href="${origin}/ui/echo/entrypoint.css" />`,
        `<script src="${origin}/ui/echo/entrypoint.js" onload='__LGUI_echo.render("Greeting", "{{shadowRootId}}")'></script>`,
      ].join("\n"),
    );
    // The files it names are public (a <script> sends no credentials), with their types.
    const js = await fetch(`${origin}/ui/echo/entrypoint.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const code = await js.text();
    expect(code).toMatch(/^var __LGUI_echo=/);
    // React comes from the page, through the SDK's require; it is not bundled.
    expect(code).toContain('Symbol.for("LGUI_REQUIRE")');
    expect(code).toContain('Symbol.for("LGUI_EXT_STORE")');
    expect(code).not.toContain("react.production");
    const css = await fetch(`${origin}/ui/echo/entrypoint.css`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect(await css.text()).toContain(".greeting");
  });

  it("runs the bundle as a page would: render() mounts the named component through the SDK's store", async () => {
    const code = await (await fetch(`${s.url}/ui/echo/entrypoint.js`)).text();
    const mounted: { id: string; component: unknown; target: unknown }[] = [];
    const target = { children: [] as unknown[] };
    const shadowRoot = { appendChild: (el: unknown) => target.children.push(el) };
    const page = {
      document: {
        getElementById: (id: string) => (id === "child-shadow-1" ? { shadowRoot } : null),
        createElement: (tag: string) => ({ tag }),
      },
      [Symbol.for("LGUI_REQUIRE")]: (name: string) => {
        if (name === "react") return { useState: () => [0, () => {}] };
        if (name === "react/jsx-runtime") return { jsx: () => null, jsxs: () => null };
        throw new Error(`Unknown module: ${name}`);
      },
      [Symbol.for("LGUI_EXT_STORE")]: {
        respond: (id: string, component: unknown, el: unknown) =>
          mounted.push({ id, component, target: el }),
      },
    };
    const lgui = new Function("globalThis", "document", `${code}\nreturn __LGUI_echo;`)(
      page,
      page.document,
    ) as { render(name: string, id: string): void };
    lgui.render("Greeting", "child-shadow-1");
    expect(mounted).toHaveLength(1);
    expect(mounted[0]!.id).toBe("child-shadow-1");
    expect(typeof mounted[0]!.component).toBe("function");
    expect(target.children).toEqual([{ tag: "div" }]);
  });

  it("finds the UI by the graph's system assistant id too", async () => {
    const res = await call("POST", `/ui/${systemAssistantId("echo")}`, {
      json: { name: "Greeting" },
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("/ui/echo/entrypoint.js");
  });

  it("escapes the component name inside the onload attribute", async () => {
    const res = await call("POST", "/ui/echo", { json: { name: `x'),alert(1)//<b>` } });
    const html = await res.text();
    // The quote cannot end the single-quoted onload attribute: it is &#39; (the browser decodes
    // it back before running the script, so render() gets the name as sent).
    expect(html).not.toContain("'),alert");
    expect(html).toContain(`render("x&#39;),alert(1)//<b>", "{{shadowRootId}}")'`);
    const amp = await call("POST", "/ui/echo", { json: { name: "a&#39;b" } });
    expect(await amp.text()).toContain(`render("a&amp;#39;b", `);
  });

  it("refuses bad requests with the field to fix, and asks for credentials", async () => {
    const noName = await call("POST", "/ui/echo", { json: {} });
    expect(noName.status).toBe(422);
    expect(await noName.json()).toMatchObject({ error: "invalid_input", field: "name" });
    const wrongType = await call("POST", "/ui/echo", { json: { name: 7 } });
    expect(wrongType.status).toBe(422);
    const unknown = await call("POST", "/ui/nope", { json: { name: "Greeting" } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: "not_found", field: "graph_id" });
    const missingFile = await fetch(`${s.url}/ui/echo/other.js`);
    expect(missingFile.status).toBe(404);
    expect(await missingFile.json()).toMatchObject({ field: "file" });
    const anonymous = await fetch(`${s.url}/ui/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Greeting" }),
    });
    expect(anonymous.status).toBe(401);
  });
});

describe("langgraph.json http and ui checks at start-up", () => {
  const dir = mkdtempSync(join(tmpdir(), "refinery-platform-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, "graph.ts"),
    `import { Annotation, START, StateGraph } from "@langchain/langgraph";
const S = Annotation.Root({ x: Annotation<string> });
export const g = new StateGraph(S).addNode("n", () => ({})).addEdge(START, "n");
`,
  );
  writeFileSync(join(dir, "not-hono.ts"), "export const app = { hello: 1 };\n");
  writeFileSync(join(dir, "broken-ui.jsx"), "export default { A: () => <div> };\n");
  writeFileSync(join(dir, "no-default-ui.jsx"), "export const A = () => null;\n");

  async function startupError(config: Record<string, unknown>): Promise<unknown> {
    const path = join(dir, `langgraph-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, JSON.stringify({ graphs: { g: "./graph.ts:g" }, ...config }));
    try {
      const started = await startTestServer({ configPath: path });
      await started.close();
      return undefined;
    } catch (err) {
      return err;
    }
  }

  it.each([
    [{ http: { app: "./missing.ts:app" } }, "http.app", /cannot load the HTTP app/],
    [{ http: { app: "./not-hono.ts:app" } }, "http.app", /is not a Hono app/],
    [{ http: { app: "./not-hono.ts:other" } }, "http.app", /has no export "other"/],
    [{ http: { disable_runs: "yes" } }, "http.disable_runs", /boolean/],
    [{ http: { cors: { max_age: -1 } } }, "http.cors.max_age", /./],
    [{ http: { cors: { allow_origin: ["x"] } } }, "http.cors.allow_origin", /unknown field/],
    [
      { http: { cors: { allow_origins: ["app.example.com"] } } },
      "http.cors.allow_origins",
      /is not an origin/,
    ],
    [
      { http: { cors: { allow_origin_regex: "(?=x)" } } },
      "http.cors.allow_origin_regex",
      /RE2|regular expression/,
    ],
    [{ ui: { g: "./missing.jsx" } }, "ui.g", /does not exist/],
    [{ ui: { g: "./broken-ui.jsx" } }, "ui.g", /does not build/],
    [{ ui: { g: "./no-default-ui.jsx" } }, "ui.g", /does not build/],
    [{ ui: { "bad name": "./x.jsx" } }, "ui", /UI names/],
    [{ ui_config: { shared: "react" } }, "ui_config.shared", /./],
  ])("refuses %j naming %s", async (config, field, message) => {
    const err = (await startupError(config)) as { code?: string; field?: string; message?: string };
    expect(err).toMatchObject({ code: "invalid_config" });
    expect(err.field?.endsWith(field) || err.field?.includes(`${field}.`), String(err.field)).toBe(
      true,
    );
    expect(err.message).toMatch(message);
  });
});
