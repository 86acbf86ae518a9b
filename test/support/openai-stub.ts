// An OpenAI-compatible HTTP server for tests: real sockets and real JSON/SSE on 127.0.0.1, with
// scripted replies (completions, HTTP errors, delays, dropped connections) so the client path is exercised for real.
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { DEFAULT_PROMPTS } from "../../core/prompts.ts";

/** The parts of a chat completions request body the stub reads; the rest is kept as received. */
export interface ChatRequestBody {
  model?: string;
  messages?: Array<{ role: string; content: unknown }>;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  [key: string]: unknown;
}

export interface StubUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** A successful completion; usage defaults to a length-based estimate, `null` reports none. */
export interface StubCompletion {
  content: string;
  /**
   * Reasoning sent apart from the content, as `reasoning_content` (DeepSeek-R1, vLLM's reasoning
   * parsers): in the message, or streamed in deltas (with `content: null`) before the content.
   */
  reasoning?: string;
  /** The field `reasoning` is sent in (default `reasoning_content`; newer vLLM: `reasoning`). */
  reasoningField?: "reasoning_content" | "reasoning";
  usage?: StubUsage | null;
  delayMs?: number;
}

/** An HTTP error response; `body` defaults to an OpenAI-style `{error: {...}}`. */
export interface StubHttpError {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
}

/** Waits, then answers with the default handler (or never, if the client gives up first). */
export interface StubDelay {
  delayMs: number;
}

/** Destroys the socket without a response, as a crashed or restarting server would. */
export interface StubReset {
  reset: true;
}

export type StubReply =
  | StubCompletion
  | StubHttpError
  | StubDelay
  | StubReset
  | ((body: ChatRequestBody) => StubReply | Promise<StubReply>);

export type StubHandler = (body: ChatRequestBody) => StubReply | Promise<StubReply>;

export interface OpenAIStub {
  /** Base URL including `/v1`, ready for `configuration.baseURL`. */
  url: string;
  /** JSON bodies of every chat completions request received, in order. */
  requests: ChatRequestBody[];
  /** JSON bodies of every embeddings request received, in order. */
  embeddingRequests: { model?: string; input?: unknown; encoding_format?: string }[];
  /** Queues replies for the next requests, one each; the default handler answers once empty. */
  enqueue(...replies: StubReply[]): void;
  /** Replaces the default handler used when the queue is empty. */
  setHandler(handler: StubHandler): void;
  close(): Promise<void>;
}

export const STUB_MODEL = "stub-model";

/** Which Refinery role sent a request, by its default system prompt ("unknown" otherwise). */
export function roleOf(body: ChatRequestBody): string {
  const system = String(body.messages?.[0]?.content ?? "");
  for (const role of ["generate", "critique", "revise", "judge"] as const) {
    if (system === DEFAULT_PROMPTS[role].system) return role;
  }
  return "unknown";
}

/** Answers with a short echo of the last user message. */
export const echoHandler: StubHandler = (body) => {
  const last = [...(body.messages ?? [])].reverse().find((m) => m.role === "user");
  return { content: `stub reply to: ${textOf(last?.content).slice(0, 200)}` };
};

export async function startOpenAIStub(script: readonly StubReply[] = []): Promise<OpenAIStub> {
  const queue: StubReply[] = [...script];
  const requests: ChatRequestBody[] = [];
  const embeddingRequests: OpenAIStub["embeddingRequests"] = [];
  let handler: StubHandler = echoHandler;

  const server = createServer((req, res) => {
    void route(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, errorBody(String(error), "server_error"));
      else res.destroy();
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://stub").pathname.replace(/\/+$/, "");
    if (req.method === "GET" && (path === "/v1/models" || path === "/models")) {
      sendJson(res, 200, {
        object: "list",
        data: [{ id: STUB_MODEL, object: "model", created: 0, owned_by: "openai-stub" }],
      });
      return;
    }
    if (req.method === "POST" && (path === "/v1/embeddings" || path === "/embeddings")) {
      const body = JSON.parse(await readBody(req)) as (typeof embeddingRequests)[number];
      embeddingRequests.push(body);
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      sendJson(res, 200, {
        object: "list",
        model: body.model,
        data: inputs.map((text, index) => {
          const vector = bagOfWordsVector(String(text));
          return {
            object: "embedding",
            index,
            embedding:
              body.encoding_format === "base64"
                ? Buffer.from(new Float32Array(vector).buffer).toString("base64")
                : vector,
          };
        }),
        usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
      });
      return;
    }
    if (
      req.method !== "POST" ||
      (path !== "/v1/chat/completions" && path !== "/chat/completions")
    ) {
      sendJson(res, 404, errorBody(`No route for ${req.method} ${path}`, "not_found"));
      return;
    }
    let body: ChatRequestBody;
    try {
      body = JSON.parse(await readBody(req)) as ChatRequestBody;
    } catch {
      sendJson(res, 400, errorBody("Request body is not valid JSON", "invalid_request_error"));
      return;
    }
    requests.push(body);
    let reply: StubReply = queue.shift() ?? handler;
    // Resolve functions and delays until a terminal reply remains.
    for (;;) {
      if (typeof reply === "function") {
        reply = await reply(body);
        continue;
      }
      if ("delayMs" in reply && reply.delayMs !== undefined && reply.delayMs > 0) {
        if (!(await wait(reply.delayMs, res))) return; // client went away
        if (!("content" in reply) && !("status" in reply)) {
          reply = handler;
          continue;
        }
      }
      break;
    }
    if ("reset" in reply) {
      req.socket.destroy();
    } else if ("status" in reply) {
      const payload =
        reply.body ?? errorBody(`stub error ${reply.status}`, errorType(reply.status));
      sendJson(res, reply.status, payload, reply.headers);
    } else if ("content" in reply) {
      sendCompletion(res, body, reply);
    } else {
      sendCompletion(res, body, { content: "" });
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    embeddingRequests,
    enqueue: (...replies) => void queue.push(...replies),
    setHandler: (next) => {
      handler = next;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function sendCompletion(res: ServerResponse, body: ChatRequestBody, reply: StubCompletion): void {
  const usage =
    reply.usage === null
      ? null
      : (reply.usage ?? estimateUsage(body, (reply.reasoning ?? "") + reply.content));
  const usageBody = usage
    ? { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens }
    : undefined;
  const id = `chatcmpl-stub-${Math.random().toString(36).slice(2, 10)}`;
  const created = Math.floor(Date.now() / 1000);
  const model = body.model ?? STUB_MODEL;
  if (!body.stream) {
    sendJson(res, 200, {
      id,
      object: "chat.completion",
      created,
      model,
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: reply.content,
            ...(reply.reasoning === undefined
              ? {}
              : { [reply.reasoningField ?? "reasoning_content"]: reply.reasoning }),
          },
          finish_reason: "stop",
          logprobs: null,
        },
      ],
      usage: usageBody,
    });
    return;
  }
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    res.write(
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices, ...extra })}\n\n`,
    );
  chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]);
  for (const piece of reply.reasoning?.match(/\S+\s*|\s+/g) ?? []) {
    const delta = { content: null, [reply.reasoningField ?? "reasoning_content"]: piece };
    chunk([{ index: 0, delta, finish_reason: null }]);
  }
  for (const piece of reply.content.match(/\S+\s*|\s+/g) ?? []) {
    chunk([{ index: 0, delta: { content: piece }, finish_reason: null }]);
  }
  chunk([{ index: 0, delta: {}, finish_reason: "stop" }]);
  if (body.stream_options?.include_usage && usageBody) chunk([], { usage: usageBody });
  res.end("data: [DONE]\n\n");
}

function sendJson(
  res: ServerResponse,
  status: number,
  payload: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof payload === "string" ? payload : JSON.stringify(payload);
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(text);
}

function errorBody(message: string, type: string): { error: Record<string, unknown> } {
  return { error: { message, type, param: null, code: null } };
}

function errorType(status: number): string {
  if (status === 401) return "invalid_api_key";
  if (status === 404) return "not_found";
  if (status === 429) return "rate_limit_exceeded";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** Rough token estimate (4 characters a token) so tests without explicit usage still see numbers. */
function estimateUsage(body: ChatRequestBody, content: string): StubUsage {
  const promptChars = (body.messages ?? []).reduce((n, m) => n + textOf(m.content).length, 0);
  return {
    prompt_tokens: Math.max(1, Math.ceil(promptChars / 4)),
    completion_tokens: Math.max(1, Math.ceil(content.length / 4)),
  };
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) =>
        typeof part === "object" && part !== null && "text" in part ? String(part.text) : "",
      )
      .join("");
  }
  return "";
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Resolves true after `ms`, or false as soon as the client closes the connection. */
function wait(ms: number, res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      res.off("close", onClose);
      resolve(true);
    }, ms);
    res.once("close", onClose);
  });
}

/**
 * A deterministic stand-in for an embedding: word counts hashed into 32 dimensions, so texts
 * sharing words are close in cosine similarity.
 */
export function bagOfWordsVector(text: string): number[] {
  const v = new Array<number>(32).fill(0);
  for (const word of text.toLowerCase().match(/[a-z]{3,}/g) ?? []) {
    let h = 0;
    for (const c of word) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    v[h % 32]! += 1;
  }
  return v;
}
