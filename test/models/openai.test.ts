// The real-model path over real HTTP: ChatOpenAI (built by createOpenAIModel) against the
// OpenAI-compatible stub, driven through callModel's retries, usage accounting and error mapping.
import { getEventListeners } from "node:events";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, HumanMessage, SystemMessage } from "@langchain/core/messages";
import type { AIMessageChunk, BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { parseRefineOptions, processSettingsFromEnv } from "../../core/config.ts";
import { RefineryError } from "../../core/errors.ts";
import { createModelProvider } from "../../core/models/provider.ts";
import { createSettingsResolver } from "../../core/settings.ts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  DEFAULT_RETRY,
  ModelCallError,
  bindModel,
  callModel,
  classifyModelError,
  isSimulatedModel,
  messageText,
  parseRetryAfter,
} from "../../core/models/call.ts";
import type { RetryPolicy } from "../../core/models/call.ts";
import { createOpenAIModel, renamingReasoningStream } from "../../core/models/openai.ts";
import { loadTokenizer } from "../../core/models/tokenize.ts";
import type { ModelRole, RefineryCallOptions } from "../../core/models/types.ts";
import { startOpenAIStub } from "../support/openai-stub.ts";
import type { OpenAIStub } from "../support/openai-stub.ts";

const FAST: RetryPolicy = { retries: 2, baseDelayMs: 5, maxDelayMs: 20 };
const messages = [new SystemMessage("You are terse."), new HumanMessage("What is 2 + 2?")];

/** Keys a chat completions request may carry; anything else leaked from our call options. */
const OPENAI_BODY_KEYS = new Set([
  "model",
  "messages",
  "stream",
  "stream_options",
  "temperature",
  "max_tokens",
  "max_completion_tokens",
]);

let stub: OpenAIStub;

beforeEach(async () => {
  stub = await startOpenAIStub();
});

afterEach(async () => {
  await stub.close();
});

function model(overrides: { timeoutMs?: number; baseURL?: string; apiKey?: string } = {}) {
  return createOpenAIModel({
    apiKey: overrides.apiKey ?? "sk-test",
    baseURL: overrides.baseURL ?? stub.url,
    model: "stub-model",
    temperature: 0,
    timeoutMs: overrides.timeoutMs ?? 2_000,
  });
}

/** Records requested delays without waiting, for asserting the backoff schedule. */
function recordingSleep() {
  const delays: number[] = [];
  return { delays, sleep: async (ms: number) => void delays.push(ms) };
}

async function failure(promise: Promise<unknown>): Promise<ModelCallError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelCallError);
  return error as ModelCallError;
}

function freePort(): Promise<number> {
  const server = createServer();
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe("callModel against an OpenAI-compatible endpoint", () => {
  it("returns the scripted text and the endpoint's usage figures", async () => {
    stub.enqueue({ content: "Answer: 4", usage: { prompt_tokens: 21, completion_tokens: 3 } });

    const result = await callModel(model(), messages, { role: "generate", retry: FAST });

    expect(result.text).toBe("Answer: 4");
    expect(result.message.content).toBe("Answer: 4");
    expect(result.usage).toEqual({
      promptTokens: 21,
      completionTokens: 3,
      totalTokens: 24,
      calls: 1,
    });
    expect(result.attempts).toBe(1);
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(stub.requests[0]?.messages).toEqual([
      { role: "system", content: "You are terse." },
      { role: "user", content: "What is 2 + 2?" },
    ]);
  });

  it("does not send refineryRole (or any other call option) to the endpoint", async () => {
    await callModel(model(), messages, {
      role: "judge",
      retry: FAST,
      config: { metadata: { thread: "t1" }, tags: ["x"], configurable: { thread_id: "t1" } },
    });
    await model().invoke(messages, { refineryRole: "critique" } as Record<string, unknown>);

    expect(stub.requests).toHaveLength(2);
    for (const body of stub.requests) {
      expect(Object.keys(body).filter((k) => !OPENAI_BODY_KEYS.has(k))).toEqual([]);
      expect(JSON.stringify(body)).not.toContain("refineryRole");
    }
  });

  it("retries a 500 and counts both attempts, with the usage of the success", async () => {
    stub.enqueue(
      { status: 500 },
      { content: "ok", usage: { prompt_tokens: 10, completion_tokens: 2 } },
    );

    const result = await callModel(model(), messages, { role: "generate", retry: FAST });

    expect(result.text).toBe("ok");
    expect(result.attempts).toBe(2);
    expect(result.usage).toEqual({
      promptTokens: 10,
      completionTokens: 2,
      totalTokens: 12,
      calls: 2,
    });
    expect(stub.requests).toHaveLength(2);
  });

  it("makes exactly one request per attempt (ChatOpenAI's own retries are off)", async () => {
    stub.enqueue({ status: 503 }, { status: 503 });

    const error = await failure(
      callModel(model(), messages, { role: "generate", retry: { ...FAST, retries: 0 } }),
    );

    expect(stub.requests).toHaveLength(1);
    expect(error.attempts).toBe(1);
  });

  it("waits as long as Retry-After asks on a 429, beyond maxDelayMs, within the deadline", async () => {
    const { delays, sleep } = recordingSleep();
    stub.enqueue(
      { status: 429, headers: { "retry-after": "1" } },
      { status: 429, headers: { "retry-after": "30" } },
      { content: "finally" },
    );

    const result = await callModel(model(), messages, {
      role: "critique",
      retry: { retries: 3, baseDelayMs: 5, maxDelayMs: 8_000, deadlineMs: 120_000 },
      sleep,
    });

    expect(result.text).toBe("finally");
    expect(result.attempts).toBe(3);
    expect(result.usage.calls).toBe(3);
    expect(delays).toEqual([1_000, 30_000]);
  });

  it("gives up at once when Retry-After asks for more than the deadline has left, saying so", async () => {
    const { delays, sleep } = recordingSleep();
    stub.enqueue({ status: 429, headers: { "retry-after": "120" } }, { content: "too late" });

    const error = await failure(
      callModel(model(), messages, {
        role: "critique",
        retry: { retries: 3, baseDelayMs: 5, maxDelayMs: 8_000, deadlineMs: 5_000 },
        sleep,
      }),
    );

    expect(delays).toEqual([]);
    expect(stub.requests).toHaveLength(1);
    expect(error.code).toBe("model_unavailable");
    expect(error.retryAfterMs).toBe(120_000);
    expect(error.message).toMatch(
      /asking to retry after 120 s \(Retry-After\), more than the \d+ ms left of retry\.deadlineMs \(5000 ms\)/,
    );
    expect(error.fix).toContain("retry.deadlineMs");
    expect(error.usage.calls).toBe(1);
  });

  it("uses full-jitter exponential backoff when no Retry-After is given", async () => {
    const { delays, sleep } = recordingSleep();
    stub.enqueue({ status: 502 }, { status: 502 }, { status: 502 }, { content: "up" });

    await callModel(model(), messages, {
      role: "generate",
      retry: { retries: 3, baseDelayMs: 100, maxDelayMs: 250 },
      sleep,
    });

    expect(delays).toHaveLength(3);
    const ceilings = [100, 200, 250];
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(ceilings[i]!);
    });
  });

  it("gives up on a persistent 429 with model_unavailable", async () => {
    stub.setHandler(() => ({ status: 429 }));

    const error = await failure(callModel(model(), messages, { role: "generate", retry: FAST }));

    expect(error.code).toBe("model_unavailable");
    expect(error.retryable).toBe(true);
    expect(error.message).toContain("429");
    expect(error.attempts).toBe(3);
    expect(stub.requests).toHaveLength(3);
  });

  it("does not retry an exhausted quota (429 insufficient_quota)", async () => {
    stub.enqueue({
      status: 429,
      body: { error: { message: "You exceeded your current quota", code: "insufficient_quota" } },
    });

    const error = await failure(callModel(model(), messages, { role: "generate", retry: FAST }));

    expect(error.code).toBe("model_error");
    expect(error.fix).toContain("quota");
    expect(stub.requests).toHaveLength(1);
  });

  it("retries a timed-out attempt and then succeeds", async () => {
    stub.enqueue({ delayMs: 1_000 }, { content: "in time" });

    const result = await callModel(model({ timeoutMs: 150 }), messages, {
      role: "generate",
      retry: FAST,
    });

    expect(result.text).toBe("in time");
    expect(result.attempts).toBe(2);
    expect(result.usage.calls).toBe(2);
  });

  it("fails with model_unavailable when every attempt times out", async () => {
    stub.setHandler(() => ({ delayMs: 1_000 }));

    const error = await failure(
      callModel(model({ timeoutMs: 100 }), messages, { role: "revise", retry: FAST }),
    );

    expect(error.code).toBe("model_unavailable");
    expect(error.retryable).toBe(true);
    expect(error.message).toContain("timed out");
    expect(error.message).toContain(stub.url);
    expect(error.fix).toContain("OPENAI_BASE_URL");
    expect(error.message).toContain("no answer within 100 ms (models.revise.timeoutMs)");
    expect(error.fix).toContain("REFINERY_MODEL_TIMEOUT_MS");
    expect(error.attempts).toBe(3);
    expect(error.usage.calls).toBe(3);
  });

  it("gives up at once when Retry-After asks for more than the run has left (REFINERY_RUN_TIMEOUT_MS)", async () => {
    const { delays, sleep } = recordingSleep();
    stub.enqueue({ status: 503, headers: { "retry-after": "90" } }, { content: "too late" });

    const error = await failure(
      callModel(model(), messages, {
        role: "generate",
        retry: { retries: 3, baseDelayMs: 5, maxDelayMs: 8_000, deadlineMs: 0 },
        config: { configurable: { refinery_run_deadline: Date.now() + 60_000 } },
        sleep,
      }),
    );

    expect(delays).toEqual([]);
    expect(error.message).toMatch(
      /HTTP 503 asking to retry after 90 s \(Retry-After\), more than the \d+ ms left of the run's time limit \(REFINERY_RUN_TIMEOUT_MS\)/,
    );
    expect(error.fix).toContain("raise REFINERY_RUN_TIMEOUT_MS");
  });

  it("a hung endpoint: attempts are cut at timeoutMs and the call ends at retry.deadlineMs, naming both", async () => {
    stub.setHandler(() => ({ delayMs: 60_000 }));

    const error = await failure(
      callModel(model({ timeoutMs: 100 }), messages, {
        role: "critique",
        retry: { retries: 10, baseDelayMs: 0, maxDelayMs: 0, deadlineMs: 350 },
      }),
    );

    expect(error.code).toBe("model_unavailable");
    expect(error.message).toMatch(
      /got no answer within retry\.deadlineMs \(350 ms\) over \d+ attempts, each limited to 100 ms by models\.critique\.timeoutMs/,
    );
    expect(error.fix).toContain("REFINERY_MODEL_DEADLINE_MS");
    // Cut by the deadline, not by running out of its 11 attempts; every attempt is counted.
    expect(error.attempts).toBeLessThan(11);
    expect(error.usage.calls).toBe(error.attempts);
    expect(stub.requests).toHaveLength(error.attempts);
  });

  it("a model built without a timeout waits 60 s per attempt, not the SDK's 10 minutes", () => {
    const m = createOpenAIModel({ apiKey: "sk-test", baseURL: stub.url, model: "stub-model" });
    expect(m.timeout).toBe(60_000);
  });

  it("does not retry a 401 and names OPENAI_API_KEY", async () => {
    stub.enqueue({
      status: 401,
      body: { error: { message: "Incorrect API key provided", code: "invalid_api_key" } },
    });

    const error = await failure(
      callModel(model({ apiKey: "sk-wrong" }), messages, { role: "generate", retry: FAST }),
    );

    expect(error.code).toBe("model_error");
    expect(error.retryable).toBe(false);
    expect(error.fix).toContain("OPENAI_API_KEY");
    expect(error.message).toContain("Incorrect API key provided");
    expect(error.message).not.toContain("Troubleshooting URL");
    expect(error.attempts).toBe(1);
    expect(error.usage.calls).toBe(1);
    expect(stub.requests).toHaveLength(1);
  });

  it("does not retry a 404 and points at the model name", async () => {
    stub.enqueue({ status: 404, body: { error: { message: "The model `nope` does not exist" } } });

    const error = await failure(callModel(model(), messages, { role: "generate", retry: FAST }));

    expect(error.code).toBe("model_error");
    expect(error.fix).toContain("model name");
    expect(error.message).toContain('"stub-model"');
    expect(stub.requests).toHaveLength(1);
  });

  it.each([400, 403, 422])("does not retry HTTP %i", async (status) => {
    stub.enqueue({ status });

    const error = await failure(callModel(model(), messages, { role: "judge", retry: FAST }));

    expect(error.code).toBe("model_error");
    expect(error.message).toContain(String(status));
    expect(stub.requests).toHaveLength(1);
  });

  it("retries a dropped connection", async () => {
    stub.enqueue({ reset: true }, { content: "back" });

    const result = await callModel(model(), messages, { role: "generate", retry: FAST });

    expect(result.text).toBe("back");
    expect(result.attempts).toBe(2);
  });

  it("reports a refused connection as model_unavailable naming the base URL", async () => {
    const baseURL = `http://127.0.0.1:${await freePort()}/v1`;

    const error = await failure(
      callModel(model({ baseURL }), messages, { role: "generate", retry: FAST }),
    );

    expect(error.code).toBe("model_unavailable");
    expect(error.message).toContain(baseURL);
    expect(error.message).toContain("ECONNREFUSED");
    expect(error.fix).toContain("OPENAI_BASE_URL");
    expect(error.attempts).toBe(3);
    expect(error.usage).toEqual({ promptTokens: 0, completionTokens: 0, totalTokens: 0, calls: 3 });
  });

  it("stops promptly when the caller aborts during a request", async () => {
    stub.enqueue({ delayMs: 5_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();

    await expect(
      callModel(model({ timeoutMs: 10_000 }), messages, {
        role: "generate",
        retry: FAST,
        signal: controller.signal,
      }),
    ).rejects.toMatchObject({ name: "AbortError" });

    expect(Date.now() - started).toBeLessThan(1_000);
    expect(stub.requests).toHaveLength(1);
  });

  it("stops promptly when the caller aborts during the backoff sleep", async () => {
    stub.enqueue({ status: 500 });
    const controller = new AbortController();
    const reason = new Error("run cancelled");
    setTimeout(() => controller.abort(reason), 50);
    const started = Date.now();

    await expect(
      callModel(model(), messages, {
        role: "generate",
        retry: { retries: 3, baseDelayMs: 60_000, maxDelayMs: 60_000 },
        signal: controller.signal,
        sleep: () => new Promise(() => undefined),
      }),
    ).rejects.toBe(reason);

    expect(Date.now() - started).toBeLessThan(1_000);
    expect(stub.requests).toHaveLength(1);
  });

  it("honours the signal carried by the LangGraph config", async () => {
    const controller = new AbortController();
    controller.abort();

    await expect(
      callModel(model(), messages, { role: "generate", config: { signal: controller.signal } }),
    ).rejects.toMatchObject({ name: "AbortError" });
    expect(stub.requests).toHaveLength(0);
  });

  it("leaves no listener on the caller's signals, which may live as long as the process", async () => {
    // LangGraph hands each node a composite signal (AbortSignal.any); Node keeps such a signal,
    // and whatever its listeners hold, until its last "abort" listener is removed, and the
    // openai SDK never removes the one it adds. Calls, streamed or not, retried or not, and with
    // a call deadline, must leave the caller's signals as they found them.
    const run = new AbortController();
    const step = AbortSignal.any([run.signal, new AbortController().signal]);
    const own = new AbortController();
    stub.enqueue({ status: 500 }, { content: "Answer: 4" }, { content: "Answer: 4" });
    await callModel(model(), messages, {
      role: "generate",
      retry: FAST,
      signal: own.signal,
      config: { signal: step },
    });
    await callModel(model(), messages, {
      role: "generate",
      retry: { ...FAST, deadlineMs: 5_000 },
      config: { signal: step },
      onChunk: () => {},
    });
    expect(stub.requests).toHaveLength(3);
    expect(getEventListeners(step, "abort")).toHaveLength(0);
    expect(getEventListeners(own.signal, "abort")).toHaveLength(0);

    // And the link still carries an abort through: a call in flight stops when the run does.
    stub.enqueue({ delayMs: 5_000 });
    const call = callModel(model(), messages, { role: "generate", config: { signal: step } });
    setTimeout(() => run.abort(new Error("cancelled by the run")), 100);
    await expect(call).rejects.toThrow("cancelled by the run");
    expect(getEventListeners(step, "abort")).toHaveLength(0);
  });
});

describe("timeouts and the deadline: defaults, environment and run options", () => {
  const env = { OPENAI_API_KEY: "sk-test", REFINERY_DB: ":memory:" };

  it("REFINERY_MODEL_TIMEOUT_MS and REFINERY_MODEL_DEADLINE_MS set the defaults; a run's options win", () => {
    const settings = processSettingsFromEnv({
      ...env,
      OPENAI_BASE_URL: stub.url,
      REFINERY_MODEL_TIMEOUT_MS: "5000",
      REFINERY_MODEL_DEADLINE_MS: "30000",
    });
    const resolve = createSettingsResolver({ provider: createModelProvider(settings) });

    const byEnv = resolve(undefined);
    expect((byEnv.model("generate") as unknown as { timeout: number }).timeout).toBe(5_000);
    expect(byEnv.retry.deadlineMs).toBe(30_000);
    const byRun = resolve({
      configurable: { models: { critique: { timeoutMs: 700 } }, retry: { deadlineMs: 900 } },
    });
    expect((byRun.model("critique") as unknown as { timeout: number }).timeout).toBe(700);
    expect(byRun.retry).toEqual({ ...DEFAULT_RETRY, deadlineMs: 900 });

    const unset = createSettingsResolver({
      provider: createModelProvider(processSettingsFromEnv({ ...env, OPENAI_BASE_URL: stub.url })),
    })(undefined);
    expect((unset.model("revise") as unknown as { timeout: number }).timeout).toBe(60_000);
    expect(unset.retry.deadlineMs).toBe(120_000);
  });

  it.each([
    ["REFINERY_MODEL_TIMEOUT_MS", "soon"],
    ["REFINERY_MODEL_TIMEOUT_MS", "50"],
    ["REFINERY_MODEL_DEADLINE_MS", "-1"],
    ["REFINERY_MODEL_DEADLINE_MS", "1.5"],
  ])("%s=%s is refused, naming the variable and the range", (name, value) => {
    const error = (() => {
      try {
        processSettingsFromEnv({ ...env, [name]: value });
      } catch (e) {
        return e as RefineryError;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(RefineryError);
    expect(error?.field).toBe(name);
    expect(error?.fix).toMatch(/whole number of milliseconds from \d+ to \d+/);
  });

  it("retry.deadlineMs is validated with the other refine options", () => {
    expect(() => parseRefineOptions({ retry: { deadlineMs: -5 } }, "config.configurable")).toThrow(
      expect.objectContaining({ field: "config.configurable.retry.deadlineMs" }),
    );
    expect(() => parseRefineOptions({ retry: { deadline: 5 } }, "config.configurable")).toThrow(
      expect.objectContaining({
        field: "config.configurable.retry.deadline",
        fix: expect.stringContaining("deadlineMs") as unknown,
      }),
    );
    expect(parseRefineOptions({ retry: { deadlineMs: 0 } }).retry?.deadlineMs).toBe(0);
  });

  it("retry.deadlineMs 0 means no deadline: the retries alone end the call", async () => {
    stub.setHandler(() => ({ delayMs: 60_000 }));

    const error = await failure(
      callModel(model({ timeoutMs: 100 }), messages, {
        role: "generate",
        retry: { retries: 1, baseDelayMs: 0, maxDelayMs: 0, deadlineMs: 0 },
      }),
    );

    expect(error.attempts).toBe(2);
    expect(error.message).toContain("timed out");
  });
});

describe("malformed replies and missing usage", () => {
  it("retries a 200 whose body is not JSON and a 200 with `choices: []`, counting every attempt", async () => {
    stub.enqueue(
      { status: 200, body: "<html>upstream busy</html>" },
      { status: 200, body: { id: "x", object: "chat.completion", created: 0, choices: [] } },
      { content: "third time", usage: { prompt_tokens: 7, completion_tokens: 2 } },
    );

    const result = await callModel(model(), messages, { role: "generate", retry: FAST });

    expect(result.text).toBe("third time");
    expect(result.attempts).toBe(3);
    expect(result.usage).toEqual({
      promptTokens: 7,
      completionTokens: 2,
      totalTokens: 9,
      calls: 3,
    });
  });

  it("fails with a precise model_error when every reply is not JSON", async () => {
    stub.setHandler(() => ({ status: 200, body: "<html>oops</html>" }));

    const error = await failure(callModel(model(), messages, { role: "generate", retry: FAST }));

    expect(error.code).toBe("model_error");
    expect(error.attempts).toBe(3);
    expect(stub.requests).toHaveLength(3);
    expect(error.message).toContain(
      "answered 200 with a reply that is not a chat completion, 3 attempts",
    );
    expect(error.message).toContain("the body is not JSON");
    expect(error.fix).toContain("OpenAI-compatible chat completions API");
  });

  it("fails with a precise model_error when every reply has `choices: []`, counting their usage", async () => {
    stub.setHandler(() => ({
      status: 200,
      body: { choices: [], usage: { prompt_tokens: 5, completion_tokens: 0, total_tokens: 5 } },
    }));

    const error = await failure(callModel(model(), messages, { role: "critique", retry: FAST }));

    expect(error.code).toBe("model_error");
    expect(error.message).toContain("the completion has an empty `choices` list");
    expect(error.message).not.toContain("Cannot read properties");
    expect(error.usage).toMatchObject({ promptTokens: 15, calls: 3 });
  });

  it("retries a streamed call whose 200 is not a stream of completion chunks", async () => {
    stub.enqueue({ status: 200, body: "not a stream" }, { content: "streamed fine" });
    const pieces: string[] = [];

    const result = await callModel(model(), messages, {
      role: "generate",
      retry: FAST,
      onChunk: (text) => pieces.push(text),
    });

    expect(result.text).toBe("streamed fine");
    expect(result.attempts).toBe(2);
    expect(pieces.join("")).toBe("streamed fine");
  });

  it("counts the tokens itself with cl100k_base when the endpoint reports no usage, and says so", async () => {
    const reply = "Seventeen times twenty-three is 391; plus 4 is 395.";
    stub.enqueue({ content: reply, usage: null }, { content: reply, usage: null });
    // The encoder itself (cl100k_base): what is checked here is what gets counted.
    const cl100k = await loadTokenizer();
    const prompt =
      3 + messages.reduce((n, m) => n + 3 + cl100k.encode(String(m.content)).length, 0);
    const completion = cl100k.encode(reply).length;
    const expected = {
      promptTokens: prompt,
      completionTokens: completion,
      totalTokens: prompt + completion,
      calls: 1,
      estimatedTokens: prompt + completion,
    };

    const plain = await callModel(model(), messages, { role: "generate", retry: FAST });
    const streamed = await callModel(model(), messages, {
      role: "generate",
      retry: FAST,
      onChunk: () => undefined,
    });

    expect(completion).toBeGreaterThan(5);
    expect(plain.usage).toEqual(expected);
    expect(streamed.usage).toEqual(expected);
  });
});

describe("streaming", () => {
  it("model.stream yields the text and a final usage chunk", async () => {
    stub.enqueue({
      content: "two plus two is four",
      usage: { prompt_tokens: 9, completion_tokens: 5 },
    });

    let full: AIMessageChunk | undefined;
    for await (const chunk of await model().stream(messages)) {
      full = full ? full.concat(chunk) : chunk;
    }

    expect(full?.content).toBe("two plus two is four");
    expect(full?.usage_metadata).toMatchObject({
      input_tokens: 9,
      output_tokens: 5,
      total_tokens: 14,
    });
    expect(stub.requests[0]).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it("callModel streams through the config's callbacks and still counts usage", async () => {
    // LangGraph's `messages` stream mode attaches a handler like this one.
    const tokens: string[] = [];
    const handler = BaseCallbackHandler.fromMethods({
      handleLLMNewToken(token: string) {
        tokens.push(token);
      },
    });
    Object.assign(handler, { lc_prefer_streaming: true });
    stub.enqueue({ content: "streamed answer", usage: { prompt_tokens: 7, completion_tokens: 2 } });

    const result = await callModel(model(), messages, {
      role: "critique",
      retry: FAST,
      config: { callbacks: [handler] },
    });

    expect(result.text).toBe("streamed answer");
    expect(tokens.join("")).toBe("streamed answer");
    expect(result.usage).toEqual({
      promptTokens: 7,
      completionTokens: 2,
      totalTokens: 9,
      calls: 1,
    });
    expect(stub.requests[0]?.stream).toBe(true);
    expect(Object.keys(stub.requests[0] ?? {}).filter((k) => !OPENAI_BODY_KEYS.has(k))).toEqual([]);
  });

  it("retries a streamed call that fails before the stream starts", async () => {
    stub.enqueue({ status: 503 }, { content: "recovered" });
    const handler = BaseCallbackHandler.fromMethods({ handleLLMNewToken() {} });
    Object.assign(handler, { lc_prefer_streaming: true });

    const result = await callModel(model(), messages, {
      role: "generate",
      retry: FAST,
      config: { callbacks: [handler] },
    });

    expect(result.text).toBe("recovered");
    expect(result.attempts).toBe(2);
    expect(result.usage.calls).toBe(2);
  });
});

describe.each(["reasoning_content", "reasoning"] as const)(
  "reasoning sent apart from the content (%s)",
  (reasoningField) => {
    const reasoning = "Two and two: <refine>four, not five.</refine> So four.";

    it("is returned from a plain call, apart from the text", async () => {
      stub.enqueue({ content: "<answer>4</answer>", reasoning, reasoningField });
      const result = await callModel(model(), messages, { role: "generate", retry: FAST });
      expect(result.text).toBe("<answer>4</answer>");
      expect(result.reasoning).toBe(reasoning);
      expect(stub.requests[0]?.stream).toBeFalsy();
    });

    it("is streamed to onReasoning before the content, and returned whole", async () => {
      stub.enqueue({ content: "<answer>4</answer>", reasoning, reasoningField });
      const order: string[] = [];
      const result = await callModel(model(), messages, {
        role: "generate",
        retry: FAST,
        onChunk: (t) => order.push(`content:${t}`),
        onReasoning: (t) => order.push(`reasoning:${t}`),
      });
      expect(stub.requests[0]?.stream).toBe(true);
      const kinds = order.map((o) => o.slice(0, o.indexOf(":")));
      expect(kinds.indexOf("content")).toBe(kinds.lastIndexOf("reasoning") + 1);
      expect(
        order
          .filter((o) => o.startsWith("reasoning:"))
          .map((o) => o.slice("reasoning:".length))
          .join(""),
      ).toBe(reasoning);
      expect(result.reasoning).toBe(reasoning);
      expect(result.text).toBe("<answer>4</answer>");
    });

    it("is counted in the estimated completion tokens when the endpoint reports no usage", async () => {
      stub.enqueue({ content: "<answer>4</answer>", reasoning, reasoningField, usage: null });
      const result = await callModel(model(), messages, {
        role: "generate",
        retry: FAST,
        onChunk: () => undefined,
      });
      const cl100k = await loadTokenizer();
      expect(result.usage.completionTokens).toBe(
        cl100k.encode(`${reasoning}<answer>4</answer>`).length,
      );
    });

    it("is absent when the endpoint sends none", async () => {
      stub.enqueue({ content: "4" });
      const result = await callModel(model(), messages, { role: "generate", retry: FAST });
      expect(result).not.toHaveProperty("reasoning");
    });
  },
);

describe("renamingReasoningStream (the streamed side of reading `reasoning`)", () => {
  /** The stream's text out, given its bytes in as these cuts. */
  const pass = (cuts: Uint8Array[]): Promise<string> => {
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        for (const cut of cuts) c.enqueue(cut);
        c.close();
      },
    });
    return new Response(renamingReasoningStream(source)).text();
  };
  const through = (pieces: string[]) => pass(pieces.map((p) => new TextEncoder().encode(p)));
  const data = (delta: unknown) => `data: ${JSON.stringify({ choices: [{ index: 0, delta }] })}`;

  it("copies a delta's string `reasoning` into `reasoning_content`, across chunk cuts and CRLF", async () => {
    const line = data({ content: null, reasoning: "deux et deux — quatre" });
    const text = `${line}\r\n\r\n${data({ content: "4" })}\n\ndata: [DONE]\n\n`;
    // Cut inside the JSON and inside the em dash's UTF-8 bytes.
    const raw = Buffer.from(text);
    const dash = raw.indexOf(Buffer.from("—")) + 1;
    const result = await pass([raw.subarray(0, 20), raw.subarray(20, dash), raw.subarray(dash)]);
    const lines = result.split("\n");
    expect(lines[0]!.endsWith("\r")).toBe(true);
    const first = JSON.parse(lines[0]!.slice(5)) as {
      choices: { delta: Record<string, unknown> }[];
    };
    expect(first.choices[0]!.delta).toMatchObject({
      reasoning: "deux et deux — quatre",
      reasoning_content: "deux et deux — quatre",
    });
    // Every other line as it came.
    expect(lines.slice(1).join("\n")).toBe(`\r\n${data({ content: "4" })}\n\ndata: [DONE]\n\n`);
  });

  it("leaves alone a reasoning object, a delta that has reasoning_content, and lines that are not JSON", async () => {
    const lines = [
      data({ reasoning: { effort: "high" } }),
      data({ reasoning: "a", reasoning_content: "b" }),
      'data: {"reasoning": not json',
      ': a comment with "reasoning"',
      "data: [DONE]",
    ];
    const text = `${lines.join("\n\n")}\n\n`;
    expect(await through([text])).toBe(text);
  });

  it("passes on a last line without a line end", async () => {
    const line = data({ reasoning: "tail" });
    const out = await through([line.slice(0, 7), line.slice(7)]);
    expect(JSON.parse(out.slice(5))).toMatchObject({
      choices: [{ delta: { reasoning_content: "tail" } }],
    });
  });
});

/** A model outside the HTTP path (like the offline one): answers or throws from a script. */
class ScriptedModel extends BaseChatModel<RefineryCallOptions> {
  readonly simulated = true;
  readonly roles: Array<ModelRole | undefined> = [];

  constructor(private readonly script: Array<string | Error>) {
    super({});
  }

  _llmType(): string {
    return "scripted";
  }

  async _generate(
    _messages: BaseMessage[],
    options: this["ParsedCallOptions"],
  ): Promise<ChatResult> {
    this.roles.push(options.refineryRole);
    const next = this.script.shift() ?? "done";
    if (next instanceof Error) throw next;
    const message = new AIMessage({
      content: [{ type: "text", text: next }],
      usage_metadata: { input_tokens: 3, output_tokens: 2, total_tokens: 5 },
    });
    return { generations: [{ text: next, message }] };
  }
}

describe("callModel with a non-HTTP model", () => {
  it("passes the role as a call option and flattens content parts", async () => {
    const scripted = new ScriptedModel(["VERDICT: pass"]);

    const result = await callModel(scripted, messages, { role: "judge", retry: FAST });

    expect(scripted.roles).toEqual(["judge"]);
    expect(result.text).toBe("VERDICT: pass");
    expect(result.usage).toEqual({
      promptTokens: 3,
      completionTokens: 2,
      totalTokens: 5,
      calls: 1,
    });
  });

  it("retries a retryable RefineryError and keeps the code of a final one", async () => {
    const flaky = new RefineryError("model_unavailable", "simulated outage");
    const scripted = new ScriptedModel([flaky, "recovered"]);
    const result = await callModel(scripted, messages, { role: "generate", retry: FAST });
    expect(result.attempts).toBe(2);

    const broken = new RefineryError("model_error", "simulated refusal", { fix: "do not do that" });
    const error = await failure(
      callModel(new ScriptedModel([broken]), messages, { role: "generate", retry: FAST }),
    );
    expect(error).toMatchObject({ code: "model_error", fix: "do not do that", attempts: 1 });
  });
});

describe("bindModel", () => {
  it("gives verifiers text and usage", async () => {
    stub.setHandler((body) => ({
      content: JSON.stringify(body.messages?.at(-1)?.content).includes("2 + 2") ? "PASS" : "FAIL",
      usage: { prompt_tokens: 4, completion_tokens: 1 },
    }));

    const invoke = bindModel(model(), FAST);
    const { text, usage } = await invoke(messages, { role: "judge" });

    expect(text).toBe("PASS");
    expect(usage).toEqual({ promptTokens: 4, completionTokens: 1, totalTokens: 5, calls: 1 });
  });

  it("uses the default retry policy when none is given", () => {
    expect(DEFAULT_RETRY).toEqual({
      retries: 3,
      baseDelayMs: 500,
      maxDelayMs: 8_000,
      deadlineMs: 120_000,
    });
  });
});

describe("helpers", () => {
  it("isSimulatedModel reads the `simulated` marker", () => {
    expect(isSimulatedModel(model())).toBe(false);
    expect(isSimulatedModel({ simulated: true })).toBe(true);
    expect(isSimulatedModel({ simulated: "yes" })).toBe(false);
    expect(isSimulatedModel(null)).toBe(false);
  });

  it("messageText flattens content parts", () => {
    expect(messageText("plain")).toBe("plain");
    expect(
      messageText([
        { type: "text", text: "Hello, " },
        { type: "image_url", image_url: { url: "x" } },
        "world",
        { type: "text", text: "!" },
      ]),
    ).toBe("Hello, world!");
    expect(messageText(undefined)).toBe("");
  });

  it("parseRetryAfter reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("2")).toBe(2_000);
    expect(parseRetryAfter("0.5")).toBe(500);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter("soon")).toBeUndefined();
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    expect(parseRetryAfter(inAMinute)).toBeGreaterThan(50_000);
  });

  it("classifies errors from other clients by status, code and cause", () => {
    expect(classifyModelError({ status: 503 })).toMatchObject({
      kind: "server_error",
      retryable: true,
    });
    expect(classifyModelError({ response: { status: 401 } })).toMatchObject({ kind: "auth" });
    const reset = new Error("fetch failed", {
      cause: Object.assign(new Error("x"), { code: "ECONNRESET" }),
    });
    expect(classifyModelError(reset)).toMatchObject({ kind: "connection", retryable: true });
    const dns = new Error("fetch failed", {
      cause: Object.assign(new Error("x"), { code: "ENOTFOUND" }),
    });
    expect(classifyModelError(dns)).toMatchObject({ kind: "dns", retryable: false });
    expect(
      classifyModelError(new AggregateError([Object.assign(new Error(), { code: "ETIMEDOUT" })])),
    ).toMatchObject({ kind: "timeout", retryable: true });
    expect(classifyModelError(new TypeError("cannot read x of undefined"))).toMatchObject({
      kind: "unknown",
      retryable: false,
    });
  });
});

describe("openai stub", () => {
  it("serves /v1/models and echoes by default", async () => {
    const models = (await (await fetch(`${stub.url}/models`)).json()) as { data: { id: string }[] };
    expect(models.data[0]?.id).toBe("stub-model");

    const result = await callModel(model(), messages, { role: "generate", retry: FAST });
    expect(result.text).toBe("stub reply to: What is 2 + 2?");
    expect(result.usage.promptTokens).toBeGreaterThan(0);
  });
});
