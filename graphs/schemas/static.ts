// Static schema extraction for graphs whose state is an `Annotation.Root` (no runtime schema to
// read): the TypeScript compiler type-checks the graph's source file and the graph export's
// state, update, input, output and context types are written out as JSON Schema (draft-07), in
// the shape the LangGraph server 1.5.1 produces with its vendored typescript-json-schema: no
// `required`, objects below the top level as `$ref`s into `definitions` named after the type's
// text, literal unions as `enum`, JSDoc comments as `description`. Slow (seconds: it checks the
// graph against @langchain/langgraph's types), so it runs in a worker (see service.ts); this
// module loads `typescript` only when called.
import { statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, extname, join } from "node:path";
import type * as TS from "typescript";

export interface StaticSpec {
  graphId: string;
  /** Absolute path of the graph's source file. */
  sourceFile: string;
  exportSymbol: string;
}

export type JsonSchema = Record<string, unknown>;

export interface StaticSchemas {
  state?: JsonSchema;
  input?: JsonSchema;
  output?: JsonSchema;
  config?: JsonSchema;
}

/** Source files larger than this are not parsed (their graphs get no static schemas). */
export const MAX_SOURCE_BYTES = 2 * 1024 * 1024;

const DRAFT_07 = "http://json-schema.org/draft-07/schema#";

// The type-level reflection the LangGraph server applies to a graph export (a compiled graph, a
// builder, a factory or a Promise of one): `state` is what the graph takes as an update, `input`
// / `output` / `config` come from its builder's definitions; Inspect flattens each to plain
// object types three levels deep (deeper becomes any), keeping BaseMessage whole.
const REFLECT = `
import type { BaseMessage } from "@langchain/core/messages";
import type { StateType, UpdateType, StateDefinition } from "@langchain/langgraph";
type Same<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
type OneMessage<T> = T extends BaseMessage ? BaseMessage : never;
type MessageList<T> = T extends Array<infer C> ? Same<OneMessage<C>, BaseMessage> extends true ? BaseMessage[] : never : never;
type Unwrap<T> = T extends (...args: any[]) => infer R ? Awaited<R> : Awaited<T>;
type NoOverwrite<T> = Exclude<T, { __overwrite__: any }>;
type Inspect<T, D extends Array<0> = []> = D extends [0, 0, 0] ? any : T extends unknown ? {
  [K in keyof T]: 0 extends 1 & T[K] ? T[K]
    : Same<MessageList<NoOverwrite<T[K]>>, BaseMessage[]> extends true ? BaseMessage[]
    : Same<OneMessage<NoOverwrite<T[K]>>, BaseMessage> extends true ? BaseMessage
    : Inspect<NoOverwrite<T[K]>, [0, ...D]>;
} : never;
type FromCompiled<T> = T extends { RunInput: infer S; RunOutput: infer U } ? { state: S; update: U }
  : T extends { "~InputType": infer I; "~OutputType": infer O } ? { state: O; update: I } : never;
type Reflect<T> = Unwrap<T> extends infer G ? G extends { compile(...args: any[]): infer C } ? FromCompiled<C> : FromCompiled<G> : never;
type FromBuilder<T> = T extends { builder: { _inputDefinition: infer I extends StateDefinition; _outputDefinition: infer O extends StateDefinition; _configSchema?: infer C extends StateDefinition | undefined } }
  ? { input: UpdateType<I>; output: StateType<O>; config: UpdateType<Exclude<C, undefined>> } : never;
type BuilderOf<T> = Unwrap<T> extends infer G ? G extends { compile(...args: any[]): infer C } ? FromBuilder<C> : FromBuilder<G> : never;
type NotAny<T> = 0 extends 1 & T ? never : T;
`;

const KINDS = ["state", "input", "output", "config"] as const;

/** Extracts the schemas of several graphs with one type-check (graphs of one project share it). */
export async function extractStaticSchemas(
  specs: StaticSpec[],
): Promise<Record<string, StaticSchemas | { error: string }>> {
  const out: Record<string, StaticSchemas | { error: string }> = {};
  const usable: StaticSpec[] = [];
  for (const spec of specs) {
    const problem = sourceProblem(spec);
    if (problem) out[spec.graphId] = { error: problem };
    else usable.push(spec);
  }
  if (usable.length === 0) return out;
  // typescript is resolved from the server's own dependencies.
  const ts = createRequire(import.meta.url)("typescript") as typeof TS;
  const virtual = new Map<string, string>();
  const aliases = new Map<string, string>();
  usable.forEach((spec, i) => {
    const dir = dirname(spec.sourceFile);
    const ext = extname(spec.sourceFile);
    const file = join(dir, `__refinery_schema_${process.pid}_${i}.mts`);
    const prefix = `G${i}`;
    aliases.set(spec.graphId, prefix);
    // Import the export's type from the source itself (allowImportingTsExtensions).
    const from = `./${basename(spec.sourceFile, ext)}${ext}`;
    virtual.set(
      file,
      `${REFLECT}
type ${prefix} = typeof import(${JSON.stringify(from)})[${JSON.stringify(spec.exportSymbol)}];
type ${prefix}_r = Reflect<${prefix}>;
type ${prefix}_b = BuilderOf<${prefix}>;
export type ${prefix}_state = Inspect<${prefix}_r["update"]>;
export type ${prefix}_input = Inspect<NotAny<${prefix}_b["input"]>>;
export type ${prefix}_output = Inspect<NotAny<${prefix}_b["output"]>>;
export type ${prefix}_config = Inspect<NotAny<${prefix}_b["config"]>>;
`,
    );
  });
  // The project's tsconfig.json (nearest the first graph's file), as the reference reads it; or
  // defaults that resolve packages as a bundler does.
  let options: TS.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowJs: true,
    resolveJsonModule: true,
    esModuleInterop: true,
  };
  const tsconfig = ts.findConfigFile(dirname(usable[0]!.sourceFile), ts.sys.fileExists);
  if (tsconfig) {
    const read = ts.readConfigFile(tsconfig, ts.sys.readFile);
    if (!read.error)
      options = ts.parseJsonConfigFileContent(read.config, ts.sys, dirname(tsconfig)).options;
  }
  options = {
    ...options,
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    allowImportingTsExtensions: true,
    incremental: false,
    composite: false,
  };
  const host = ts.createCompilerHost(options, true);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (f) => virtual.get(f) ?? readFile(f);
  host.fileExists = (f) => virtual.has(f) || fileExists(f);
  host.getSourceFile = (f, lang, onError, create) => {
    const text = virtual.get(f);
    if (text !== undefined) return ts.createSourceFile(f, text, lang, true);
    return getSourceFile(f, lang, onError, create);
  };
  const program = ts.createProgram({ rootNames: [...virtual.keys()], options, host });
  const checker = program.getTypeChecker();
  const files = [...virtual.keys()];
  usable.forEach((spec, i) => {
    const sf = program.getSourceFile(files[i]!);
    const prefix = aliases.get(spec.graphId)!;
    const result: StaticSchemas = {};
    for (const kind of KINDS) {
      const decl = sf?.statements.find(
        (s): s is TS.TypeAliasDeclaration =>
          ts.isTypeAliasDeclaration(s) && s.name.text === `${prefix}_${kind}`,
      );
      if (!decl) continue;
      try {
        const schema = new SchemaWriter(ts, checker).root(checker.getTypeAtLocation(decl));
        if (schema) result[kind] = schema;
      } catch {
        // A type the writer cannot express leaves this schema out, as the reference does.
      }
    }
    out[spec.graphId] = result;
  });
  return out;
}

function sourceProblem(spec: StaticSpec): string | undefined {
  try {
    const size = statSync(spec.sourceFile).size;
    if (size > MAX_SOURCE_BYTES)
      return `${spec.sourceFile} is ${size} bytes; sources over ${MAX_SOURCE_BYTES} bytes are not parsed`;
  } catch (err) {
    return `cannot read ${spec.sourceFile}: ${(err as Error).message.split("\n")[0]}`;
  }
  return undefined;
}

/** Types to JSON Schema, after typescript-json-schema's rules as the reference configures them. */
class SchemaWriter {
  private readonly definitions: Record<string, JsonSchema> = {};
  private depth = 0;

  constructor(
    private readonly ts: typeof TS,
    private readonly checker: TS.TypeChecker,
  ) {}

  /** The top-level schema: an object inline, with its definitions; undefined for `never`/any. */
  root(type: TS.Type): JsonSchema | undefined {
    const { ts } = this;
    if (type.flags & (ts.TypeFlags.Never | ts.TypeFlags.Any)) return undefined;
    const body = this.isObject(type) ? this.object(type) : this.write(type);
    const out: JsonSchema = { ...body };
    if (Object.keys(this.definitions).length) out.definitions = this.definitions;
    out.$schema = DRAFT_07;
    return out;
  }

  private isObject(type: TS.Type): boolean {
    const { ts } = this;
    return (
      !!(type.flags & ts.TypeFlags.Object) &&
      !this.checker.isArrayType(type) &&
      !this.checker.isTupleType(type)
    );
  }

  private write(type: TS.Type): JsonSchema {
    const { ts, checker } = this;
    if (++this.depth > 64) {
      this.depth--;
      return {};
    }
    try {
      const f = type.flags;
      if (f & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return {};
      if (f & ts.TypeFlags.Never) return { not: {} };
      if (f & ts.TypeFlags.Null) return { type: "null" };
      if (f & (ts.TypeFlags.Undefined | ts.TypeFlags.Void)) return { type: "undefined" };
      if (f & ts.TypeFlags.StringLiteral)
        return { type: "string", const: (type as TS.StringLiteralType).value };
      if (f & ts.TypeFlags.NumberLiteral)
        return { type: "number", const: (type as TS.NumberLiteralType).value };
      if (f & ts.TypeFlags.BooleanLiteral)
        return { type: "boolean", const: checker.typeToString(type) === "true" };
      if (f & ts.TypeFlags.String || f & ts.TypeFlags.TemplateLiteral) return { type: "string" };
      if (f & ts.TypeFlags.Number) return { type: "number" };
      if (f & ts.TypeFlags.Boolean) return { type: "boolean" };
      if (f & ts.TypeFlags.BigInt) return { type: "integer" };
      if (f & ts.TypeFlags.EnumLike && type.isUnion()) return this.union(type);
      if (type.isUnion()) return this.union(type);
      if (type.isIntersection()) return this.intersection(type);
      if (checker.isArrayType(type)) {
        const [item] = checker.getTypeArguments(type as TS.TypeReference);
        return { type: "array", items: item ? this.write(item) : {} };
      }
      if (checker.isTupleType(type)) {
        const items = checker.getTypeArguments(type as TS.TypeReference).map((t) => this.write(t));
        return { type: "array", items, minItems: items.length, maxItems: items.length };
      }
      if (f & ts.TypeFlags.Object) {
        const name = type.getSymbol()?.getName();
        if (name === "Date") return { type: "string", format: "date-time" };
        return this.reference(type);
      }
      return {};
    } finally {
      this.depth--;
    }
  }

  private union(type: TS.UnionType): JsonSchema {
    const enumValues: (string | number | boolean)[] = [];
    const simple: string[] = [];
    const schemas: JsonSchema[] = [];
    for (const member of type.types) {
      const def = this.write(member);
      if ("const" in def && Object.keys(def).length === 2) {
        const value = def.const as string | number | boolean;
        if (!enumValues.includes(value)) enumValues.push(value);
        continue;
      }
      if (def.type === "undefined") continue;
      const keys = Object.keys(def);
      if (keys.length === 1 && keys[0] === "type" && typeof def.type === "string") {
        if (!simple.includes(def.type)) simple.push(def.type);
      } else schemas.push(def);
    }
    if (enumValues.length > 0) {
      const onlyBooleans =
        enumValues.length === 2 &&
        typeof enumValues[0] === "boolean" &&
        typeof enumValues[1] === "boolean" &&
        enumValues[0] !== enumValues[1];
      if (onlyBooleans) {
        if (!simple.includes("boolean")) simple.push("boolean");
      } else {
        const e: JsonSchema =
          enumValues.length > 1 ? { enum: [...enumValues].sort() } : { const: enumValues[0] };
        for (const t of ["string", "number", "boolean"])
          if (enumValues.every((v) => typeof v === t)) e.type = t;
        schemas.push(e);
      }
    }
    if (simple.length > 0) schemas.push({ type: simple.length === 1 ? simple[0] : simple });
    if (schemas.length === 1) return schemas[0]!;
    return { anyOf: schemas };
  }

  private intersection(type: TS.IntersectionType): JsonSchema {
    const simple: string[] = [];
    const schemas: JsonSchema[] = [];
    for (const member of type.types) {
      const def = this.write(member);
      const keys = Object.keys(def);
      if (keys.length === 1 && keys[0] === "type" && typeof def.type === "string") {
        if (!simple.includes(def.type)) simple.push(def.type);
      } else schemas.push(def);
    }
    if (simple.length === 1 && schemas.length === 0) return { type: simple[0] };
    return { allOf: [...schemas, ...simple.map((t) => ({ type: t }))] };
  }

  /** An object type below the top level: a definition named after its text, and a $ref to it. */
  private reference(type: TS.Type): JsonSchema {
    const { ts, checker } = this;
    const name = checker
      .typeToString(
        type,
        undefined,
        ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.UseFullyQualifiedType,
      )
      // Without module paths (`import("…", {with: …}).`) and spaces, as typescript-json-schema.
      .replace(/\bimport\("[^"]*"(,\s*\{[^()]*\})?\)\.|".*?"\.| /g, "");
    if (!(name in this.definitions)) {
      this.definitions[name] = {};
      this.definitions[name] = isMessageClass(type) ? messageDefinition() : this.object(type);
    }
    return { $ref: `#/definitions/${name}` };
  }

  private object(type: TS.Type): JsonSchema {
    const { ts, checker } = this;
    const properties: Record<string, JsonSchema> = {};
    for (const prop of checker.getPropertiesOfType(type)) {
      const decl = prop.valueDeclaration ?? prop.declarations?.[0];
      const propType = decl
        ? checker.getTypeOfSymbolAtLocation(prop, decl)
        : checker.getTypeOfSymbol(prop);
      // Methods and function-valued properties have no JSON form.
      if (
        !(propType.flags & ts.TypeFlags.Union) &&
        propType.getCallSignatures().length > 0 &&
        checker.getPropertiesOfType(propType).length === 0
      )
        continue;
      if (prop.getName().startsWith("__@")) continue;
      const schema = this.write(propType);
      const description = ts.displayPartsToString(prop.getDocumentationComment(checker)).trim();
      properties[prop.getName()] = description
        ? "$ref" in schema
          ? { ...schema, description }
          : { description, ...schema }
        : schema;
    }
    const out: JsonSchema = { type: "object" };
    if (Object.keys(properties).length) out.properties = properties;
    return out;
  }
}

function isMessageClass(type: TS.Type): boolean {
  const name = type.getSymbol()?.getName() ?? type.aliasSymbol?.getName();
  return name === "BaseMessage";
}

/**
 * BaseMessage, written compactly: the reference expands the class with every message subclass
 * and its methods' fields (over 100 KB); this keeps what a client fills in.
 */
function messageDefinition(): JsonSchema {
  return {
    description: "A chat message (LangChain BaseMessage).",
    type: "object",
    properties: {
      type: { type: "string" },
      content: {
        anyOf: [{ type: "string" }, { type: "array", items: { type: "object" } }],
      },
      id: { type: "string" },
      name: { type: "string" },
      additional_kwargs: { type: "object" },
      response_metadata: { type: "object" },
    },
  };
}
