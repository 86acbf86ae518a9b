// A scripted chat model for graph tests: answers each role from its own queue (or a function),
// reports fixed usage, and records every prompt it received. Fakes the LLM's content only.
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import type { ModelRole, RefineryCallOptions } from "../../core/models/types.ts";
import type { ModelProvider } from "../../core/models/provider.ts";

export type ScriptReply =
  string | { text: string; promptTokens?: number; completionTokens?: number } | Error;
export type Script = Partial<
  Record<ModelRole, ScriptReply[] | ((messages: BaseMessage[], call: number) => ScriptReply)>
>;

export interface RecordedCall {
  role: ModelRole;
  messages: { type: string; content: string }[];
}

export class ScriptedChatModel extends BaseChatModel<RefineryCallOptions> {
  readonly calls: RecordedCall[] = [];
  private readonly counters = new Map<ModelRole, number>();

  constructor(
    private readonly script: Script,
    private readonly usage = { promptTokens: 10, completionTokens: 5 },
  ) {
    super({});
  }

  _llmType(): string {
    return "scripted";
  }

  async _generate(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
  ): Promise<ChatResult> {
    const role = options.refineryRole ?? "generate";
    const n = this.counters.get(role) ?? 0;
    this.counters.set(role, n + 1);
    this.calls.push({
      role,
      messages: messages.map((m) => ({ type: m.getType(), content: String(m.content) })),
    });
    const entry = this.script[role];
    let reply: ScriptReply | undefined;
    if (typeof entry === "function") reply = entry(messages, n);
    else if (entry) reply = entry[Math.min(n, entry.length - 1)];
    if (reply === undefined)
      throw new Error(`scripted model has no reply for role ${role} (call ${n + 1})`);
    if (reply instanceof Error) throw reply;
    const r = typeof reply === "string" ? { text: reply } : reply;
    const promptTokens = r.promptTokens ?? this.usage.promptTokens;
    const completionTokens = r.completionTokens ?? this.usage.completionTokens;
    const message = new AIMessage({
      content: r.text,
      usage_metadata: {
        input_tokens: promptTokens,
        output_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
    });
    return { generations: [{ text: r.text, message }] };
  }

  callsFor(role: ModelRole): RecordedCall[] {
    return this.calls.filter((c) => c.role === role);
  }
}

/** A provider that hands the same scripted model to every role. */
export function scriptedProvider(model: BaseChatModel): ModelProvider {
  return { offline: false, forRole: () => model };
}
