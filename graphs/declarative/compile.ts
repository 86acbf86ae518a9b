// The compiler of declarative graphs: validates a spec document (every error names its exact
// path, e.g. `nodes.check.kind`, `edges[3].when[0].if`) and builds a LangGraph StateGraph from
// it, one node per spec node with its own settings (graph options < node options), edges that
// evaluate conditions over the scope, and a final `__finish__` step that fills `answer`.
import type { RunnableConfig } from "@langchain/core/runnables";
import {
  END,
  START,
  StateGraph,
  type BaseCheckpointSaver,
  type BaseStore,
  type CompiledStateGraph,
} from "@langchain/langgraph";
import type { z } from "zod";
import { mergeRefineOptions, parseRefineOptions, type RefineOptions } from "../../core/config.ts";
import { RefineryError } from "../../core/errors.ts";
import { closest } from "../../core/suggest.ts";
import type { ModelProvider } from "../../core/models/provider.ts";
import { createSettingsResolver, type SettingsResolver } from "../../core/settings.ts";
import { latestDraft, type StopReason } from "../../core/state.ts";
import { withLiveFeedback, type FeedbackSource } from "../../nodes/support.ts";
import type { LessonSource } from "../../nodes/generate.ts";
import { trappedCycles, reachable, type EdgeView } from "./analysis.ts";
import { compileExpression, ExpressionError } from "./expression.ts";
import {
  defaultNodeKinds,
  validateVerifierSpecs,
  type DeclarativeNode,
  type NodeKind,
  type NodeKindRegistry,
} from "./kinds.ts";
import { nextTarget, possibleTargets, type CompiledEdge } from "./routing.ts";
import { buildScope, SCOPE_SHAPE } from "./scope.ts";
import {
  END_TARGET,
  GraphSpecSchema,
  NODE_NAME_PATTERN,
  type GraphSpec,
  type NodeSpec,
} from "./spec.ts";
import { DeclarativeState, type DeclarativeStateType, type DeclarativeUpdate } from "./state.ts";
import { expressionError } from "./transform.ts";

/** The hidden last step of every run: fills `answer` when no node did. */
export const FINISH_NODE = "__finish__";
const UUID_LIKE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RESERVED = new Set([END_TARGET, "START", ...Object.keys(DeclarativeState.spec)]);

export interface ValidatedNode {
  name: string;
  kindName: string;
  kind: NodeKind;
  /** The kind's own fields, parsed by its schema. */
  options: unknown;
  /** The node's refine options: graph options < node `options` < kind shorthands. */
  refine: RefineOptions;
}

export interface ValidatedSpec {
  spec: GraphSpec;
  nodes: ValidatedNode[];
  edges: Map<string, CompiledEdge>;
}

function invalid(field: string, message: string, fix?: string): RefineryError {
  return new RefineryError("invalid_config", message, { field, ...(fix ? { fix } : {}) });
}

/** A zod error as a RefineryError at `prefix` + the issue's path (an unknown key is named). */
function zodError(error: z.ZodError, prefix: string): RefineryError {
  const issue = error.issues[0];
  if (!issue) return invalid(prefix, "invalid value");
  const path =
    issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0] ?? ""] : issue.path;
  const field = path.reduce<string>(
    (acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)),
    prefix,
  );
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : "";
  const message = issue.code === "unrecognized_keys" ? "unknown field" : issue.message;
  return invalid(field || "spec", `${message}${more}`);
}

function parseOptions(raw: unknown, field: string): RefineOptions | undefined {
  if (raw === undefined) return undefined;
  const options = parseRefineOptions(raw, field);
  if (options.verifiers) validateVerifierSpecs(options.verifiers, `${field}.verifiers`);
  return options;
}

function compileCondition(source: string, field: string) {
  try {
    return compileExpression(source, SCOPE_SHAPE);
  } catch (err) {
    if (err instanceof ExpressionError) throw expressionError(err, source, field);
    throw err;
  }
}

/**
 * Checks a spec document and everything it names. Throws RefineryError (`invalid_config`, a 422
 * over HTTP) whose `field` is the exact path of the first problem.
 */
export function validateGraphSpec(
  raw: unknown,
  kinds: NodeKindRegistry = defaultNodeKinds,
  defaults?: RefineOptions,
): ValidatedSpec {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw invalid("spec", "a graph spec must be an object {id, start, nodes, edges}");
  const parsed = GraphSpecSchema.safeParse(raw);
  if (!parsed.success) throw zodError(parsed.error, "");
  const spec = parsed.data;
  if (UUID_LIKE.test(spec.id))
    throw invalid("id", "a graph id must not look like a UUID (assistant ids do)");
  const graphOptions = parseOptions(spec.options, "options");

  const nodes: ValidatedNode[] = [];
  for (const [name, node] of Object.entries(spec.nodes)) {
    nodes.push(validateNode(name, node, kinds, mergeRefineOptions(defaults, graphOptions)));
  }
  const names = new Set(nodes.map((n) => n.name));
  const isTarget = (t: string) => t === END_TARGET || names.has(t);
  const targetFix = `use one of: ${[...names].join(", ")}, END`;

  if (!names.has(spec.start))
    throw invalid("start", `start names no node ("${spec.start}")`, targetFix.replace(", END", ""));

  const edges = new Map<string, CompiledEdge>();
  const firstEdge = new Map<string, number>();
  const views: EdgeView[] = [];
  spec.edges.forEach((edge, i) => {
    const at = `edges[${i}]`;
    if (!names.has(edge.from))
      throw invalid(
        `${at}.from`,
        `no node is named "${edge.from}"`,
        targetFix.replace(", END", ""),
      );
    const first = firstEdge.get(edge.from);
    if (first !== undefined)
      throw invalid(
        `${at}.from`,
        `node "${edge.from}" already has its outgoing edge at edges[${first}]`,
        "give each node one edge; use `when` for several targets",
      );
    firstEdge.set(edge.from, i);
    if ((edge.to === undefined) === (edge.when === undefined))
      throw invalid(
        at,
        "an edge needs either `to` or `when`",
        'e.g. {from: a, to: b} or {from: a, when: [{if: "…", to: b}], else: c}',
      );
    if (edge.to !== undefined && edge.else !== undefined)
      throw invalid(`${at}.else`, "`else` belongs with `when`", "drop `else` or use `when`");
    let compiled: CompiledEdge;
    if (edge.to !== undefined) {
      if (!isTarget(edge.to)) throw invalid(`${at}.to`, `no node is named "${edge.to}"`, targetFix);
      compiled = { type: "direct", to: edge.to };
    } else {
      const when = (edge.when ?? []).map((clause, j) => {
        if (!isTarget(clause.to))
          throw invalid(`${at}.when[${j}].to`, `no node is named "${clause.to}"`, targetFix);
        return { test: compileCondition(clause.if, `${at}.when[${j}].if`), to: clause.to };
      });
      const otherwise = edge.else ?? END_TARGET;
      if (!isTarget(otherwise))
        throw invalid(`${at}.else`, `no node is named "${otherwise}"`, targetFix);
      compiled = { type: "conditional", when, else: otherwise };
    }
    edges.set(edge.from, compiled);
    views.push({
      index: i,
      from: edge.from,
      targets: possibleTargets(compiled).filter(
        (t) => t !== END_TARGET || compiled.type === "conditional",
      ),
      conditional: compiled.type === "conditional",
    });
  });

  for (const { name } of nodes) {
    if (!edges.has(name))
      throw invalid(
        `nodes.${name}`,
        `node "${name}" has no outgoing edge`,
        `add {from: ${name}, to: END} or an edge to the next node`,
      );
  }
  const seen = reachable(spec.start, views);
  for (const { name } of nodes) {
    if (!seen.has(name))
      throw invalid(
        `nodes.${name}`,
        `node "${name}" is unreachable from start "${spec.start}"`,
        "add an edge to it, or remove the node",
      );
  }
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const trapped = trappedCycles([...names], views, (n) => Boolean(byName.get(n)?.kind.canStop));
  const cycle = trapped[0];
  if (cycle) {
    const loop = [...cycle.nodes, cycle.nodes[0]].join(" -> ");
    throw invalid(
      `edges[${cycle.edgeIndex}]`,
      `the cycle ${loop} has no way out: no conditional edge leaves it and none of its nodes can stop the run`,
      "add a `when` edge that leaves the cycle (e.g. to END), or a verify/critique/revise/approve node in it",
    );
  }
  return { spec, nodes, edges };
}

function validateNode(
  name: string,
  node: NodeSpec,
  kinds: NodeKindRegistry,
  base: RefineOptions,
): ValidatedNode {
  const path = `nodes.${name}`;
  if (!NODE_NAME_PATTERN.test(name))
    throw invalid(
      path,
      `invalid node name "${name}"`,
      "start with a letter; use letters, digits, _ and -",
    );
  if (RESERVED.has(name))
    throw invalid(
      path,
      `"${name}" is reserved (END, START and state field names)`,
      "rename the node",
    );
  const kind = kinds.get(node.kind);
  if (!kind) {
    const names = kinds.names();
    const near = closest(node.kind, names);
    throw invalid(
      `${path}.kind`,
      `unknown node kind "${node.kind}"`,
      near
        ? `did you mean "${near}"? (node kinds: ${names.join(", ")})`
        : `node kinds here: ${names.join(", ")}. A kind written in TypeScript must be registered: start the server with REFINERY_NODE_KINDS naming the module that exports it, e.g. REFINERY_NODE_KINDS=./graphs/examples/back-translate.ts npm start`,
    );
  }
  const { kind: _kind, description: _d, options: rawOptions, ...own } = node;
  const parsed = kind.schema.safeParse(own);
  if (!parsed.success) throw zodError(parsed.error, path);
  const options = parsed.data;
  kind.validate?.(options, path);
  const nodeOptions = parseOptions(rawOptions, `${path}.options`);
  const refine = mergeRefineOptions(base, nodeOptions, kind.refineOptions?.(options));
  return { name, kindName: node.kind, kind, options, refine };
}

export interface BuildDeps {
  provider: ModelProvider;
  kinds?: NodeKindRegistry;
  /** Process-wide refine defaults (the config file), under the spec's own options. */
  defaults?: RefineOptions;
  /** Live feedback (the server's inbox), taken by generate, critique and revise nodes. */
  inbox?: FeedbackSource;
  /** Lessons from the memory, for generate nodes. */
  lessons?: LessonSource;
}

const TAKES_FEEDBACK = new Set(["generate", "critique", "revise"]);

/** Node settings without `approval`: in a declarative graph, reviews happen where the edges put an approve node. */
function withoutApproval(resolve: SettingsResolver): SettingsResolver {
  return (config, stored) => {
    const s = resolve(config, stored);
    return s.approval ? { ...s, approval: undefined } : s;
  };
}

/**
 * Records the step's own stop reason in `nodeStop` (the edges read it), and clears a stop left
 * from an earlier step when a built-in node continues the loop (it recorded a `route`).
 */
function wrapNode(node: DeclarativeNode) {
  return async (
    state: DeclarativeStateType,
    config: RunnableConfig,
  ): Promise<DeclarativeUpdate> => {
    const update = await node(state, config);
    const stop = (update.stopReason ?? null) as StopReason | null;
    const out: DeclarativeUpdate = { ...update, nodeStop: stop };
    if (update.stopReason === undefined && typeof update.route === "string" && state.stopReason) {
      out.stopReason = null;
      if (update.answer === undefined) out.answer = null;
    }
    return out;
  };
}

function finish(state: DeclarativeStateType): DeclarativeUpdate {
  if (state.answer !== null) return {};
  const answer = state.best?.text ?? latestDraft(state)?.text ?? null;
  return answer === null ? {} : { answer };
}

interface LooseGraph {
  addNode(name: string, fn: unknown): LooseGraph;
  addEdge(from: string, to: string): LooseGraph;
  addConditionalEdges(from: string, route: unknown, targets: string[]): LooseGraph;
  compile(options: Record<string, unknown>): unknown;
}

/** Steps one run may take: generous for loops, still a bound (LangGraph's default is 25). */
export function recursionLimitFor(validated: ValidatedSpec): number {
  const maxIterations = Math.max(3, ...validated.nodes.map((n) => n.refine.maxIterations ?? 3));
  return Math.max(25, (validated.nodes.length + 1) * (maxIterations + 2) * 2);
}

/** Builds the (uncompiled) StateGraph of a validated spec. */
export function buildDeclarativeGraph(validated: ValidatedSpec, deps: BuildDeps) {
  const graph = new StateGraph(DeclarativeState) as unknown as LooseGraph;
  const resolvers = new Map<string, SettingsResolver>();
  for (const node of validated.nodes) {
    const base = createSettingsResolver({ provider: deps.provider, defaults: node.refine });
    const settings = node.kindName === "approve" ? base : withoutApproval(base);
    resolvers.set(node.name, settings);
    const fn = node.kind.create(node.options as never, {
      name: node.name,
      path: `nodes.${node.name}`,
      settings,
      provider: deps.provider,
      lessons: deps.lessons,
    });
    graph.addNode(
      node.name,
      wrapNode(TAKES_FEEDBACK.has(node.kindName) ? withLiveFeedback(fn, deps.inbox) : fn),
    );
  }
  graph.addNode(FINISH_NODE, finish);
  graph.addEdge(START, validated.spec.start);
  for (const [from, edge] of validated.edges) {
    const settings = resolvers.get(from) as SettingsResolver;
    const route = (state: DeclarativeStateType, config: RunnableConfig) => {
      const scope = buildScope(state, settings(config, state.options).limits);
      const target = nextTarget(edge, scope, state.nodeStop);
      return target === END_TARGET ? FINISH_NODE : target;
    };
    const targets = possibleTargets(edge).map((t) => (t === END_TARGET ? FINISH_NODE : t));
    graph.addConditionalEdges(from, route, targets);
  }
  graph.addEdge(FINISH_NODE, END);
  return graph;
}

export type CompiledDeclarativeGraph = CompiledStateGraph<
  DeclarativeStateType,
  DeclarativeUpdate,
  string,
  typeof DeclarativeState.spec,
  typeof DeclarativeState.spec
>;

export interface CompileOptions extends BuildDeps {
  checkpointer?: BaseCheckpointSaver;
  store?: BaseStore;
}

/** Validates and compiles a spec into a runnable LangGraph graph named after its id. */
export function compileGraphSpec(raw: unknown, options: CompileOptions) {
  const validated = validateGraphSpec(raw, options.kinds, options.defaults);
  return compileValidated(validated, options);
}

export function compileValidated(validated: ValidatedSpec, options: CompileOptions) {
  const graph = buildDeclarativeGraph(validated, options).compile({
    checkpointer: options.checkpointer,
    ...(options.store ? { store: options.store } : {}),
    name: validated.spec.id,
  }) as CompiledDeclarativeGraph;
  return graph.withConfig({ recursionLimit: recursionLimitFor(validated) });
}
