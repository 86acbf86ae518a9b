// Builds the real chat model: ChatOpenAI against any OpenAI-compatible endpoint. Retries are off
// here because callModel (call.ts) retries itself and counts every attempt's usage.
import { ChatOpenAI } from "@langchain/openai";
import { DEFAULT_MODEL_TIMEOUT_MS, MalformedReplyError } from "./call.ts";

export interface OpenAIModelOptions {
  apiKey: string;
  /** Base URL of an OpenAI-compatible API, including `/v1`; the OpenAI API when omitted. */
  baseURL?: string;
  model: string;
  temperature?: number;
  /** Per-attempt timeout (default 60 s); a timed-out attempt is retried by callModel. */
  timeoutMs?: number;
  maxTokens?: number;
  /** Sent as the request's `seed`. */
  seed?: number;
  /** Sent as the request's `n`. */
  n?: number;
}

export function createOpenAIModel(opts: OpenAIModelOptions): ChatOpenAI {
  return new ChatOpenAI({
    apiKey: opts.apiKey,
    model: opts.model,
    temperature: opts.temperature,
    maxTokens: opts.maxTokens,
    n: opts.n,
    // LangChain sends `seed` only as a per-call option; as a model kwarg it goes on every request.
    ...(opts.seed === undefined ? {} : { modelKwargs: { seed: opts.seed } }),
    timeout: opts.timeoutMs ?? DEFAULT_MODEL_TIMEOUT_MS,
    // Neither LangChain's caller nor the openai SDK may retry behind our back: uncounted attempts.
    maxRetries: 0,
    // Streamed calls (LangGraph's `messages` stream mode) only report usage when asked to.
    streamUsage: true,
    configuration: { baseURL: opts.baseURL, fetch: checkedFetch },
  });
}

// The endpoint was checked when the model was built (endpoints.ts); this wraps the fetch the
// openai SDK would use anyway, to look at what came back.
// eslint-disable-next-line no-restricted-globals
const platformFetch: typeof fetch = fetch;

/**
 * The SDK's fetch, plus a look at a successful non-streamed chat completion before the SDK reads
 * it: a body that is not JSON, or has no `choices[0].message`, throws MalformedReplyError (which
 * callModel retries) instead of a SyntaxError or LangChain's "Cannot read properties of
 * undefined" deep in the parsing.
 */
async function checkedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const response = await platformFetch(input, init);
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  if (!response.ok || !/\/chat\/completions(\?|$)/.test(url)) return response;
  if ((response.headers.get("content-type") ?? "").includes("text/event-stream")) return response;
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new MalformedReplyError(
      `the body is not JSON (${response.headers.get("content-type") ?? "no content-type"}): ${JSON.stringify(text.slice(0, 80))}`,
    );
  }
  const reply = body as {
    choices?: unknown;
    usage?: { prompt_tokens?: number; completion_tokens?: number };
  } | null;
  const choices = reply?.choices;
  const first: unknown = Array.isArray(choices) ? choices[0] : undefined;
  if (typeof first !== "object" || first === null || !("message" in first) || !first.message) {
    const what = !Array.isArray(choices)
      ? "has no `choices` list"
      : choices.length === 0
        ? "has an empty `choices` list"
        : "has no `choices[0].message`";
    const usage = reply?.usage;
    throw new MalformedReplyError(
      `the completion ${what}`,
      usage && (usage.prompt_tokens !== undefined || usage.completion_tokens !== undefined)
        ? { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens }
        : undefined,
    );
  }
  return new Response(text, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}
