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
  if ((response.headers.get("content-type") ?? "").includes("text/event-stream")) {
    if (!response.body) return response;
    return new Response(renamingReasoningStream(response.body), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  }
  let text = await response.text();
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
  if (text.includes('"reasoning"') && renameReasoning(choices, "message"))
    text = JSON.stringify(body);
  return new Response(text, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/**
 * Copies a choice's `reasoning` into `reasoning_content` where only the first was sent: newer vLLM
 * versions (and other OpenAI-compatible servers) name the field `reasoning`, and @langchain/openai
 * reads only `reasoning_content`. A `reasoning` that is not a string (an object some providers
 * send) is left alone, as is a reply that has `reasoning_content`. True when it changed something.
 */
function renameReasoning(choices: unknown, key: "message" | "delta"): boolean {
  if (!Array.isArray(choices)) return false;
  let changed = false;
  for (const choice of choices as unknown[]) {
    const part = (choice as Record<string, unknown> | null)?.[key] as
      Record<string, unknown> | null | undefined;
    if (typeof part?.reasoning === "string" && part.reasoning_content === undefined) {
      part.reasoning_content = part.reasoning;
      changed = true;
    }
  }
  return changed;
}

const MAX_PENDING_LINE = 1 << 20;

/** renameReasoning on each `data:` line of a streamed completion; every other byte as it came. */
export function renamingReasoningStream(
  body: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let pending = "";
  const renameLine = (line: string): string => {
    if (!line.startsWith("data:") || !line.includes('"reasoning"')) return line;
    const cr = line.endsWith("\r") ? "\r" : "";
    let chunk: { choices?: unknown } | null;
    try {
      chunk = JSON.parse(line.slice(5, line.length - cr.length)) as { choices?: unknown } | null;
    } catch {
      return line;
    }
    return renameReasoning(chunk?.choices, "delta") ? `data: ${JSON.stringify(chunk)}${cr}` : line;
  };
  const renamed = (text: string) =>
    text.includes('"reasoning"') ? text.split("\n").map(renameLine).join("\n") : text;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        pending += decoder.decode(chunk, { stream: true });
        // Whole lines only: a line split across chunks waits for its end.
        const end = pending.lastIndexOf("\n");
        if (end < 0) {
          // No line end in 1 MiB: not an event stream this reads; passed on as it came.
          if (pending.length > MAX_PENDING_LINE) {
            controller.enqueue(encoder.encode(pending));
            pending = "";
          }
          return;
        }
        controller.enqueue(encoder.encode(renamed(pending.slice(0, end + 1))));
        pending = pending.slice(end + 1);
      },
      flush(controller) {
        pending += decoder.decode();
        if (pending) controller.enqueue(encoder.encode(renamed(pending)));
      },
    }),
  );
}
