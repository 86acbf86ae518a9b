// The built-in `refine` graph: generate -> critique -> verify -> (stop | revise -> critique ...).
// Nodes record their decisions in state; the conditional edges are the pure `routeUnlessStopped`.
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { END, START, StateGraph } from "@langchain/langgraph";
import type { SettingsResolver } from "../core/settings.ts";
import { RefineState, type RefineStateType } from "../core/state.ts";
import { createCritiqueNode } from "../nodes/critique.ts";
import { createGenerateNode } from "../nodes/generate.ts";
import { createReviseNode } from "../nodes/revise.ts";
import { createVerifyNode } from "../nodes/verify.ts";

export const REFINE_NODES = ["generate", "critique", "verify", "revise"] as const;
export type RefineNode = (typeof REFINE_NODES)[number];

/** The conditional edge used after every node: END once a stop reason is recorded, else `next`. */
export function routeUnlessStopped<N extends string>(next: N) {
  return (state: Pick<RefineStateType, "stopReason">): N | typeof END =>
    state.stopReason ? END : next;
}

export interface RefineGraphDeps {
  settings: SettingsResolver;
}

export function buildRefineGraph({ settings }: RefineGraphDeps) {
  return new StateGraph(RefineState)
    .addNode("generate", createGenerateNode({ settings }))
    .addNode("critique", createCritiqueNode({ settings }))
    .addNode("verify", createVerifyNode({ settings }))
    .addNode("revise", createReviseNode({ settings }))
    .addEdge(START, "generate")
    .addConditionalEdges("generate", routeUnlessStopped("critique"), ["critique", END])
    .addConditionalEdges("critique", routeUnlessStopped("verify"), ["verify", END])
    .addConditionalEdges("verify", routeUnlessStopped("revise"), ["revise", END])
    .addConditionalEdges("revise", routeUnlessStopped("critique"), ["critique", END]);
}

export function createRefineGraph(deps: RefineGraphDeps & { checkpointer?: BaseCheckpointSaver }) {
  return buildRefineGraph(deps).compile({ checkpointer: deps.checkpointer, name: "refine" });
}
