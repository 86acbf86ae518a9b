// Helpers for the declarative-graph tests: read an example spec, compile it on a scripted model
// with an in-memory checkpointer.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MemorySaver } from "@langchain/langgraph";
import { compileGraphSpec } from "../../graphs/declarative/compile.ts";
import { parseSpecDocument } from "../../graphs/declarative/documents.ts";
import type { NodeKindRegistry } from "../../graphs/declarative/kinds.ts";
import { ScriptedChatModel, scriptedProvider, type Script } from "../support/scripted-model.ts";

export const EXAMPLES_DIR = join(import.meta.dirname, "../../graphs/examples");

export function readExample(name: string): Record<string, unknown> {
  const file = join(EXAMPLES_DIR, name);
  return parseSpecDocument(readFileSync(file, "utf8"), file) as Record<string, unknown>;
}

export function compileScripted(document: unknown, script: Script, kinds?: NodeKindRegistry) {
  const model = new ScriptedChatModel(script);
  const graph = compileGraphSpec(document, {
    provider: scriptedProvider(model),
    kinds,
    defaults: { retry: { retries: 0, baseDelayMs: 0 } },
    checkpointer: new MemorySaver(),
  });
  return { model, graph, config: { configurable: { thread_id: "t1" } } };
}
