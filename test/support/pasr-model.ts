// A scripted PASR-trained chat model for tests of the `pasr` strategy: replies with fixed
// `<think>…<refine>…</refine>…</think><answer>…</answer>` text, streamed in small fixed-size
// chunks so tags split across chunk boundaries, as they do with real token streams.
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { CallbackManagerForLLMRun } from "@langchain/core/callbacks/manager";
import { AIMessage, AIMessageChunk } from "@langchain/core/messages";
import type { BaseMessage, UsageMetadata } from "@langchain/core/messages";
import { ChatGenerationChunk } from "@langchain/core/outputs";
import type { ChatResult } from "@langchain/core/outputs";
import type { RefineryCallOptions } from "../../core/models/types.ts";

/** The reply, or a function of the prompt (and of how many calls came before) giving it. */
export type PasrReply = string | ((messages: BaseMessage[], call: number) => string);

export interface PasrModelOptions {
  /** Characters per streamed chunk. Default 7: small and odd, so most tags get split. */
  chunkSize?: number;
  /** Fixed usage to report; by default about one token per 4 characters of prompt and reply. */
  usage?: { inputTokens: number; outputTokens: number };
}

export interface PasrModelCall {
  messages: { type: string; content: string }[];
  streamed: boolean;
}

export class PasrChatModel extends BaseChatModel<RefineryCallOptions> {
  readonly calls: PasrModelCall[] = [];
  private readonly chunkSize: number;

  constructor(
    private readonly reply: PasrReply,
    private readonly options: PasrModelOptions = {},
  ) {
    super({});
    this.chunkSize = Math.max(1, options.chunkSize ?? 7);
  }

  _llmType(): string {
    return "pasr-scripted";
  }

  async _generate(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
  ): Promise<ChatResult> {
    options.signal?.throwIfAborted();
    const text = this.respond(messages, false);
    const usage = this.usageFor(messages, text);
    const message = new AIMessage({ content: text, usage_metadata: usage });
    return { generations: [{ text, message }] };
  }

  override async *_streamResponseChunks(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatGenerationChunk> {
    options.signal?.throwIfAborted();
    const text = this.respond(messages, true);
    const usage = this.usageFor(messages, text);
    const pieces = splitFixed(text, this.chunkSize);
    for (let i = 0; i < pieces.length; i++) {
      // Lets a consumer abort mid-stream, as it would against a real endpoint.
      await Promise.resolve();
      options.signal?.throwIfAborted();
      const piece = pieces[i] ?? "";
      // Usage rides on the last chunk only: merging chunks sums the numbers.
      const last = i === pieces.length - 1;
      const chunk = new ChatGenerationChunk({
        text: piece,
        message: new AIMessageChunk({
          content: piece,
          ...(last ? { usage_metadata: usage } : {}),
        }),
      });
      yield chunk;
      await runManager?.handleLLMNewToken(piece, undefined, undefined, undefined, undefined, {
        chunk,
      });
    }
  }

  private respond(messages: BaseMessage[], streamed: boolean): string {
    const n = this.calls.length;
    this.calls.push({
      messages: messages.map((m) => ({ type: m.getType(), content: textOf(m) })),
      streamed,
    });
    return typeof this.reply === "function" ? this.reply(messages, n) : this.reply;
  }

  private usageFor(messages: BaseMessage[], text: string): UsageMetadata {
    const fixed = this.options.usage;
    const input =
      fixed?.inputTokens ?? Math.ceil(messages.reduce((n, m) => n + textOf(m).length, 0) / 4);
    const output = fixed?.outputTokens ?? Math.ceil(text.length / 4);
    return { input_tokens: input, output_tokens: output, total_tokens: input + output };
  }
}

/** Builds a well-formed PASR reply, so tests state intent instead of hand-writing tags. */
export function pasrReply(parts: { think?: string; refines?: string[]; answer: string }): string {
  const refines = (parts.refines ?? []).map((r) => `<refine>${r}</refine>\nContinuing.\n`);
  return `<think>${parts.think ?? "Let me work through this."}\n${refines.join("")}</think>\n<answer>${parts.answer}</answer>`;
}

function textOf(m: BaseMessage): string {
  return typeof m.content === "string" ? m.content : JSON.stringify(m.content);
}

function splitFixed(text: string, size: number): string[] {
  if (text.length === 0) return [""];
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}
