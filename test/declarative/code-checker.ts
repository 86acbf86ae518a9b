// A loopback "test runner" for the code-answer example: it receives the webhook verifier's POST
// and checks the submitted `add(a, b)` without executing it. It reads the function's `return`
// expression and evaluates it with the declarative graphs' own safe expression evaluator
// (arithmetic over a and b only), so untrusted code never runs.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { compileExpression } from "../../graphs/declarative/expression.ts";

export const CASES: [number, number, number][] = [
  [2, 3, 5],
  [-1, 1, 0],
  [10, 0, 10],
];

export interface CheckResult {
  pass: boolean;
  score: number;
  feedback: string;
}

/** Checks `function add(a, b) { return <expr>; }` against CASES. */
export function checkAdd(draft: string): CheckResult {
  const code = /```(?:js|javascript)?\n([\s\S]*?)```/.exec(draft)?.[1] ?? draft;
  const fn = /function\s+add\s*\(\s*a\s*,\s*b\s*\)\s*\{\s*return\s+([^;}]+);?\s*\}/.exec(code);
  if (!fn?.[1]) {
    return {
      pass: false,
      score: 0,
      feedback: "no `function add(a, b) { return …; }` found: define add with parameters a and b",
    };
  }
  let expr;
  try {
    expr = compileExpression(fn[1], { a: "leaf", b: "leaf" });
  } catch (err) {
    return {
      pass: false,
      score: 0,
      feedback: `cannot check \`${fn[1]}\`: ${(err as Error).message}`,
    };
  }
  const failures = CASES.flatMap(([a, b, want]) => {
    const got = expr.evaluate({ a, b });
    return got === want
      ? []
      : [`add(${a}, ${b}) returned ${JSON.stringify(got)}, expected ${want}`];
  });
  return {
    pass: failures.length === 0,
    score: (CASES.length - failures.length) / CASES.length,
    feedback: failures.length ? `failing tests: ${failures.join("; ")}` : "all tests pass",
  };
}

export interface CodeChecker {
  url: string;
  requests: { draft: string; iteration: number; verifier_id: string }[];
  close(): Promise<void>;
}

export async function startCodeChecker(): Promise<CodeChecker> {
  const requests: CodeChecker["requests"] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const payload = JSON.parse(body) as CodeChecker["requests"][number];
      requests.push(payload);
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(checkAdd(payload.draft)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/run-tests`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
