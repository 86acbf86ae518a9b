// User regular expressions over the real server and the SDK: a regex verifier with a pattern that
// backtracks catastrophically on a backtracking engine (`(a+)+$` on 34 a's and a "!", which the
// offline model echoes into its draft) lets the run finish, its check simply failing; a JSON
// Schema `pattern` of the same kind does not hang either; a pattern RE2 cannot run (lookaround,
// backreference) is a 422 naming its field, for a run and for an assistant.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";
import { valuesOf } from "../support/wait.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

const POISON = `${"a".repeat(34)}!`;

interface Values {
  verdicts: { verifierId: string; pass: boolean; message: string }[];
  stopReason?: string;
}

async function post(path: string, body: unknown) {
  const res = await fetch(`${s.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("user regular expressions", () => {
  it("runs a regex verifier with a catastrophically backtracking pattern to its end", async () => {
    const thread = await s.client.threads.create();
    const values = await valuesOf<Values>(
      s.client.runs.wait(thread.thread_id, "refine", {
        input: { task: POISON },
        config: {
          configurable: {
            maxIterations: 2,
            verifiers: [{ kind: "regex", mustMatch: ["(a+)+$"] }],
          },
        },
      }),
    );
    expect(values.stopReason).toBeTruthy();
    const regex = values.verdicts.filter((v) => v.verifierId === "regex");
    expect(regex.length).toBeGreaterThan(0);
    // The draft quotes the a's and goes on: `(a+)+$` never matches at its end.
    expect(regex[0]).toMatchObject({ pass: false });
    expect(regex[0]!.message).toContain("does not match required pattern /(a+)+$/");
    const [run] = await s.client.runs.list(thread.thread_id);
    expect(run!.status).toBe("success");
  });

  it("validates a JSON Schema pattern that backtracks catastrophically without hanging", async () => {
    const schema = {
      type: "object",
      properties: { code: { type: "string", enum: [POISON] } },
      required: ["code"],
    };
    const thread = await s.client.threads.create();
    const values = await valuesOf<Values>(
      s.client.runs.wait(thread.thread_id, "refine", {
        // The offline model answers with the schema's first enum value: {"code": "aaa…a!"}.
        input: { task: `Return JSON matching ${JSON.stringify(schema)}` },
        config: {
          configurable: {
            maxIterations: 1,
            models: { default: { provider: "simulated", simulated: { firstDraftErrorRate: 0 } } },
            verifiers: [
              {
                kind: "json_schema",
                schema: { ...schema, properties: { code: { type: "string", pattern: "^(a+)+$" } } },
              },
            ],
          },
        },
      }),
    );
    const check = values.verdicts.find((v) => v.verifierId === "json_schema");
    expect(check).toMatchObject({ pass: false });
    expect(check!.message).toContain(
      `/code must match pattern "^(a+)+$" (got ${JSON.stringify(POISON)})`,
    );
  });

  it.each([
    ["a lookahead", "^(?!TODO)", /lookahead is not supported/],
    ["a backreference", "(\\w+) \\1", /backreferences are not supported/],
  ])("refuses %s in a run's verifiers with a 422 naming the field", async (_what, pattern, why) => {
    const thread = await s.client.threads.create();
    const res = await post(`/threads/${thread.thread_id}/runs`, {
      assistant_id: "refine",
      input: { task: "Say hi." },
      config: {
        configurable: { verifiers: [{ kind: "regex", mustMatch: ["^Hi", pattern] }] },
      },
    });
    expect(res.status).toBe(422);
    expect(res.body.field).toBe("verifiers[0].mustMatch[1]");
    expect(String(res.body.message)).toMatch(why);
    expect(String(res.body.message)).toMatch(/RE2/);
    // Nothing was queued.
    expect(await s.client.runs.list(thread.thread_id)).toEqual([]);
  });

  it("refuses a lookahead in an assistant's JSON Schema, naming where it is", async () => {
    const res = await post("/assistants", {
      graph_id: "refine",
      config: {
        configurable: {
          verifiers: [
            { kind: "regex", mustMatch: ["ok"] },
            {
              kind: "json_schema",
              schema: { properties: { id: { type: "string", pattern: "^(?=x)\\w+$" } } },
            },
          ],
        },
      },
    });
    expect(res.status).toBe(422);
    expect(res.body.field).toBe("verifiers[1].schema.properties.id.pattern");
    expect(String(res.body.message)).toMatch(/lookahead is not supported/);
  });
});
