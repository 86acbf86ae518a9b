// The server's real model path: graphs in a run thread call an OpenAI-compatible endpoint over HTTP
// (ChatOpenAI against the stub server on loopback), driven through the SDK client. The run's
// answer, the requests the endpoint received, the usage the endpoint reported (in the state and in
// /metrics), and model endpoints that fail: refusing the key, hanging (cut by the per-attempt
// timeout and the call's deadline), a run stopped by that mid-run and continued with `input:
// null`, and an endpoint that reports no usage (counted with the tokenizer, the budget holds).
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { sample } from "../support/metrics.ts";
import {
  roleOf,
  startOpenAIStub,
  type OpenAIStub,
  type StubHandler,
} from "../support/openai-stub.ts";
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

/** Answers like a model that gets 17 * 23 wrong first and fixes it once criticised. */
const answer: StubHandler = (body) => {
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
};

/** A run's config that gives a hung endpoint 100 ms per attempt and 300 ms per call. */
const impatient = {
  configurable: {
    ...config.configurable,
    models: { default: { timeoutMs: 100 } },
    retry: { retries: 5, baseDelayMs: 0, deadlineMs: 300 },
  },
};
const hang = { delayMs: 60_000 };

beforeAll(async () => {
  stub = await startOpenAIStub();
  stub.setHandler(answer);
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

afterEach(() => {
  stub.setHandler(answer);
});

interface Values {
  answer: string | null;
  stopReason: string | null;
  usage: {
    promptTokens: number;
    completionTokens: number;
    totalTokens: number;
    calls: number;
    estimatedTokens?: number;
  };
  drafts: { iteration: number; text: string; createdAt: string }[];
  error: { code: string; message: string; node: string; step?: string } | null;
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

  it("keeps a PASR generation whole in the stored state, reasoning_content included", async () => {
    const reasoning = "17 * 23 = 381<refine>17 * 23 = 391</refine>; 391 + 4 = 395";
    stub.enqueue({ reasoning, content: "<answer>\\boxed{395}</answer>" });
    const thread = await s.client.threads.create();
    const values = (await s.client.runs.wait(thread.thread_id, "refine", {
      input: TASK,
      config: { configurable: { ...config.configurable, strategy: "pasr" } },
    })) as unknown as Values & { pasr: Record<string, unknown> };
    expect(values.answer).toBe("\\boxed{395}");
    expect(values.stopReason).toBe("accepted");
    const stored = (await s.client.threads.getState(thread.thread_id)).values as unknown as {
      pasr: Record<string, unknown>;
      refinements: unknown[];
    };
    expect(stored.pasr).toEqual({
      thinkSource: "reasoning_field",
      positions: "reasoning+content",
      reasoningLength: reasoning.length,
      think: reasoning,
      thinkSpan: { start: 0, end: reasoning.length },
      refinements: [
        {
          index: 0,
          text: "17 * 23 = 391",
          start: reasoning.indexOf("<refine>"),
          end: reasoning.indexOf(";"),
        },
      ],
      answer: "\\boxed{395}",
      answerSpan: {
        start: reasoning.length + 8,
        end: reasoning.length + 8 + "\\boxed{395}".length,
      },
      ok: true,
      errors: [],
      warnings: [],
      fallback: false,
    });
    expect(stored.refinements).toEqual([
      expect.objectContaining({ index: 0, offset: reasoning.indexOf("<refine>") }),
    ]);
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

  it("a hung endpoint fails the run at retry.deadlineMs, each attempt cut at timeoutMs, naming both", async () => {
    stub.setHandler(() => hang);
    const thread = await s.client.threads.create();
    const out = (await s.client.runs.wait(thread.thread_id, "refine", {
      input: TASK,
      config: impatient,
      raiseError: false,
    })) as unknown as { __error__?: { error: string; message: string } };

    expect(out.__error__?.error).toBe("model_unavailable");
    expect(out.__error__?.message).toMatch(
      /got no answer within retry\.deadlineMs \(300 ms\) over \d+ attempts, each limited to 100 ms by models\.generate\.timeoutMs/,
    );
    const [run] = await s.client.runs.list(thread.thread_id);
    expect(run?.status).toBe("error");
    // Every attempt the failed step made is counted in the thread's usage, as generate's.
    const attempts = Number(/over (\d+) attempts/.exec(out.__error__?.message ?? "")?.[1]);
    expect(attempts).toBeGreaterThan(1);
    expect(stub.requests.filter((r) => roleOf(r) === "generate").length).toBeGreaterThanOrEqual(
      attempts,
    );
    const failed = await s.client.threads.getState(thread.thread_id);
    const spent = (failed.values as unknown as Values).usage;
    expect(spent).toMatchObject({ calls: attempts, totalTokens: 0 });
    expect(failed.next).toEqual(["generate"]);

    // Nothing was drafted; once the endpoint answers, a run with no input retries generate.
    stub.setHandler(answer);
    const again = (await s.client.runs.wait(thread.thread_id, "refine", {
      input: null,
      config,
    })) as unknown as Values & { usage: { byNode: Record<string, { calls: number }> } };
    expect(again.stopReason).toBe("accepted");
    expect(again.answer).toMatch(/395/);
    expect(again.usage.byNode.generate?.calls).toBe(attempts + 1);
    expect(again.usage.calls).toBe(attempts + 4);
  });

  it("a Retry-After longer than the run may last fails the run at once, saying so", async () => {
    stub.enqueue({ status: 429, headers: { "retry-after": "3600" } });
    const thread = await s.client.threads.create();
    const out = (await s.client.runs.wait(thread.thread_id, "refine", {
      input: TASK,
      // No call deadline: only the run's (REFINERY_RUN_TIMEOUT_MS, 30 minutes by default) is left.
      config: { configurable: { ...config.configurable, retry: { deadlineMs: 0 } } },
      raiseError: false,
    })) as unknown as { __error__?: { error: string; message: string } };

    expect(out.__error__?.error).toBe("model_unavailable");
    expect(out.__error__?.message).toMatch(
      /asking to retry after 3600 s \(Retry-After\), more than the \d+ ms left of the run's time limit \(REFINERY_RUN_TIMEOUT_MS\): gave up after 1 attempt/,
    );
  });

  it("a run stopped by a model failure mid-run continues at the failed step when run again with input null", async () => {
    // First run: the draft comes back, then the critic hangs until the call's deadline.
    stub.setHandler((body) => (roleOf(body) === "critique" ? hang : answer(body)));
    const thread = await s.client.threads.create();
    const first = (await s.client.runs.wait(thread.thread_id, "refine", {
      input: TASK,
      // Only the critic is impatient, and the deadline leaves the draft time on a loaded machine.
      config: {
        configurable: {
          ...config.configurable,
          models: { critique: { timeoutMs: 150 } },
          retry: { retries: 10, baseDelayMs: 0, deadlineMs: 1_000 },
        },
      },
    })) as unknown as Values;
    expect(first.stopReason).toBe("model_error");
    expect(first.error).toMatchObject({
      code: "model_unavailable",
      node: "critique",
      step: "critique",
    });
    expect(first.error?.message).toMatch(
      /retry\.deadlineMs \(1000 ms\) over \d+ attempts, each limited to 150 ms by models\.critique\.timeoutMs/,
    );
    expect(first.answer).toMatch(/385/);
    expect(first.drafts).toHaveLength(1);
    const stopped = await s.client.threads.getState(thread.thread_id);
    const stoppedAt = stopped.checkpoint.checkpoint_id;

    // The endpoint recovers; a run with no input picks the thread up where it stopped.
    stub.setHandler(answer);
    const served = stub.requests.length;
    const second = (await s.client.runs.wait(thread.thread_id, "refine", {
      input: null,
      config,
    })) as unknown as Values;

    expect(stub.requests.slice(served).map(roleOf)).toEqual(["critique", "revise", "critique"]);
    expect(second.stopReason).toBe("accepted");
    expect(second.answer).toMatch(/395/);
    expect(second.error).toBeNull();
    // The first run's draft is kept (not generated again), and the usage runs on from it.
    expect(second.drafts.map((d) => d.iteration)).toEqual([1, 2]);
    expect(second.drafts[0]).toEqual(first.drafts[0]);
    expect(second.usage.calls).toBeGreaterThan(first.usage.calls);
    // The checkpoints: one input (generate ran once), and the continuation's first checkpoint
    // follows the stopped one, with the critique next.
    const history = await s.client.threads.getHistory(thread.thread_id, { limit: 100 });
    expect(history.filter((h) => h.next.includes("generate"))).toHaveLength(1);
    const resumedAt = history.find((h) => h.parent_checkpoint?.checkpoint_id === stoppedAt);
    expect(resumedAt?.next).toEqual(["critique"]);
    const runs = await s.client.runs.list(thread.thread_id);
    expect(runs.map((r) => r.status)).toEqual(["success", "success"]);
  });

  it("an endpoint that reports no usage is counted with the tokenizer, marked estimated, and the token budget holds", async () => {
    stub.setHandler(async (body) => ({ ...(await answer(body)), usage: null }) as never);
    const thread = await s.client.threads.create();
    const values = (await s.client.runs.wait(thread.thread_id, "refine", {
      input: TASK,
      config: { configurable: { ...config.configurable, tokenBudget: 100 } },
    })) as unknown as Values;

    expect(values.usage.totalTokens).toBeGreaterThan(100);
    expect(values.usage.estimatedTokens).toBe(values.usage.totalTokens);
    expect(values.usage.promptTokens).toBeGreaterThan(values.usage.completionTokens);
    expect(values.stopReason).toBe("token_budget");
  });
});
