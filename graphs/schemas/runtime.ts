// Runtime schema extraction: a graph whose state is a LangGraph `StateSchema` or a zod object
// carries its schema, so its JSON Schemas are read off the compiled graph's builder, in the
// LangGraph server 1.5.1's order: StateSchema (`getJsonSchema`, `jsonSchemaExtra` of its
// fields), then zod through LangGraph's schema registry (`withLangGraph`, `registry`,
// `jsonSchemaExtra`), then plain zod (v3 or v4) without the registry. Undefined when the
// graph has none of these (an `Annotation.Root` state): static.ts reads its TypeScript types.
import { toJsonSchema } from "@langchain/core/utils/json_schema";
import { isZodSchemaV3, isZodSchemaV4 } from "@langchain/core/utils/types";
import * as bundledSchemaHelpers from "@langchain/langgraph/zod/schema";

/**
 * LangGraph's zod schema helpers (`@langchain/langgraph/zod/schema`). They read the schema
 * registry of the copy of LangGraph they belong to, so a graph's metadata (`withLangGraph`,
 * `registry`) is only found through the copy its module imported: the server passes that copy
 * (service.ts) when it is not Refinery's own (a project with its own node_modules, or Refinery
 * run from its bundle in dist/).
 */
export type SchemaHelpers = Pick<
  typeof bundledSchemaHelpers,
  "getConfigTypeSchema" | "getInputTypeSchema" | "getOutputTypeSchema" | "getUpdateTypeSchema"
>;

export type JsonSchema = Record<string, unknown>;

export interface GraphSchemas {
  state?: JsonSchema;
  input?: JsonSchema;
  output?: JsonSchema;
  config?: JsonSchema;
}

interface Builder {
  _schemaRuntimeDefinition?: unknown;
  _inputRuntimeDefinition?: unknown;
  _outputRuntimeDefinition?: unknown;
  _configRuntimeSchema?: unknown;
}

/** LangGraph's marker for "the input is the state, every field optional". */
const PARTIAL_STATE = Symbol.for("langgraph.state.partial");

interface StateSchemaLike {
  getJsonSchema(): JsonSchema;
  getInputJsonSchema(): JsonSchema;
}

function isStateSchemaLike(value: unknown): value is StateSchemaLike {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as StateSchemaLike).getJsonSchema === "function" &&
    typeof (value as StateSchemaLike).getInputJsonSchema === "function"
  );
}

function fromStateSchema(b: Builder): GraphSchemas | undefined {
  const {
    _schemaRuntimeDefinition: s,
    _inputRuntimeDefinition: i,
    _outputRuntimeDefinition: o,
  } = b;
  if (!isStateSchemaLike(s) && !isStateSchemaLike(i) && !isStateSchemaLike(o)) return undefined;
  const state = isStateSchemaLike(s) ? s.getJsonSchema() : undefined;
  const input = isStateSchemaLike(i)
    ? i.getInputJsonSchema()
    : i === PARTIAL_STATE && isStateSchemaLike(s)
      ? s.getInputJsonSchema()
      : undefined;
  const output = isStateSchemaLike(o) ? o.getJsonSchema() : undefined;
  if (!state && !input && !output) return undefined;
  // StateSchema graphs have no config schema in the reference either.
  return { state, input, output, config: undefined };
}

function fromRegistry(graph: unknown, helpers: SchemaHelpers): GraphSchemas | undefined {
  try {
    const out: GraphSchemas = {
      state: helpers.getUpdateTypeSchema(graph) as JsonSchema | undefined,
      input: helpers.getInputTypeSchema(graph) as JsonSchema | undefined,
      output: helpers.getOutputTypeSchema(graph) as JsonSchema | undefined,
      config: helpers.getConfigTypeSchema(graph) as JsonSchema | undefined,
    };
    return Object.values(out).every((v) => v == null) ? undefined : out;
  } catch {
    return undefined;
  }
}

function fromPlainZod(b: Builder): GraphSchemas | undefined {
  const convert = (schema: unknown): JsonSchema | undefined => {
    if (!schema || !(isZodSchemaV4(schema) || isZodSchemaV3(schema))) return undefined;
    try {
      return toJsonSchema(schema as never) as JsonSchema;
    } catch {
      return undefined;
    }
  };
  const state = convert(b._schemaRuntimeDefinition);
  const input =
    convert(b._inputRuntimeDefinition) ?? (state ? { ...state, required: undefined } : undefined);
  const output = convert(b._outputRuntimeDefinition);
  const config = convert(b._configRuntimeSchema);
  if (!state && !input && !output && !config) return undefined;
  return { state, input, output, config };
}

/**
 * The schemas a compiled graph carries at run time, or undefined when it carries none. `helpers`:
 * the schema helpers of the LangGraph copy the graph's module uses (default: Refinery's own).
 */
export function runtimeSchemas(
  graph: unknown,
  helpers: SchemaHelpers = bundledSchemaHelpers,
): GraphSchemas | undefined {
  const builder = (graph as { builder?: Builder } | null | undefined)?.builder;
  if (!builder || typeof builder !== "object") return undefined;
  let fromState: GraphSchemas | undefined;
  try {
    fromState = fromStateSchema(builder);
  } catch {
    // A StateSchema whose fields have no JSON Schema: try the other ways.
  }
  return fromState ?? fromRegistry(graph, helpers) ?? fromPlainZod(builder);
}
