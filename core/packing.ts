// Compact storage of JSON documents that repeat a known structure: LangGraph checkpoints and
// Refinery's refine state. Deflate (raw, level 9) with a preset dictionary of that structure, so
// a document of a few KB does not pay for its own keys.
import { deflateRawSync, inflateRawSync } from "node:zlib";

/**
 * Deflate's preset dictionary: the shape of a LangGraph checkpoint and of its metadata, and the
 * field names and enum values of Refinery's refine state (core/state.ts). Structure only, no text
 * a run produced. Never change it in place: data written with it must stay readable, so a new
 * dictionary comes with a new format byte wherever it is used (the checkpoint archive's segments,
 * packed thread values below).
 */
export const STATE_DICTIONARY = Buffer.from(
  [
    '{"ls_integration":"langgraph","created_by":"system","run_id":"","thread_id":"",',
    '"graph_id":"refine","assistant_id":"","run_attempt":1,"langgraph_version":"",',
    '"source":"input","step":-1,"parents":{}}{"source":"loop","step":0,"refinery_metadata_delta":1}',
    'jsonnull"branch:to:generate"branch:to:critique"branch:to:verify"branch:to:revise"',
    'branch:to:approve"__pregel_tasks"__start__"__input__"__end__""iteration":',
    '{"iteration":1,"text":"","source":"generate","usage":{"promptTokens":0,"completionTokens":0,',
    '"totalTokens":0,"calls":1},"latencyMs":0,"createdAt":"2026-12-07T00:00:00.000Z"}',
    '{"iteration":1,"verdict":"revise","score":0,"issues":[],"raw":"","usage":{"promptTokens":0,',
    '"completionTokens":0,"totalTokens":0,"calls":1},"latencyMs":0}',
    '[{"verifierId":"","kind":"","hard":true,"iteration":1,"pass":false,"score":0,"message":"",',
    '"latencyMs":0}]{"iteration":1,"text":"","hardPassed":0,"hardTotal":1,"score":0}',
    '{"node":"critique","promptTokens":0,"completionTokens":0,"totalTokens":0,"calls":1}',
    '"stopReason":"max_iterations","answer":"strategy":"self-refine",',
    '{"v":4,"id":"","ts":"2026-12-07T00:00:00.000Z","channel_values":{"task":"","context":"",',
    '"options":null,"feedback":[],"drafts":[],"critiques":[],"verdicts":[],"best":null,',
    '"iteration":0,"usage":{"promptTokens":0,"completionTokens":0,"totalTokens":0,"calls":0,',
    '"byNode":{}},"stopReason":null,"route":null,"strategy":null,"pendingApproval":null,',
    '"approvals":[],"decisions":[],"refinements":[],"pasr":null,"lessons":[],"answer":null,',
    '"error":null,"simulated":false,"__start__":{},"__pregel_tasks":[]},"channel_versions":{},',
    '"versions_seen":{},"refinery_delta":{"depth":1,"appended":{"drafts":[],"critiques":[],',
    '"verdicts":[]},"removed":{"values":["branch:to:verify"]}}}',
  ].join(""),
);

/** The first byte of a packed JSON document: deflated with STATE_DICTIONARY. */
const PACKED_V1 = 1;

/**
 * `value` as JSON for a SQLite column: the text itself when shorter than `minLength` characters
 * or when packing saves nothing, else a BLOB (PACKED_V1, then the deflated text). Measured on the default refine run's
 * final state (bench:storage): 2,724 bytes of text, 652 deflated, 372 with the dictionary.
 * Thread values (sqlite/storage.ts) and run outcome bodies (sqlite/learning-records.ts) use it.
 */
export function packJson(value: unknown, minLength = 256): string | Buffer {
  const text = JSON.stringify(value ?? null);
  if (text.length < minLength) return text;
  const deflated = deflateRawSync(text, { level: 9, dictionary: STATE_DICTIONARY });
  if (deflated.length + 1 >= Buffer.byteLength(text)) return text;
  return Buffer.concat([Buffer.of(PACKED_V1), deflated]);
}

/**
 * The JSON text of a column packJson wrote, or of what older rows hold: plain text, or (outcome
 * bodies before packJson) raw deflate without a dictionary or a format byte. Those never start
 * with PACKED_V1: a raw deflate stream's first byte carries its first block's type in bits 1-2,
 * and a byte of 1 is a final stored (uncompressed) block, which is longer than its input, so it
 * was never kept.
 */
export function jsonText(stored: unknown): string | null {
  if (stored === null || stored === undefined) return null;
  if (typeof stored === "string") return stored;
  if (stored instanceof Uint8Array) {
    return stored[0] === PACKED_V1
      ? inflateRawSync(stored.subarray(1), { dictionary: STATE_DICTIONARY }).toString("utf8")
      : inflateRawSync(stored).toString("utf8");
  }
  return String(stored);
}
