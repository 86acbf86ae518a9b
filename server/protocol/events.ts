// The thread protocol's events (what the SDK's ThreadStream reads): run stream chunks from the
// StreamHub turned into `{type: "event", seq, event_id, method, params: {namespace, timestamp,
// node?, data}}`, as the LangGraph server 1.5.1 shapes them (dist/protocol/session). Channels:
// values, updates, messages (message-start / content-block-* / message-finish), custom, tasks,
// checkpoints, lifecycle and input (input.requested). Pure functions, no I/O.
import { inferChannel, isPrefixMatch, isSupportedChannel } from "@langchain/langgraph/stream";
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
  node?: string;
  namespace: string[];
  text: string;
  started: boolean;
}

/**
 * Turns the run's chunks into protocol events for one run. Message chunks (`messages` mode
 * tuples, `[message, metadata]`) become message-start, content-block-start/-delta, and, when the
 * message is complete (a whole message, a chunk with a finish reason, the node's update, or the
 * end of the run), content-block-finish and message-finish.
 */
export class RunEventConverter {
  private readonly active = new Map<string, ActiveMessage>();
  /** Interrupt ids already announced in this run (values and updates both carry them). */
  readonly announced = new Set<string>();

  convert(name: string, raw: unknown, now = Date.now()): DraftEvent[] {
    const [method, ...namespace] = name.split("|");
    const data = plain(raw);
    const ev = (m: string, d: unknown, node?: string): DraftEvent => ({
      method: m,
      params: { namespace, timestamp: now, ...(node !== undefined ? { node } : {}), data: d },
    });
    switch (method) {
      case "values": {
        const out = this.interrupts(
          namespace,
          isRecord(data) ? data.__interrupt__ : undefined,
          now,
        );
        if (isRecord(data)) {
          const { __interrupt__: _i, ...rest } = data;
          if (Object.keys(rest).length > 0) out.unshift(ev("values", rest));
        } else if (data !== undefined) out.unshift(ev("values", data));
        return out;
      }
      case "updates": {
        if (!isRecord(data)) return [ev("updates", { values: {} })];
        const entries = Object.entries(data);
        if (entries.length === 0) return [];
        const [node, values] = entries[0]!;
        if (node === "__interrupt__") return this.interrupts(namespace, values, now);
        const out = this.finishNode(namespace, node, now);
        const vals = isRecord(values) ? values : { value: values };
        out.push(ev("updates", { node, values: vals }, node));
        return out;
      }
      case "messages":
        return this.message(namespace, data, now);
      case "custom":
        return [
          ev("custom", isRecord(data) && typeof data.name === "string" ? data : { payload: data }),
        ];
      case "tasks":
        return [ev("tasks", data)];
      case "checkpoints":
        return [ev("checkpoints", data)];
      default:
        return [];
    }
  }

  /** Finishes every message still open (the run ended). */
  finishAll(now = Date.now()): DraftEvent[] {
    const out: DraftEvent[] = [];
    for (const key of [...this.active.keys()]) out.push(...this.finish(key, now));
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

  private message(namespace: string[], data: unknown, now: number): DraftEvent[] {
    if (!Array.isArray(data) || !isRecord(data[0])) return [];
    const msg = data[0];
    const meta = isRecord(data[1]) ? data[1] : {};
    const node = typeof meta.langgraph_node === "string" ? meta.langgraph_node : undefined;
    const id = typeof msg.id === "string" ? msg.id : `msg-${namespace.join("/")}-${node ?? ""}`;
    const key = `${namespace.join("\0")}\0${id}`;
    const text = textOf(msg.content);
    const ev = (d: Record<string, unknown>): DraftEvent => ({
      method: "messages",
      params: { namespace, timestamp: now, ...(node !== undefined ? { node } : {}), data: d },
    });
    const out: DraftEvent[] = [];
    let current = this.active.get(key);
    if (!current) {
      current = { id, node, namespace, text: "", started: true };
      this.active.set(key, current);
      out.push(
        ev({ event: "message-start", id, role: roleOf(msg.type) }),
        ev({ event: "content-block-start", index: 0, content: { type: "text", text: "" } }),
      );
    }
    // Chunks and whole messages look alike once serialized (both `type: "ai"`): each one's
    // text is a delta; the message ends with a finish reason, its node's update, or the run.
    if (text) {
      current.text += text;
      out.push(ev({ event: "content-block-delta", index: 0, content: { type: "text", text } }));
    }
    const reason = finishReason(msg);
    if (reason || msg.chunk_position === "last")
      out.push(...this.finish(key, now, reason ?? "stop"));
    return out;
  }

  private finishNode(namespace: string[], node: string, now: number): DraftEvent[] {
    const out: DraftEvent[] = [];
    for (const [key, m] of [...this.active]) {
      if (m.node === node && m.namespace.join("\0") === namespace.join("\0"))
        out.push(...this.finish(key, now));
    }
    return out;
  }

  private finish(key: string, now: number, reason = "stop"): DraftEvent[] {
    const m = this.active.get(key);
    if (!m) return [];
    this.active.delete(key);
    const ev = (d: Record<string, unknown>): DraftEvent => ({
      method: "messages",
      params: {
        namespace: m.namespace,
        timestamp: now,
        ...(m.node !== undefined ? { node: m.node } : {}),
        data: d,
      },
    });
    return [
      ev({ event: "content-block-finish", index: 0, content: { type: "text", text: m.text } }),
      ev({ event: "message-finish", reason }),
    ];
  }
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((b) => (isRecord(b) && b.type === "text" && typeof b.text === "string" ? b.text : ""))
    .join("");
}

function roleOf(type: unknown): string {
  const t = typeof type === "string" ? type.replace(/_?chunk$/i, "").toLowerCase() : "ai";
  if (t === "human") return "human";
  if (t === "system") return "system";
  if (t === "tool") return "tool";
  return "ai";
}

function finishReason(msg: Record<string, unknown>): string | undefined {
  const meta = isRecord(msg.response_metadata) ? msg.response_metadata : {};
  const reason = meta.finish_reason ?? meta.stop_reason;
  return typeof reason === "string" && reason ? reason : undefined;
}
