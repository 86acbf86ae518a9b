// After a model failure. A run that stopped because a model failed mid-run (`stopReason:
// "model_error"`, the best draft kept) reached the graph's end, so LangGraph alone would do
// nothing for a later run with `input: null`. Such a run continues instead: the failed step runs
// again, on the thread's state as the failure left it (drafts, critiques, verdicts and usage so
// far), with the stop cleared. A step that threw (a model failing before any draft exists) loses
// its writes, so the attempts it paid for are written to the state afterwards, leaving that step
// the next one to run.
import { Command } from "@langchain/langgraph";
import type { RunnableConfig } from "@langchain/core/runnables";
import { isModelCallError } from "../core/models/call.ts";
import { nodeUsage, type TokenUsage } from "../core/usage.ts";

interface ContinuableGraph {
  nodes?: Record<string, unknown>;
  getState(config: RunnableConfig): Promise<{ values: unknown; next: readonly string[] }>;
}

interface FailedStepGraph {
  getState(config: RunnableConfig): Promise<FailedState>;
  updateState(config: RunnableConfig, values: unknown, asNode?: string): Promise<unknown>;
  /** The StateGraph a compiled graph came from: its static edges and branches. */
  builder?: { edges?: Iterable<readonly [string, string]>; branches?: Record<string, unknown> };
}

interface FailedState {
  values: unknown;
  next: readonly string[];
  tasks: readonly { name: string; error?: unknown }[];
}

/**
 * When a run failed because a step's model call failed for good, adds what its attempts cost
 * (`ModelCallError.usage`, every attempt counted) to the thread's `usage`, as that step's share,
 * and keeps the step next, so a run with `input: null` retries it. Only for a step that routes
 * with `Command({goto})` alone (as every refine node does): writing as a node with static edges
 * would schedule its successors too. Returns whether the state was updated.
 */
export async function recordFailedAttempts(
  graph: FailedStepGraph,
  config: RunnableConfig,
  error: unknown,
  state?: FailedState,
): Promise<boolean> {
  const usage = failedUsage(error);
  if (!usage) return false;
  const snapshot = state ?? (await graph.getState(config));
  const failed = snapshot.tasks.filter((t) => t.error !== undefined && t.error !== null);
  const step = failed[0]?.name;
  if (failed.length !== 1 || step === undefined || snapshot.next.length !== 1) return false;
  if (snapshot.next[0] !== step) return false;
  const totals = (snapshot.values as { usage?: unknown } | null)?.usage;
  if (typeof totals !== "object" || totals === null || !("calls" in totals)) return false;
  const edges = [...(graph.builder?.edges ?? [])];
  if (edges.some(([from]) => from === step) || graph.builder?.branches?.[step]) return false;
  await graph.updateState(
    config,
    new Command({ update: { usage: nodeUsage(step, usage) }, goto: step }),
    step,
  );
  return true;
}

/** The usage a failed model call reported, found on the error or one of its causes. */
function failedUsage(error: unknown): TokenUsage | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 8 && typeof e === "object" && e !== null; depth++) {
    if (isModelCallError(e)) return e.usage.calls > 0 ? e.usage : undefined;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
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
