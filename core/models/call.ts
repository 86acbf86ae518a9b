// One model call with Refinery's own retry policy and full token accounting: every attempt is
// counted, transient failures (429, 5xx, timeouts, dropped connections, malformed replies) are
// retried with backoff within the call's deadline, replies without usage are counted with a
// tokenizer, and the final failure becomes a RefineryError that says what to fix.
import { attemptScope, type AttemptScope } from "./attempt-journal.ts";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { BaseMessage, AIMessageChunk } from "@langchain/core/messages";
import { AIMessage } from "@langchain/core/messages";
import type { RunnableConfig } from "@langchain/core/runnables";
import { linkSignals } from "../abort.ts";
import { RefineryError, isRefineryError } from "../errors.ts";
import type { ErrorCode, RefineryErrorOptions } from "../errors.ts";
import { ZERO_USAGE, addUsage, usageFromMetadata } from "../usage.ts";
import type { TokenUsage } from "../usage.ts";
import { countPromptTokens, countTokens } from "./tokenize.ts";
import type { ModelInvoker, ModelRole, RefineryCallOptions } from "./types.ts";

export interface RetryPolicy {
  /** Retries after the first attempt; 0 means a single attempt. */
  retries: number;
  baseDelayMs: number;
  /** Longest backoff between attempts (a Retry-After the endpoint sends may be longer). */
  maxDelayMs: number;
  /**
   * Longest one model call may take, every attempt and wait included (`retry.deadlineMs`);
   * 0 or absent: no limit. An attempt still running then is cut off.
   */
  deadlineMs?: number;
}

/** Per-attempt timeout of a model when neither its spec nor REFINERY_MODEL_TIMEOUT_MS sets one. */
export const DEFAULT_MODEL_TIMEOUT_MS = 60_000;

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  retries: 3,
  baseDelayMs: 500,
  maxDelayMs: 8000,
  deadlineMs: 120_000,
});

/**
 * A 200 reply that is not a chat completion (not JSON, no choices, an empty stream): transient
 * for a proxy or a server under load, so it is retried like a 5xx.
 */
export class MalformedReplyError extends Error {
  /** Usage the reply reported, if it parsed far enough to carry some. */
  readonly usage_metadata?: { input_tokens?: number; output_tokens?: number };

  constructor(message: string, usage?: { input_tokens?: number; output_tokens?: number }) {
    super(message);
    this.name = "MalformedReplyError";
    if (usage) this.usage_metadata = usage;
  }
}

export interface CallModelOptions {
  role: ModelRole;
  /** The LangGraph config of the calling node, passed through so streaming callbacks keep working. */
  config?: RunnableConfig;
  retry?: RetryPolicy;
  signal?: AbortSignal;
  /** Injected in tests to skip real waiting. */
  sleep?: (ms: number) => Promise<void>;
  /**
   * Streams the reply and hands each text delta over as it arrives (with the attempt number, so a
   * caller parsing the stream can start over when a retry begins).
   */
  onChunk?: (text: string, attempt: number) => void;
  /**
   * With `onChunk`: hands over each delta of reasoning the endpoint sends apart from the content
   * (`reasoning_content`, as DeepSeek-R1 and vLLM's reasoning parsers do).
   */
  onReasoning?: (text: string, attempt: number) => void;
}

export interface CallModelResult {
  text: string;
  /** Reasoning the endpoint sent apart from the content (`reasoning_content`), when it sent any. */
  reasoning?: string;
  message: AIMessage;
  /** Usage summed over every attempt; `calls` is the number of attempts. */
  usage: TokenUsage;
  attempts: number;
  latencyMs: number;
}

/** A model call that failed for good; carries what the failed attempts cost. */
export class ModelCallError extends RefineryError {
  readonly usage: TokenUsage;
  readonly attempts: number;

  constructor(
    code: ErrorCode,
    message: string,
    options: RefineryErrorOptions & { usage: TokenUsage; attempts: number },
  ) {
    super(code, message, options);
    this.name = "ModelCallError";
    this.usage = options.usage;
    this.attempts = options.attempts;
  }
}

export function isModelCallError(value: unknown): value is ModelCallError {
  return value instanceof ModelCallError;
}

export async function callModel(
  model: BaseChatModel,
  messages: BaseMessage[],
  options: CallModelOptions,
): Promise<CallModelResult> {
  const policy = options.retry ?? DEFAULT_RETRY;
  const sleep = options.sleep ?? defaultSleep;
  // Our own signals, not the caller's nor AbortSignal.any's (core/abort.ts says why).
  const callerLink = linkSignals(options.signal, options.config?.signal);
  const caller = callerLink.signal;
  const deadline = startDeadline(policy.deadlineMs);
  const link = linkSignals(caller, deadline?.signal);
  const signal = link.signal;
  const callOptions: RefineryCallOptions = {
    ...options.config,
    signal,
    refineryRole: options.role,
  };
  const started = Date.now();
  // Attempts of a checkpointed step are journaled (attempt-journal.ts); the step's first call
  // starts from what earlier executions of the step spent, so no paid attempt goes uncounted.
  const scope = attemptScope(options.config);
  const journal = scope ? journaled(scope) : undefined;
  let usage: TokenUsage = ZERO_USAGE;
  let attempts = 0;
  const where = () => describeModel(model);
  const pastDeadline = (error: unknown) =>
    deadlineError(where(), options.role, policy, usage, attempts, error);

  try {
    for (;;) {
      caller?.throwIfAborted();
      attempts += 1;
      usage = addUsage(usage, { calls: 1 });
      // The step's first call also learns what earlier executions of the step spent.
      const begun = await journal?.start(scope?.first === true && attempts === 1);
      if (begun?.carried) usage = addUsage(begun.carried, usage);
      const row = begun?.row;
      let failure: Failure;
      try {
        const message = await raceAbort(
          options.onChunk
            ? streamReply(
                model,
                messages,
                callOptions,
                (t) => options.onChunk?.(t, attempts),
                (t) => options.onReasoning?.(t, attempts),
              )
            : model.invoke(messages, callOptions),
          signal,
        );
        const text = messageText(message.content);
        const reasoning = reasoningText(message);
        const spent = await replyUsage(message, messages, reasoning ? reasoning + text : text);
        void journal?.end(row, spent);
        usage = addUsage(usage, spent);
        return {
          text,
          ...(reasoning ? { reasoning } : {}),
          message: toAIMessage(message),
          usage,
          attempts,
          latencyMs: Date.now() - started,
        };
      } catch (error) {
        // The caller gave up: no retry and no wrapping, so cancellation propagates as itself.
        if (caller?.aborted) throw caller.reason;
        const spent = tokensOnly(usageOf(error));
        if (spent) void journal?.end(row, spent);
        usage = addUsage(usage, spent);
        if (deadline?.signal.aborted) throw pastDeadline(error);
        failure = classifyModelError(error);
        if (!failure.retryable || attempts > policy.retries) {
          throw toModelCallError(failure, error, where(), usage, attempts, options.role);
        }
      }
      let delay: number;
      if (failure.retryAfterMs !== undefined) {
        // The endpoint said when: honoured in full, as long as the call's deadline and the
        // run's (REFINERY_RUN_TIMEOUT_MS, on the server) allow it.
        delay = failure.retryAfterMs;
        const callLeft = deadline ? deadline.remaining() : Infinity;
        const runEnds = runDeadlineOf(options.config);
        const runLeft = runEnds === undefined ? Infinity : Math.max(0, runEnds - Date.now());
        if (delay > Math.min(callLeft, runLeft)) {
          const limit =
            callLeft <= runLeft
              ? { left: callLeft, setting: `retry.deadlineMs (${policy.deadlineMs} ms)` }
              : { left: runLeft, setting: "the run's time limit (REFINERY_RUN_TIMEOUT_MS)" };
          throw retryAfterError(where(), failure, limit, usage, attempts);
        }
      } else {
        delay = backoffDelay(attempts, policy);
      }
      try {
        await sleepUnlessAborted(delay, signal, sleep);
      } catch (error) {
        if (caller?.aborted) throw caller.reason;
        if (deadline?.signal.aborted) throw pastDeadline(error);
        throw error;
      }
    }
  } finally {
    deadline?.stop();
    link.dispose();
    callerLink.dispose();
  }
}

/**
 * The journal of one call's attempts. Journaling never fails a call: a journal that cannot be
 * written (a read-only or full disk) only loses the count of attempts a crash would cut.
 */
function journaled(scope: AttemptScope) {
  const safely = async <T>(f: () => T | Promise<T>): Promise<T | undefined> => {
    try {
      return await f();
    } catch {
      return undefined;
    }
  };
  return {
    start: (carry: boolean) => safely(() => scope.journal.start(scope.key, scope.node, carry)),
    end: async (row: number | bigint | undefined, spent: Partial<TokenUsage>) => {
      if (row !== undefined) await safely(() => scope.journal.end(row, spent, scope.key.threadId));
    },
  };
}

/**
 * When the run must end, as epoch milliseconds: the server's run runner puts it in the config
 * (`refinery_run_deadline`, from REFINERY_RUN_TIMEOUT_MS); absent elsewhere.
 */
function runDeadlineOf(config: RunnableConfig | undefined): number | undefined {
  const value: unknown = config?.configurable?.refinery_run_deadline;
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

interface Deadline {
  signal: AbortSignal;
  remaining(): number;
  stop(): void;
}

function startDeadline(ms: number | undefined): Deadline | undefined {
  if (!ms || ms <= 0) return undefined;
  const controller = new AbortController();
  const ends = Date.now() + ms;
  const timer = setTimeout(() => controller.abort(new Error("model call deadline")), ms);
  return {
    signal: controller.signal,
    remaining: () => Math.max(0, ends - Date.now()),
    stop: () => clearTimeout(timer),
  };
}

/**
 * The reply's usage as the endpoint reported it; when it reported none (no `usage` in the body,
 * or a stream without a usage chunk), prompt and reply counted with the tokenizer and marked
 * as estimated, so token budgets hold on any endpoint.
 */
async function replyUsage(
  message: BaseMessage & { usage_metadata?: { input_tokens?: number; output_tokens?: number } },
  messages: BaseMessage[],
  text: string,
): Promise<Partial<TokenUsage>> {
  const meta = message.usage_metadata;
  if (meta && (typeof meta.input_tokens === "number" || typeof meta.output_tokens === "number")) {
    return tokensOnly(meta) ?? {};
  }
  const promptTokens = await countPromptTokens(messages, messageText);
  const completionTokens = await countTokens(text);
  const totalTokens = promptTokens + completionTokens;
  return { promptTokens, completionTokens, totalTokens, estimatedTokens: totalTokens };
}

async function streamReply(
  model: BaseChatModel,
  messages: BaseMessage[],
  callOptions: RefineryCallOptions,
  onText: (text: string) => void,
  onReasoning: (text: string) => void,
): Promise<AIMessage> {
  let full: AIMessageChunk | undefined;
  for await (const chunk of await model.stream(messages, callOptions)) {
    const reasoning = reasoningText(chunk);
    if (reasoning) onReasoning(reasoning);
    const text = messageText(chunk.content);
    if (text) onText(text);
    full = full ? full.concat(chunk) : chunk;
  }
  // Even an empty answer streams a chunk (the role, the finish reason): none at all means the
  // endpoint sent no completion chunks (an error page, `choices: []` in every event).
  if (!full) throw new MalformedReplyError("the streamed reply held no completion chunks");
  return toAIMessage(full);
}

/** Adapts a model and its retry policy to what verifiers call (see ModelInvoker). */
export function bindModel(model: BaseChatModel, retry: RetryPolicy = DEFAULT_RETRY): ModelInvoker {
  return async (messages, { role, signal }) => {
    const { text, usage } = await callModel(model, messages, { role, signal, retry });
    return { text, usage };
  };
}

/** True for the offline model, which marks itself with `readonly simulated = true`. */
export function isSimulatedModel(model: unknown): boolean {
  return (
    typeof model === "object" &&
    model !== null &&
    (model as { simulated?: unknown }).simulated === true
  );
}

/**
 * Reasoning an endpoint sent apart from the content: @langchain/openai (1.5) copies a completion's
 * or a delta's `reasoning_content` into `additional_kwargs`, and chunks concatenate it.
 */
export function reasoningText(message: Pick<BaseMessage, "additional_kwargs">): string {
  const value: unknown = message.additional_kwargs?.reasoning_content;
  return typeof value === "string" ? value : "";
}

/** Flattens message content (a string or an array of parts) to its text. */
export function messageText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part: unknown) => {
      if (typeof part === "string") return part;
      if (typeof part === "object" && part !== null && "type" in part && part.type === "text") {
        return "text" in part && typeof part.text === "string" ? part.text : "";
      }
      return "";
    })
    .join("");
}

// ---------------------------------------------------------------------------------------------
// Error classification

export type FailureKind =
  | "refinery"
  | "rate_limited"
  | "server_error"
  | "timeout"
  | "connection"
  | "dns"
  | "auth"
  | "not_found"
  | "quota"
  | "context_overflow"
  | "rejected"
  | "malformed"
  | "unknown";

export interface Failure {
  kind: FailureKind;
  retryable: boolean;
  status?: number;
  /** Low-level error code found on the error or its causes, e.g. ECONNREFUSED. */
  code?: string;
  /** From a Retry-After (or retry-after-ms) header, when the endpoint sent one. */
  retryAfterMs?: number;
}

const TIMEOUT_CODES = new Set([
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ECONNABORTED",
]);
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);
const DNS_CODES = new Set(["ENOTFOUND"]);

/**
 * Classifies an error thrown by a chat model call. Observed with @langchain/openai 1.6 (openai
 * SDK 5): HTTP errors are the SDK's APIError subclasses with numeric `status` and a `Headers`
 * object (429/401/404 additionally get `lc_error_code`); timeouts are re-thrown as a plain
 * Error named "TimeoutError"; refused/reset/DNS failures are an `APIConnectionError` whose
 * cause is undici's "fetch failed" TypeError, whose cause carries `code` (ECONNREFUSED,
 * UND_ERR_SOCKET, ENOTFOUND). Other OpenAI-compatible clients differ, so the whole cause chain
 * is searched by status, code, name and constructor name.
 */
export function classifyModelError(error: unknown): Failure {
  // A model that speaks our language (the simulated one) has already decided.
  if (isRefineryError(error)) return { kind: "refinery", retryable: error.retryable };
  const chain = causeChain(error);
  // A 200 that is no chat completion: the OpenAI SDK's JSON.parse of a non-JSON body, our own
  // check of the body (openai.ts), or a stream without completion chunks.
  if (
    chain.some(
      (e) =>
        e instanceof MalformedReplyError || (e instanceof SyntaxError && /JSON/i.test(e.message)),
    )
  ) {
    return { kind: "malformed", retryable: true };
  }
  const status = chain.map(statusOf).find((s) => s !== undefined);
  const codes = chain.flatMap((e) => [stringProp(e, "code"), nestedErrorCode(e)]).filter(isString);
  const names = chain.flatMap((e) => [stringProp(e, "name"), constructorName(e)]).filter(isString);
  const message = chain.map((e) => stringProp(e, "message") ?? "").join("\n");
  const code = codes.find(
    (c) => TIMEOUT_CODES.has(c) || CONNECTION_CODES.has(c) || DNS_CODES.has(c),
  );

  if (
    names.includes("ContextOverflowError") ||
    codes.includes("context_length_exceeded") ||
    /context_length_exceeded|maximum context length/i.test(message)
  ) {
    return { kind: "context_overflow", retryable: false, status };
  }
  if (status !== undefined) {
    if (status === 429) {
      if (codes.includes("insufficient_quota")) return { kind: "quota", retryable: false, status };
      return { kind: "rate_limited", retryable: true, status, retryAfterMs: retryAfterOf(chain) };
    }
    if (status === 408) return { kind: "timeout", retryable: true, status };
    if (status >= 500) {
      return { kind: "server_error", retryable: true, status, retryAfterMs: retryAfterOf(chain) };
    }
    if (status === 401 || status === 403) return { kind: "auth", retryable: false, status };
    if (status === 404) return { kind: "not_found", retryable: false, status };
    return { kind: "rejected", retryable: false, status };
  }
  if (
    (code !== undefined && TIMEOUT_CODES.has(code)) ||
    names.some((n) => n === "TimeoutError" || n === "APIConnectionTimeoutError")
  ) {
    return { kind: "timeout", retryable: true, code };
  }
  if (code !== undefined && DNS_CODES.has(code)) return { kind: "dns", retryable: false, code };
  if (code !== undefined && CONNECTION_CODES.has(code)) {
    return { kind: "connection", retryable: true, code };
  }
  if (names.includes("APIConnectionError") || /fetch failed|socket hang up/i.test(message)) {
    return { kind: "connection", retryable: true, code };
  }
  // An abort the caller did not ask for comes from a per-call timeout (e.g. RunnableConfig.timeout).
  if (names.includes("AbortError")) return { kind: "timeout", retryable: true };
  return { kind: "unknown", retryable: false };
}

function toModelCallError(
  failure: Failure,
  error: unknown,
  where: ModelDescription,
  usage: TokenUsage,
  attempts: number,
  role?: ModelRole,
): ModelCallError {
  const target = `model "${where.model}" at ${where.baseURL}`;
  const tries = attempts === 1 ? "1 attempt" : `${attempts} attempts`;
  const timeoutField = `models.${role ?? "default"}.timeoutMs`;
  const detail =
    failure.kind === "malformed" ? firstLine(malformedCause(error) ?? error) : firstLine(error);
  const serverFix = "check OPENAI_BASE_URL and that the server is running";
  const make = (code: ErrorCode, message: string, fix: string) =>
    new ModelCallError(code, message, { fix, cause: error, usage, attempts });

  switch (failure.kind) {
    case "refinery": {
      const e = error as RefineryError;
      return new ModelCallError(e.code, e.message, {
        field: e.field,
        fix: e.fix,
        retryable: e.retryable,
        cause: e,
        usage,
        attempts,
      });
    }
    case "timeout":
      return make(
        "model_unavailable",
        where.timeoutMs === undefined
          ? `Model call to ${target} timed out (${tries}).`
          : `Model call to ${target} timed out: no answer within ${where.timeoutMs} ms (${timeoutField}) on each of ${tries}.`,
        `${serverFix}, or raise ${timeoutField} (default REFINERY_MODEL_TIMEOUT_MS) for slow models.`,
      );
    case "malformed":
      return make(
        "model_error",
        `${target} answered 200 with a reply that is not a chat completion, ${tries}: ${detail}`,
        "check that OPENAI_BASE_URL (or models.*.baseURL) points at an OpenAI-compatible chat completions API, including its /v1 path.",
      );
    case "connection":
      return make(
        "model_unavailable",
        `Cannot reach ${target}${failure.code ? ` (${failure.code})` : ""} after ${tries}.`,
        `${serverFix}.`,
      );
    case "dns":
      return make(
        "model_unavailable",
        `Cannot resolve the host of ${where.baseURL} (${failure.code ?? "DNS error"}).`,
        `${serverFix}; the host name looks wrong.`,
      );
    case "server_error":
      return make(
        "model_unavailable",
        `${target} answered HTTP ${failure.status} after ${tries}: ${detail}`,
        `${serverFix} and healthy; retry later.`,
      );
    case "rate_limited":
      return make(
        "model_unavailable",
        `${target} kept rate-limiting (HTTP 429) after ${tries}: ${detail}`,
        "wait and retry, or lower the number of concurrent runs.",
      );
    case "quota":
      return make(
        "model_error",
        `${target} refused the call: the account's quota is exhausted (HTTP 429).`,
        "check the billing and quota of the account behind OPENAI_API_KEY.",
      );
    case "auth":
      return make(
        "model_error",
        `${target} rejected the credentials (HTTP ${failure.status}): ${detail}`,
        "check OPENAI_API_KEY (and that it is valid for this endpoint).",
      );
    case "not_found":
      return make(
        "model_error",
        `${target} answered HTTP 404: ${detail}`,
        "check the model name, and that OPENAI_BASE_URL includes the API path (usually /v1).",
      );
    case "context_overflow":
      return make(
        "model_error",
        `The prompt is too long for ${target}: ${detail}`,
        "shorten the task or context, or use a model with a larger context window.",
      );
    case "rejected":
      return make(
        "model_error",
        `${target} rejected the request (HTTP ${failure.status}): ${detail}`,
        "check the model parameters (temperature, max tokens) and that the endpoint supports chat completions.",
      );
    case "unknown":
      return make(
        "model_error",
        `Model call to ${target} failed: ${detail}`,
        "see the cause; if it persists, report it with the model and endpoint used.",
      );
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

interface ModelDescription {
  model: string;
  baseURL: string;
  /** The model's per-attempt timeout, when it has one (ChatOpenAI's `timeout`). */
  timeoutMs?: number;
}

/** The call ran out of `retry.deadlineMs`: an attempt was cut off, or a backoff would pass it. */
function deadlineError(
  where: ModelDescription,
  role: ModelRole,
  policy: RetryPolicy,
  usage: TokenUsage,
  attempts: number,
  cause: unknown,
): ModelCallError {
  const tries = attempts === 1 ? "1 attempt" : `${attempts} attempts`;
  const perAttempt =
    where.timeoutMs === undefined
      ? ""
      : `, each limited to ${where.timeoutMs} ms by models.${role}.timeoutMs`;
  return new ModelCallError(
    "model_unavailable",
    `Model call to model "${where.model}" at ${where.baseURL} got no answer within retry.deadlineMs (${policy.deadlineMs} ms) over ${tries}${perAttempt}.`,
    {
      fix: "check that the endpoint is up and answering, or raise retry.deadlineMs (default REFINERY_MODEL_DEADLINE_MS) for slow models.",
      cause,
      usage,
      attempts,
    },
  );
}

/** The endpoint asked for a wait (Retry-After) longer than what is left of the deadline. */
function retryAfterError(
  where: ModelDescription,
  failure: Failure,
  limit: { left: number; setting: string },
  usage: TokenUsage,
  attempts: number,
): ModelCallError {
  const wait = failure.retryAfterMs ?? 0;
  const raise = limit.setting.startsWith("retry.")
    ? "retry.deadlineMs (default REFINERY_MODEL_DEADLINE_MS)"
    : "REFINERY_RUN_TIMEOUT_MS";
  return new ModelCallError(
    "model_unavailable",
    `model "${where.model}" at ${where.baseURL} answered HTTP ${failure.status ?? "?"} asking to retry after ${Math.ceil(wait / 1000)} s (Retry-After), more than the ${limit.left} ms left of ${limit.setting}: gave up after ${attempts === 1 ? "1 attempt" : `${attempts} attempts`}.`,
    {
      fix: `retry later, or raise ${raise} to wait as long as the endpoint asks.`,
      retryAfterMs: wait,
      usage,
      attempts,
    },
  );
}

/** Reads the model name and endpoint off a ChatOpenAI-like model, for error messages only. */
function describeModel(model: BaseChatModel): ModelDescription {
  const m = model as unknown as {
    model?: unknown;
    modelName?: unknown;
    timeout?: unknown;
    clientConfig?: { baseURL?: unknown };
  };
  const name = typeof m.model === "string" ? m.model : m.modelName;
  const baseURL = m.clientConfig?.baseURL;
  return {
    model: typeof name === "string" ? name : model.getName(),
    baseURL: typeof baseURL === "string" ? baseURL : "the default OpenAI endpoint",
    ...(typeof m.timeout === "number" ? { timeoutMs: m.timeout } : {}),
  };
}

function tokensOnly(
  meta: { input_tokens?: number; output_tokens?: number; total_tokens?: number } | undefined,
): Partial<TokenUsage> | undefined {
  if (!meta) return undefined;
  return { ...usageFromMetadata(meta), calls: 0 };
}

/** Usage an attempt reported before failing, if the error or one of its causes exposes it. */
function usageOf(error: unknown): { input_tokens?: number; output_tokens?: number } | undefined {
  for (const e of causeChain(error)) {
    const meta = (e as { usage_metadata?: unknown }).usage_metadata;
    if (typeof meta === "object" && meta !== null) return meta;
  }
  return undefined;
}

/** Streamed calls return an AIMessageChunk; callers get a plain AIMessage either way. */
function toAIMessage(message: BaseMessage): AIMessage {
  if (message instanceof AIMessage) return message;
  const m = message as BaseMessage & Partial<Pick<AIMessage, "tool_calls" | "usage_metadata">>;
  return new AIMessage({
    content: m.content,
    id: m.id,
    name: m.name,
    additional_kwargs: m.additional_kwargs,
    response_metadata: m.response_metadata,
    tool_calls: m.tool_calls,
    usage_metadata: m.usage_metadata,
  });
}

function backoffDelay(attempt: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.random() * ceiling; // full jitter
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function sleepUnlessAborted(
  ms: number,
  signal: AbortSignal | undefined,
  sleep: (ms: number) => Promise<void>,
): Promise<void> {
  await raceAbort(sleep(ms), signal);
  signal?.throwIfAborted();
}

/** Rejects with the signal's reason as soon as it aborts, whatever the promise is doing. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function causeChain(error: unknown): object[] {
  const out: object[] = [];
  const pending: unknown[] = [error];
  while (pending.length > 0 && out.length < 16) {
    const next = pending.shift();
    if (typeof next !== "object" || next === null || out.includes(next)) continue;
    out.push(next);
    if ("cause" in next) pending.push(next.cause);
    if ("errors" in next && Array.isArray(next.errors)) pending.push(...(next.errors as unknown[]));
  }
  return out;
}

function statusOf(e: object): number | undefined {
  for (const key of ["status", "statusCode"] as const) {
    const value = (e as Record<string, unknown>)[key];
    if (typeof value === "number" && value >= 100 && value < 600) return value;
  }
  const response = (e as { response?: unknown }).response;
  if (typeof response === "object" && response !== null && "status" in response) {
    return typeof response.status === "number" ? response.status : undefined;
  }
  return undefined;
}

/** OpenAI's error body puts its code at `error.code`, e.g. `insufficient_quota`. */
function nestedErrorCode(e: object): string | undefined {
  const body = (e as { error?: unknown }).error;
  return typeof body === "object" && body !== null ? stringProp(body, "code") : undefined;
}

function retryAfterOf(chain: object[]): number | undefined {
  for (const e of chain) {
    const headers =
      (e as { headers?: unknown }).headers ??
      (e as { response?: { headers?: unknown } }).response?.headers;
    const ms = header(headers, "retry-after-ms");
    if (ms !== undefined && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
    const parsed = parseRetryAfter(header(headers, "retry-after"));
    if (parsed !== undefined) return parsed;
    // LangChain's rate-limit classifier stores what it parsed here.
    const stored = (e as { retryAfterMs?: unknown }).retryAfterMs;
    if (typeof stored === "number" && stored >= 0) return stored;
  }
  return undefined;
}

function header(headers: unknown, name: string): string | undefined {
  if (typeof headers !== "object" || headers === null) return undefined;
  if (typeof (headers as Headers).get === "function")
    return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, unknown>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return typeof value === "string" ? value : undefined;
}

/** Retry-After is either delay seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function stringProp(e: object, key: string): string | undefined {
  const value = (e as Record<string, unknown>)[key];
  return typeof value === "string" ? value : undefined;
}

function constructorName(e: object): string | undefined {
  const name = (e as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name !== "Object" ? name : undefined;
}

function isString(value: string | undefined): value is string {
  return value !== undefined;
}

/** What was wrong with a malformed reply (the SDK wraps it in a "Connection error."). */
function malformedCause(error: unknown): object | undefined {
  return causeChain(error).find(
    (e) =>
      e instanceof MalformedReplyError || (e instanceof SyntaxError && /JSON/i.test(e.message)),
  );
}

/** The first line of an error's message, without LangChain's troubleshooting footer. */
function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split("\n")[0] ?? "").trim() || "no details";
}
