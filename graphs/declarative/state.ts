// The state of a declarative graph: the refinement state plus `vars` (free values written by
// transforms and custom nodes) and `nodeStop` (the stop reason recorded by the step that just
// ran, which the edges read; `stopReason` itself may be left over from an earlier step).
import { Annotation } from "@langchain/langgraph";
import { RefineState, reducers, type StopReason } from "../../core/state.ts";
import type { Value } from "./expression.ts";

export const declarativeReducers = {
  /** Shallow merge: a step sets the keys it names and leaves the others. */
  mergeVars: (left: Record<string, Value>, right: Record<string, Value> | undefined) =>
    right === undefined ? left : { ...left, ...right },
};

export const DeclarativeState = Annotation.Root({
  ...RefineState.spec,
  vars: Annotation<Record<string, Value>, Record<string, Value>>({
    reducer: declarativeReducers.mergeVars,
    default: () => ({}),
  }),
  nodeStop: Annotation<StopReason | null>({ reducer: reducers.last, default: () => null }),
});

export type DeclarativeStateType = typeof DeclarativeState.State;
export type DeclarativeUpdate = typeof DeclarativeState.Update;
