// Node kinds written in TypeScript, loaded by the server at start-up: every module listed in
// REFINERY_NODE_KINDS (comma-separated paths) exports `nodeKinds: {name: NodeKind}`.
import { isAbsolute, resolve } from "node:path";
import { RefineryError } from "../../core/errors.ts";
import { defaultNodeKinds, type NodeKind, type NodeKindRegistry } from "./kinds.ts";
import { importUserModule } from "../../core/import-module.ts";

export async function importNodeKinds(
  list: string | undefined,
  kinds: NodeKindRegistry = defaultNodeKinds,
): Promise<string[]> {
  const names: string[] = [];
  for (const path of (list ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const abs = isAbsolute(path) ? path : resolve(path);
    let mod: { nodeKinds?: Record<string, NodeKind> };
    try {
      mod = (await importUserModule(abs)) as typeof mod;
    } catch (err) {
      throw new RefineryError(
        "invalid_config",
        `cannot load node kinds from ${abs}: ${(err as Error).message.split("\n")[0]}`,
        { field: "REFINERY_NODE_KINDS", fix: "check the path and that the file compiles" },
      );
    }
    if (!mod.nodeKinds || typeof mod.nodeKinds !== "object") {
      throw new RefineryError("invalid_config", `${abs} exports no nodeKinds`, {
        field: "REFINERY_NODE_KINDS",
        fix: "export const nodeKinds = { my_kind: { schema, create } }",
      });
    }
    for (const [name, kind] of Object.entries(mod.nodeKinds)) {
      kinds.register(name, kind);
      names.push(name);
    }
  }
  return names;
}
