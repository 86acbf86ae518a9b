// A cheap, deterministic "is this draft doubtful?" check. The proactive strategy runs it before
// paying for an LLM critique: a clean draft skips the critique, a doubtful one gets it, with the
// reasons as a head start. Signals are tuned for few false alarms, because a false alarm costs a
// critique's tokens while a miss is still caught by the verifiers.
import { cleanAnswer, extractFinalAnswer, parseNumbers } from "./verifiers/answer-match.ts";
import { checkArithmeticSteps, describeWrongStep } from "./verifiers/arithmetic-steps.ts";
import { extractJson, truncate } from "./verifiers/json-schema.ts";

export interface SelfCheckResult {
  doubtful: boolean;
  /** One line per signal, each starting with its name (`arithmetic slip: …`, `hedging: …`). */
  reasons: string[];
}

// Signals that only say the draft cannot be confirmed (nothing shown to check, a hedge, a rounded
// value), as opposed to a defect found in it (a slip, a contradiction, a missing answer).
const SOFT_SIGNALS = ["no working", "hedging", "approximate answer"];

/** True for a self-check reason that doubts the draft without naming a defect in it. */
export function isSoftDoubt(reason: string): boolean {
  return SOFT_SIGNALS.some((name) => reason.startsWith(`${name}:`));
}

// Enough to act on; a draft with more wrong steps is doubtful anyway.
const MAX_LISTED = 3;

export interface SelfCheckOptions {
  /**
   * Reasoning behind the draft kept apart from it (the think block of a PASR generation, whose
   * draft is the answer alone): it counts as the working shown, and is not itself checked.
   */
  working?: string;
}

/** Checks a draft against the task for signs that a critique would find something. */
export function selfCheck(
  draft: string,
  task: string,
  options: SelfCheckOptions = {},
): SelfCheckResult {
  if (draft.trim() === "") return { doubtful: true, reasons: ["empty: the draft is empty"] };
  const reasons: string[] = [];
  const wantsValue = asksForSingleValue(task);
  // Doubts, rough values and slips inside PASR <think> are the reasoning that the answer settles.
  // Blanked rather than removed, so that line numbers in the reasons still match the draft.
  const body = draft.replace(/<think>[\s\S]*?(?:<\/think>|$)/gi, (m) => m.replace(/[^\n]/g, " "));
  const marked = extractFinalAnswer(draft) !== undefined;

  if (!marked && endsMidSentence(draft)) {
    reasons.push(
      `truncated: the draft stops mid-sentence (…${JSON.stringify(lastWords(draft))}) with no final answer`,
    );
  }
  if (asksForJson(task)) {
    const json = extractJson(draft);
    if (json === undefined || typeof json.value !== "object" || json.value === null) {
      reasons.push(
        "no JSON: the task asks for JSON but the draft contains no parseable JSON object or array",
      );
    }
  }
  if (wantsValue && !marked && !isBareAnswer(draft)) {
    reasons.push(
      "no final answer: the task asks for a single value but the draft has no `Answer:` line, " +
        "\\boxed{}, `####` line or <answer> block",
    );
  }
  const answers = distinctFinalAnswers(draft);
  if (answers.length > 1) {
    const shown = answers.slice(0, MAX_LISTED).map((a) => JSON.stringify(truncate(a, 40)));
    reasons.push(`contradictory answers: the draft gives ${shown.join(" and ")} as final answers`);
  }

  const steps = checkArithmeticSteps(body);
  // A word problem's value computed from several numbers, with no computation shown, cannot be
  // checked by any deterministic verifier: that is exactly when a critique is worth its tokens.
  const wordProblem =
    (task.match(/\d+(?:\.\d+)?/g) ?? []).length >= 2 && !/\d\s*[-+*/×÷]\s*\(?\d/.test(task);
  const shown = options.working ? `${options.working}\n${draft}` : draft;
  if (wantsValue && marked && wordProblem && checkArithmeticSteps(shown).length === 0) {
    reasons.push("no working: the final value is not backed by any computation shown in the draft");
  }
  const wrong = steps.filter((s) => !s.correct);
  for (const step of wrong.slice(0, MAX_LISTED)) {
    reasons.push(`arithmetic slip: ${describeWrongStep(step)}`);
  }
  if (wrong.length > MAX_LISTED) {
    reasons.push(`arithmetic slip: and ${wrong.length - MAX_LISTED} more wrong steps`);
  }

  const hedges = findHedges(body, task, wantsValue);
  if (hedges.length > 0) {
    reasons.push(
      `hedging: the draft says ${hedges
        .slice(0, MAX_LISTED)
        .map((h) => JSON.stringify(h))
        .join(", ")}`,
    );
  }
  const approximate = wantsValue && !asksForEstimate(task) ? findApproximation(body) : undefined;
  if (approximate !== undefined) {
    reasons.push(
      `approximate answer: the draft says ${JSON.stringify(approximate)} but the task asks for an exact value`,
    );
  }
  return { doubtful: reasons.length > 0, reasons };
}

// ---------------------------------------------------------------------------------------------
// What the task asks for.

// Tasks that ask for prose or code around a number ("explain how to calculate") do not want a
// bare value, so a missing `Answer:` line there is no sign of trouble.
const OPEN_ENDED =
  /\b(?:write|implement|code|function|program|script|essay|explain|describe|summari[sz]e|list|discuss|compare|outline|draft|translate|story|poem|why)\b/i;
const VALUE_QUESTION = /\bhow (?:many|much|far|long|old|fast)\b/i;
const VALUE_VERB = /\b(?:compute|calculate|evaluate|solve|simplify)\b/i;
const WHAT_QUESTION = /\b(?:what|which)(?:'s|’s|\s+(?:is|was|are|were|will be))\b/i;
const ARITHMETIC_IN_TASK = /\d\s*[-+*/×÷x^]\s*\(?\s*\d/;
const QUANTITY_WORD =
  /\b(?:sum|total|product|difference|quotient|average|mean|median|value|result|remainder|percent(?:age)?|speed|area|volume|perimeter|costs?|prices?|bill|fee|fare|wage|salary|balance|profit|loss|distance|probability|number of)\b/i;
// "What is his bill in dollars?": a question asked in a unit wants a number.
const IN_UNIT =
  /\bin (?:dollars|euros|pounds|cents|yen|rupees|(?:square |cubic )?(?:kilo|centi|milli)?met(?:er|re)s|km|cm|mm|miles|feet|inches|grams|kilograms|kg|litres|liters|hours|minutes|seconds|days|weeks|months|years|percent)\b/i;
const EXPLICIT_VALUE =
  /\b(?:single|one) (?:number|value|word|integer)\b|\b(?:just|only) the (?:number|answer|value)\b|\bfinal answer\b|\banswer:/i;

/** True when the task wants one value (a number, a name), which drafts should mark as `Answer:`. */
export function asksForSingleValue(task: string): boolean {
  if (asksForJson(task)) return false;
  if (EXPLICIT_VALUE.test(task)) return true;
  if (OPEN_ENDED.test(task)) return false;
  if (VALUE_QUESTION.test(task) || VALUE_VERB.test(task)) return true;
  // "What is the difference between TCP and UDP?" wants prose; with numbers it wants a value.
  return (
    WHAT_QUESTION.test(task) &&
    (ARITHMETIC_IN_TASK.test(task) ||
      ((QUANTITY_WORD.test(task) || IN_UNIT.test(task)) && /\d/.test(task)))
  );
}

export function asksForJson(task: string): boolean {
  return /\bjson\b/i.test(task);
}

function asksForEstimate(task: string): boolean {
  return /\b(?:approximate(?:ly)?|approx|estimate[sd]?|roughly|about how|round(?:ed)?|nearest|decimal places?|significant (?:figures|digits))\b/i.test(
    task,
  );
}

// ---------------------------------------------------------------------------------------------
// Signals in the draft.

/** A one-line reply of a few words is its own final answer. */
function isBareAnswer(draft: string): boolean {
  const trimmed = draft.trim();
  return !trimmed.includes("\n") && trimmed.length <= 60;
}

const FUNCTION_WORDS = new Set(
  "the a an and or of to in with for is are was were that which because but so then as by from at on if we this its their our be".split(
    " ",
  ),
);

/** An unclosed code fence, or a last line that breaks off mid-sentence. */
function endsMidSentence(draft: string): boolean {
  const fences = draft.split("\n").filter((l) => /^\s*(```|~~~)/.test(l)).length;
  if (fences % 2 === 1) return true;
  const lines = draft.split("\n").filter((l) => l.trim() !== "");
  const last = (lines.at(-1) ?? "").trim().replace(/[*_]+$/, "");
  if (/[,;:([{\-–—/&+=]$/.test(last)) return true;
  const lastWord = /([A-Za-z]+)$/.exec(last)?.[1]?.toLowerCase();
  if (lastWord === undefined) return false;
  // Lists, tables, headings and quotes end without punctuation by convention.
  const structural = /^(?:[-*+•|#>]|\d+[.)]\s)/.test(last);
  if (FUNCTION_WORDS.has(lastWord) && !(structural && lines.length > 1)) return true;
  // A writer who ends sentences with punctuation and then stops six words into one without it
  // has most likely been cut off.
  const text = lines.join("\n");
  const sentenceEnd = [...text.matchAll(/[.!?]["')\]]?\s/g)].at(-1);
  if (structural || sentenceEnd === undefined) return false;
  const lastSentence = text.slice(sentenceEnd.index + sentenceEnd[0].length).trim();
  return lastSentence.split(/\s+/).length >= 6;
}

function lastWords(draft: string): string {
  const words = draft.trim().split(/\s+/);
  return words.slice(-6).join(" ");
}

/**
 * The distinct final answers the draft marks: all `<answer>` blocks when it has any (PASR output,
 * whose reasoning may try other values), else every marker line outside `<think>`. Values compare
 * by their first number when both have one, so `80 km/h` and `80` agree.
 */
function distinctFinalAnswers(draft: string): string[] {
  const blocks = [...draft.matchAll(/<answer>([\s\S]*?)(?:<\/answer>|$)/gi)]
    .map((m) => (m[1] ?? "").trim())
    .filter((inner) => inner !== "");
  const answers =
    blocks.length > 0
      ? blocks.map((inner) => extractFinalAnswer(inner)?.text ?? inner)
      : draft
          .replace(/<think>[\s\S]*?<\/think>/gi, "")
          .split("\n")
          .map((line) => extractFinalAnswer(line)?.text)
          .filter((text): text is string => text !== undefined);
  const byKey = new Map<string, string>();
  for (const answer of answers) {
    const cleaned = cleanAnswer(answer);
    const first = parseNumbers(cleaned)[0];
    const key =
      first === undefined
        ? `text:${cleaned.toLowerCase().replace(/\s+/g, " ")}`
        : `number:${Number(first.value.toPrecision(12))}`;
    if (!byKey.has(key)) byKey.set(key, cleaned);
  }
  return [...byKey.values()];
}

const APOSTROPHE = "['’]";

// First-person doubt is a hedge whatever the task; "probably" or "might be" in an essay is
// content, so those count only when the task asks for one value.
const SELF_DOUBT = [
  /\bI think\b/i,
  /\bI believe\b/i,
  /\bI guess\b/i,
  new RegExp(
    `\\bI${APOSTROPHE}?m (?:not (?:entirely |completely |totally |100% )?(?:sure|certain|confident)|unsure)\\b`,
    "i",
  ),
  /\bI am (?:not (?:entirely |completely |totally |100% )?(?:sure|certain|confident)|unsure)\b/i,
  /\bnot (?:entirely |completely |totally |100% )?sure\b/i,
  /\bunsure\b/i,
  /\b(?:I )?(?:may|might|could) be wrong\b/i,
  new RegExp(`\\bif I${APOSTROPHE}?m not mistaken\\b`, "i"),
];
const VALUE_DOUBT = [
  /\bprobably\b/i,
  /\bmight be\b/i,
  /\bmaybe\b/i,
  /\bperhaps\b/i,
  /\bpossibly\b/i,
];

function findHedges(draft: string, task: string, wantsValue: boolean): string[] {
  // Asked for an opinion, "I think" is the answer's form, not doubt about it.
  const opinion = /\b(?:you think|your (?:opinion|view|take)|do you believe|would you)\b/i.test(
    task,
  );
  const patterns = [...(opinion ? [] : SELF_DOUBT), ...(wantsValue ? VALUE_DOUBT : [])];
  const found: string[] = [];
  for (const pattern of patterns) {
    const m = pattern.exec(draft);
    if (m && !found.some((f) => f.toLowerCase().includes(m[0].toLowerCase()))) found.push(m[0]);
  }
  return found;
}

/** "approximately 80", "about 3.3", "≈ 3.33", "~ 80": an inexact value. */
function findApproximation(draft: string): string | undefined {
  const m =
    /\b(?:approximately|approx\.?|roughly|about|around|nearly|almost)\s*[$€£]?\s*-?\d[\d,.]*|(?:≈|~)\s*-?\d[\d,.]*/i.exec(
      draft,
    );
  return m?.[0].trim();
}
