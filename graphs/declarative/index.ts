// Declarative graphs: refinement graphs defined as JSON/YAML specs. The public surface for the
// server (startGraphSpecs) and for TypeScript users (compileGraphSpec, registerNodeKind).
import type { GraphSpecStore } from "../../core/storage/graph-specs.ts";
import { createGraphSpecService, type GraphSpecServiceDeps } from "./service.ts";
import { importNodeKinds } from "./modules.ts";

export { compileGraphSpec, validateGraphSpec, FINISH_NODE } from "./compile.ts";
export { compileExpression, ExpressionError, FUNCTIONS } from "./expression.ts";
export {
  createNodeKindRegistry,
  defaultNodeKinds,
  registerNodeKind,
  type DeclarativeNode,
  type NodeKind,
  type NodeKindDeps,
  type NodeKindRegistry,
} from "./kinds.ts";
export { parseSpecDocument, readSpecFolder } from "./documents.ts";
export { SCOPE_SHAPE, buildScope } from "./scope.ts";
export { GraphSpecSchema, type GraphSpec } from "./spec.ts";
export { DeclarativeState, type DeclarativeStateType } from "./state.ts";
export type { GraphSpecService, GraphSpecInfo, GraphSpecDetail } from "./service.ts";

export interface StartGraphSpecsOptions extends Omit<GraphSpecServiceDeps, "store"> {
  /** Where registered specs are kept (the persistence backend's graph-spec store). */
  store: GraphSpecStore;
  /** Folder of spec files to register at start-up. */
  graphsDir?: string;
  /** Comma-separated modules exporting `nodeKinds`, imported before any spec is compiled. */
  nodeKindModules?: string;
}

/** Loads node-kind modules, then registers stored specs, then the folder's (files win). */
export async function startGraphSpecs(options: StartGraphSpecsOptions) {
  const { graphsDir, nodeKindModules, ...deps } = options;
  await importNodeKinds(nodeKindModules, deps.kinds);
  const service = createGraphSpecService(deps);
  const stored = await service.restore();
  const files = graphsDir ? await service.loadFolder(graphsDir) : [];
  if (stored.length || files.length)
    deps.log?.("info", "declarative graphs registered", { stored, files, dir: graphsDir });
  return service;
}
