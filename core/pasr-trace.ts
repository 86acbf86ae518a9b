// Reads one PASR-format generation as it streams, from the content and, when the endpoint sends
// it apart, the reasoning field, and keeps it whole as a PasrTrace (state.pasr). Pure: no I/O.
import { PasrStreamParser } from "./pasr.ts";
import type { PasrEvent, PasrResult } from "./pasr.ts";
import type { PasrTrace } from "./state.ts";

const HAS_TEXT = /\S/;

/**
 * Feeds a PASR parser from both channels of a reply. Reasoning that arrives apart from the
 * content is the think block (DeepSeek-R1, vLLM's reasoning parsers split the output at
 * `</think>`): it is parsed first and the block ends where the content begins, so positions
 * count through the reasoning into the content. Reasoning that is only whitespace (some servers
 * send `"\n\n"` when the model did not think) is no think block. Reasoning that comes after the
 * content has started is not parsed, with a warning.
 */
export class PasrReader {
  private parser: PasrStreamParser | undefined;
  private heldReasoning = "";
  private reasoningLength = 0;
  private contentStarted = false;
  private lateReasoning = false;

  reasoning(text: string): PasrEvent[] {
    if (this.contentStarted) {
      if (HAS_TEXT.test(text)) this.lateReasoning = true;
      return [];
    }
    if (!this.parser) {
      this.heldReasoning += text;
      if (!HAS_TEXT.test(this.heldReasoning)) return [];
      this.parser = new PasrStreamParser({ inThink: true });
      text = this.heldReasoning;
      this.heldReasoning = "";
    }
    this.reasoningLength += text.length;
    return this.parser.push(text);
  }

  content(text: string): PasrEvent[] {
    const events: PasrEvent[] = [];
    if (!this.contentStarted) {
      this.contentStarted = true;
      if (this.parser) events.push(...this.parser.endThink());
      else this.parser = new PasrStreamParser();
    }
    events.push(...(this.parser as PasrStreamParser).push(text));
    return events;
  }

  /** The parse result and the trace; `fallback` is left false for the caller to decide. */
  finish(): { result: PasrResult; trace: PasrTrace } {
    const fromReasoning = this.reasoningLength > 0;
    // Reasoning with no content after it still ended: what is missing is the answer.
    if (this.parser && !this.contentStarted) this.parser.endThink();
    const result = (this.parser ?? new PasrStreamParser()).end();
    const warnings = this.lateReasoning
      ? [...result.warnings, "reasoning sent after the content had started is not parsed"]
      : result.warnings;
    const trace: PasrTrace = {
      thinkSource: fromReasoning
        ? "reasoning_field"
        : result.implicitThink
          ? "template"
          : result.think === undefined
            ? "none"
            : "tag",
      positions: fromReasoning ? "reasoning+content" : "content",
      ...(fromReasoning ? { reasoningLength: this.reasoningLength } : {}),
      think: result.think ?? null,
      thinkSpan: result.thinkSpan ?? null,
      refinements: result.refinements.map((r) => ({
        index: r.index,
        text: r.text,
        start: r.offset,
        end: r.end,
      })),
      answer: result.answer ?? null,
      answerSpan: result.answerSpan ?? null,
      ok: result.ok,
      errors: result.errors,
      warnings,
      fallback: false,
    };
    return { result, trace };
  }
}
