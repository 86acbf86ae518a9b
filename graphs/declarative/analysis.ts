// Graph checks the compiler runs on a spec's edges: which nodes the start reaches, and which
// cycles have no way out. Pure functions over names, unit-tested without LangGraph.

export interface EdgeView {
  /** Index in the spec's `edges`, for error paths. */
  index: number;
  from: string;
  /** Targets the edge can take (node names; "END" is ignored here). */
  targets: string[];
  conditional: boolean;
}

/** Nodes reachable from `start` (including it). */
export function reachable(start: string, edges: readonly EdgeView[]): Set<string> {
  const out = new Map<string, string[]>();
  for (const e of edges) out.set(e.from, [...(out.get(e.from) ?? []), ...e.targets]);
  const seen = new Set<string>([start]);
  const stack = [start];
  while (stack.length) {
    const n = stack.pop() as string;
    for (const m of out.get(n) ?? []) {
      if (!seen.has(m)) {
        seen.add(m);
        stack.push(m);
      }
    }
  }
  return seen;
}

/** Strongly-connected components (Tarjan), each in discovery order. */
export function stronglyConnected(
  nodes: readonly string[],
  edges: readonly EdgeView[],
): string[][] {
  const out = new Map<string, string[]>(nodes.map((n) => [n, []]));
  for (const e of edges) out.get(e.from)?.push(...e.targets.filter((t) => out.has(t)));
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const result: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of out.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.unshift(w);
      } while (w !== v);
      result.push(component);
    }
  };
  for (const n of nodes) if (!index.has(n)) visit(n);
  return result;
}

export interface TrappedCycle {
  nodes: string[];
  /** The first edge (by index) inside the cycle. */
  edgeIndex: number;
}

/**
 * Cycles a run could never leave: a strongly-connected component with a cycle in it, no
 * conditional edge leading out of it and no node that can end the run by recording a stop
 * reason. (Conditions are not evaluated: an exit that exists is assumed reachable.)
 */
export function trappedCycles(
  nodes: readonly string[],
  edges: readonly EdgeView[],
  canStop: (node: string) => boolean,
): TrappedCycle[] {
  const trapped: TrappedCycle[] = [];
  for (const component of stronglyConnected(nodes, edges)) {
    const inside = new Set(component);
    const internal = edges.filter(
      (e) => inside.has(e.from) && e.targets.some((t) => inside.has(t)),
    );
    const cyclic = component.length > 1 || internal.some((e) => e.targets.includes(e.from));
    if (!cyclic) continue;
    const exits = edges.some(
      (e) => inside.has(e.from) && e.conditional && e.targets.some((t) => !inside.has(t)),
    );
    if (exits || component.some(canStop)) continue;
    trapped.push({
      nodes: component,
      edgeIndex: Math.min(...internal.map((e) => e.index)),
    });
  }
  return trapped;
}
