// Builds the real chat model: ChatOpenAI against any OpenAI-compatible endpoint. Retries are off
// here because callModel (call.ts) retries itself and counts every attempt's usage.
import { ChatOpenAI } from "@langchain/openai";

export interface OpenAIModelOptions {
  apiKey: string;
  /** Base URL of an OpenAI-compatible API, including `/v1`; the OpenAI API when omitted. */
  baseURL?: string;
  model: string;
  temperature?: number;
  /** Per-attempt timeout; a timed-out attempt is retried by callModel. */
  timeoutMs?: number;
  maxTokens?: number;
}

export function createOpenAIModel(opts: OpenAIModelOptions): ChatOpenAI {
  return new ChatOpenAI({
    apiKey: opts.apiKey,
    model: opts.model,
    temperature: opts.temperature,
    maxTokens: opts.maxTokens,
    timeout: opts.timeoutMs,
    // Neither LangChain's caller nor the openai SDK may retry behind our back: uncounted attempts.
    maxRetries: 0,
    // Streamed calls (LangGraph's `messages` stream mode) only report usage when asked to.
    streamUsage: true,
    configuration: { baseURL: opts.baseURL },
  });
}
