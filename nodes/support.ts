// What every node shares: the prompt variables built from state, message assembly, and the rule
// for a model that fails mid-run (keep the best-so-far and stop, rather than lose the run).
import { HumanMessage, SystemMessage, type BaseMessage } from "@langchain/core/messages";
import type { RunnableConfig } from "@langchain/core/runnables";
import { approvalReason, type ApprovalOptions } from "../core/approval.ts";
import { isRefineryError } from "../core/errors.ts";
import { renderTemplate, type PromptTemplate } from "../core/prompts.ts";
import {
  latestDraft,
  type Feedback,
  type RefineStateType,
  type RefineUpdate,
  type StopReason,
} from "../core/state.ts";
import { nodeUsage, ZERO_USAGE, type TokenUsage } from "../core/usage.ts";

export function promptVariables(state: RefineStateType): Record<string, string> {
  const feedback = state.feedback.filter((f) => f.text.trim() !== "");
  return {
    task: state.task,
    context_block: state.context ? `\nContext:\n${state.context}\n` : "",
    feedback_block: feedback.length
      ? `\nReviewer feedback (must be honoured):\n${feedback.map((f) => `- ${f.text}`).join("\n")}\n`
      : "",
  };
}

export function buildMessages(
  template: PromptTemplate,
  values: Record<string, string>,
): BaseMessage[] {
  return [
    new SystemMessage(renderTemplate(template.system, values)),
    new HumanMessage(renderTemplate(template.user, values)),
  ];
}

/** Custom stream events (stream_mode "custom") so clients see each step as it happens. */
export function emit(config: RunnableConfig, event: Record<string, unknown>): void {
  const writer = (config as { writer?: (chunk: unknown) => void }).writer;
  if (typeof writer === "function") writer(event);
}

export function usageOf(err: unknown): TokenUsage {
  const usage = (err as { usage?: TokenUsage } | undefined)?.usage;
  return usage ?? ZERO_USAGE;
}

/**
 * A model call failed after its retries. Before any draft exists there is nothing to keep, so
 * the error propagates and the run fails. Once a draft exists, the run stops with the
 * best-so-far answer and the error recorded (with the graph node that failed, where a run with
 * `input: null` continues: graphs/continue.ts), counting the tokens the failed attempts spent.
 */
export function stopOnModelFailure(
  err: unknown,
  node: string,
  state: RefineStateType,
  config?: RunnableConfig,
): RefineUpdate {
  const last = latestDraft(state);
  if (!isRefineryError(err) || !last) throw err;
  const usage = usageOf(err);
  const step: unknown = config?.metadata?.langgraph_node;
  return {
    error: {
      code: err.code,
      message: err.toLine(),
      node,
      iteration: state.iteration,
      ...(typeof step === "string" ? { step } : {}),
    },
    stopReason: "model_error",
    answer: state.best?.text ?? last.text,
    usage: nodeUsage(node, usage),
  };
}

/**
 * Routes a decided outcome through human approval when the run's approval options ask for it:
 * instead of stopping (or continuing), the loop goes to `approve` and remembers what it wanted.
 */
export function gateForApproval(
  state: RefineStateType,
  approval: ApprovalOptions | undefined,
  point: { iteration: number; hardPassed: number; hardTotal: number; score: number },
  outcome: RefineUpdate,
): RefineUpdate {
  const wanted = (outcome.stopReason ?? null) as StopReason | null;
  const decided = state.approvals.some((a) => a.iteration === point.iteration);
  const reason = approvalReason(approval, { ...point, stopReason: wanted, decided });
  if (!reason) return outcome;
  const { stopReason: _stop, route, answer: _answer, ...rest } = outcome;
  const next = (route ?? null) as "critique" | "verify" | "revise" | null;
  return {
    ...rest,
    route: "approve",
    pendingApproval: { reason, stop: wanted, route: next },
  };
}

/** Where live feedback waits until the next step of its thread takes it (see core/storage/feedback-inbox.ts). */
export interface FeedbackSource {
  take(threadId: string): Promise<Feedback[]>;
}

/**
 * Wraps a node so it first takes the thread's pending live feedback: the node sees it in its
 * prompt, and the update stores it in the thread's state (so it shows in the history).
 */
export function withLiveFeedback<S extends RefineStateType>(
  node: (state: S, config: RunnableConfig) => RefineUpdate | Promise<RefineUpdate>,
  inbox: FeedbackSource | undefined,
) {
  if (!inbox) return node;
  return async (state: S, config: RunnableConfig): Promise<RefineUpdate> => {
    const threadId = config.configurable?.thread_id;
    const incoming = typeof threadId === "string" ? await inbox.take(threadId) : [];
    if (incoming.length === 0) return node(state, config);
    const update = await node({ ...state, feedback: [...state.feedback, ...incoming] }, config);
    emit(config, { type: "feedback", node: "inbox", feedback: incoming });
    return { ...update, feedback: incoming };
  };
}
