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

/** The conditional edge after every node: END once a stop reason is recorded, else the recorded route. */
export function routeNext(fallback: RefineNode) {
  return (state: Pick<RefineStateType, "stopReason" | "route">): RefineNode | typeof END =>
    state.stopReason ? END : (state.route ?? fallback);
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
    .addConditionalEdges("generate", routeNext("critique"), ["critique", "verify", END])
    .addConditionalEdges("critique", routeNext("verify"), ["verify", "revise", "approve", END])
    .addConditionalEdges("verify", routeNext("revise"), ["critique", "revise", "approve", END])
    .addConditionalEdges("revise", routeNext("critique"), ["critique", "verify", "approve", END])
    .addConditionalEdges("approve", routeNext("revise"), ["revise", "verify", END]);
}

export function createRefineGraph(deps: RefineGraphDeps & { checkpointer?: BaseCheckpointSaver }) {
  return buildRefineGraph(deps).compile({ checkpointer: deps.checkpointer, name: "refine" });
}
