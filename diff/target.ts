// One server under test in the differential harness: raw HTTP and the official SDK, every
// answer recorded as a step (status, headers clients read, body or SSE events, and for SDK
// calls the requests the SDK made).
import { Client, overrideFetchImplementation } from "@langchain/langgraph-sdk";
import { parseSse, type SseEvent } from "./normalize.ts";

/** Response headers a client reads (the SDK, useStream, browser apps through CORS). */
export const CLIENT_HEADERS = [
  "content-type",
  "x-pagination-total",
  "x-pagination-next",
  "location",
  "content-location",
  "access-control-expose-headers",
  "access-control-allow-origin",
];

/** A parsed JSON body, read loosely by the corpus (ids, checkpoints) to build its next request. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface Step {
  label: string;
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  events?: SseEvent[];
  /** SDK steps: the result, or the error's status. */
  result?: unknown;
  error?: { status?: number };
  /** The body is a list compared without its order. */
  unordered?: boolean;
  /** SDK steps: `METHOD /path` of every request the SDK made. */
  requests?: string[];
}

const requestLog = new Map<string, string[]>();
const realFetch = globalThis.fetch;
overrideFetchImplementation(((input: string | URL | Request, init?: RequestInit) => {
  const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
  const method = init?.method ?? (input instanceof Request ? input.method : "GET");
  requestLog.get(url.origin)?.push(`${method.toUpperCase()} ${url.pathname}${url.search}`);
  return realFetch(input, init);
}) as typeof fetch);

export class Target {
  readonly client: Client;
  steps: Step[] = [];

  constructor(
    readonly name: "ours" | "reference",
    readonly url: string,
  ) {
    this.client = new Client({ apiUrl: url, callerOptions: { maxRetries: 0 } });
    requestLog.set(new URL(url).origin, []);
  }

  /** A raw request; JSON bodies and SSE streams are read whole. */
  async http(
    label: string,
    method: string,
    path: string,
    body?: unknown,
    options: {
      headers?: Record<string, string>;
      /** A list whose order is unspecified (search without sort_by: ties on created_at). */
      unordered?: boolean;
    } = {},
  ): Promise<Step & { json: Json }> {
    const headers = options.headers ?? {};
    const res = await realFetch(`${this.url}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      redirect: "manual",
      signal: AbortSignal.timeout(30_000),
    });
    const picked: Record<string, string> = {};
    // CORS headers only matter to a browser, which sends Origin.
    const browser = Object.keys(headers).some((h) => h.toLowerCase() === "origin");
    for (const h of CLIENT_HEADERS) {
      if (h.startsWith("access-control-") && !browser) continue;
      const v = res.headers.get(h);
      if (v !== null) picked[h] = h === "content-type" ? v.split(";")[0]!.trim() : v;
    }
    const text = await res.text();
    const step: Step = { label, status: res.status, headers: picked, unordered: options.unordered };
    let json: Json = undefined;
    if (picked["content-type"] === "text/event-stream") step.events = parseSse(text);
    else if (text !== "") {
      try {
        json = JSON.parse(text);
        step.body = json;
      } catch {
        step.body = text;
      }
    }
    this.steps.push(step);
    return { ...step, json };
  }

  /** An SDK call: its result (or error status) and the requests it made. */
  async sdk<T>(label: string, call: (client: Client) => Promise<T>): Promise<T | undefined> {
    const log = requestLog.get(new URL(this.url).origin)!;
    log.length = 0;
    const step: Step = { label };
    let result: T | undefined;
    try {
      result = await call(this.client);
      step.result = result;
    } catch (error) {
      step.error = { status: (error as { status?: number }).status };
    }
    step.requests = [...log];
    this.steps.push(step);
    return result;
  }

  /** Every chunk of an SDK stream, as the SDK yields it. */
  async sdkStream(
    label: string,
    open: (client: Client) => AsyncIterable<{ event: string; data: unknown }>,
  ): Promise<SseEvent[]> {
    const events: SseEvent[] = [];
    await this.sdk(label, async (client) => {
      for await (const chunk of open(client)) events.push({ event: chunk.event, data: chunk.data });
      return events;
    });
    return events;
  }
}
