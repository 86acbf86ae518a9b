// The older `messages` stream mode, as the LangGraph server produces it from LangChain's callback
// events: `messages/metadata` when a chat model starts a message, `messages/partial` with the
// message so far (its chunks concatenated) on every token, and `messages/complete` with the
// messages a root values chunk holds that were not reported complete before.
import { publicMetadata } from "./redact.ts";

/** One event of `streamEvents({version: "v2"})`. */
export interface CallbackEvent {
  event: string;
  name?: string;
  run_id?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
  data?: { chunk?: unknown; input?: unknown; output?: unknown };
  parent_ids?: string[];
}

interface MessageChunk {
  id?: string;
  concat(other: MessageChunk): MessageChunk;
}

export class MessageStream {
  private readonly partials = new Map<string, MessageChunk>();
  private readonly completed = new Set<string>();

  constructor(private readonly publish: (event: string, data: unknown) => void) {}

  /** An `on_chat_model_stream` event: its chunk, added to the message it belongs to. */
  partial(event: CallbackEvent): void {
    const chunk = event.data?.chunk as MessageChunk | undefined;
    if (!chunk || typeof chunk !== "object" || typeof chunk.id !== "string" || !chunk.id) return;
    const id = chunk.id;
    const before = this.partials.get(id);
    let message = chunk;
    if (before === undefined) {
      this.publish("messages/metadata", { [id]: { metadata: publicMetadata(event.metadata) } });
    } else if (typeof before.concat === "function") {
      message = before.concat(chunk);
    }
    this.partials.set(id, message);
    this.publish("messages/partial", [message]);
  }

  /** A root `values` chunk: its messages with an id not reported complete yet. */
  complete(values: unknown): void {
    if (!values || typeof values !== "object" || !("messages" in values)) return;
    const raw = (values as { messages: unknown }).messages;
    const list = Array.isArray(raw) ? (raw as unknown[]) : [raw];
    const fresh: unknown[] = [];
    for (const m of list) {
      const id = (m as { id?: unknown } | null)?.id;
      if (typeof id !== "string" || !id || this.completed.has(id)) continue;
      this.completed.add(id);
      fresh.push(m);
    }
    if (fresh.length) this.publish("messages/complete", fresh);
  }
}
