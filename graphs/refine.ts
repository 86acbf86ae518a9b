// The built-in `refine` graph. Which node follows which depends on the strategy:
//   self-refine: generate -> critique -> verify -> revise -> critique ... (critique every round)
//   proactive:   generate -> verify -> [critique only when doubtful] -> revise (targeted) -> verify ...
//   vanilla:     generate -> verify -> END
//   pasr:        generate (in-generation refinement, parsed while streaming) -> verify -> proactive loop
// Nodes record where to go next (`route`) or why to stop (`stopReason`); `routeNext` reads that
// and each node's wrapper sends the loop there with `Command({ goto })`.
import type { RunnableConfig } from "@langchain/core/runnables";
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { Command, END, START, StateGraph } from "@langchain/langgraph";
import type { SettingsResolver } from "../core/settings.ts";
import { RefineState, type RefineStateType, type RefineUpdate } from "../core/state.ts";
import { createApproveNode } from "../nodes/approve.ts";
import { createCritiqueNode } from "../nodes/critique.ts";
import { createGenerateNode, type LessonSource } from "../nodes/generate.ts";
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
 * Where the loop goes after a node: END once a stop reason is recorded; the approve node when a
 * node asked for a reviewer; under self-refine the fixed order; otherwise the recorded route.
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
  /** Lessons from earlier runs for generate's prompt (the lessons memory). */
  lessons?: LessonSource;
}

type NodeFn = (
  state: RefineStateType,
  config: RunnableConfig,
) => RefineUpdate | Promise<RefineUpdate>;

/**
 * Runs a node and sends the loop on with `Command({ goto })`, choosing the target with
 * `routeNext` over the state as the node's update leaves it. A conditional edge would do the
 * same, but LangGraph gives an edge function a fresh copy of the whole state after every step,
 * which costs more than the step's own writes.
 */
function routed(name: RefineNode, fallback: RefineNode, node: NodeFn) {
  const next = routeNext(name, fallback);
  return async (state: RefineStateType, config: RunnableConfig) => {
    const update = await node(state, config);
    const goto = next({
      stopReason: after(state, update, "stopReason"),
      route: after(state, update, "route"),
      strategy: after(state, update, "strategy"),
    });
    return new Command({ update, goto });
  };
}

/** A `reducers.last` channel's value once `update` is applied (`undefined` leaves it as it was). */
function after<K extends "stopReason" | "route" | "strategy">(
  state: RefineStateType,
  update: RefineUpdate,
  key: K,
): RefineStateType[K] {
  const value = update[key];
  // Nodes never write these three with `Overwrite`; a plain value replaces the old one.
  return value === undefined ? state[key] : (value as RefineStateType[K]);
}

export function buildRefineGraph({ settings, inbox, lessons }: RefineGraphDeps) {
  const live = (node: NodeFn) => withLiveFeedback(node, inbox);
  return new StateGraph(RefineState)
    .addNode(
      "generate",
      routed("generate", "critique", live(createGenerateNode({ settings, lessons }))),
      {
        ends: ["critique", "verify", END],
      },
    )
    .addNode("critique", routed("critique", "verify", live(createCritiqueNode({ settings }))), {
      ends: ["verify", "revise", "approve", END],
    })
    .addNode("verify", routed("verify", "revise", createVerifyNode({ settings })), {
      ends: ["critique", "revise", "approve", END],
    })
    .addNode("revise", routed("revise", "critique", live(createReviseNode({ settings }))), {
      ends: ["critique", "verify", "approve", END],
    })
    .addNode("approve", routed("approve", "revise", createApproveNode({ settings })), {
      ends: ["revise", "verify", END],
    })
    .addEdge(START, "generate");
}

export function createRefineGraph(deps: RefineGraphDeps & { checkpointer?: BaseCheckpointSaver }) {
  return buildRefineGraph(deps).compile({ checkpointer: deps.checkpointer, name: "refine" });
}
