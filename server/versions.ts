// The installed @langchain/langgraph's version: /info's langgraph_js_version and the
// `langgraph_version` of every run's metadata, as the LangGraph server reports them.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

function langgraphVersion(): string | undefined {
  try {
    const file = createRequire(import.meta.url).resolve("@langchain/langgraph/package.json");
    return (JSON.parse(readFileSync(file, "utf8")) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

export const LANGGRAPH_VERSION = langgraphVersion();
