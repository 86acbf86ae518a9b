// Tests for the json_schema verifier: JSON extraction from drafts, ajv messages, scores, dialects.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { isRefineryError } from "../../core/errors.ts";
import {
  compileJsonSchema,
  createJsonSchemaVerifier,
  extractJson,
} from "../../core/verifiers/json-schema.ts";
import { createVerifiers, specFromZod } from "../../core/verifiers/index.ts";
import type { JsonSchemaVerifierSpec } from "../../core/verifiers/spec.ts";

const ctx = { task: "give a person as JSON", iteration: 1 };

const personSchema = {
  type: "object",
  properties: {
    name: { type: "string" },
    age: { type: "integer", minimum: 0 },
    email: { type: "string", format: "email" },
    role: { enum: ["admin", "user"] },
  },
  required: ["name", "age"],
  additionalProperties: false,
};

function verifier(schema: Record<string, unknown> = personSchema) {
  const spec: JsonSchemaVerifierSpec = { kind: "json_schema", schema, hard: true };
  return createJsonSchemaVerifier(spec, "json_schema", "verifiers[0]");
}

describe("extractJson", () => {
  it("parses the whole text first", () => {
    expect(extractJson('  {"a": 1}\n')).toEqual({ value: { a: 1 }, source: "whole" });
    expect(extractJson("[1, 2]")).toEqual({ value: [1, 2], source: "whole" });
  });

  it("prefers a ```json block over other fenced blocks", () => {
    const text = 'Here:\n```\nnot json\n```\nand\n```json\n{"b": 2}\n```\nbye';
    expect(extractJson(text)).toEqual({ value: { b: 2 }, source: "fenced" });
  });

  it("accepts an unlabelled fence that parses", () => {
    expect(extractJson('x\n```\n{"c": 3}\n```')).toEqual({ value: { c: 3 }, source: "fenced" });
  });

  it("finds the first balanced object that parses, skipping bracketed prose", () => {
    const text = 'See [1] and {note}. The result is {"name": "a {b}", "n": [1, {"x": "]"}]} ok.';
    expect(extractJson(text)).toEqual({
      value: { name: "a {b}", n: [1, { x: "]" }] },
      source: "embedded",
    });
  });

  it("returns undefined when there is no JSON", () => {
    expect(extractJson("no json here {at all")).toBeUndefined();
    expect(extractJson("")).toBeUndefined();
  });
});

describe("json_schema verifier", () => {
  it("passes a valid document with score 1", async () => {
    const result = await verifier().verify('{"name": "Ada", "age": 36}', ctx);
    expect(result).toMatchObject({ pass: true, score: 1 });
  });

  it("passes JSON inside a fenced block and says where it was found", async () => {
    const result = await verifier().verify('Sure!\n```json\n{"name": "Ada", "age": 36}\n```', ctx);
    expect(result.pass).toBe(true);
    expect(result.message).toContain("fenced");
  });

  it("names the JSON pointer, the rule and the offending value", async () => {
    const result = await verifier().verify('{"name": "Ada", "age": 36.5}', ctx);
    expect(result.pass).toBe(false);
    expect(result.message).toContain("/age must be integer (got 36.5)");
    expect(result.score).toBe(0.5);
  });

  it("lists every violation and lowers the score as violations grow", async () => {
    const result = await verifier().verify(
      '{"age": -1, "email": "nope", "role": "root", "extra": true}',
      ctx,
    );
    expect(result.pass).toBe(false);
    expect(result.message).toContain("(root) must have required property 'name'");
    expect(result.message).toContain('(root) must NOT have additional property "extra"');
    expect(result.message).toContain("/age must be >= 0 (got -1)");
    expect(result.message).toContain('/email must match format "email" (got "nope")');
    expect(result.message).toContain('/role must be one of "admin", "user" (got "root")');
    expect(result.message).toMatch(/5 problems/);
    expect(result.score).toBeCloseTo(0.1);
  });

  it("scores an unparseable draft 0 and asks for JSON", async () => {
    const result = await verifier().verify("Ada is 36 years old.", ctx);
    expect(result).toMatchObject({ pass: false, score: 0 });
    expect(result.message).toMatch(/no JSON found/);
  });

  it("supports draft-07 schemas through $schema", async () => {
    const v = verifier({
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "array",
      items: [{ type: "string" }, { type: "number" }],
    });
    expect((await v.verify('["a", 1]', ctx)).pass).toBe(true);
    expect((await v.verify("[1, 1]", ctx)).message).toContain("/0 must be string");
  });

  it("rejects an invalid schema at construction with the field and ajv's message", () => {
    let caught: unknown;
    try {
      verifier({ type: "integr" });
    } catch (error) {
      caught = error;
    }
    expect(isRefineryError(caught)).toBe(true);
    if (!isRefineryError(caught)) return;
    expect(caught.code).toBe("invalid_config");
    expect(caught.field).toBe("verifiers[0].schema");
    expect(caught.message).toMatch(/invalid JSON Schema: schema is invalid: data\/type/);
  });

  it("rejects an unresolvable $ref and an unsupported dialect", () => {
    expect(() => verifier({ $ref: "#/$defs/missing" })).toThrow(/can't resolve reference/);
    expect(() =>
      verifier({ $schema: "http://json-schema.org/draft-04/schema#", type: "object" }),
    ).toThrow(/unsupported JSON Schema dialect/);
  });
});

describe("patterns in schemas", () => {
  it("validates pattern and patternProperties on RE2: a backtracking pattern does not hang", async () => {
    const v = verifier({
      type: "object",
      properties: { code: { type: "string", pattern: "^(a+)+$" } },
      patternProperties: { "^(x+x+)+y$": { type: "number" } },
    });
    const draft = JSON.stringify({ code: `${"a".repeat(40)}!`, [`${"x".repeat(40)}y`]: "s" });
    const result = await v.verify(draft, ctx);
    expect(result.pass).toBe(false);
    expect(result.message).toContain('/code must match pattern "^(a+)+$"');
    expect(result.message).toContain("must be number");
    expect((await v.verify(JSON.stringify({ code: "aaaa", xxy: 1 }), ctx)).pass).toBe(true);
  });

  it("refuses a pattern RE2 cannot run, naming where it is in the schema", () => {
    const refused = (schema: Record<string, unknown>) => {
      try {
        verifier(schema);
      } catch (error) {
        if (isRefineryError(error)) return error;
        throw error;
      }
      throw new Error("expected the schema to be refused");
    };
    const lookahead = refused({
      type: "object",
      properties: { "pass word": { type: "string", pattern: "^(?=.*\\d).{8,}$" } },
    });
    expect(lookahead.code).toBe("invalid_config");
    expect(lookahead.field).toBe('verifiers[0].schema.properties["pass word"].pattern');
    expect(lookahead.message).toMatch(/lookahead is not supported/);
    expect(lookahead.fix).toMatch(/RE2/);
    const backreference = refused({ patternProperties: { "^(\\w)\\1$": {} } });
    expect(backreference.field).toBe(
      `verifiers[0].schema.patternProperties[${JSON.stringify("^(\\w)\\1$")}]`,
    );
    expect(backreference.message).toMatch(/backreferences are not supported/);
  });
});

describe("zod schemas", () => {
  const Person = z.object({ name: z.string(), age: z.number().int() });

  it("specFromZod converts a zod schema into a json_schema spec", async () => {
    const spec = specFromZod(Person, { id: "person" });
    expect(spec).toMatchObject({ kind: "json_schema", id: "person", hard: true });
    const [v] = createVerifiers([spec]);
    expect((await v!.verify('{"name": "A", "age": 3}', ctx)).pass).toBe(true);
    expect((await v!.verify('{"name": "A", "age": "3"}', ctx)).message).toContain(
      "/age must be integer",
    );
  });

  it("createVerifiers accepts a zod schema in place of a JSON Schema", async () => {
    const [v] = createVerifiers([{ kind: "json_schema", schema: Person }]);
    expect((await v!.verify('{"name": "A"}', ctx)).message).toContain(
      "must have required property 'age'",
    );
  });

  it("reports a zod schema that JSON Schema cannot express", () => {
    expect(() => createVerifiers([{ kind: "json_schema", schema: z.date() }])).toThrow(
      expect.objectContaining({ code: "invalid_config", field: "verifiers[0].schema" }),
    );
  });
});

describe("compiled schema reuse", () => {
  it("compiles a schema once and reuses it; verifiers sharing it keep their own results", async () => {
    const schema = { type: "object", properties: { n: { type: "integer" } }, required: ["n"] };
    expect(compileJsonSchema({ ...schema })).toBe(
      compileJsonSchema(JSON.parse(JSON.stringify(schema))),
    );
    expect(compileJsonSchema({ ...schema, required: [] })).not.toBe(compileJsonSchema(schema));
    const spec = (id: string): JsonSchemaVerifierSpec => ({
      kind: "json_schema",
      id,
      hard: true,
      schema,
    });
    const a = createJsonSchemaVerifier(spec("a"), "a");
    const b = createJsonSchemaVerifier(spec("b"), "b");
    const [bad, good] = await Promise.all([a.verify('{"n": "x"}', ctx), b.verify('{"n": 2}', ctx)]);
    expect(bad).toMatchObject({ pass: false, message: expect.stringMatching(/n/) });
    expect(good).toMatchObject({ pass: true });
  });

  it("a broken schema is not cached: it fails every time", () => {
    const broken = { type: "object", properties: { n: { type: "nonsense" } } };
    for (let i = 0; i < 2; i++)
      expect(() => compileJsonSchema(broken, "v")).toThrow(
        expect.objectContaining({ code: "invalid_config", field: "v.schema" }),
      );
  });
});
