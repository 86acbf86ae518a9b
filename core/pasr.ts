// Streaming parser for PASR output (Proactive Self-Refinement, Han et al., arXiv 2508.12903):
// `<think> ... <refine> ... </refine> ... </think><answer> ... </answer>`. Pure: no I/O.
//
// Decisions (the tests pin each one):
// - Tags are case-insensitive. Up to PASR_MAX_TAG_SPACE spaces or tabs are tolerated after `<`,
//   around `/` and before `>` (`< /Refine >` is a tag); newlines inside the brackets are not, and
//   attributes are not supported, so `a <\nanswer` or `<answer id="1">` stay literal text. That
//   keeps a partial tag at most PASR_MAX_TAG_LENGTH characters long, which bounds the buffer.
// - Errors (ok = false): no closed, non-empty `<answer>` block; unclosed `<think>`, `<refine>` or
//   `<answer>`; `<refine>` outside `<think>`; `<refine>` nested in `<refine>`; `<answer>` inside
//   `<think>`; a second `<answer>` or `<think>` block; any other misplaced or stray tag.
// - Warnings (ok stays true): non-whitespace text before `<think>`, between `</think>` and
//   `<answer>`, or after `</answer>` (the answer is already fully delimited, and trailing
//   end-of-turn tokens are common); no `<think>` block at all; an empty `<refine></refine>`,
//   which revises nothing and is therefore neither emitted nor counted (the paper penalises
//   pointless refinement).
// - Recovery: a misplaced tag is reported once, does not change the state and stays in the
//   surrounding text verbatim; its matching closing tag in the same block is swallowed, so one
//   mistake gives one error rather than a cascade. `</think>` while a `<refine>` is open closes
//   both (that refine is not emitted). A second `<think>` re-opens thinking so its refines still
//   parse; a second `<answer>` is skipped and the first answer kept. Tags after `</answer>` are
//   trailing text. Events are emitted for whatever is locally well-formed, even after an error.
// - Refinement `index` counts from 0; `offset` is where its `<refine>` tag starts in the whole
//   input and `end` is just past its `</refine>` (UTF-16 code units). Refine and answer texts are
//   trimmed; `think` is the trimmed inner text of `<think>` with its `<refine>` markup kept
//   verbatim; `thinkSpan` and `answerSpan` are the untrimmed inner ranges of the two blocks.
// - A think block opened before the output (chat templates such as Qwen3's or DeepSeek-R1's end
//   the prompt with `<think>`, so the completion has only the `</think>`) is detected: until the
//   first `<think>`, `</think>` or `<answer>` tag both readings are parsed, and a `</think>` first
//   means the output began inside the think block (`implicitThink`). Refine events in such a block
//   are emitted when its `</think>` arrives. Output with none of the three tags is read as having
//   no think block. `{ inThink: true }` skips the detection (the caller knows the output starts
//   inside the block), and `endThink()` closes the block without a tag, for endpoints that send
//   the reasoning in a separate field (`reasoning_content`): push the reasoning, call
//   `endThink()`, push the content; offsets then count through the reasoning into the content.

/** Longest run of spaces/tabs tolerated at each whitespace position inside a tag. */
export const PASR_MAX_TAG_SPACE = 4;
/** Longest possible tag, e.g. `<    /    answer    >`; also the bound on `bufferedLength`. */
export const PASR_MAX_TAG_LENGTH = 1 + 3 * PASR_MAX_TAG_SPACE + 1 + "answer".length + 1;

export const PASR_SYSTEM_PROMPT = `You are a helpful assistant with proactive self-refinement: you may improve your reasoning while you are still writing it, instead of only after you have finished.

Structure every response exactly like this, with each of the two outer blocks used exactly once:
<think>your reasoning, with zero or more <refine>...</refine> segments inside it</think><answer>your final answer</answer>

Inside <think>:
1. Start with an initial line of reasoning about how to approach the task.
2. Refinement is optional. Insert a <refine>...</refine> segment only when you notice one of these:
   - an error in what you have written so far (error correction);
   - information that is missing and needed (information complement);
   - a clearly better approach or solution than the current one (solution improvement);
   - a drift away from what the task actually asks (task alignment).
   In the segment, state what is wrong or missing and give the corrected content. Never refine just to restate or confirm: if nothing needs changing, keep reasoning without a <refine> segment.
3. After a refinement, continue your reasoning from the revised content, not from the version it replaced. You may refine as many times as needed.
4. <refine> segments appear only inside <think> and are never nested.

After </think>, write the final answer inside <answer>...</answer> and nothing after it. The answer must stand on its own: do not refer to the thinking.`;

export type PasrEvent =
  | { type: "think_start" }
  | { type: "refine"; index: number; text: string; offset: number; end: number }
  | { type: "answer"; text: string };

export interface PasrRefinement {
  /** Position among the emitted refinements, from 0. */
  index: number;
  text: string;
  /** Where the `<refine>` tag starts in the whole input. */
  offset: number;
  /** Just past the `</refine>` tag. */
  end: number;
}

/** A range of the input, `start` included, `end` excluded. */
export interface PasrSpan {
  start: number;
  end: number;
}

export interface PasrResult {
  ok: boolean;
  answer?: string;
  think?: string;
  /** Inner text of the think block(s), from after `<think>` to where `</think>` starts. */
  thinkSpan?: PasrSpan;
  /** True when the output began inside the think block (no `<think>` tag of its own). */
  implicitThink?: true;
  /** Inner text of the kept `<answer>` block. */
  answerSpan?: PasrSpan;
  refinements: PasrRefinement[];
  errors: string[];
  /** Format deviations that do not make the answer unusable; `ok` ignores them. */
  warnings: string[];
}

type TagName = "think" | "refine" | "answer";
const TAG_NAMES: readonly TagName[] = ["think", "refine", "answer"];

type TagMatch =
  | { kind: "tag"; name: TagName; closing: boolean; end: number }
  | { kind: "text" }
  | { kind: "partial" };

type State = "before" | "think" | "refine" | "after_think" | "answer" | "done" | "extra_answer";

function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t";
}

/** Skips up to PASR_MAX_TAG_SPACE spaces/tabs; -1 when the run is longer (then it is text). */
function skipSpace(s: string, j: number): number {
  let n = 0;
  while (j < s.length && isSpace(s[j])) {
    j++;
    if (++n > PASR_MAX_TAG_SPACE) return -1;
  }
  return j;
}

/**
 * Classifies the `<` at `i`: a complete tag, literal text, or "partial" when the buffer ends
 * before the answer is known. Looks at no more than PASR_MAX_TAG_LENGTH characters.
 */
function matchTag(s: string, i: number): TagMatch {
  let j = skipSpace(s, i + 1);
  if (j < 0) return { kind: "text" };
  if (j === s.length) return { kind: "partial" };
  let closing = false;
  if (s[j] === "/") {
    closing = true;
    j = skipSpace(s, j + 1);
    if (j < 0) return { kind: "text" };
    if (j === s.length) return { kind: "partial" };
  }
  const start = j;
  while (j < s.length && j - start < 6 && /[a-z]/i.test(s[j] ?? "")) j++;
  const word = s.slice(start, j).toLowerCase();
  if (j === s.length) {
    return TAG_NAMES.some((n) => n.startsWith(word)) ? { kind: "partial" } : { kind: "text" };
  }
  const name = TAG_NAMES.find((n) => n === word);
  if (!name) return { kind: "text" };
  j = skipSpace(s, j);
  if (j < 0) return { kind: "text" };
  if (j === s.length) return { kind: "partial" };
  if (s[j] !== ">") return { kind: "text" };
  return { kind: "tag", name, closing, end: j + 1 };
}

const HAS_TEXT = /\S/;

/** One reading of the output; PasrStreamParser runs one or two of them. */
class PasrMachine {
  // Unparsed tail: empty, or a `<` that may still become a tag, plus what follows it.
  private pending = "";
  // Characters of the input before `pending[0]`, so tag offsets are absolute.
  private consumed = 0;
  private state: State = "before";
  private ended: PasrResult | undefined;
  private readonly implicit: boolean;
  private startEvents: PasrEvent[] = [];
  /** Offset of the tag that ended the `before` state (`<think>`, `<answer>`). */
  leftBeforeAt: number | undefined;
  /** Offset of the first `</think>` that closed a think block. */
  closedThinkAt: number | undefined;

  private sawThink = false;
  private thinkStart = 0;
  private thinkEnd: number | undefined;
  private answerStart = 0;
  private answerSpan: PasrSpan | undefined;
  private answerOpened = false;
  private thinkOffset = 0;
  private refineOffset = 0;
  private answerOffset = 0;
  private readonly thinkParts: string[] = [];
  private refineParts: string[] = [];
  private readonly answerParts: string[] = [];
  private answer: string | undefined;
  private readonly refinements: PasrRefinement[] = [];
  private readonly errors: string[] = [];
  private readonly warnings: string[] = [];
  private readonly warned = new Set<string>();
  // Misplaced opening tags whose closing partner should be swallowed rather than reported.
  private readonly ignoredOpen: Record<TagName, number> = { think: 0, refine: 0, answer: 0 };

  /** `implicit`: the output starts inside a think block opened before it. */
  constructor(implicit: boolean) {
    this.implicit = implicit;
    if (implicit) {
      this.sawThink = true;
      this.state = "think";
      this.startEvents = [{ type: "think_start" }];
    }
  }

  /** Characters held back as a possible partial tag; never above PASR_MAX_TAG_LENGTH. */
  get bufferedLength(): number {
    return this.pending.length;
  }

  push(chunk: string): PasrEvent[] {
    if (this.ended) throw new Error("PasrStreamParser.push called after end()");
    const events: PasrEvent[] = this.startEvents;
    this.startEvents = [];
    const s = this.pending + chunk;
    let pos = 0; // start of the text not yet handed on
    let scan = 0; // where to look for the next `<`
    for (;;) {
      const lt = s.indexOf("<", scan);
      if (lt < 0) {
        this.text(s.slice(pos));
        pos = s.length;
        break;
      }
      const m = matchTag(s, lt);
      if (m.kind === "text") {
        scan = lt + 1;
        continue;
      }
      this.text(s.slice(pos, lt));
      if (m.kind === "partial") {
        pos = lt;
        break;
      }
      this.tag(m.name, m.closing, s.slice(lt, m.end), this.consumed + lt, events);
      pos = scan = m.end;
    }
    this.consumed += pos;
    this.pending = s.slice(pos);
    return events;
  }

  /** Closes the think block without a tag (the reasoning came in a field of its own). */
  endThink(): void {
    if (this.ended) throw new Error("PasrStreamParser.endThink called after end()");
    this.flushPending();
    if (this.state === "refine") {
      this.errors.push(
        `unclosed <refine> (opened at offset ${this.refineOffset}): the reasoning ended first`,
      );
    }
    if (this.state === "think" || this.state === "refine") {
      this.thinkEnd = this.consumed;
      this.setState("after_think");
    }
  }

  end(): PasrResult {
    if (this.ended) return this.ended;
    this.flushPending();
    const unclosedThink = this.implicit
      ? "unclosed <think> (opened before the output, by the chat template or a reasoning field)"
      : `unclosed <think> (opened at offset ${this.thinkOffset})`;
    switch (this.state) {
      case "refine":
        this.errors.push(`unclosed <refine> (opened at offset ${this.refineOffset})`);
        this.errors.push(unclosedThink);
        this.thinkEnd = this.consumed;
        break;
      case "think":
        this.errors.push(unclosedThink);
        this.thinkEnd = this.consumed;
        break;
      case "answer":
        this.errors.push(`unclosed <answer> (opened at offset ${this.answerOffset})`);
        break;
      case "extra_answer":
        this.errors.push(`unclosed second <answer> (opened at offset ${this.answerOffset})`);
        break;
      default:
        break;
    }
    // An opened answer that is unclosed or empty has its own, more precise error.
    if (this.answer === undefined && !this.answerOpened) {
      this.errors.push("no <answer> block: the output must end with <answer>...</answer>");
    }
    const think = this.sawThink ? this.thinkParts.join("").trim() : undefined;
    this.ended = {
      ok: this.errors.length === 0 && this.answer !== undefined,
      ...(this.answer === undefined ? {} : { answer: this.answer }),
      ...(think === undefined ? {} : { think }),
      ...(think === undefined || this.thinkEnd === undefined
        ? {}
        : { thinkSpan: { start: this.thinkStart, end: this.thinkEnd } }),
      ...(this.implicit ? { implicitThink: true as const } : {}),
      ...(this.answer === undefined || !this.answerSpan ? {} : { answerSpan: this.answerSpan }),
      refinements: this.refinements,
      errors: this.errors,
      warnings: this.warnings,
    };
    return this.ended;
  }

  /** Whatever is held back never became a tag, so it is plain text. */
  private flushPending(): void {
    this.text(this.pending);
    this.consumed += this.pending.length;
    this.pending = "";
  }

  private setState(state: State): void {
    this.state = state;
    // A misplaced tag's partner is only swallowed within the block it appeared in; otherwise a
    // stray `<answer>` inside `<think>` would swallow the real `</answer>` later.
    this.ignoredOpen.think = this.ignoredOpen.refine = this.ignoredOpen.answer = 0;
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warnings.push(message);
  }

  private text(t: string): void {
    if (t === "") return;
    switch (this.state) {
      case "before":
        if (!this.warned.has("before") && HAS_TEXT.test(t)) {
          this.warnOnce("before", "text before <think> is ignored");
        }
        break;
      case "think":
        this.thinkParts.push(t);
        break;
      case "refine":
        this.thinkParts.push(t);
        this.refineParts.push(t);
        break;
      case "after_think":
        if (!this.warned.has("between") && HAS_TEXT.test(t)) {
          this.warnOnce("between", "text between </think> and <answer> is ignored");
        }
        break;
      case "answer":
        this.answerParts.push(t);
        break;
      case "done":
        if (!this.warned.has("after") && HAS_TEXT.test(t)) {
          this.warnOnce("after", "text after </answer> is ignored");
        }
        break;
      case "extra_answer":
        break;
    }
  }

  /** Reports a misplaced tag, keeps it as text, and arranges to swallow its closing partner. */
  private misplaced(name: TagName, closing: boolean, raw: string, message: string): void {
    if (closing) {
      if (this.ignoredOpen[name] > 0) {
        this.ignoredOpen[name]--;
      } else {
        this.errors.push(message);
      }
    } else {
      this.ignoredOpen[name]++;
      this.errors.push(message);
    }
    // Kept verbatim where text is collected, so nothing the model wrote vanishes; elsewhere the
    // error already says enough and a text warning would only repeat it.
    if (this.state === "think" || this.state === "refine" || this.state === "answer") {
      this.text(raw);
    }
  }

  private tag(
    name: TagName,
    closing: boolean,
    raw: string,
    offset: number,
    events: PasrEvent[],
  ): void {
    const stray = `</${name}> at offset ${offset} has no matching <${name}>`;
    switch (this.state) {
      case "before":
        if (name === "think" && !closing) {
          this.leftBeforeAt = offset;
          this.sawThink = true;
          this.thinkOffset = offset;
          this.thinkStart = offset + raw.length;
          this.setState("think");
          events.push({ type: "think_start" });
        } else if (name === "answer" && !closing) {
          this.leftBeforeAt = offset;
          this.warnings.push("no <think> block before <answer>");
          this.openAnswer(offset, offset + raw.length);
        } else if (name === "refine" && !closing) {
          this.misplaced(name, closing, raw, `<refine> at offset ${offset} is outside <think>`);
        } else {
          this.misplaced(name, closing, raw, stray);
        }
        return;

      case "think":
        if (name === "think" && closing) {
          if (this.ignoredOpen.think > 0) this.misplaced(name, closing, raw, stray);
          else this.closeThink(offset);
        } else if (name === "refine" && !closing) {
          this.thinkParts.push(raw);
          this.refineOffset = offset;
          this.refineParts = [];
          this.setState("refine");
        } else if (name === "answer" && !closing) {
          this.misplaced(
            name,
            closing,
            raw,
            `<answer> at offset ${offset} is inside <think>: close </think> first`,
          );
        } else if (name === "think") {
          this.misplaced(name, closing, raw, `nested <think> at offset ${offset}`);
        } else {
          this.misplaced(name, closing, raw, stray);
        }
        return;

      case "refine":
        if (name === "refine" && closing) {
          if (this.ignoredOpen.refine > 0) this.misplaced(name, closing, raw, stray);
          else this.closeRefine(raw, offset + raw.length, events);
        } else if (name === "think" && closing && this.ignoredOpen.think === 0) {
          this.errors.push(
            `unclosed <refine> (opened at offset ${this.refineOffset}): </think> at offset ${offset} came first`,
          );
          this.closeThink(offset);
        } else if (name === "refine") {
          this.misplaced(
            name,
            closing,
            raw,
            `nested <refine> at offset ${offset} inside <refine> opened at offset ${this.refineOffset}`,
          );
        } else if (name === "answer" && !closing) {
          this.misplaced(
            name,
            closing,
            raw,
            `<answer> at offset ${offset} is inside <think>: close </think> first`,
          );
        } else if (name === "think" && !closing) {
          this.misplaced(name, closing, raw, `nested <think> at offset ${offset}`);
        } else {
          this.misplaced(name, closing, raw, stray);
        }
        return;

      case "after_think":
        if (name === "answer" && !closing) {
          this.openAnswer(offset, offset + raw.length);
        } else if (name === "think" && !closing) {
          // Re-entering keeps any refinements in the second block parseable; one error only.
          this.errors.push(`more than one <think> block (second at offset ${offset})`);
          this.thinkParts.push("\n");
          this.setState("think");
        } else if (name === "refine" && !closing) {
          this.misplaced(name, closing, raw, `<refine> at offset ${offset} is outside <think>`);
        } else {
          this.misplaced(name, closing, raw, stray);
        }
        return;

      case "answer":
        if (name === "answer" && closing && this.ignoredOpen.answer === 0) {
          this.closeAnswer(offset, events);
        } else if (!closing) {
          this.misplaced(name, closing, raw, `<${name}> at offset ${offset} is inside <answer>`);
        } else {
          this.misplaced(name, closing, raw, stray);
        }
        return;

      case "done":
        if (name === "answer" && !closing) {
          this.errors.push(`more than one <answer> block (second at offset ${offset})`);
          this.answerOffset = offset;
          this.setState("extra_answer");
        } else {
          this.text(raw);
        }
        return;

      case "extra_answer":
        if (name === "answer" && closing) this.setState("done");
        return;
    }
  }

  /** `offset`: where the `<answer>` tag starts; `start`: just past it. */
  private openAnswer(offset: number, start: number): void {
    this.answerOffset = offset;
    this.answerStart = start;
    this.answerOpened = true;
    this.setState("answer");
  }

  private closeThink(offset: number): void {
    this.closedThinkAt ??= offset;
    this.thinkEnd = offset;
    this.setState("after_think");
  }

  private closeRefine(raw: string, end: number, events: PasrEvent[]): void {
    this.thinkParts.push(raw);
    this.setState("think");
    const text = this.refineParts.join("").trim();
    this.refineParts = [];
    if (text === "") {
      this.warnings.push(`empty <refine> at offset ${this.refineOffset} is ignored`);
      return;
    }
    const index = this.refinements.length;
    this.refinements.push({ index, text, offset: this.refineOffset, end });
    events.push({ type: "refine", index, text, offset: this.refineOffset, end });
  }

  private closeAnswer(offset: number, events: PasrEvent[]): void {
    this.setState("done");
    const text = this.answerParts.join("").trim();
    if (text === "") {
      this.errors.push(`empty <answer> at offset ${this.answerOffset}`);
      return;
    }
    this.answer = text;
    this.answerSpan = { start: this.answerStart, end: offset };
    events.push({ type: "answer", text });
  }
}

export interface PasrParserOptions {
  /**
   * The output starts inside a think block opened before it (the caller knows: the reasoning
   * comes in a field of its own). Default: detected from the first think or answer tag.
   */
  inThink?: boolean;
}

/**
 * Parses PASR output chunk by chunk. Until the output shows whether it began inside a think
 * block (see the top of this file), it is read both ways and events are held back; from then on
 * only the matching reading runs and events come as their tags complete.
 */
export class PasrStreamParser {
  private chosen: PasrMachine | undefined;
  private readonly tagged: PasrMachine | undefined;
  private readonly implicit: PasrMachine | undefined;
  private heldTagged: PasrEvent[] = [];
  private heldImplicit: PasrEvent[] = [];

  constructor(options: PasrParserOptions = {}) {
    if (options.inThink) {
      this.chosen = new PasrMachine(true);
    } else {
      this.tagged = new PasrMachine(false);
      this.implicit = new PasrMachine(true);
    }
  }

  /** Characters held back as a possible partial tag; never above PASR_MAX_TAG_LENGTH. */
  get bufferedLength(): number {
    return (this.chosen ?? this.tagged)?.bufferedLength ?? 0;
  }

  push(chunk: string): PasrEvent[] {
    if (this.chosen) return this.chosen.push(chunk);
    const tagged = this.tagged as PasrMachine;
    const implicit = this.implicit as PasrMachine;
    this.heldTagged.push(...tagged.push(chunk));
    this.heldImplicit.push(...implicit.push(chunk));
    const a = tagged.leftBeforeAt;
    const b = implicit.closedThinkAt;
    if (a === undefined && b === undefined) return [];
    return b !== undefined && (a === undefined || b < a)
      ? this.choose(implicit, this.heldImplicit)
      : this.choose(tagged, this.heldTagged);
  }

  /**
   * Closes the think block without a tag: the reasoning, sent in a field of its own, is over and
   * the content follows. Only meaningful with `{ inThink: true }`; otherwise the output is taken
   * to have begun inside the think block.
   */
  endThink(): PasrEvent[] {
    const events = this.chosen ? [] : this.choose(this.implicit as PasrMachine, this.heldImplicit);
    (this.chosen as PasrMachine).endThink();
    return events;
  }

  /** The result; without a think or answer tag the output is read as having no think block. */
  end(): PasrResult {
    const machine = this.chosen ?? (this.tagged as PasrMachine);
    this.choose(machine, []);
    return machine.end();
  }

  private choose(machine: PasrMachine, held: PasrEvent[]): PasrEvent[] {
    this.chosen = machine;
    this.heldTagged = [];
    this.heldImplicit = [];
    return held;
  }
}

/** Parses a complete PASR output (same result as streaming it through PasrStreamParser). */
export function parsePasr(text: string): PasrResult {
  const parser = new PasrStreamParser();
  parser.push(text);
  return parser.end();
}
