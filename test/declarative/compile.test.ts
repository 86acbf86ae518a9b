// The compiler refuses bad specs with the exact path of the problem and a fix.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { RefineryError } from "../../core/errors.ts";
import { validateGraphSpec } from "../../graphs/declarative/compile.ts";
import { createNodeKindRegistry } from "../../graphs/declarative/kinds.ts";

type Spec = Record<string, unknown> & {
  nodes: Record<string, Record<string, unknown>>;
  edges: Record<string, unknown>[];
};

/** A valid spec: draft -> check -> (END | fix -> check). */
function base(): Spec {
  return {
    id: "demo",
    start: "draft",
    nodes: {
      draft: { kind: "generate" },
      check: { kind: "verify", verifiers: [{ kind: "answer_match", expected: 4 }] },
      fix: { kind: "revise" },
    },
    edges: [
      { from: "draft", to: "check" },
      { from: "check", when: [{ if: "verdicts.allHardPass", to: "END" }], else: "fix" },
      { from: "fix", to: "check" },
    ],
  };
}

function refusal(spec: unknown, kinds = createNodeKindRegistry()): RefineryError {
  try {
    validateGraphSpec(spec, kinds);
  } catch (err) {
    expect(err).toBeInstanceOf(RefineryError);
    const e = err as RefineryError;
    expect(e.code).toBe("invalid_config");
    expect(e.status).toBe(422);
    return e;
  }
  throw new Error("expected the spec to be refused");
}

describe("graph spec compiler", () => {
  it("accepts the base spec", () => {
    const v = validateGraphSpec(base());
    expect(v.nodes.map((n) => n.name)).toEqual(["draft", "check", "fix"]);
    expect(v.nodes[1]?.refine.verifiers).toEqual([{ kind: "answer_match", expected: 4 }]);
  });

  it("unknown node kind: nodes.<name>.kind, listing the kinds", () => {
    const spec = base();
    spec.nodes.check = { kind: "verfy" };
    const e = refusal(spec);
    expect(e.field).toBe("nodes.check.kind");
    expect(e.message).toMatch(/unknown node kind "verfy"/);
    expect(e.fix).toMatch(/generate, critique, verify, revise, approve, transform/);
  });

  it("unknown or invalid node fields name the field", () => {
    const spec = base();
    spec.nodes.draft = { kind: "generate", promt: { system: "x" } };
    expect(refusal(spec).field).toBe("nodes.draft.promt");
    spec.nodes.draft = { kind: "generate", model: { temperature: 9 } };
    expect(refusal(spec).field).toBe("nodes.draft.model.temperature");
    spec.nodes.draft = { kind: "generate", options: { maxIterations: 0 } };
    expect(refusal(spec).field).toBe("nodes.draft.options.maxIterations");
  });

  it("graph options are refine options: errors name options.<field>", () => {
    const e = refusal({ ...base(), options: { maxIterations: "three" } });
    expect(e.field).toBe("options.maxIterations");
    expect(refusal({ ...base(), options: { strategy: "magic" } }).field).toBe("options.strategy");
  });

  it("edges to missing nodes: edges[i].to / .when[j].to / .else / .from", () => {
    let spec = base();
    spec.edges[2] = { from: "fix", to: "chek" };
    let e = refusal(spec);
    expect(e.field).toBe("edges[2].to");
    expect(e.message).toMatch(/no node is named "chek"/);
    expect(e.fix).toMatch(/draft, check, fix, END/);

    spec = base();
    spec.edges[1] = { from: "check", when: [{ if: "true", to: "nowhere" }], else: "fix" };
    expect(refusal(spec).field).toBe("edges[1].when[0].to");

    spec = base();
    spec.edges[1] = { from: "check", when: [{ if: "true", to: "END" }], else: "fixx" };
    expect(refusal(spec).field).toBe("edges[1].else");

    spec = base();
    spec.edges[0] = { from: "drafts", to: "check" };
    expect(refusal(spec).field).toBe("edges[0].from");

    e = refusal({ ...base(), start: "begin" });
    expect(e.field).toBe("start");
  });

  it("edge shape: to xor when, one edge per node, else only with when", () => {
    let spec = base();
    spec.edges[0] = { from: "draft", to: "check", when: [{ if: "true", to: "END" }] };
    expect(refusal(spec).field).toBe("edges[0]");
    spec = base();
    spec.edges[0] = { from: "draft" };
    expect(refusal(spec).field).toBe("edges[0]");
    spec = base();
    spec.edges.push({ from: "check", to: "END" });
    const e = refusal(spec);
    expect(e.field).toBe("edges[3].from");
    expect(e.message).toMatch(/already has its outgoing edge at edges\[1\]/);
    spec = base();
    spec.edges[0] = { from: "draft", to: "check", else: "fix" };
    expect(refusal(spec).field).toBe("edges[0].else");
    spec = base();
    spec.edges[0] = { from: "draft", to: "check", color: "red" };
    expect(refusal(spec).field).toBe("edges[0].color");
  });

  it("a node without an outgoing edge is named", () => {
    const spec = base();
    spec.edges.pop();
    const e = refusal(spec);
    expect(e.field).toBe("nodes.fix");
    expect(e.message).toMatch(/no outgoing edge/);
  });

  it("unreachable nodes: nodes.<name>", () => {
    const spec = base();
    spec.nodes.orphan = { kind: "critique" };
    spec.edges.push({ from: "orphan", to: "check" });
    const e = refusal(spec);
    expect(e.field).toBe("nodes.orphan");
    expect(e.message).toMatch(/unreachable from start "draft"/);
  });

  it("cycles with no exit condition are named", () => {
    const spec: Spec = {
      id: "loop",
      start: "a",
      nodes: {
        a: { kind: "generate" },
        b: { kind: "transform", set: { "vars.n": "1" } },
        c: { kind: "transform", set: { "vars.n": "2" } },
      },
      edges: [
        { from: "a", to: "b" },
        { from: "b", to: "c" },
        { from: "c", to: "b" },
      ],
    };
    const e = refusal(spec);
    expect(e.field).toBe("edges[1]");
    expect(e.message).toMatch(/the cycle b -> c -> b has no way out/);
    // A self-loop too.
    spec.edges = [
      { from: "a", to: "b" },
      { from: "b", to: "b" },
      { from: "c", to: "END" },
    ];
    spec.nodes = { a: spec.nodes.a!, b: spec.nodes.b! };
    spec.edges.pop();
    expect(refusal(spec).message).toMatch(/the cycle b -> b/);
    // A conditional edge leaving the cycle is a way out...
    spec.edges[1] = { from: "b", when: [{ if: "vars.n > 3", to: "END" }], else: "b" };
    expect(() => validateGraphSpec(spec)).not.toThrow();
    // ...and so is a node that can stop the run (verify applies the stop policy).
    const withVerify = base();
    expect(() => validateGraphSpec(withVerify)).not.toThrow();
  });

  it("invalid expressions: edges[i].when[j].if with the parse position", () => {
    const spec = base();
    spec.edges[1] = { from: "check", when: [{ if: "iteration <", to: "END" }], else: "fix" };
    let e = refusal(spec);
    expect(e.field).toBe("edges[1].when[0].if");
    expect(e.message).toMatch(
      /invalid expression "iteration <" at character 11: Expected expression/,
    );
    spec.edges[1] = {
      from: "check",
      when: [
        { if: "true", to: "END" },
        { if: "verdicts.allHardpass", to: "END" },
      ],
      else: "fix",
    };
    e = refusal(spec);
    expect(e.field).toBe("edges[1].when[1].if");
    expect(e.message).toMatch(/no field "allHardpass"/);
    spec.edges[1] = { from: "check", when: [{ if: "vars.constructor", to: "END" }], else: "fix" };
    expect(refusal(spec).message).toMatch(/"constructor" is not accessible/);
  });

  it("transform expressions and fields: nodes.<name>.set.<field>", () => {
    const spec = base();
    spec.nodes.fix = { kind: "transform", set: { answer: "draft.txt" } };
    let e = refusal(spec);
    expect(e.field).toBe("nodes.fix.set.answer");
    expect(e.message).toMatch(/"draft" has no field "txt"/);
    spec.nodes.fix = { kind: "transform", set: { stopReason: '"accepted"' } };
    e = refusal(spec);
    expect(e.field).toBe("nodes.fix.set.stopReason");
    for (const name of ["__proto__", "constructor", "prototype"]) {
      spec.nodes.fix = { kind: "transform", set: { [`vars.${name}`]: "1" } };
      e = refusal(spec);
      expect(e.field).toBe(`nodes.fix.set.vars.${name}`);
      expect(e.message).toMatch(/reserved/);
    }
  });

  it("invalid verifier options: nodes.<name>.verifiers[i].<field>", () => {
    const spec = base();
    spec.nodes.check = { kind: "verify", verifiers: [{ kind: "regex", mustMatch: ["("] }] };
    let e = refusal(spec);
    expect(e.field).toMatch(/^nodes\.check\.verifiers\[0\]\.mustMatch/);
    spec.nodes.check = {
      kind: "verify",
      verifiers: [{ kind: "answer_match", expected: 4, tolerence: 1 }],
    };
    e = refusal(spec);
    expect(e.field).toBe("nodes.check.verifiers[0].tolerence");
    expect(e.fix).toBe('did you mean "tolerance"?');
    spec.nodes.check = {
      kind: "verify",
      verifiers: [{ kind: "answer_match", expected: 4, zzz: 1 }],
    };
    expect(refusal(spec).fix).toMatch(/fields of a answer_match verifier/);
    spec.nodes.check = { kind: "verify", verifiers: [{ kind: "smell" }] };
    expect(refusal(spec).field).toBe("nodes.check.verifiers[0].kind");
    spec.nodes.check = { kind: "verify", verifiers: [{ kind: "webhook", url: "ftp://x" }] };
    expect(refusal(spec).field).toBe("nodes.check.verifiers[0].url");
    // In the graph's options and in a node's options as well.
    const opts = { ...base(), options: { verifiers: [{ kind: "json_schema", schema: 5 }] } };
    expect(refusal(opts).field).toMatch(/^options\.verifiers\[0\]\.schema/);
    const nodeOpts = base();
    nodeOpts.nodes.check = { kind: "verify", options: { verifiers: [{ kind: "regex" }] } };
    expect(refusal(nodeOpts).field).toMatch(/^nodes\.check\.options\.verifiers\[0\]/);
  });

  it("node names: reserved and invalid names are refused", () => {
    const spec = base();
    spec.nodes.feedback = { kind: "critique" };
    spec.edges.push({ from: "feedback", to: "END" });
    expect(refusal(spec).field).toBe("nodes.feedback");
    const bad = base();
    bad.nodes["a:b"] = { kind: "critique" };
    expect(refusal(bad).field).toBe("nodes.a:b");
  });

  it("top level: id, unknown fields, missing parts", () => {
    expect(refusal({ ...base(), id: "has space" }).field).toBe("id");
    expect(refusal({ ...base(), id: "0b0a1c2e-1111-4222-8333-444455556666" }).field).toBe("id");
    expect(refusal({ ...base(), colour: 1 }).field).toBe("colour");
    const { edges: _e, ...noEdges } = base();
    expect(refusal(noEdges).field).toBe("edges");
    expect(refusal({ ...base(), nodes: {} }).field).toBe("nodes");
    expect(refusal([]).field).toBe("spec");
  });

  it("node kinds registered in TypeScript are validated by their own schema", () => {
    const kinds = createNodeKindRegistry();
    kinds.register("shout", {
      schema: z.object({ times: z.number().int().min(1) }).strict(),
      create: (o) => (state) => ({ answer: state.task.toUpperCase().repeat(o.times) }),
    });
    const spec = base();
    spec.nodes.fix = { kind: "shout", times: 0 };
    expect(refusal(spec, kinds).field).toBe("nodes.fix.times");
    spec.nodes.fix = { kind: "shout", times: 2 };
    spec.edges[2] = { from: "fix", to: "END" };
    expect(validateGraphSpec(spec, kinds).nodes[2]?.kindName).toBe("shout");
    expect(() =>
      kinds.register("verify", { schema: z.object({}), create: () => () => ({}) }),
    ).toThrow(/built-in node kind/);
  });
});
