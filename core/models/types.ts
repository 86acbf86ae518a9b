// Shared model vocabulary: which role a call plays, and the call options Refinery adds.
import type { BaseChatModelCallOptions } from "@langchain/core/language_models/chat_models";
import type { BaseMessage } from "@langchain/core/messages";
import type { TokenUsage } from "../usage.ts";

/** The part of the refinement loop a model call serves. The offline model uses it to pick a behaviour. */
export type ModelRole = "generate" | "critique" | "revise" | "judge";

export interface RefineryCallOptions extends BaseChatModelCallOptions {
  /** Which role this call plays; ignored by real endpoints, read by the simulated model. */
  refineryRole?: ModelRole;
}

/**
 * A model bound to its retry policy, as verifiers see it: messages in, text and the usage of
 * every attempt out. Built by `bindModel` (core/models/call.ts) from a BaseChatModel.
 */
export type ModelInvoker = (
  messages: BaseMessage[],
  options: { role: ModelRole; signal?: AbortSignal },
) => Promise<{ text: string; usage: TokenUsage }>;
