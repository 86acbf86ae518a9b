// Token usage arithmetic. Every model call's usage (retries and failed attempts included)
// is folded into the run's totals with `addUsage`.

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Number of model calls, counting every attempt (retries included). */
  calls: number;
}

export const ZERO_USAGE: TokenUsage = Object.freeze({
  promptTokens: 0,
  completionTokens: 0,
  totalTokens: 0,
  calls: 0,
});

export function addUsage(a: TokenUsage, b: Partial<TokenUsage> | undefined): TokenUsage {
  if (!b) return a;
  return {
    promptTokens: a.promptTokens + (b.promptTokens ?? 0),
    completionTokens: a.completionTokens + (b.completionTokens ?? 0),
    totalTokens: a.totalTokens + (b.totalTokens ?? 0),
    calls: a.calls + (b.calls ?? 0),
  };
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
