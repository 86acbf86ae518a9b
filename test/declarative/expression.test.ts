// The condition language: precedence, member access, functions, `in`, and safety (no eval or
// Function, no prototype access, no calls outside the whitelist).
import { describe, expect, it } from "vitest";
import {
  compileExpression,
  ExpressionError,
  type Value,
} from "../../graphs/declarative/expression.ts";
import { SCOPE_SHAPE } from "../../graphs/declarative/scope.ts";

const scope: Record<string, Value> = {
  iteration: 2,
  stopReason: null,
  route: "revise",
  task: "Translate the text",
  verdicts: {
    allHardPass: true,
    failed: 0,
    byId: { "back-translation": { pass: false, score: 0.4 } },
  },
  critique: null,
  vars: { tags: ["a", "b"], n: 3, nested: { deep: "yes" } },
};
const run = (source: string, s = scope) => compileExpression(source).evaluate(s);
const fails = (source: string, shape = SCOPE_SHAPE) => {
  try {
    compileExpression(source, shape);
  } catch (err) {
    expect(err).toBeInstanceOf(ExpressionError);
    return err as ExpressionError;
  }
  throw new Error(`expected "${source}" to be refused`);
};

describe("expression language", () => {
  it("evaluates the documented example", () => {
    expect(compileExpression("verdicts.allHardPass and iteration < 3").test(scope)).toBe(true);
    expect(compileExpression("verdicts.allHardPass and iteration < 2").test(scope)).toBe(false);
  });

  it("follows precedence: arithmetic > comparison > and > or; not binds tightest", () => {
    expect(run("1 + 2 * 3")).toBe(7);
    expect(run("(1 + 2) * 3")).toBe(9);
    expect(run("true or false and false")).toBe(true);
    expect(run("(true or false) and false")).toBe(false);
    expect(run("not false and false")).toBe(false);
    expect(run("not (false and false)")).toBe(true);
    expect(run("iteration + 1 >= 3 and route == 'revise'")).toBe(true);
    expect(run("1 < 2 == true")).toBe(true);
    expect(run("-iteration + 10 % 4")).toBe(0);
    expect(run("iteration > 1 ? 'late' : 'early'")).toBe("late");
    expect(run("true && !false || false")).toBe(true);
  });

  it("reads members with dots and brackets; missing members and null objects are null", () => {
    expect(run('verdicts.byId["back-translation"].score')).toBe(0.4);
    expect(run("vars.nested.deep")).toBe("yes");
    expect(run("vars.tags[1]")).toBe("b");
    expect(run("vars.tags[7]")).toBe(null);
    expect(run("critique.score")).toBe(null);
    expect(run("critique.score >= 0.8")).toBe(false);
    expect(run("vars.missing.deeper")).toBe(null);
    expect(run("stopReason == null")).toBe(true);
    expect(run("vars.n ?? 5")).toBe(3);
    expect(run("vars.none ?? 5")).toBe(5);
  });

  it("compares only like with like, and never coerces", () => {
    expect(run("'3' == 3")).toBe(false);
    expect(run("'10' < 9")).toBe(false);
    expect(run("'apple' < 'banana'")).toBe(true);
    expect(run("null + 1")).toBe(null);
    expect(run("1 / 0")).toBe(null);
    expect(run("'Re: ' + task")).toBe("Re: Translate the text");
  });

  it("supports `in` over lists, strings and object keys", () => {
    expect(run('route in ["revise", "verify"]')).toBe(true);
    expect(run('"a" in vars.tags')).toBe(true);
    expect(run('"Translate" in task')).toBe(true);
    expect(run('"nested" in vars')).toBe(true);
    expect(run('"constructor" in vars')).toBe(false);
    expect(run('"toString" in vars')).toBe(false);
  });

  it("calls only whitelisted functions", () => {
    expect(run("len(vars.tags) + len(task)")).toBe(20);
    expect(run('lower(task) == "translate the text"')).toBe(true);
    expect(run('contains(vars.tags, "b") and contains(task, "text")')).toBe(true);
    expect(run("round(0.4567, 2)")).toBe(0.46);
    expect(run("max(1, vars.n, 2)")).toBe(3);
    expect(run("words(task)")).toBe(3);
    expect(fails("eval('1')", {}).message).toMatch(/unknown function "eval"/);
    expect(fails("Function('return 1')()", {}).message).toMatch(/only these functions/);
    expect(fails("len()", {}).message).toMatch(/len\(\) takes 1 argument/);
    expect(fails("task.toUpperCase()").message).toMatch(/only these functions/);
  });

  it("blocks prototype access at compile time and at run time", () => {
    expect(fails("vars.constructor").message).toMatch(/"constructor" is not accessible/);
    expect(fails("vars.__proto__").message).toMatch(/"__proto__" is not accessible/);
    expect(fails('vars["prototype"]').message).toMatch(/not accessible/);
    expect(fails("constructor", {}).message).toMatch(/not accessible/);
    // A computed key is only known when the expression runs: still nothing but own data.
    const dynamic = compileExpression("vars[vars.key]");
    for (const key of ["constructor", "__proto__", "toString", "hasOwnProperty"])
      expect(dynamic.evaluate({ vars: { key } })).toBe(null);
    expect(compileExpression("task.length").evaluate({ task: "abc" })).toBe(null);
    // An own "__proto__" key (JSON.parse makes one) is refused as well.
    const parsed = JSON.parse('{"__proto__": {"x": 1}, "key": "__proto__"}') as Value;
    expect(compileExpression("vars[vars.key]").evaluate({ vars: parsed })).toBe(null);
  });

  it("never reaches eval or Function", () => {
    const original = { eval: globalThis.eval, Function: globalThis.Function };
    const trap = () => {
      throw new Error("eval/Function was called");
    };
    globalThis.eval = trap as typeof eval;
    globalThis.Function = trap as unknown as FunctionConstructor;
    try {
      const e = compileExpression('len(vars.tags) > 1 and lower(route) in ["revise"]');
      expect(e.test(scope)).toBe(true);
    } finally {
      globalThis.eval = original.eval;
      globalThis.Function = original.Function;
    }
  });

  it("reports parse errors with their position", () => {
    const e = fails("iteration <");
    expect(e.position).toBe(11);
    expect(e.message).toMatch(/Expected expression/);
    expect(fails("iteration < 3 verdicts.allHardPass").message).toMatch(/expected one expression/);
    expect(fails("verdicts.allHardPass and").message).toMatch(/"and" needs an expression/);
    expect(fails("iteration | 1").message).toMatch(/operator "\|" is not supported/);
    expect(fails("~iteration").message).toMatch(/operator "~" is not supported/);
    expect(fails("this").message).toMatch(/"this" is not supported/);
    expect(fails("").message).toMatch(/non-empty/);
  });

  it("checks names against the scope, catching typos", () => {
    expect(fails("iteraton < 3").message).toMatch(/unknown name "iteraton"/);
    expect(fails("verdicts.allHardpass").message).toMatch(
      /"verdicts" has no field "allHardpass"; fields: count, passed/,
    );
    expect(fails("iteration.value").message).toMatch(/"iteration" has no fields/);
    // Open objects (vars, verdicts.byId) accept any key.
    expect(() => compileExpression("vars.anything.at.all", SCOPE_SHAPE)).not.toThrow();
    expect(() => compileExpression('verdicts.byId["x"].pass', SCOPE_SHAPE)).not.toThrow();
  });
});
