// The built-in `refine` graph. Which node follows which depends on the strategy:
//   self-refine: generate -> critique -> verify -> revise -> critique ... (critique every round)
//   proactive:   generate -> verify -> [critique only when doubtful] -> revise (targeted) -> verify ...
//   vanilla:     generate -> verify -> END
//   pasr:        generate (in-generation refinement, parsed while streaming) -> verify -> proactive loop
// Nodes record where to go next (`route`) or why to stop (`stopReason`); the one edge function
// only reads that.
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { END, START, StateGraph } from "@langchain/langgraph";
import type { SettingsResolver } from "../core/settings.ts";
import { RefineState, type RefineStateType } from "../core/state.ts";
import { createApproveNode } from "../nodes/approve.ts";
import { createCritiqueNode } from "../nodes/critique.ts";
import { createGenerateNode } from "../nodes/generate.ts";
import { createReviseNode } from "../nodes/revise.ts";
import { withLiveFeedback, type FeedbackSource } from "../nodes/support.ts";
import { createVerifyNode } from "../nodes/verify.ts";

export const REFINE_NODES = ["generate", "critique", "verify", "revise", "approve"] as const;
export type RefineNode = (typeof REFINE_NODES)[number];

/** Self-refine's fixed order; its nodes write no `route` (each write costs a checkpoint row). */
const SELF_REFINE_NEXT: Record<Exclude<RefineNode, "approve">, RefineNode> = {
  generate: "critique",
  critique: "verify",
  verify: "revise",
  revise: "critique",
};

/**
 * The conditional edge after every node: END once a stop reason is recorded; the approve node when
 * a node asked for a reviewer; under self-refine the fixed order; otherwise the recorded route.
 */
export function routeNext(node: RefineNode, fallback: RefineNode) {
  return (
    state: Pick<RefineStateType, "stopReason" | "route" | "strategy">,
  ): RefineNode | typeof END => {
    if (state.stopReason) return END;
    if (node === "approve") return state.route ?? fallback;
    if (state.route === "approve") return "approve";
    if ((state.strategy ?? "self-refine") === "self-refine") return SELF_REFINE_NEXT[node];
    return state.route ?? fallback;
  };
}

export interface RefineGraphDeps {
  settings: SettingsResolver;
  /** Live feedback sent while a thread runs or waits (the server provides it). */
  inbox?: FeedbackSource;
}

export function buildRefineGraph({ settings, inbox }: RefineGraphDeps) {
  return new StateGraph(RefineState)
    .addNode("generate", withLiveFeedback(createGenerateNode({ settings }), inbox))
    .addNode("critique", withLiveFeedback(createCritiqueNode({ settings }), inbox))
    .addNode("verify", createVerifyNode({ settings }))
    .addNode("revise", withLiveFeedback(createReviseNode({ settings }), inbox))
    .addNode("approve", createApproveNode({ settings }))
    .addEdge(START, "generate")
    .addConditionalEdges("generate", routeNext("generate", "critique"), ["critique", "verify", END])
    .addConditionalEdges("critique", routeNext("critique", "verify"), [
      "verify",
      "revise",
      "approve",
      END,
    ])
    .addConditionalEdges("verify", routeNext("verify", "revise"), [
      "critique",
      "revise",
      "approve",
      END,
    ])
    .addConditionalEdges("revise", routeNext("revise", "critique"), [
      "critique",
      "verify",
      "approve",
      END,
    ])
    .addConditionalEdges("approve", routeNext("approve", "revise"), ["revise", "verify", END]);
}

export function createRefineGraph(deps: RefineGraphDeps & { checkpointer?: BaseCheckpointSaver }) {
  return buildRefineGraph(deps).compile({ checkpointer: deps.checkpointer, name: "refine" });
}
