// The refinement state: one explicit schema with named reducers. Every node returns a partial
// update of this shape; LangGraph checkpoints it after every step.
import { Annotation } from "@langchain/langgraph";
import type { RefineOptions } from "./config.ts";
import type { Verdict } from "./verifiers/types.ts";
import {
  addNodeUsage,
  ZERO_TOTALS,
  type NodeUsage,
  type TokenUsage,
  type UsageTotals,
} from "./usage.ts";

export type DraftSource = "generate" | "revise" | "human";

export interface Draft {
  iteration: number;
  text: string;
  source: DraftSource;
  usage: TokenUsage;
  latencyMs: number;
  createdAt: string;
}

export interface Critique {
  iteration: number;
  /** "pass" when the critic found nothing to fix. */
  verdict: "pass" | "revise";
  /** The critic's 0..1 quality estimate, when it gave one. */
  score?: number;
  issues: string[];
  /** The critic's raw reply (kept for inspection; `issues` is what revise reads). */
  raw: string;
  usage: TokenUsage;
  latencyMs: number;
}

export interface BestDraft {
  iteration: number;
  text: string;
  hardPassed: number;
  hardTotal: number;
  score: number;
}

export type StopReason =
  | "accepted"
  | "single_pass"
  | "max_iterations"
  | "token_budget"
  | "unchanged"
  | "model_error"
  | "approved"
  | "aborted";

export interface Feedback {
  text: string;
  source: "human" | "system";
  at: string;
}

export type Strategy = "vanilla" | "self-refine" | "proactive" | "pasr";

/** Every refinement taken or skipped, with its reason (the proactive strategy's audit trail). */
export interface StepRecord {
  iteration: number;
  node: string;
  action: "critique" | "skip_critique" | "localize" | "revise" | "stop" | "fallback";
  reason: string;
}

/** A `<refine>` segment of a PASR-format generation. */
export interface Refinement {
  iteration: number;
  index: number;
  text: string;
  /**
   * Where its `<refine>` tag starts and just past its `</refine>`, in the positions of the
   * generation's trace (`PasrTrace.positions`). Absent in states stored before they were kept.
   */
  offset?: number;
  end?: number;
}

/** A range of a generation, `start` included, `end` excluded (UTF-16 code units). */
export interface TextSpan {
  start: number;
  end: number;
}

/**
 * A PASR-format generation kept whole: the think text, each refine segment and the answer with
 * their positions, how the output was read, and whether the run fell back to proactive.
 */
export interface PasrTrace {
  /**
   * Where the think block came from: its own `<think>` tag in the content, a `<think>` the chat
   * template opened before the content (the output has only `</think>`), the endpoint's separate
   * reasoning field (`reasoning_content`), or nowhere (no think block).
   */
  thinkSource: "tag" | "template" | "reasoning_field" | "none";
  /**
   * What positions count in: the content, or the reasoning field's text followed directly by the
   * content (a position at or past `reasoningLength` is in the content).
   */
  positions: "content" | "reasoning+content";
  reasoningLength?: number;
  /** The trimmed think text, `<refine>` markup kept verbatim. */
  think: string | null;
  thinkSpan: TextSpan | null;
  refinements: { index: number; text: string; start: number; end: number }[];
  answer: string | null;
  answerSpan: TextSpan | null;
  /** Well-formed: an answer and no format errors. */
  ok: boolean;
  errors: string[];
  warnings: string[];
  /** The output was malformed and the run went on with the proactive strategy. */
  fallback: boolean;
}

/** Why the loop waits for a reviewer, and what it would do without one. */
export interface PendingApproval {
  reason: string;
  /** The stop the loop wanted, or null when it wanted to go on. */
  stop: StopReason | null;
  /** Where the loop would have gone next, when it wanted to go on. */
  route: "critique" | "verify" | "revise" | null;
}

/** A reviewer's decision, kept in the iteration history. */
export interface ApprovalRecord {
  iteration: number;
  action: "approve" | "reject" | "edit" | "abort" | "expired";
  reason: string;
  feedback?: string;
  at: string;
}

/** A lesson from earlier runs that the generate prompt carried (see core/memory). */
export interface UsedLesson {
  id: string;
  text: string;
  score: number;
  /** Terms of the tasks it was learned on, shown with it so it is applied with judgement. */
  about?: string;
}

export interface RunError {
  code: string;
  message: string;
  node: string;
  iteration: number;
  /**
   * The graph node that failed (its name in the graph, which in a declarative graph may differ
   * from `node`): a run with `input: null` on the thread continues there.
   */
  step?: string;
}

/** Named reducers, so each field's merge rule is stated once and testable. */
export const reducers = {
  append: <T>(left: T[], right: T | T[] | undefined): T[] =>
    right === undefined ? left : left.concat(right),
  sumUsage: (left: UsageTotals, right: NodeUsage | undefined): UsageTotals =>
    addNodeUsage(left, right),
  last: <T>(left: T, right: T | undefined): T => (right === undefined ? left : right),
};

export const RefineState = Annotation.Root({
  task: Annotation<string>({ reducer: reducers.last, default: () => "" }),
  context: Annotation<string>({ reducer: reducers.last, default: () => "" }),
  /** Refine options given with the input; stored so a resumed run keeps its verifiers and limits. */
  options: Annotation<RefineOptions | null>({ reducer: reducers.last, default: () => null }),
  /** Feedback from people (or the system) that the next critique and revise must take into account. */
  feedback: Annotation<Feedback[], Feedback | Feedback[]>({
    reducer: reducers.append,
    default: () => [],
  }),
  drafts: Annotation<Draft[], Draft | Draft[]>({ reducer: reducers.append, default: () => [] }),
  critiques: Annotation<Critique[], Critique | Critique[]>({
    reducer: reducers.append,
    default: () => [],
  }),
  verdicts: Annotation<Verdict[], Verdict | Verdict[]>({
    reducer: reducers.append,
    default: () => [],
  }),
  best: Annotation<BestDraft | null>({ reducer: reducers.last, default: () => null }),
  iteration: Annotation<number>({ reducer: reducers.last, default: () => 0 }),
  /**
   * Tokens of every model call (failed attempts included) and each node's share in `byNode`.
   * A node writes its own spend, `nodeUsage(node, usage)`; read the split with `usageByNodeOf`.
   */
  usage: Annotation<UsageTotals, NodeUsage>({
    reducer: reducers.sumUsage,
    default: () => ZERO_TOTALS,
  }),
  stopReason: Annotation<StopReason | null>({ reducer: reducers.last, default: () => null }),
  /** Where the loop goes next; recorded by the node that decided it, read by the edges. */
  route: Annotation<"critique" | "verify" | "revise" | "approve" | null>({
    reducer: reducers.last,
    default: () => null,
  }),
  /** The strategy in effect (pasr falls back to proactive on malformed output). */
  strategy: Annotation<Strategy | null>({ reducer: reducers.last, default: () => null }),
  /** Set while a reviewer decides (one channel: the three fields are written and cleared together). */
  pendingApproval: Annotation<PendingApproval | null>({
    reducer: reducers.last,
    default: () => null,
  }),
  approvals: Annotation<ApprovalRecord[], ApprovalRecord | ApprovalRecord[]>({
    reducer: reducers.append,
    default: () => [],
  }),
  decisions: Annotation<StepRecord[], StepRecord | StepRecord[]>({
    reducer: reducers.append,
    default: () => [],
  }),
  refinements: Annotation<Refinement[], Refinement | Refinement[]>({
    reducer: reducers.append,
    default: () => [],
  }),
  /** The newest PASR-format generation, kept whole (null for other strategies). */
  pasr: Annotation<PasrTrace | null>({ reducer: reducers.last, default: () => null }),
  /** Lessons from the memory that generate put in its prompt (absent when none were used). */
  lessons: Annotation<UsedLesson[]>({ reducer: reducers.last, default: () => [] }),
  /** The final answer: the best-so-far draft once the run stops. */
  answer: Annotation<string | null>({ reducer: reducers.last, default: () => null }),
  error: Annotation<RunError | null>({ reducer: reducers.last, default: () => null }),
  /** True when any output in this run came from the offline simulated model. */
  simulated: Annotation<boolean>({ reducer: (l, r) => l || Boolean(r), default: () => false }),
});

export type RefineStateType = typeof RefineState.State;
export type RefineUpdate = typeof RefineState.Update;

/** Tokens spent per node (generate, critique, verify, revise, custom nodes), summing to `usage`. */
export function usageByNodeOf(state: {
  usage?: Partial<UsageTotals> | null;
}): Record<string, TokenUsage> {
  return state.usage?.byNode ?? {};
}

/** The newest draft, or undefined before `generate` ran. */
export function latestDraft(state: Pick<RefineStateType, "drafts">): Draft | undefined {
  return state.drafts[state.drafts.length - 1];
}

/**
 * Reasoning behind a draft that is kept apart from it: the think block of the PASR generation
 * the draft's answer was parsed from (none after a fallback, or for revised drafts).
 */
export function reasoningBehind(
  state: Pick<RefineStateType, "pasr">,
  draft: Pick<Draft, "source">,
): string | undefined {
  const trace = state.pasr;
  return draft.source === "generate" && trace && !trace.fallback && trace.think
    ? trace.think
    : undefined;
}

export function critiqueFor(
  state: Pick<RefineStateType, "critiques">,
  iteration: number,
): Critique | undefined {
  for (let i = state.critiques.length - 1; i >= 0; i--) {
    const c = state.critiques[i];
    if (c && c.iteration === iteration) return c;
  }
  return undefined;
}

export function verdictsFor(
  state: Pick<RefineStateType, "verdicts">,
  iteration: number,
): Verdict[] {
  return state.verdicts.filter((v) => v.iteration === iteration);
}
