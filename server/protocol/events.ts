// The thread protocol's events (what the SDK's ThreadStream reads): run stream chunks from the
// StreamHub turned into `{type: "event", seq, event_id, method, params: {namespace, timestamp,
// node?, data}}`, as the LangGraph server 1.5.1 shapes them (dist/protocol/session). Channels:
// values, updates, messages (message-start / content-block-* / message-finish), tools
// (tool-started / tool-output-delta / tool-finished / tool-error), custom (a chunk with a `name`
// is on `custom:<name>` too), tasks, checkpoints, lifecycle and input (input.requested). Pure
// functions, no I/O.
import {
  convertToProtocolEvent,
  inferChannel,
  isPrefixMatch,
  isSupportedChannel,
} from "@langchain/langgraph/stream";
import { JsonText } from "../serde.ts";

export interface ProtocolEvent {
  type: "event";
  event_id: string;
  seq: number;
  method: string;
  params: { namespace: string[]; timestamp: number; node?: string; data: unknown };
}

/** An event before the thread gives it its sequence number. */
export type DraftEvent = Omit<ProtocolEvent, "event_id" | "seq" | "type">;

export interface EventFilter {
  channels: Set<string>;
  namespaces?: string[][];
  depth?: number;
  since?: number;
}

export { isSupportedChannel };

/** Whether `event` is on one of the filter's channels and under one of its namespaces. */
export function matchesFilter(filter: EventFilter, event: ProtocolEvent): boolean {
  if (filter.since !== undefined && event.seq <= filter.since) return false;
  const channel = inferChannel(event as Parameters<typeof inferChannel>[0]);
  if (channel === undefined || channel === null) return false;
  const hit =
    filter.channels.has(channel) ||
    (channel.startsWith("custom:") && filter.channels.has("custom"));
  if (!hit) return false;
  if (!filter.namespaces || filter.namespaces.length === 0) return true;
  return filter.namespaces.some(
    (prefix) =>
      isPrefixMatch(event.params.namespace, prefix) &&
      (filter.depth === undefined || event.params.namespace.length - prefix.length <= filter.depth),
  );
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A hub payload as plain JSON (run threads publish serialized text). */
export function plain(data: unknown): unknown {
  return data instanceof JsonText ? JSON.parse(data.json) : data;
}

export interface InputRequest {
  interrupt_id: string;
  payload: unknown;
}

/** The interrupts of a `__interrupt__` list as input requests (entries without an id are skipped). */
export function inputRequests(list: unknown): InputRequest[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((entry) =>
    isRecord(entry) && typeof entry.id === "string"
      ? [{ interrupt_id: entry.id, payload: entry.value }]
      : [],
  );
}

/** Lifecycle status of a stored run status. */
export function lifecycleOf(status: string): "running" | "completed" | "failed" | "interrupted" {
  if (status === "success") return "completed";
  if (status === "error" || status === "timeout") return "failed";
  if (status === "interrupted") return "interrupted";
  return "running";
}

interface ActiveMessage {
  id: string;
  namespace: string[];
  runId?: string;
  text: string;
  reason?: string;
}

const nsKey = (namespace: string[]) => namespace.join("\0");

/**
 * Turns one run's chunks into protocol events, in the reference's order and shapes: a
 * checkpoint envelope (`{id, parent_id, step, source}`) before the values of its step, updates
 * with the node in `params.node`, a node's messages in the node's task namespace (announced by
 * a `lifecycle` "started" event for that namespace, "completed" or "failed" after its task
 * result), messages as message-start / content-block-start / -delta / -finish / message-finish.
 */
export class RunEventConverter {
  private readonly active = new Map<string, ActiveMessage>();
  /** Values held until the checkpoint of their step is out (per namespace). */
  private readonly heldValues = new Map<string, DraftEvent>();
  /** Namespaces announced with lifecycle "started" and not yet ended. */
  private readonly started = new Set<string>();
  /** Interrupt ids already announced in this run (values and updates both carry them). */
  readonly announced = new Set<string>();

  convert(name: string, raw: unknown, now = Date.now()): DraftEvent[] {
    const [method, ...namespace] = name.split("|");
    const data = plain(raw);
    const ev = (m: string, d: unknown, ns = namespace, node?: string): DraftEvent => ({
      method: m,
      params: { namespace: ns, timestamp: now, ...(node !== undefined ? { node } : {}), data: d },
    });
    const out: DraftEvent[] = [];
    if (method !== "checkpoints") out.push(...this.release(namespace));
    switch (method) {
      case "values": {
        out.push(
          ...this.interrupts(namespace, isRecord(data) ? data.__interrupt__ : undefined, now),
        );
        let values: unknown = data;
        if (isRecord(data)) {
          const { __interrupt__: _i, ...rest } = data;
          values = Object.keys(rest).length > 0 ? rest : undefined;
        }
        if (values !== undefined) this.heldValues.set(nsKey(namespace), ev("values", values));
        return this.announce(namespace, out, now);
      }
      case "checkpoints": {
        const envelope = checkpointEnvelope(data);
        if (envelope) out.push(ev("checkpoints", envelope));
        out.push(...this.release(namespace));
        return this.announce(namespace, out, now);
      }
      case "updates": {
        if (!isRecord(data)) return out;
        for (const [node, values] of Object.entries(data)) {
          if (node === "__interrupt__") {
            out.push(...this.interrupts(namespace, values, now));
            continue;
          }
          out.push(...this.finishWhere((m) => isTaskOf(m.namespace, namespace, node), now));
          out.push(ev("updates", isRecord(values) ? values : { value: values }, namespace, node));
        }
        return this.announce(namespace, out, now);
      }
      case "messages":
        return this.message(namespace, data, now);
      case "custom":
        out.push(
          ev("custom", isRecord(data) && typeof data.name === "string" ? data : { payload: data }),
        );
        return this.announce(namespace, out, now);
      case "tools":
        // LangGraph's own conversion (what the reference's v3 pipeline sends): on_tool_start ->
        // tool-started {tool_call_id, tool_name, input}, on_tool_end -> tool-finished {output}, …
        out.push(ev("tools", toolsData(namespace, data)));
        return this.announce(namespace, out, now);
      case "tasks": {
        out.push(ev("tasks", data));
        // A task's result ends the namespace its node ran in.
        if (isRecord(data) && ("result" in data || "error" in data)) {
          const task = [...namespace, `${String(data.name)}:${String(data.id)}`];
          out.push(...this.finishWhere((m) => nsKey(m.namespace).startsWith(nsKey(task)), now));
          if (this.started.delete(nsKey(task))) {
            const failed = data.error !== null && data.error !== undefined;
            out.push(lifecycleEvent(task, failed ? "failed" : "completed", String(data.name), now));
          }
        }
        return this.announce(namespace, out, now);
      }
      default:
        return out;
    }
  }

  /** What is still open when the run ends: held values, unfinished messages. */
  finishAll(now = Date.now()): DraftEvent[] {
    const out: DraftEvent[] = [];
    for (const key of [...this.heldValues.keys()]) out.push(...this.release(key.split("\0")));
    out.push(...this.finishWhere(() => true, now));
    return out;
  }

  interrupts(namespace: string[], list: unknown, now = Date.now()): DraftEvent[] {
    const out: DraftEvent[] = [];
    for (const request of inputRequests(list)) {
      if (this.announced.has(request.interrupt_id)) continue;
      this.announced.add(request.interrupt_id);
      out.push({ method: "input.requested", params: { namespace, timestamp: now, data: request } });
    }
    return out;
  }

  private release(namespace: string[]): DraftEvent[] {
    const key = nsKey(namespace);
    const held = this.heldValues.get(key);
    if (!held) return [];
    this.heldValues.delete(key);
    return [held];
  }

  /** Prefixes `events` with lifecycle "started" for namespaces seen for the first time. */
  private announce(namespace: string[], events: DraftEvent[], now: number): DraftEvent[] {
    const fresh: DraftEvent[] = [];
    for (let n = 1; n <= namespace.length; n += 1) {
      const part = namespace.slice(0, n);
      if (this.started.has(nsKey(part))) continue;
      this.started.add(nsKey(part));
      fresh.push(lifecycleEvent(part, "started", part.at(-1)!.split(":")[0]!, now));
    }
    return fresh.length ? [...fresh, ...events] : events;
  }

  private message(hubNamespace: string[], data: unknown, now: number): DraftEvent[] {
    if (!Array.isArray(data) || !isRecord(data[0])) return [];
    const msg = data[0];
    const meta = isRecord(data[1]) ? data[1] : {};
    // The node's task namespace (the reference streams a node's messages there).
    const taskNs =
      typeof meta.langgraph_checkpoint_ns === "string" && meta.langgraph_checkpoint_ns
        ? meta.langgraph_checkpoint_ns.split("|")
        : hubNamespace;
    const namespace = taskNs.length >= hubNamespace.length ? taskNs : hubNamespace;
    const id = typeof msg.id === "string" ? msg.id : `msg-${nsKey(namespace)}`;
    const runId =
      id.startsWith("run-") && id.length > 4
        ? id.slice(4)
        : typeof meta.run_id === "string"
          ? meta.run_id
          : undefined;
    const key = `${nsKey(namespace)}\0${id}`;
    const text = textOf(msg.content);
    // An AIMessageChunk serializes with tool_call_chunks; a whole message (a node's output) not.
    const isChunk = "tool_call_chunks" in msg;
    const ev = (d: Record<string, unknown>): DraftEvent => ({
      method: "messages",
      params: {
        namespace,
        timestamp: now,
        data: { ...d, ...(runId !== undefined ? { run_id: runId } : {}) },
      },
    });
    const out: DraftEvent[] = [];
    let current = this.active.get(key);
    if (!current) {
      // One message at a time in a namespace: a new one ends the one before.
      out.push(...this.finishWhere((m) => nsKey(m.namespace) === nsKey(namespace), now));
      current = { id, namespace, runId, text: "" };
      this.active.set(key, current);
      out.push(
        ev({ event: "message-start", id }),
        ev({ event: "content-block-start", index: 0, content: { type: "text", text: "" } }),
      );
    }
    if (text) {
      current.text += text;
      out.push(ev({ event: "content-block-delta", index: 0, delta: { type: "text-delta", text } }));
    }
    const reason = finishReason(msg);
    if (reason) current.reason = reason;
    if (!isChunk) {
      const responseMetadata = isRecord(msg.response_metadata) ? msg.response_metadata : {};
      out.push(...this.finish(key, now, { responseMetadata }));
    } else if (msg.chunk_position === "last") out.push(...this.finish(key, now));
    return this.announce(namespace, out, now);
  }

  private finishWhere(match: (m: ActiveMessage) => boolean, now: number): DraftEvent[] {
    const out: DraftEvent[] = [];
    for (const [key, m] of [...this.active]) if (match(m)) out.push(...this.finish(key, now));
    return out;
  }

  private finish(key: string, now: number, end?: Record<string, unknown>): DraftEvent[] {
    const m = this.active.get(key);
    if (!m) return [];
    this.active.delete(key);
    const ev = (d: Record<string, unknown>): DraftEvent => ({
      method: "messages",
      params: {
        namespace: m.namespace,
        timestamp: now,
        data: { ...d, ...(m.runId !== undefined ? { run_id: m.runId } : {}) },
      },
    });
    return [
      ev({ event: "content-block-finish", index: 0, content: { type: "text", text: m.text } }),
      ev({ event: "message-finish", ...(end ?? { reason: m.reason ?? "stop" }) }),
    ];
  }
}

function toolsData(namespace: string[], payload: unknown): unknown {
  return convertToProtocolEvent({ namespace, mode: "tools", payload, seq: 0 })[0]?.params.data;
}

/** Whether `ns` is the namespace of a task of `node` directly under `parent`. */
function isTaskOf(ns: string[], parent: string[], node: string): boolean {
  return (
    ns.length === parent.length + 1 &&
    parent.every((s, i) => ns[i] === s) &&
    ns[parent.length]!.startsWith(`${node}:`)
  );
}

function lifecycleEvent(
  namespace: string[],
  event: string,
  graphName: string,
  now: number,
): DraftEvent {
  return {
    method: "lifecycle",
    params: { namespace, timestamp: now, data: { event, graph_name: graphName } },
  };
}

/** A checkpoints-mode chunk as the protocol's envelope; undefined for the input checkpoint. */
function checkpointEnvelope(data: unknown): Record<string, unknown> | undefined {
  if (!isRecord(data)) return undefined;
  const config = isRecord(data.config) ? data.config : {};
  const configurable = isRecord(config.configurable) ? config.configurable : {};
  const parent = isRecord(data.parent_config) ? data.parent_config : {};
  const parentConfigurable = isRecord(parent.configurable) ? parent.configurable : {};
  const metadata = isRecord(data.metadata) ? data.metadata : {};
  if (typeof configurable.checkpoint_id !== "string") return undefined;
  if (metadata.source === "input" || metadata.step === -1) return undefined;
  return {
    id: configurable.checkpoint_id,
    ...(typeof parentConfigurable.checkpoint_id === "string"
      ? { parent_id: parentConfigurable.checkpoint_id }
      : {}),
    ...(typeof metadata.step === "number" ? { step: metadata.step } : {}),
    ...(typeof metadata.source === "string" ? { source: metadata.source } : {}),
  };
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((b) => (isRecord(b) && b.type === "text" && typeof b.text === "string" ? b.text : ""))
    .join("");
}

function finishReason(msg: Record<string, unknown>): string | undefined {
  const meta = isRecord(msg.response_metadata) ? msg.response_metadata : {};
  const reason = meta.finish_reason ?? meta.stop_reason;
  return typeof reason === "string" && reason ? reason : undefined;
}
