// Token usage arithmetic. Every model call's usage (retries and failed attempts included)
// is folded into the run's totals with `addUsage`.

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Number of model calls, counting every attempt (retries included). */
  calls: number;
  /**
   * How many of `totalTokens` Refinery counted itself with a tokenizer (cl100k_base) because the
   * endpoint reported no usage for the call; absent when every figure came from the endpoint.
   */
  estimatedTokens?: number;
}

export const ZERO_USAGE: TokenUsage = Object.freeze({
  promptTokens: 0,
  completionTokens: 0,
  totalTokens: 0,
  calls: 0,
});

export function addUsage(a: TokenUsage, b: Partial<TokenUsage> | undefined): TokenUsage {
  if (!b) return a;
  const sum: TokenUsage = {
    promptTokens: a.promptTokens + (b.promptTokens ?? 0),
    completionTokens: a.completionTokens + (b.completionTokens ?? 0),
    totalTokens: a.totalTokens + (b.totalTokens ?? 0),
    calls: a.calls + (b.calls ?? 0),
  };
  // Only present when some tokens were counted here, so reported usage keeps its shape.
  const estimated = (a.estimatedTokens ?? 0) + (b.estimatedTokens ?? 0);
  if (estimated > 0) sum.estimatedTokens = estimated;
  return sum;
}

/** Reads LangChain's `usage_metadata` (input/output/total tokens) into our shape, as one call. */
export function usageFromMetadata(
  meta: { input_tokens?: number; output_tokens?: number; total_tokens?: number } | undefined,
): TokenUsage {
  const promptTokens = meta?.input_tokens ?? 0;
  const completionTokens = meta?.output_tokens ?? 0;
  return {
    promptTokens,
    completionTokens,
    totalTokens: meta?.total_tokens ?? promptTokens + completionTokens,
    calls: 1,
  };
}

/** One node's spend, as a node writes it to the state's `usage` channel. */
export interface NodeUsage extends TokenUsage {
  node: string;
}

/**
 * The run's token totals and each node's share, kept in one state channel (one write per model
 * call instead of two). `byNode` sums to the totals.
 */
export interface UsageTotals extends TokenUsage {
  byNode: Record<string, TokenUsage>;
}

export const ZERO_TOTALS: UsageTotals = Object.freeze({ ...ZERO_USAGE, byNode: Object.freeze({}) });

export function nodeUsage(node: string, usage: TokenUsage): NodeUsage {
  return { node, ...usage };
}

/** Folds one node's spend into the totals and that node's share. */
export function addNodeUsage(totals: UsageTotals, spent: NodeUsage | undefined): UsageTotals {
  if (!spent) return totals;
  const { node, ...usage } = spent;
  // Checkpoints written before `byNode` existed hold the totals alone.
  const byNode = totals.byNode ?? {};
  if (typeof node !== "string") return { ...addUsage(totals, usage), byNode };
  return {
    ...addUsage(totals, usage),
    byNode: { ...byNode, [node]: addUsage(byNode[node] ?? ZERO_USAGE, usage) },
  };
}

/** The totals without the per-node split (what approval requests and summaries show). */
export function totalsOnly(usage: TokenUsage): TokenUsage {
  const { promptTokens, completionTokens, totalTokens, calls, estimatedTokens } = usage;
  return {
    promptTokens,
    completionTokens,
    totalTokens,
    calls,
    ...(estimatedTokens ? { estimatedTokens } : {}),
  };
}
