// Shared model vocabulary: which role a call plays, and the call options Refinery adds.
import type { BaseChatModelCallOptions } from "@langchain/core/language_models/chat_models";

/** The part of the refinement loop a model call serves. The offline model uses it to pick a behaviour. */
export type ModelRole = "generate" | "critique" | "revise" | "judge";

export interface RefineryCallOptions extends BaseChatModelCallOptions {
  /** Which role this call plays; ignored by real endpoints, read by the simulated model. */
  refineryRole?: ModelRole;
}
