// A run that stopped because a model failed mid-run (`stopReason: "model_error"`, the best draft
// kept) reached the graph's end, so LangGraph alone would do nothing for a later run with
// `input: null`. Such a run continues instead: the failed step runs again, on the thread's state
// as the failure left it (drafts, critiques, verdicts and usage so far), with the stop cleared.
import { Command } from "@langchain/langgraph";
import type { RunnableConfig } from "@langchain/core/runnables";

interface ContinuableGraph {
  nodes?: Record<string, unknown>;
  getState(config: RunnableConfig): Promise<{ values: unknown; next: readonly string[] }>;
}

/**
 * The input that continues a thread stopped by `model_error` at the step that failed, or
 * undefined when the thread is not in that state (then `null` means what it always meant).
 */
export async function continueAfterModelError(
  graph: ContinuableGraph,
  config: RunnableConfig,
): Promise<Command | undefined> {
  const state = await graph.getState(config);
  if (state.next.length > 0) return undefined;
  const values = state.values as {
    stopReason?: unknown;
    error?: { node?: unknown; step?: unknown } | null;
  } | null;
  if (values?.stopReason !== "model_error") return undefined;
  // `step` is the failed node's name in the graph (recorded since it existed); `node` its kind.
  const step = [values.error?.step, values.error?.node].find(
    (name): name is string => typeof name === "string" && Object.hasOwn(graph.nodes ?? {}, name),
  );
  if (step === undefined) return undefined;
  return new Command({ goto: step, update: { stopReason: null, error: null } });
}
