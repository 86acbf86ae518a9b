// Normalisation and comparison for the differential harness: what the two servers answer is
// made comparable (ids, timestamps, error texts), then compared into a list of differences,
// each with a path such as `create.body.metadata.graph_id`.

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
/** Interrupt ids: a hash of the task's checkpoint namespace, which holds a random task id. */
const HEX32 = /\b[0-9a-f]{32}\b/g;
const ISO_TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?/g;

/**
 * Ids (uuids: threads, runs, assistants, checkpoints) become `<uuid>`, interrupt ids `<hex32>`,
 * timestamps `<ts>`; object keys are sorted (key order is no difference).
 */
export function normalize(value: unknown): unknown {
  if (typeof value === "string")
    return value.replace(UUID, "<uuid>").replace(HEX32, "<hex32>").replace(ISO_TIME, "<ts>");
  if (Array.isArray(value)) return value.map(normalize);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      out[key.replace(UUID, "<uuid>")] = normalize((value as Record<string, unknown>)[key]);
    }
    return out;
  }
  return value;
}

/** Only the shape: every string becomes `<string>`, every number `<number>` (error bodies). */
export function shapeOf(value: unknown): unknown {
  if (typeof value === "string") return "<string>";
  if (typeof value === "number") return "<number>";
  if (Array.isArray(value)) return value.map(shapeOf);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = shapeOf(v);
    return out;
  }
  return value;
}

export interface Difference {
  /** Where: `<step>.<status|headers|body|events|requests>…`. */
  path: string;
  /** missing: the reference has it, we do not; extra: we have it, the reference does not. */
  kind: "missing" | "extra" | "value";
  ours?: unknown;
  ref?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** Structural differences between our (normalised) answer and the reference's. */
export function compare(ours: unknown, ref: unknown, path = ""): Difference[] {
  if (isObject(ours) && isObject(ref)) {
    const out: Difference[] = [];
    for (const key of new Set([...Object.keys(ref), ...Object.keys(ours)])) {
      const p = path ? `${path}.${key}` : key;
      if (!(key in ours)) out.push({ path: p, kind: "missing", ref: ref[key] });
      else if (!(key in ref)) out.push({ path: p, kind: "extra", ours: ours[key] });
      else out.push(...compare(ours[key], ref[key], p));
    }
    return out;
  }
  if (Array.isArray(ours) && Array.isArray(ref)) {
    const out: Difference[] = [];
    const n = Math.min(ours.length, ref.length);
    for (let i = 0; i < n; i++) out.push(...compare(ours[i], ref[i], `${path}[${i}]`));
    for (let i = n; i < ref.length; i++)
      out.push({ path: `${path}[${i}]`, kind: "missing", ref: ref[i] });
    for (let i = n; i < ours.length; i++)
      out.push({ path: `${path}[${i}]`, kind: "extra", ours: ours[i] });
    return out;
  }
  if (JSON.stringify(ours) === JSON.stringify(ref)) return [];
  return [{ path, kind: "value", ours, ref }];
}

export interface SseEvent {
  event: string;
  data: unknown;
}

/** Server-sent events of a whole response body (comments and ids dropped, data parsed as JSON). */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const frame of text.split(/\r?\n\r?\n/)) {
    let event = "message";
    const data: string[] = [];
    for (const line of frame.split(/\r?\n/)) {
      if (line.startsWith(":") || line === "") continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length === 0 && event === "message") continue;
    const raw = data.join("\n");
    let parsed: unknown = raw;
    try {
      parsed = JSON.parse(raw);
    } catch {
      // not JSON: compared as text
    }
    events.push({ event, data: parsed });
  }
  return events;
}
