// The server's real model path: graphs in a run thread call an OpenAI-compatible endpoint over HTTP
// (ChatOpenAI against the stub server on loopback), driven through the SDK client. The run's
// answer, the requests the endpoint received, the usage the endpoint reported (in the state and in
// /metrics), and a model endpoint that fails.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sample } from "../support/metrics.ts";
import { roleOf, startOpenAIStub, type OpenAIStub } from "../support/openai-stub.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

let stub: OpenAIStub;
let s: TestServer;

const TASK = { task: "What is 17 * 23 + 4?" };
const config = {
  configurable: {
    verifiers: [{ kind: "answer_match", expected: 395 }],
    retry: { retries: 0, baseDelayMs: 0 },
  },
};
/** Usage the stub reports per role, so the counts can be checked exactly. */
const USAGE = {
  generate: { prompt_tokens: 30, completion_tokens: 10 },
  critique: { prompt_tokens: 40, completion_tokens: 8 },
  revise: { prompt_tokens: 50, completion_tokens: 12 },
};

beforeAll(async () => {
  stub = await startOpenAIStub();
  stub.setHandler((body) => {
    const role = roleOf(body);
    if (role === "generate")
      return { content: "17 * 23 = 381, plus 4 is 385.\nAnswer: 385", usage: USAGE.generate };
    if (role === "critique") {
      const wrong = String(body.messages?.[1]?.content ?? "").includes("Answer: 385");
      return {
        content: wrong
          ? '{"verdict":"revise","score":0.2,"issues":["17 * 23 is 391, not 381"]}'
          : '{"verdict":"pass","score":0.95,"issues":[]}',
        usage: USAGE.critique,
      };
    }
    return { content: "17 * 23 = 391, plus 4 is 395.\nAnswer: 395", usage: USAGE.revise };
  });
  s = await startTestServer({
    env: {
      OPENAI_API_KEY: "test-key",
      OPENAI_BASE_URL: stub.url,
      REFINERY_MODEL: "stub-model",
      // A run thread even on a one-core machine: the path `npm start` takes.
      REFINERY_RUN_THREADS: "1",
    },
  });
});

afterAll(async () => {
  await s?.close();
  await stub?.close();
});

interface Values {
  answer: string | null;
  stopReason: string | null;
  usage: { promptTokens: number; completionTokens: number; calls: number };
}

describe("the server with an OpenAI-compatible model", () => {
  it("refines through the endpoint and accounts the tokens it reported, in the state and /metrics", async () => {
    const thread = await s.client.threads.create();
    const values = (await s.client.runs.wait(thread.thread_id, "refine", {
      input: TASK,
      config,
    })) as unknown as Values;

    expect(values.answer).toMatch(/395/);
    expect(values.stopReason).toBe("accepted");
    const served = stub.requests.map(roleOf);
    expect(served).toEqual(["generate", "critique", "revise", "critique"]);
    expect(new Set(stub.requests.map((r) => r.model))).toEqual(new Set(["stub-model"]));
    expect(values.usage).toMatchObject({ promptTokens: 160, completionTokens: 38, calls: 4 });

    const text = await (await fetch(`${s.url}/metrics`)).text();
    const tokens = (node: string, kind: string) =>
      sample(text, "refinery_llm_tokens_total", { node, kind });
    expect(tokens("generate", "prompt")).toBe(30);
    expect(tokens("generate", "completion")).toBe(10);
    expect(tokens("critique", "prompt")).toBe(80);
    expect(tokens("critique", "completion")).toBe(16);
    expect(tokens("revise", "prompt")).toBe(50);
    expect(tokens("revise", "completion")).toBe(12);
  });

  it("an endpoint that refuses the key fails the run with an error naming the model, the endpoint and the cause", async () => {
    stub.enqueue({ status: 401, body: { error: { message: "Incorrect API key provided" } } });
    const thread = await s.client.threads.create();
    const out = (await s.client.runs.wait(thread.thread_id, "refine", {
      input: TASK,
      config,
      raiseError: false,
    })) as unknown as Record<string, unknown>;
    expect(out).toEqual({
      __error__: {
        error: "model_error",
        message: expect.stringMatching(
          /^model "stub-model" at http:\/\/127\.0\.0\.1:\d+\/v1 rejected the credentials \(HTTP 401\)/,
        ) as unknown,
      },
    });
    const [run] = await s.client.runs.list(thread.thread_id);
    expect(run?.status).toBe("error");
    expect((await s.client.threads.get(thread.thread_id)).status).toBe("error");
  });
});
