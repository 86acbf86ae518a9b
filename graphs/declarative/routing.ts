// Where a declarative graph goes after a node: pure, so every branch has a unit test.
//
// The rule: conditions are tried in order and the first that holds wins, even when the node
// recorded a stop reason (so `{if: 'stopReason == "max_iterations"', to: review}` can send a
// capped draft to a reviewer). When none holds, a node that recorded a stop reason ends the run;
// otherwise the edge's `else` (default END) or its unconditional `to` is taken.
import type { StopReason } from "../../core/state.ts";
import { END_TARGET } from "./spec.ts";
import type { CompiledExpression, Value } from "./expression.ts";

export type CompiledEdge =
  | { type: "direct"; to: string }
  | {
      type: "conditional";
      when: { test: Pick<CompiledExpression, "test" | "source">; to: string }[];
      else: string;
    };

export function nextTarget(
  edge: CompiledEdge,
  scope: Record<string, Value>,
  nodeStop: StopReason | null,
): string {
  if (edge.type === "conditional") {
    for (const clause of edge.when) if (clause.test.test(scope)) return clause.to;
    return nodeStop ? END_TARGET : edge.else;
  }
  return nodeStop ? END_TARGET : edge.to;
}

/** Every target an edge can take, END included when a stop reason can end the run there. */
export function possibleTargets(edge: CompiledEdge): string[] {
  const all =
    edge.type === "direct"
      ? [edge.to, END_TARGET]
      : [...edge.when.map((c) => c.to), edge.else, END_TARGET];
  return [...new Set(all)];
}
