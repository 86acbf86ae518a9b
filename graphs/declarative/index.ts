// Declarative graphs: refinement graphs defined as JSON/YAML specs. The public surface for the
// server (startGraphSpecs) and for TypeScript users (compileGraphSpec, registerNodeKind).
import type Database from "better-sqlite3";
import { createSqliteGraphSpecStore } from "./store.ts";
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
  /** The server's SQLite database (the spec table lives beside the checkpoints). */
  db: Database.Database;
  /** Folder of spec files to register at start-up. */
  graphsDir?: string;
  /** Comma-separated modules exporting `nodeKinds`, imported before any spec is compiled. */
  nodeKindModules?: string;
}

/** Loads node-kind modules, then registers stored specs, then the folder's (files win). */
export async function startGraphSpecs(options: StartGraphSpecsOptions) {
  const { db, graphsDir, nodeKindModules, ...deps } = options;
  await importNodeKinds(nodeKindModules, deps.kinds);
  const service = createGraphSpecService({ ...deps, store: createSqliteGraphSpecStore(db) });
  const stored = await service.restore();
  const files = graphsDir ? await service.loadFolder(graphsDir) : [];
  if (stored.length || files.length)
    deps.log?.("info", "declarative graphs registered", { stored, files, dir: graphsDir });
  return service;
}
