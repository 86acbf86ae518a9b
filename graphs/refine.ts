// The built-in `refine` graph. Which node follows which depends on the strategy:
//   self-refine: generate -> critique -> verify -> revise -> critique ... (critique every round)
//   proactive:   generate -> verify -> [critique only when doubtful] -> revise (targeted) -> verify ...
//   vanilla:     generate -> verify -> END
//   pasr:        generate (in-generation refinement, parsed while streaming) -> verify -> proactive loop
// Nodes record where to go next (`route`) or why to stop (`stopReason`); `routeNext` reads that
// and each node's wrapper sends the loop there with `Command({ goto })`. A state update made as a
// node (`updateState(config, values, asNode)`, time travel) routes with `routeNext` too, over the
// state as the update leaves it, as a conditional edge would (`routeStateUpdates`).
import type { RunnableConfig } from "@langchain/core/runnables";
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { Command, END, isCommand, START, StateGraph } from "@langchain/langgraph";
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

/** The node each wrapper falls back to when no route is recorded (see `buildRefineGraph`). */
const FALLBACK: Record<RefineNode, RefineNode> = {
  generate: "critique",
  critique: "verify",
  verify: "revise",
  revise: "critique",
  approve: "revise",
};

// Pregel's per-task config keys: read the channels (fresh: with the task's own writes applied) and
// send writes. `updateState` sets both for the writers it runs, as a run does for a node.
const CONFIG_KEY_READ = "__pregel_read";
const CONFIG_KEY_SEND = "__pregel_send";
const ROUTING_CHANNELS = ["stopReason", "route", "strategy"] as const;

type Writer = { name?: string; func?: (input: unknown, config: RunnableConfig) => unknown };
type CompiledNodes = Record<string, { writers: Writer[] } | undefined>;

/**
 * Makes a state update made as a node route like the node's run would. LangGraph computes `next`
 * after `updateState(values, asNode)` by running the node's writers over `values`: a conditional
 * edge reads the state and routes, but the `Command` control branch that our wrappers use sees no
 * `Command` and routes nowhere, so `next` was empty and continuing did nothing.
 *
 * Each node's control branch (the writer LangGraph attaches for `Command({ goto })`) keeps its
 * job when the node's output is a `Command` (every run, at the cost of one `isCommand` check);
 * otherwise (an update as that node) it reads the three routing channels as the update leaves
 * them and triggers the node `routeNext` picks, or none at END. Fails at build time when
 * LangGraph's node layout is not the one this relies on.
 */
export function routeStateUpdates<G extends { nodes: unknown }>(compiled: G): G {
  const nodes = compiled.nodes as CompiledNodes;
  for (const name of REFINE_NODES) {
    const control = nodes[name]?.writers.find((w) => w.name === "<branch_run>");
    const original = control?.func;
    if (!control || !original) {
      throw new Error(
        `refine graph: LangGraph's control branch of node "${name}" was not found; ` +
          "graphs/refine.ts routeStateUpdates must be updated for this LangGraph version",
      );
    }
    const next = routeNext(name, FALLBACK[name]);
    control.func = (input: unknown, config: RunnableConfig) => {
      if (isCommand(input) || Array.isArray(input)) return original(input, config);
      const configurable = (config.configurable ?? {}) as Record<string, unknown>;
      const read = configurable[CONFIG_KEY_READ] as (keys: string[], fresh: boolean) => unknown;
      const send = configurable[CONFIG_KEY_SEND] as (writes: [string, unknown][]) => void;
      const target = next(read([...ROUTING_CHANNELS], true) as Parameters<typeof next>[0]);
      if (target !== END) send([[`branch:to:${target}`, name]]);
      return input;
    };
  }
  return compiled;
}

export function buildRefineGraph({ settings, inbox, lessons }: RefineGraphDeps) {
  const live = (node: NodeFn) => withLiveFeedback(node, inbox);
  return new StateGraph(RefineState)
    .addNode(
      "generate",
      routed("generate", FALLBACK.generate, live(createGenerateNode({ settings, lessons }))),
      {
        ends: ["critique", "verify", END],
      },
    )
    .addNode(
      "critique",
      routed("critique", FALLBACK.critique, live(createCritiqueNode({ settings }))),
      {
        ends: ["verify", "revise", "approve", END],
      },
    )
    .addNode("verify", routed("verify", FALLBACK.verify, createVerifyNode({ settings })), {
      ends: ["critique", "revise", "approve", END],
    })
    .addNode("revise", routed("revise", FALLBACK.revise, live(createReviseNode({ settings }))), {
      ends: ["critique", "verify", "approve", END],
    })
    .addNode("approve", routed("approve", FALLBACK.approve, createApproveNode({ settings })), {
      ends: ["revise", "verify", END],
    })
    .addEdge(START, "generate");
}

export function createRefineGraph(deps: RefineGraphDeps & { checkpointer?: BaseCheckpointSaver }) {
  return routeStateUpdates(
    buildRefineGraph(deps).compile({ checkpointer: deps.checkpointer, name: "refine" }),
  );
}
