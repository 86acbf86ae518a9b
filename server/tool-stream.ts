// The `tools` stream of a run (what the thread protocol's `tools` channel carries): LangGraph's
// own `tools` stream mode reports each tool call's start, progress, end and error in the order
// of the run's other chunks, but, outside its v3 event pipeline, in the namespace of the graph
// that called the tool. The LangGraph server (streamEvents v3) reports it in the tool task's own
// namespace (`["tools:<task id>"]`, as a node's messages): ToolNamespaces remembers each call's
// task namespace from the callback that starts it, and toolChunk puts the chunk there, with its
// error as JSON (`{error, message}`, an Error serializes as `{}`).
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import { publicError } from "./serde.ts";

/** Most tool calls a run keeps a namespace for at once (ended calls are forgotten). */
const MAX_OPEN_CALLS = 10_000;

export class ToolNamespaces extends BaseCallbackHandler {
  name = "refinery_tool_namespaces";
  /** Runs before the tool does, as LangGraph's own tools handler. */
  override awaitHandlers = true;
  private readonly byCallId = new Map<string, string[]>();

  override handleToolStart(
    _tool: unknown,
    _input: string,
    _runId: string,
    _parentRunId?: string,
    _tags?: string[],
    metadata?: Record<string, unknown>,
    _runName?: string,
    toolCallId?: string,
  ): void {
    const ns = metadata?.langgraph_checkpoint_ns;
    if (typeof toolCallId !== "string" || typeof ns !== "string" || !ns) return;
    if (this.byCallId.size >= MAX_OPEN_CALLS) this.byCallId.clear();
    this.byCallId.set(toolCallId, ns.split("|"));
  }

  /** The task namespace of the call a `tools` chunk is about (forgotten once the call ends). */
  namespaceOf(data: unknown): string[] | undefined {
    const d = data as { toolCallId?: unknown; event?: unknown } | null;
    if (typeof d?.toolCallId !== "string") return undefined;
    const ns = this.byCallId.get(d.toolCallId);
    if (d.event === "on_tool_end" || d.event === "on_tool_error")
      this.byCallId.delete(d.toolCallId);
    return ns;
  }
}

/** A `tools` chunk as JSON: its error as `{error, message}`. */
export function toolChunk(data: unknown): unknown {
  const d = data as { error?: unknown } | null;
  if (!d || typeof d !== "object" || !("error" in d)) return data;
  return { ...d, error: publicError(d.error) };
}
