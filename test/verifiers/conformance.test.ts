// The conformance suite every verifier kind runs: the shape of the contract in types.ts, a known
// passing and failing draft, determinism where claimed, and no throw on odd drafts.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelInvoker } from "../../core/models/types.ts";
import { setOutboundPolicy, strictPolicy } from "../../core/net/policy.ts";
import {
  createVerifiers,
  isDeterministicKind,
  VERIFIER_KINDS,
  type Verifier,
  type VerifierResult,
  type VerifierSpecInput,
} from "../../core/verifiers/index.ts";

// The judge and the webhook both pass exactly the drafts that contain "GOOD".
const judge: ModelInvoker = async (messages) => {
  const good = String(messages.at(-1)?.content).includes("GOOD");
  return {
    text: JSON.stringify({ score: good ? 0.9 : 0.2, reason: good ? "fine" : "lacks GOOD" }),
    usage: { promptTokens: 5, completionTokens: 5, totalTokens: 10, calls: 1 },
  };
};

let server: Server;
let url = "";

beforeAll(async () => {
  // The webhook endpoint listens on loopback, which the default outbound policy refuses.
  setOutboundPolicy(strictPolicy("127.0.0.1"));
  server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk: Buffer) => (raw += chunk.toString("utf8")));
    req.on("end", () => {
      const { draft } = JSON.parse(raw) as { draft: string };
      const pass = draft.includes("GOOD");
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(pass ? { pass } : { pass, feedback: "say GOOD" }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/verify`;
});

afterAll(async () => {
  setOutboundPolicy(undefined);
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

interface Case {
  spec: () => VerifierSpecInput;
  passing: string;
  failing: string;
}

const cases: Record<(typeof VERIFIER_KINDS)[number], Case> = {
  json_schema: {
    spec: () => ({ kind: "json_schema", schema: { type: "object", required: ["ok"] } }),
    passing: '{"ok": true}',
    failing: '{"no": true}',
  },
  regex: {
    spec: () => ({ kind: "regex", mustMatch: ["GOOD"] }),
    passing: "GOOD",
    failing: "bad",
  },
  answer_match: {
    spec: () => ({ kind: "answer_match", expected: 42 }),
    passing: "Answer: 42",
    failing: "Answer: 41",
  },
  constraints: {
    spec: () => ({ kind: "constraints", contains: ["GOOD"], maxLength: 5 }),
    passing: "GOOD enough",
    failing: "bad",
  },
  arithmetic_steps: {
    spec: () => ({ kind: "arithmetic_steps" }),
    passing: "Step 1: 17 * 23 = 391\nAnswer: 391",
    failing: "Step 1: 17 * 23 = 393\nAnswer: 393",
  },
  llm_judge: {
    spec: () => ({ kind: "llm_judge", rubric: "says the magic word" }),
    passing: "GOOD",
    failing: "bad",
  },
  webhook: {
    spec: () => ({ kind: "webhook", url, timeoutMs: 5_000 }),
    passing: "GOOD",
    failing: "bad",
  },
};

const ctx = { task: "conformance", iteration: 1 };

function expectWellFormed(result: VerifierResult, verifier: Verifier): void {
  expect(typeof result.pass).toBe("boolean");
  expect(Number.isFinite(result.score)).toBe(true);
  expect(result.score).toBeGreaterThanOrEqual(0);
  expect(result.score).toBeLessThanOrEqual(1);
  expect(typeof result.message).toBe("string");
  expect(result.message.trim()).not.toBe("");
  if (verifier.deterministic) expect(result.usage).toBeUndefined();
  if (result.usage) expect(result.usage.calls).toBeGreaterThanOrEqual(1);
  // Verdicts are stored and streamed: they must survive JSON.
  expect(JSON.parse(JSON.stringify(result))).toEqual(result);
}

describe.each(VERIFIER_KINDS)("%s verifier conformance", (kind) => {
  const testCase = cases[kind];
  const build = () => {
    const [verifier] = createVerifiers([testCase.spec()], { judge });
    if (!verifier) throw new Error("no verifier built");
    return verifier;
  };

  it("describes itself consistently", () => {
    const verifier = build();
    expect(verifier.kind).toBe(kind);
    expect(verifier.id).toBe(kind);
    expect(verifier.deterministic).toBe(isDeterministicKind(kind));
    expect(verifier.hard).toBe(kind !== "llm_judge");
  });

  it("passes a good draft and fails a bad one with a well-formed result", async () => {
    const verifier = build();
    const good = await verifier.verify(testCase.passing, ctx);
    const bad = await verifier.verify(testCase.failing, ctx);
    expectWellFormed(good, verifier);
    expectWellFormed(bad, verifier);
    expect(good.pass).toBe(true);
    expect(bad.pass).toBe(false);
    expect(bad.score).toBeLessThan(good.score);
  });

  it("gives the same verdict twice when it claims to be deterministic", async () => {
    const verifier = build();
    if (!verifier.deterministic) return;
    for (const draft of [testCase.passing, testCase.failing]) {
      expect(await verifier.verify(draft, ctx)).toEqual(await verifier.verify(draft, ctx));
    }
  });

  it("returns a verdict, not a throw, for empty and very large drafts", async () => {
    const verifier = build();
    for (const draft of ["", "x".repeat(200_000) + " {[" + "(".repeat(1_000)]) {
      expectWellFormed(await verifier.verify(draft, ctx), verifier);
    }
  });
});
