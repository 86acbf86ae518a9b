// Tests for the PASR stream parser: structure errors, the documented decisions, and that
// streaming at any chunking gives exactly what parsing the whole text gives.
import { describe, expect, it } from "vitest";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import type { AIMessageChunk } from "@langchain/core/messages";
import {
  PASR_MAX_TAG_LENGTH,
  PASR_SYSTEM_PROMPT,
  PasrStreamParser,
  parsePasr,
} from "../../core/pasr.ts";
import type { PasrEvent, PasrResult } from "../../core/pasr.ts";
import { PasrChatModel, pasrReply } from "../support/pasr-model.ts";
import { mulberry32 } from "../../core/random.ts";

function streamed(chunks: string[]): { events: PasrEvent[]; result: PasrResult } {
  const parser = new PasrStreamParser();
  const events = chunks.flatMap((c) => parser.push(c));
  return { events, result: parser.end() };
}

const whole = (text: string) => streamed([text]);

function randomChunks(text: string, rand: () => number, maxSize: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const size = Math.floor(rand() * (maxSize + 1)); // 0 included: empty pushes must be harmless
    out.push(text.slice(i, i + size));
    i += size;
  }
  return out;
}

describe("parsePasr: well-formed output", () => {
  it("accepts zero refinements", () => {
    const r = parsePasr("<think>2 + 2 is 4.</think><answer>4</answer>");
    expect(r).toEqual({
      ok: true,
      answer: "4",
      think: "2 + 2 is 4.",
      thinkSpan: { start: 7, end: 18 },
      answerSpan: { start: 34, end: 35 },
      refinements: [],
      errors: [],
      warnings: [],
    });
  });

  it("accepts one refinement and reports its index and tag offset", () => {
    const text =
      "<think>Speed is 120 / 1.5 = 70.<refine>120 / 1.5 is 80, not 70.</refine>So 80 km/h.</think>\n<answer> 80 km/h </answer>";
    const r = parsePasr(text);
    expect(r.ok).toBe(true);
    expect(r.answer).toBe("80 km/h");
    expect(r.refinements).toEqual([
      {
        index: 0,
        text: "120 / 1.5 is 80, not 70.",
        offset: text.indexOf("<refine>"),
        end: text.indexOf("</refine>") + "</refine>".length,
      },
    ]);
    expect(r.think).toBe(
      "Speed is 120 / 1.5 = 70.<refine>120 / 1.5 is 80, not 70.</refine>So 80 km/h.",
    );
  });

  it("accepts several refinements in order, with trimmed texts", () => {
    const r = parsePasr(
      "<think>a<refine> first </refine>b<refine>\nsecond\n</refine>c<refine>third</refine></think><answer>x</answer>",
    );
    expect(r.ok).toBe(true);
    expect(r.refinements.map((x) => [x.index, x.text])).toEqual([
      [0, "first"],
      [1, "second"],
      [2, "third"],
    ]);
  });

  it("is case-insensitive and tolerates spaces or tabs inside the brackets", () => {
    const r = parsePasr("<THINK>a< Refine\t>b</ REFINE >c</Think><Answer>ok< / answer >");
    expect(r.ok).toBe(true);
    expect(r.answer).toBe("ok");
    expect(r.refinements.map((x) => x.text)).toEqual(["b"]);
  });

  it("keeps tag-like text that is not a tag as literal text", () => {
    const r = parsePasr(
      '<think>x < y, <thinking>, <refinement>, <answer id="1">, <\nanswer>, <     answer></think><answer>3 < 4</answer>',
    );
    expect(r.ok).toBe(true);
    expect(r.answer).toBe("3 < 4");
    expect(r.think).toContain('<answer id="1">');
    expect(r.think).toContain("<     answer>"); // five spaces: over the tolerated run
  });
});

describe("parsePasr: positions", () => {
  it("gives spans that slice the think, each refine and the answer out of the input", () => {
    const text =
      "Sure.\n<think> a <refine> b </refine> c <refine>d</refine> </think>\n< answer > 42 </answer>";
    const r = parsePasr(text);
    expect(r.ok).toBe(true);
    const span = (s: { start: number; end: number } | undefined) =>
      s ? text.slice(s.start, s.end) : undefined;
    expect(span(r.thinkSpan)).toBe(" a <refine> b </refine> c <refine>d</refine> ");
    expect(span(r.thinkSpan)?.trim()).toBe(r.think);
    expect(r.refinements.map((x) => text.slice(x.offset, x.end))).toEqual([
      "<refine> b </refine>",
      "<refine>d</refine>",
    ]);
    expect(span(r.answerSpan)).toBe(" 42 ");
    expect(r.implicitThink).toBeUndefined();
  });

  it("ends the think span at end of input when the block is never closed", () => {
    const r = parsePasr("<think>abc");
    expect(r.thinkSpan).toEqual({ start: 7, end: 10 });
    expect(r.answerSpan).toBeUndefined();
  });
});

describe("parsePasr: a think block opened by the chat template", () => {
  it("reads output that starts inside <think> (only the closing tag) as its think block", () => {
    const text =
      "Speed = 120/1.5 = 70.<refine>120/1.5 is 80.</refine>So 80.</think><answer>80</answer>";
    const r = parsePasr(text);
    expect(r.ok).toBe(true);
    expect(r.implicitThink).toBe(true);
    expect(r.think).toBe("Speed = 120/1.5 = 70.<refine>120/1.5 is 80.</refine>So 80.");
    expect(r.thinkSpan).toEqual({ start: 0, end: text.indexOf("</think>") });
    expect(r.refinements).toEqual([
      {
        index: 0,
        text: "120/1.5 is 80.",
        offset: text.indexOf("<refine>"),
        end: text.indexOf("So 80"),
      },
    ]);
    expect(r.answer).toBe("80");
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
  });

  it("emits the held refine events when the closing </think> arrives", () => {
    const p = new PasrStreamParser();
    expect(p.push("a<refine>b</refine>c")).toEqual([]);
    expect(p.push("</think>")).toEqual([
      { type: "think_start" },
      { type: "refine", index: 0, text: "b", offset: 1, end: 19 },
    ]);
    expect(p.push("<answer>x</answer>")).toEqual([{ type: "answer", text: "x" }]);
    expect(p.end().implicitThink).toBe(true);
  });

  it("keeps the tagged reading when <think> or <answer> comes before any </think>", () => {
    const tagged = parsePasr("intro <think>t</think><answer>x</answer>");
    expect(tagged.implicitThink).toBeUndefined();
    expect(tagged.warnings).toEqual(["text before <think> is ignored"]);
    const bare = parsePasr("<answer>4</answer> then </think>");
    expect(bare.implicitThink).toBeUndefined();
    expect(bare.answer).toBe("4");
  });

  it("reads output with no think or answer tag as having no think block", () => {
    const r = parsePasr("just text <refine>r</refine>");
    expect(r.implicitThink).toBeUndefined();
    expect(r.think).toBeUndefined();
    expect(r.errors).toEqual([
      "<refine> at offset 10 is outside <think>",
      expect.stringMatching(/^no <answer> block/),
    ]);
  });
});

describe("PasrStreamParser: reasoning in a field of its own", () => {
  it("parses the reasoning as the think block and the content after endThink()", () => {
    const reasoning = "2 + 2 = 5?<refine>No: 2 + 2 = 4.</refine>Done.";
    const content = "<answer>\\boxed{4}</answer>";
    const p = new PasrStreamParser({ inThink: true });
    const events = [...p.push(reasoning.slice(0, 13)), ...p.push(reasoning.slice(13))];
    events.push(...p.endThink(), ...p.push(content));
    expect(events).toEqual([
      { type: "think_start" },
      {
        type: "refine",
        index: 0,
        text: "No: 2 + 2 = 4.",
        offset: reasoning.indexOf("<refine>"),
        end: reasoning.indexOf("Done."),
      },
      { type: "answer", text: "\\boxed{4}" },
    ]);
    const r = p.end();
    expect(r.ok).toBe(true);
    expect(r.implicitThink).toBe(true);
    expect(r.thinkSpan).toEqual({ start: 0, end: reasoning.length });
    const both = reasoning + content;
    expect(both.slice(r.refinements[0]?.offset, r.refinements[0]?.end)).toBe(
      "<refine>No: 2 + 2 = 4.</refine>",
    );
    expect(both.slice(r.answerSpan?.start, r.answerSpan?.end)).toBe("\\boxed{4}");
  });

  it("turns a partial tag held at the end of the reasoning into text, and reports a refine left open", () => {
    const p = new PasrStreamParser({ inThink: true });
    p.push("a<refine>b <ans");
    p.endThink();
    p.push("<answer>x</answer>");
    const r = p.end();
    expect(r.errors).toEqual(["unclosed <refine> (opened at offset 1): the reasoning ended first"]);
    expect(r.think).toBe("a<refine>b <ans");
    expect(r.answer).toBe("x");
  });

  it("reports reasoning that never ends as an unclosed think block", () => {
    const p = new PasrStreamParser({ inThink: true });
    p.push("thinking forever");
    expect(p.end().errors).toEqual([
      "unclosed <think> (opened before the output, by the chat template or a reasoning field)",
      expect.stringMatching(/^no <answer> block/),
    ]);
  });
});

describe("parsePasr: errors", () => {
  it("reports a missing answer", () => {
    const r = parsePasr("<think>no conclusion</think>");
    expect(r.ok).toBe(false);
    expect(r.answer).toBeUndefined();
    expect(r.errors).toEqual([expect.stringMatching(/^no <answer> block/)]);
  });

  it("reports an empty answer precisely instead of 'no answer'", () => {
    const r = parsePasr("<think>t</think><answer>  </answer>");
    expect(r.ok).toBe(false);
    expect(r.errors).toEqual(["empty <answer> at offset 16"]);
  });

  it("reports a nested refine once and swallows its closing tag", () => {
    const r = parsePasr("<think>a<refine>b<refine>c</refine>d</refine></think><answer>x</answer>");
    expect(r.ok).toBe(false);
    expect(r.errors).toEqual(["nested <refine> at offset 17 inside <refine> opened at offset 8"]);
    expect(r.refinements.map((x) => x.text)).toEqual(["b<refine>c</refine>d"]);
    expect(r.answer).toBe("x");
  });

  it("reports an unclosed think", () => {
    const r = parsePasr("<think>still thinking");
    expect(r.ok).toBe(false);
    expect(r.errors).toEqual([
      "unclosed <think> (opened at offset 0)",
      expect.stringMatching(/^no <answer> block/),
    ]);
    expect(r.think).toBe("still thinking");
  });

  it("reports an unclosed refine at end of input", () => {
    const r = parsePasr("<think>a<refine>b");
    expect(r.errors).toEqual([
      "unclosed <refine> (opened at offset 8)",
      "unclosed <think> (opened at offset 0)",
      expect.stringMatching(/^no <answer> block/),
    ]);
  });

  it("reports a refine left open by </think> and emits no refinement for it", () => {
    const r = parsePasr("<think>a<refine>b</think><answer>x</answer>");
    expect(r.ok).toBe(false);
    expect(r.errors).toEqual([
      "unclosed <refine> (opened at offset 8): </think> at offset 17 came first",
    ]);
    expect(r.refinements).toEqual([]);
    expect(r.answer).toBe("x");
  });

  it("reports an unclosed answer and gives no answer", () => {
    const r = parsePasr("<think>t</think><answer>4");
    expect(r.ok).toBe(false);
    expect(r.answer).toBeUndefined();
    expect(r.errors).toEqual(["unclosed <answer> (opened at offset 16)"]);
  });

  it("reports an answer inside think (and that no valid answer followed)", () => {
    const r = parsePasr("<think>a<answer>4</answer></think>");
    expect(r.ok).toBe(false);
    expect(r.errors).toEqual([
      "<answer> at offset 8 is inside <think>: close </think> first",
      expect.stringMatching(/^no <answer> block/),
    ]);
  });

  it("does not let a misplaced <answer> swallow the real </answer> of a later block", () => {
    const r = parsePasr("<think>a<answer>x</think><answer>y</answer>");
    expect(r.errors).toEqual(["<answer> at offset 8 is inside <think>: close </think> first"]);
    expect(r.answer).toBe("y");
  });

  it("reports a refine outside think, before or after it", () => {
    const before = parsePasr("<refine>r</refine><think>t</think><answer>x</answer>");
    expect(before.ok).toBe(false);
    expect(before.errors).toEqual(["<refine> at offset 0 is outside <think>"]);
    expect(before.refinements).toEqual([]);

    const after = parsePasr("<think>t</think><refine>r</refine><answer>x</answer>");
    expect(after.errors).toEqual(["<refine> at offset 16 is outside <think>"]);
  });

  it("reports two answers and keeps the first", () => {
    const r = parsePasr("<think>t</think><answer>1</answer>\n<answer>2</answer>");
    expect(r.ok).toBe(false);
    expect(r.answer).toBe("1");
    expect(r.errors).toEqual(["more than one <answer> block (second at offset 35)"]);
    expect(r.warnings).toEqual([]);
  });

  it("reports stray closing tags", () => {
    const r = parsePasr("<think>t</refine></think><answer>x</answer>");
    expect(r.errors).toEqual(["</refine> at offset 8 has no matching <refine>"]);
  });

  it("reports a second think block but still parses its refinements", () => {
    const r = parsePasr("<think>a</think><think>b<refine>c</refine></think><answer>x</answer>");
    expect(r.errors).toEqual(["more than one <think> block (second at offset 16)"]);
    expect(r.refinements.map((x) => x.text)).toEqual(["c"]);
  });
});

describe("parsePasr: warnings (ok stays true)", () => {
  it("warns about text after </answer> but keeps the answer", () => {
    const r = parsePasr("<think>t</think><answer>4</answer>\n<|im_end|> trailing");
    expect(r.ok).toBe(true);
    expect(r.answer).toBe("4");
    expect(r.warnings).toEqual(["text after </answer> is ignored"]);
  });

  it("accepts whitespace after </answer> silently", () => {
    expect(parsePasr("<think>t</think><answer>4</answer>\n \t\n").warnings).toEqual([]);
  });

  it("warns about text before <think> and between </think> and <answer>", () => {
    const r = parsePasr("Sure!<think>t</think>So:<answer>4</answer>");
    expect(r.ok).toBe(true);
    expect(r.warnings).toEqual([
      "text before <think> is ignored",
      "text between </think> and <answer> is ignored",
    ]);
  });

  it("warns when there is no think block at all", () => {
    const r = parsePasr("<answer>4</answer>");
    expect(r.ok).toBe(true);
    expect(r.think).toBeUndefined();
    expect(r.warnings).toEqual(["no <think> block before <answer>"]);
  });

  it("ignores an empty refine with a warning, without using up an index", () => {
    const r = parsePasr(
      "<think>a<refine> \n</refine>b<refine>real</refine></think><answer>x</answer>",
    );
    expect(r.ok).toBe(true);
    expect(r.warnings).toEqual(["empty <refine> at offset 8 is ignored"]);
    expect(r.refinements).toEqual([{ index: 0, text: "real", offset: 28, end: 49 }]);
    const { events } = whole("<think>a<refine></refine></think><answer>x</answer>");
    expect(events.map((e) => e.type)).toEqual(["think_start", "answer"]);
  });
});

describe("PasrStreamParser: streaming", () => {
  const corpus = [
    "<think>Speed = 120/1.5 = 70.<refine>No: 120/1.5 = 80.</refine>So 80.<refine>Units: km/h.</refine></think>\n<answer>80 km/h</answer>",
    "<THINK>x < y <thinking> <ans <refine >a</ refine>< /think ><answer>3<4</answer>\n",
    "<think>a<refine>b<refine>c</refine>d</refine></think><answer>x</answer>",
    "<refine>r</refine><think>t<answer>x</think><answer>y</answer> tail <answer>z</answer>",
    "<think>a<refine>b</think><answer>unclosed",
    "pre<think>\t<refine></refine>< \t/\t refine >< answer </think>mid<answer>  ok  </answer><",
    "opened by the template <refine>a</refine> b <refine>c<refine>d</refine></ think >\n<answer>42</answer>",
    "a <thin <refine>x</refine></thinking> </think",
  ];

  for (const [n, text] of corpus.entries()) {
    it(`gives identical events and result at every single split point (corpus #${n})`, () => {
      const expected = whole(text);
      for (let k = 0; k <= text.length; k++) {
        expect(streamed([text.slice(0, k), text.slice(k)]), `split at ${k}`).toEqual(expected);
      }
      expect(streamed([...text]), "one character per push").toEqual(expected);
    });

    it(`gives identical events and result for seeded random chunkings (corpus #${n})`, () => {
      const expected = whole(text);
      const rand = mulberry32(1000 + n);
      for (let trial = 0; trial < 200; trial++) {
        const chunks = randomChunks(text, rand, 1 + (trial % 12));
        expect(streamed(chunks), `chunks ${JSON.stringify(chunks)}`).toEqual(expected);
      }
    });
  }

  it("emits think_start and each refine in the push that completes its tag", () => {
    const p = new PasrStreamParser();
    expect(p.push("<th")).toEqual([]);
    expect(p.push("ink>")).toEqual([{ type: "think_start" }]);
    expect(p.push("First try.<refine>Fix: 80")).toEqual([]);
    expect(p.push("</refine")).toEqual([]);
    expect(p.push(">")).toEqual([
      { type: "refine", index: 0, text: "Fix: 80", offset: 17, end: 41 },
    ]);
    expect(p.push("Then<re")).toEqual([]);
    expect(p.push("fine>Units</refine>More")).toEqual([
      { type: "refine", index: 1, text: "Units", offset: 45, end: 67 },
    ]);
    expect(p.push("</think><answer>80</answer")).toEqual([]);
    expect(p.push(">")).toEqual([{ type: "answer", text: "80" }]);
    expect(p.end().ok).toBe(true);
  });

  it("holds back only what could still be a tag", () => {
    const p = new PasrStreamParser();
    p.push("<think>a <");
    expect(p.bufferedLength).toBe(1);
    p.push(" b"); // `< b` cannot become a tag
    expect(p.bufferedLength).toBe(0);
    p.push("<    /    answer    ");
    expect(p.bufferedLength).toBe(PASR_MAX_TAG_LENGTH - 1);
    p.push(" "); // a fifth space: literal text after all
    expect(p.bufferedLength).toBe(0);
  });

  it("keeps the buffer bounded over a 1 MB input with tags and near-tags everywhere", () => {
    const unit =
      "step < 3 <thinkin <ans <    /    answe x<refine>fix < /refi ne >more <<<<   </refine>go ";
    const body = unit.repeat(Math.ceil(1_000_000 / unit.length));
    const text = `<think>${body}</think><answer>done</answer>`;
    const p = new PasrStreamParser();
    const rand = mulberry32(7);
    let i = 0;
    let maxBuffered = 0;
    let refines = 0;
    while (i < text.length) {
      const size = 1 + Math.floor(rand() * 64);
      refines += p.push(text.slice(i, i + size)).filter((e) => e.type === "refine").length;
      maxBuffered = Math.max(maxBuffered, p.bufferedLength);
      i += size;
    }
    const r = p.end();
    expect(maxBuffered).toBeLessThanOrEqual(PASR_MAX_TAG_LENGTH);
    expect(p.bufferedLength).toBe(0);
    expect(r.ok).toBe(true);
    expect(r.answer).toBe("done");
    expect(refines).toBe(Math.ceil(1_000_000 / unit.length));
    expect(r.refinements).toHaveLength(refines);
  });

  it("end() is idempotent and push() after end() throws", () => {
    const p = new PasrStreamParser();
    p.push("<think>t</think><answer>x</answer>");
    const r = p.end();
    expect(p.end()).toBe(r);
    expect(() => p.push("more")).toThrow(/after end/);
  });
});

describe("PASR_SYSTEM_PROMPT", () => {
  it("states the format and that refinement is optional, naming the four kinds", () => {
    for (const s of ["<think>", "</think>", "<refine>", "</refine>", "<answer>", "</answer>"]) {
      expect(PASR_SYSTEM_PROMPT).toContain(s);
    }
    expect(PASR_SYSTEM_PROMPT).toMatch(/optional/i);
    for (const kind of [
      "error correction",
      "information complement",
      "solution improvement",
      "task alignment",
    ]) {
      expect(PASR_SYSTEM_PROMPT).toContain(kind);
    }
  });
});

describe("PasrChatModel (test support)", () => {
  const reply = pasrReply({ think: "120/1.5 = 70", refines: ["120/1.5 = 80"], answer: "80" });
  const prompt = [new SystemMessage(PASR_SYSTEM_PROMPT), new HumanMessage("Speed?")];

  it("streams its reply in small chunks that the parser reassembles, with usage", async () => {
    const model = new PasrChatModel(reply, { chunkSize: 5 });
    const parser = new PasrStreamParser();
    const events: PasrEvent[] = [];
    let merged: AIMessageChunk | undefined;
    let chunks = 0;
    for await (const chunk of await model.stream(prompt)) {
      chunks++;
      events.push(...parser.push(String(chunk.content)));
      merged = merged ? merged.concat(chunk) : chunk;
    }
    expect(chunks).toBe(Math.ceil(reply.length / 5));
    expect(events).toEqual([
      { type: "think_start" },
      {
        type: "refine",
        index: 0,
        text: "120/1.5 = 80",
        offset: reply.indexOf("<refine>"),
        end: reply.indexOf("</refine>") + "</refine>".length,
      },
      { type: "answer", text: "80" },
    ]);
    expect(parser.end().ok).toBe(true);
    expect(merged?.usage_metadata?.output_tokens).toBe(Math.ceil(reply.length / 4));
    expect(model.calls[0]?.streamed).toBe(true);
  });

  it("answers invoke() from a function of the prompt and reports fixed usage", async () => {
    const model = new PasrChatModel(
      (messages) => pasrReply({ answer: `echo ${String(messages.at(-1)?.content)}` }),
      { usage: { inputTokens: 11, outputTokens: 22 } },
    );
    const out = await model.invoke(prompt);
    expect(parsePasr(String(out.content)).answer).toBe("echo Speed?");
    expect(out.usage_metadata).toEqual({ input_tokens: 11, output_tokens: 22, total_tokens: 33 });
    expect(model.calls[0]?.messages[0]).toEqual({ type: "system", content: PASR_SYSTEM_PROMPT });
  });
});
