// Multiple-choice answers: which option a reply chose. Models write "Answer: B", "(B)", "B) Paris",
// "**B**", "The answer is option B", or repeat the option's text; a bare capital A inside a
// sentence is an article, not a choice, so bare letters count only in a short marked answer.
import { extractFinalAnswer } from "./answer-match.ts";

export interface Choice {
  label: string;
  text: string;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The chosen label (as written in `choices`), or undefined when the reply names none clearly. */
export function extractChoice(reply: string, choices: readonly Choice[]): string | undefined {
  const labels = choices.map((c) => c.label);
  const alt = labels.map(escape).join("|");
  const marked = extractFinalAnswer(reply)?.text.trim();
  if (marked !== undefined) {
    const inMarked = choiceIn(marked, choices, alt, true);
    if (inMarked !== undefined) return inMarked;
  }
  // No (readable) marker: "the answer is (B)" / "answer: B" anywhere, the last one wins.
  const phrase = new RegExp(
    `(?:answer|option|choice)\\s*(?:is|:)?\\s*(?:option\\s*)?[(\\[]?\\*{0,2}(${alt})\\*{0,2}[)\\].:]?(?![\\w])`,
    "gi",
  );
  const said = [...reply.matchAll(phrase)]
    .map((m) => labelOf(m[1] ?? "", labels))
    .filter((l) => l !== undefined)
    .at(-1);
  if (said !== undefined) return said;
  const trimmed = reply.trim();
  if (trimmed.length <= 80 && !trimmed.includes("\n")) return choiceIn(trimmed, choices, alt, true);
  return undefined;
}

function choiceIn(
  text: string,
  choices: readonly Choice[],
  alt: string,
  short: boolean,
): string | undefined {
  const labels = choices.map((c) => c.label);
  const clean = text.replace(/^[*_`$\s]+|[*_`$\s.]+$/g, "");
  // "B", "(B)", "B)", "B.", "B: Paris", "Option B", "\text{(B)}"
  const lead = new RegExp(
    `^(?:\\\\text\\{)?(?:option\\s+|choice\\s+)?[([]?(${alt})(?:[)\\]]|[.:]|\\s*$|\\s+[-–—])`,
    "i",
  ).exec(clean);
  const led = lead?.[1] === undefined ? undefined : labelOf(lead[1], labels);
  if (led !== undefined) return led;
  const byText = choices.filter((c) => c.text.trim() !== "" && normal(clean) === normal(c.text));
  if (byText.length === 1) return byText[0]?.label;
  if (short) {
    const bracketed = [...clean.matchAll(new RegExp(`[([](${alt})[)\\]]`, "g"))].at(-1)?.[1];
    if (bracketed !== undefined) return labelOf(bracketed, labels);
  }
  return undefined;
}

// Case matters: "a" in "the answer is a dog" is an article, not option A.
function labelOf(found: string, labels: readonly string[]): string | undefined {
  return labels.find((l) => l === found);
}

function normal(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}
