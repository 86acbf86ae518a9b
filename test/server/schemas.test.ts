// GET /assistants/:id/schemas for langgraph.json graphs (issue 17), through a real server and the
// official SDK's getSchemas: graphs whose state is an Annotation.Root (schemas derived from the
// TypeScript types in a worker), zod with LangGraph's registry (jsonSchemaExtra), plain zod 4
// and zod 3 (input/output/context schemas), and a StateSchema. The fixtures are
// test/fixtures/schemas-app. The extraction's bounds (source size, deadline) are driven on the
// schema service itself.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSchemaService } from "../../graphs/schemas/service.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const APP = join(import.meta.dirname, "../fixtures/schemas-app");
const DRAFT_07 = "http://json-schema.org/draft-07/schema#";

type Schemas = Awaited<ReturnType<Client["assistants"]["getSchemas"]>>;
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let s: TestServer;
const got: Record<string, Schemas> = {};
let okBeforeSchemas = false;

beforeAll(async () => {
  s = await startTestServer({
    configPath: join(APP, "langgraph.json"),
    // A loaded CI machine can take longer than the default 30 s to type-check the fixtures.
    env: { REFINERY_SCHEMA_TIMEOUT_MS: "300000" },
  });
  const ids = [
    "annotated",
    "input_output",
    "messages",
    "zod_registry",
    "zod_legacy_registry",
    "zod_plain",
    "zod_v3",
    "state_schema",
  ];
  // All at once: the Annotation graphs share one extraction worker. Meanwhile the server answers.
  let schemasDone = false;
  const all = Promise.all(ids.map((id) => s.client.assistants.getSchemas(id))).then((list) => {
    schemasDone = true;
    return list;
  });
  const ok = await fetch(`${s.url}/ok`);
  okBeforeSchemas = ok.status === 200 && !schemasDone;
  (await all).forEach((schemas, i) => (got[ids[i]!] = schemas));
}, 120_000);
afterAll(async () => {
  await s?.close();
});

const props = (schema: unknown) => (schema as Json).properties as Json;

describe("Annotation.Root graphs (from the TypeScript types)", () => {
  it("types every field of the state, with JSDoc descriptions and reducer update types", () => {
    const { state_schema: state, input_schema: input, graph_id } = got.annotated!;
    expect(graph_id).toBe("annotated");
    expect(state).toMatchObject({ type: "object", $schema: DRAFT_07 });
    expect(props(state)).toMatchObject({
      topic: { description: "The question asked.", type: "string" },
      count: { type: "number" },
      done: { type: "boolean" },
      mood: { enum: ["happy", "sad"], type: "string" },
      // The update type: the reducer takes one string or many.
      tags: { anyOf: [{ type: "array", items: { type: "string" } }, { type: "string" }] },
      note: { type: ["null", "string"] },
      level: { enum: [1, 2, 3], type: "number" },
      mixed: { type: ["string", "number"] },
      detail: { $ref: "#/definitions/{title:string;pages?:number|undefined;labels:any[];}" },
    });
    expect(
      (state as Json).definitions["{title:string;pages?:number|undefined;labels:any[];}"],
    ).toEqual({
      type: "object",
      properties: {
        title: { type: "string" },
        pages: { type: "number" },
        labels: { type: "array", items: {} },
      },
    });
    // Update types: nothing is required.
    expect(state).not.toHaveProperty("required");
    expect(input).toEqual(state);
  });

  it("gives the output the state's value types and an empty config/context schema", () => {
    const { output_schema: output, config_schema, context_schema } = got.annotated!;
    expect(props(output).tags).toEqual({ type: "array", items: { type: "string" } });
    expect(config_schema).toEqual({ type: "object", $schema: DRAFT_07 });
    expect(context_schema).toEqual(config_schema);
  });

  it("uses the graph's declared input, output and context annotations", () => {
    const g = got.input_output!;
    expect(g.input_schema).toEqual({
      type: "object",
      properties: { question: { type: "string" } },
      $schema: DRAFT_07,
    });
    expect(g.output_schema).toEqual({
      type: "object",
      properties: { answer: { type: "string" } },
      $schema: DRAFT_07,
    });
    expect(g.context_schema).toEqual({
      type: "object",
      properties: { model: { type: "string" }, temperature: { type: "number" } },
      $schema: DRAFT_07,
    });
    expect(g.config_schema).toEqual(g.context_schema);
  });

  it("describes messages as an array of BaseMessage", () => {
    const state = got.messages!.state_schema as Json;
    const ref = state.properties.messages.items.$ref as string;
    expect(state.properties.messages.type).toBe("array");
    expect(ref).toMatch(/^#\/definitions\/BaseMessage/);
    const def = state.definitions[ref.slice("#/definitions/".length)];
    expect(def).toMatchObject({ type: "object", properties: { content: {}, type: {}, id: {} } });
  });
});

describe("zod graphs (from the schema at run time)", () => {
  it("includes jsonSchemaExtra and the reducer's input type from LangGraph's registry", () => {
    const g = got.zod_registry!;
    expect(props(g.state_schema).notes).toEqual({
      anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }],
      langgraph_type: "messages",
    });
    expect(props(g.state_schema)).toMatchObject({
      status: { default: "idle", type: "string", enum: ["idle", "busy", "done"] },
      question: { type: "string", description: "What to answer" },
      attempts: { type: "integer" },
    });
    expect(props(g.output_schema).notes).toMatchObject({
      type: "array",
      items: { type: "string" },
      langgraph_type: "messages",
    });
    expect((g.output_schema as Json).required).toEqual(["notes", "status", "question"]);
    expect(g.context_schema).toMatchObject({
      type: "object",
      properties: {
        model: { type: "string", description: "Model name" },
        temperature: { default: 0.2, type: "number", minimum: 0, maximum: 2 },
      },
      required: ["model", "temperature"],
    });
    expect(g.config_schema).toEqual(g.context_schema);
  });

  it("reads withLangGraph metadata on a zod 3 schema", () => {
    const g = got.zod_legacy_registry!;
    expect(props(g.state_schema)).toMatchObject({
      items: { type: "string", langgraph_nodes: ["collect"] },
      total: { type: "number", default: 0 },
    });
    expect(props(g.output_schema).items).toMatchObject({
      type: "array",
      langgraph_nodes: ["collect"],
    });
  });

  it("converts plain zod 4 with separate input and output schemas", () => {
    const g = got.zod_plain!;
    expect(props(g.input_schema)).toEqual({ query: { type: "string" } });
    // Input and state are update types (nothing required); the output is the full value.
    expect(g.input_schema).not.toHaveProperty("required");
    expect(props(g.output_schema)).toEqual({
      result: { type: "string" },
      score: { type: "number" },
    });
    expect((g.output_schema as Json).required).toEqual(["result", "score"]);
    expect(Object.keys(props(g.state_schema))).toEqual(["query", "result", "score"]);
    expect(g.config_schema ?? null).toBeNull();
  });

  it("converts plain zod 3 (the output requires what the state does not)", () => {
    const g = got.zod_v3!;
    expect(props(g.state_schema)).toMatchObject({
      city: { type: "string" },
      days: { type: "integer", minimum: 1 },
      units: { type: "string", enum: ["metric", "imperial"] },
    });
    expect(g.state_schema).not.toHaveProperty("required");
    expect(props(g.input_schema)).toEqual(props(g.state_schema));
    expect((g.output_schema as Json).required).toEqual(["city", "days"]);
  });

  it("reads a StateSchema's own JSON Schema (ReducedValue jsonSchemaExtra, input types)", () => {
    const g = got.state_schema!;
    expect(props(g.state_schema)).toMatchObject({
      log: { type: "array", items: { type: "string" }, description: "Everything logged" },
      topic: { type: "string" },
      count: { type: "number", default: 0 },
    });
    expect((g.state_schema as Json).required).toEqual(["topic"]);
    expect(props(g.input_schema).log).toMatchObject({
      anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }],
    });
    expect(g.input_schema).not.toHaveProperty("required");
  });
});

describe("the route", () => {
  it("answers other requests while a graph's types are being extracted", () => {
    expect(okBeforeSchemas).toBe(true);
  });

  it("serves later requests from the cache, by assistant id as by graph id", async () => {
    const mine = await s.client.assistants.create({ graphId: "annotated" });
    expect(await s.client.assistants.getSchemas(mine.assistant_id)).toEqual(got.annotated);
  });

  it("keeps the built-in refine graph's schemas", async () => {
    const refine = await s.client.assistants.getSchemas("refine");
    expect(props(refine.input_schema)).toHaveProperty("task");
  });

  it("answers 404 for an unknown assistant", async () => {
    const res = await fetch(`${s.url}/assistants/00000000-0000-4000-8000-0000000000ff/schemas`);
    expect(res.status).toBe(404);
  });
});

describe("bounds of the static extraction", () => {
  const dir = mkdtempSync(join(tmpdir(), "refinery-schemas-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("does not parse an oversized source file, and says why", async () => {
    const file = join(dir, "huge.ts");
    writeFileSync(file, `export const graph = 1;\n${"// padding\n".repeat(250_000)}`);
    const warnings: string[] = [];
    const service = createSchemaService({ warn: (m) => warnings.push(m) });
    const entry = {
      graphId: "huge",
      source: "./huge.ts:graph",
      file: { path: file, exportName: "graph" },
      get: async () => ({}) as never,
    };
    expect(await service.schemasOf(entry, {})).toBeUndefined();
    expect(warnings.join("\n")).toMatch(/huge\.ts is \d+ bytes/);
  });

  it("stops an extraction past its deadline and does not retry it", async () => {
    const warnings: string[] = [];
    const service = createSchemaService({ timeoutMs: 50, warn: (m) => warnings.push(m) });
    const entry = {
      graphId: "annotated",
      source: "./annotation.ts:annotated",
      file: { path: join(APP, "annotation.ts"), exportName: "annotated" },
      get: async () => ({}) as never,
    };
    expect(await service.schemasOf(entry, {})).toBeUndefined();
    expect(warnings).toEqual([
      'no schemas for graph "annotated": schema extraction took longer than 50 ms and was stopped',
    ]);
    expect(await service.schemasOf(entry, {})).toBeUndefined();
    expect(warnings).toHaveLength(1);
  });
});
