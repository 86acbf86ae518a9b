// Tests for parsing specs (error field paths), building verifiers (ids, defaults, ordering,
// deep config checks) and running them (order, concurrency, crashes, aborts).
import { describe, expect, it } from "vitest";
import { RefineryError } from "../../core/errors.ts";
import type { ModelInvoker } from "../../core/models/types.ts";
import {
  createVerifiers,
  isVerifierErrorMessage,
  parseVerifierSpecs,
  runVerifiers,
  type Verifier,
  type VerifierResult,
} from "../../core/verifiers/index.ts";

function thrown(fn: () => unknown): RefineryError {
  try {
    fn();
  } catch (error) {
    if (error instanceof RefineryError) return error;
    throw error;
  }
  throw new Error("expected a RefineryError");
}

const judge: ModelInvoker = async () => ({
  text: '{"score": 1, "reason": "ok"}',
  usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2, calls: 1 },
});

describe("parseVerifierSpecs", () => {
  it("fills defaults: hard for deterministic kinds, soft for llm_judge", () => {
    const specs = parseVerifierSpecs([
      { kind: "regex", mustMatch: ["a"] },
      { kind: "llm_judge", rubric: "good?" },
      { kind: "webhook", url: "https://example.com/check" },
      { kind: "constraints", maxLength: 10 },
      { kind: "answer_match", expected: 4 },
    ]);
    expect(specs.map((s) => s.hard)).toEqual([true, false, true, true, true]);
    expect(specs[1]).toMatchObject({ threshold: 0.7 });
    expect(specs[2]).toMatchObject({ timeoutMs: 10_000 });
    expect(specs[3]).toMatchObject({ unit: "words", caseSensitive: false });
    expect(specs[4]).toMatchObject({ tolerance: 1e-6, caseSensitive: false });
  });

  it("lists the known kinds for an unknown kind", () => {
    const error = thrown(() =>
      parseVerifierSpecs([{ kind: "regex", mustMatch: ["a"] }, { kind: "unit_test" }]),
    );
    expect(error.code).toBe("invalid_config");
    expect(error.field).toBe("verifiers[1].kind");
    expect(error.message).toContain(
      'unknown verifier kind "unit_test"; known kinds: json_schema, regex, answer_match, constraints, arithmetic_steps, llm_judge, webhook',
    );
    expect(error.fix).toMatch(/^set kind to one of/);
  });

  it("says when kind is missing", () => {
    const error = thrown(() => parseVerifierSpecs([{ expected: 4 }]));
    expect(error.field).toBe("verifiers[0].kind");
    expect(error.message).toMatch(/^missing verifier kind; known kinds:/);
  });

  it("names an unknown field and lists the fields of that kind", () => {
    const error = thrown(() =>
      parseVerifierSpecs([
        { kind: "answer_match", expected: 1 },
        { kind: "regex", pattern: "x" },
      ]),
    );
    expect(error.field).toBe("verifiers[1].pattern");
    expect(error.message).toMatch(/Unrecognized key/);
    expect(error.fix).toContain("fields of a regex verifier: kind, id, hard, mustMatch");
  });

  it.each([
    [[{ kind: "llm_judge" }], "verifiers[0].rubric"],
    [[{ kind: "regex" }], "verifiers[0].mustMatch"],
    [[{ kind: "regex", mustMatch: [""] }], "verifiers[0].mustMatch[0]"],
    [[{ kind: "constraints" }], "verifiers[0].minLength"],
    [[{ kind: "constraints", minLength: 5, maxLength: 2 }], "verifiers[0].maxLength"],
    [[{ kind: "llm_judge", rubric: "r", threshold: 2 }], "verifiers[0].threshold"],
    [[{ kind: "webhook", url: "ftp://example.com" }], "verifiers[0].url"],
    [[{ kind: "webhook", url: "https://x.io", timeoutMs: 600_000 }], "verifiers[0].timeoutMs"],
    [[{ kind: "json_schema", schema: "object" }], "verifiers[0].schema"],
    [[{ kind: "answer_match" }], "verifiers[0].expected"],
  ])("reports %j at %s", (input, field) => {
    const error = thrown(() => parseVerifierSpecs(input));
    expect(error.code).toBe("invalid_config");
    expect(error.field).toBe(field);
  });

  it("uses the given field prefix and rejects a non-list", () => {
    expect(thrown(() => parseVerifierSpecs([{ kind: "x" }], "graph.verifiers")).field).toBe(
      "graph.verifiers[0].kind",
    );
    expect(thrown(() => parseVerifierSpecs({ kind: "regex" })).field).toBe("verifiers");
  });
});

describe("createVerifiers", () => {
  it("defaults ids to the kind and numbers repeats, avoiding explicit ids", () => {
    const verifiers = createVerifiers([
      { kind: "regex", mustMatch: ["a"] },
      { kind: "regex", mustMatch: ["b"], id: "regex-2" },
      { kind: "regex", mustMatch: ["c"] },
      { kind: "constraints", maxLength: 3 },
    ]);
    expect(verifiers.map((v) => v.id)).toEqual(["regex", "regex-2", "regex-3", "constraints"]);
  });

  it("rejects duplicate explicit ids", () => {
    const error = thrown(() =>
      createVerifiers([
        { kind: "regex", mustMatch: ["a"], id: "x" },
        { kind: "constraints", maxLength: 3, id: "x" },
      ]),
    );
    expect(error.field).toBe("verifiers[1].id");
    expect(error.message).toContain("also used by verifiers[0]");
  });

  it("sorts deterministic verifiers first, keeping spec order otherwise", () => {
    const verifiers = createVerifiers(
      [
        { kind: "llm_judge", rubric: "r", id: "j1" },
        { kind: "regex", mustMatch: ["a"], id: "r1" },
        { kind: "webhook", url: "https://example.com/check", id: "w1" },
        { kind: "answer_match", expected: 1, id: "a1" },
        { kind: "llm_judge", rubric: "r", id: "j2" },
      ],
      { judge },
    );
    expect(verifiers.map((v) => v.id)).toEqual(["r1", "a1", "j1", "w1", "j2"]);
    expect(verifiers.map((v) => v.deterministic)).toEqual([true, true, false, false, false]);
  });

  it("requires a judge model for llm_judge", () => {
    const error = thrown(() =>
      createVerifiers([
        { kind: "regex", mustMatch: ["a"] },
        { kind: "llm_judge", rubric: "r" },
      ]),
    );
    expect(error.field).toBe("verifiers[1]");
    expect(error.message).toMatch(/needs a judge model/);
  });

  it("names an invalid regex", () => {
    const error = thrown(() =>
      createVerifiers([
        { kind: "answer_match", expected: 1 },
        { kind: "regex", mustMatch: ["a", "[z-a]"] },
      ]),
    );
    expect(error.code).toBe("invalid_config");
    expect(error.field).toBe("verifiers[1].mustMatch[1]");
    expect(error.fix).toBeDefined();
  });

  it("names an invalid JSON Schema with ajv's message", () => {
    const error = thrown(() =>
      createVerifiers([{ kind: "json_schema", schema: { type: "object", required: "name" } }]),
    );
    expect(error.field).toBe("verifiers[0].schema");
    expect(error.message).toMatch(/data\/required must be array/);
  });
});

/** A verifier whose behaviour the test controls, recording when it started and finished. */
function probe(
  id: string,
  deterministic: boolean,
  behaviour: () => Promise<VerifierResult>,
  log: string[],
): Verifier {
  return {
    id,
    kind: deterministic ? "regex" : "llm_judge",
    hard: deterministic,
    deterministic,
    async verify() {
      log.push(`start ${id}`);
      try {
        return await behaviour();
      } finally {
        log.push(`end ${id}`);
      }
    },
  };
}

const ok = async (): Promise<VerifierResult> => ({ pass: true, score: 1, message: "ok" });
const after = (ms: number) => async (): Promise<VerifierResult> => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { pass: true, score: 1, message: `after ${ms}` };
};

describe("runVerifiers", () => {
  const ctx = { task: "t", iteration: 4 };

  it("runs deterministic verifiers first, then the others concurrently", async () => {
    const log: string[] = [];
    const verifiers = [
      probe("m1", false, after(40), log),
      probe("d1", true, ok, log),
      probe("m2", false, after(10), log),
      probe("d2", true, ok, log),
    ];
    const verdicts = await runVerifiers(verifiers, "draft", ctx);
    expect(verdicts.map((v) => v.verifierId)).toEqual(["d1", "d2", "m1", "m2"]);
    expect(log).toEqual([
      "start d1",
      "end d1",
      "start d2",
      "end d2",
      "start m1",
      "start m2",
      "end m2",
      "end m1",
    ]);
    expect(verdicts[2]).toMatchObject({
      verifierId: "m1",
      kind: "llm_judge",
      hard: false,
      iteration: 4,
      pass: true,
      message: "after 40",
    });
    expect(verdicts[2]?.latencyMs).toBeGreaterThanOrEqual(30);
  });

  it("turns a throw into a failed verdict marked as a verifier error", async () => {
    const log: string[] = [];
    const crash = probe(
      "boom",
      false,
      async () => {
        throw new Error("socket hang up");
      },
      log,
    );
    const [verdict] = await runVerifiers([crash], "draft", ctx);
    expect(verdict).toMatchObject({ pass: false, score: 0, verifierId: "boom" });
    expect(isVerifierErrorMessage(verdict?.message ?? "")).toBe(true);
    expect(verdict?.message).toContain('llm_judge verifier "boom" failed to run: socket hang up');
  });

  it("clamps an out-of-range score from a custom verifier", async () => {
    const wild = probe("wild", true, async () => ({ pass: true, score: 7, message: "?" }), []);
    expect((await runVerifiers([wild], "d", ctx))[0]?.score).toBe(1);
  });

  it("propagates an abort of ctx.signal", async () => {
    const controller = new AbortController();
    const slow = probe(
      "slow",
      false,
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        controller.abort();
        throw new Error("cancelled mid-call");
      },
      [],
    );
    await expect(
      runVerifiers([slow], "d", { ...ctx, signal: controller.signal }),
    ).rejects.toMatchObject({
      name: "AbortError",
    });
    await expect(
      runVerifiers([slow], "d", { ...ctx, signal: controller.signal }),
    ).rejects.toMatchObject({
      name: "AbortError",
    });
  });

  it("runs built verifiers end to end", async () => {
    const verifiers = createVerifiers(
      [
        { kind: "llm_judge", rubric: "r" },
        { kind: "answer_match", expected: 80 },
        { kind: "constraints", maxLength: 3 },
      ],
      { judge },
    );
    const verdicts = await runVerifiers(verifiers, "Speed.\nAnswer: 80", ctx);
    expect(verdicts.map((v) => [v.verifierId, v.pass])).toEqual([
      ["answer_match", true],
      ["constraints", true],
      ["llm_judge", true],
    ]);
    expect(verdicts[2]?.usage?.calls).toBe(1);
  });
});
