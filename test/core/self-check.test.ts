// Tests for the self-check that decides whether a draft is worth an LLM critique: each signal
// fires on the drafts it targets and stays quiet on clean ones, and over the simulated model's
// first drafts it flags the wrong ones and leaves the correct ones alone.
import { describe, expect, it } from "vitest";
import { SimulatedChatModel } from "../../core/models/simulated.ts";
import { DEFAULT_PROMPTS } from "../../core/prompts.ts";
import { asksForJson, asksForSingleValue, isSoftDoubt, selfCheck } from "../../core/self-check.ts";
import { buildMessages } from "../../nodes/support.ts";

const MATH = "What is 17 * 23 + 4?";
const CLEAN = "Step 1: 17 * 23 = 391\nStep 2: 391 + 4 = 395\nAnswer: 395";

/** The signal names (the text before the first colon) of the reasons. */
function signals(draft: string, task: string): string[] {
  return selfCheck(draft, task).reasons.map((r) => r.slice(0, r.indexOf(":")));
}

describe("selfCheck: a clean draft", () => {
  it.each([
    [MATH, CLEAN],
    [MATH, "395"],
    ["How many legs do 3 spiders have?", "Each spider has 8 legs, so 3 * 8 = 24.\n\n#### 24"],
    ["Compute 10 / 3.", "10 / 3 = 3.33\n\\boxed{3.33}"],
    ["What is the capital of France?", "Paris is the capital of France."],
    ["Return JSON with fields name and age.", '```json\n{"name": "Ada", "age": 36}\n```'],
    [
      "Explain how caching helps a web server.",
      "Caching keeps answers close to where they are needed.\n\n- Fewer database reads\n- Lower latency",
    ],
    ["What do you think of TypeScript?", "I think TypeScript pays for itself in large codebases."],
    ["What is 2 + 2?", "<think>Maybe 5? No: 2 + 2 = 4.</think><answer>4</answer>"],
  ])("%j is not doubtful", (task, draft) => {
    expect(selfCheck(draft, task)).toEqual({ doubtful: false, reasons: [] });
  });
});

describe("selfCheck: each signal", () => {
  it("flags a wrong arithmetic step, naming it", () => {
    const result = selfCheck("Step 1: 17 * 23 = 393\nStep 2: 393 + 4 = 397\nAnswer: 397", MATH);
    expect(result).toEqual({
      doubtful: true,
      reasons: ['arithmetic slip: line 1: step "17 * 23 = 393" is wrong: 17 * 23 = 391'],
    });
  });

  it("lists at most three wrong steps", () => {
    const draft = [1, 2, 3, 4, 5].map((n) => `${n} + ${n} = ${n * 3}`).join("\n") + "\nAnswer: 1";
    const reasons = selfCheck(draft, MATH).reasons;
    expect(reasons).toHaveLength(4);
    expect(reasons.at(-1)).toBe("arithmetic slip: and 2 more wrong steps");
  });

  it.each([
    ["I think", "I think 17 * 23 + 4 = 395.\nAnswer: 395"],
    ["not sure", "17 * 23 + 4 = 395, but I'm not sure.\nAnswer: 395"],
    ["unsure", "I’m unsure; 17 * 23 + 4 = 395.\nAnswer: 395"],
    ["probably", "It is probably 395.\nAnswer: 395"],
    ["might be", "The answer might be 395.\nAnswer: 395"],
  ])("flags hedging (%s)", (phrase, draft) => {
    const reasons = selfCheck(draft, MATH).reasons;
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/^hedging: the draft says /);
    expect(reasons[0]?.toLowerCase()).toContain(phrase.replace("’", "'").toLowerCase().slice(-6));
  });

  it("lets 'probably' and 'might be' through in prose tasks, where they are content", () => {
    const draft = "Readers might be surprised: the probably apocryphal story is still told.";
    expect(selfCheck(draft, "Write a short note on the history of the story.").doubtful).toBe(
      false,
    );
    expect(signals("I think this is right. Answer: 7", "Write a haiku.")).toEqual(["hedging"]);
  });

  it("flags an approximate value only when the task wants an exact one", () => {
    const draft = "120 / 7 is approximately 17.14.\nAnswer: 17.14";
    expect(signals(draft, "What is 120 / 7?")).toEqual(["approximate answer"]);
    expect(signals(draft, "What is 120 / 7, rounded to two decimal places?")).toEqual([]);
    expect(signals("10 / 3 ≈ 3.33\nAnswer: 3.33", "Compute 10 / 3.")).toEqual([
      "approximate answer",
    ]);
    expect(signals("It takes about 5 minutes.", "Describe how to brew tea.")).toEqual([]);
  });

  it("flags a value task with no final answer marker, but not a bare one-line answer", () => {
    const draft = "First multiply: 17 * 23 = 391.\nThen add 4 to get 395.";
    expect(signals(draft, MATH)).toEqual(["no final answer"]);
    expect(signals(draft, "Show the working for 17 * 23 + 4 and explain it.")).toEqual([]);
    for (const marked of ["Answer: 395", "\\boxed{395}", "#### 395", "<answer>395</answer>"]) {
      expect(signals(`${draft}\n${marked}`, MATH)).toEqual([]);
    }
    expect(signals("395", MATH)).toEqual([]);
  });

  it("flags an empty draft", () => {
    expect(selfCheck("  \n", MATH)).toEqual({
      doubtful: true,
      reasons: ["empty: the draft is empty"],
    });
  });

  it.each([
    ["a trailing comma", "Caching helps in three ways. First, it cuts latency,"],
    ["a trailing function word", "Caching helps in three ways. First, it cuts the"],
    ["an unclosed code fence", "Here is the code.\n```ts\nconst x = 1;"],
    ["a dangling colon", "The steps are as follows:"],
    ["a cut-off sentence", "Caching helps. It keeps hot data in memory so that the server"],
    [
      "six words without a stop after punctuated sentences",
      "Caching helps. It keeps hot data close to readers",
    ],
  ])("flags a truncated draft: %s", (_what, draft) => {
    expect(signals(draft, "Explain how caching helps a web server.")).toEqual(["truncated"]);
  });

  it.each([
    ["a list", "Caching helps:\n\n- Fewer reads\n- Lower latency"],
    ["a heading-only structure", "# Caching\n\n## Benefits"],
    ["a short unpunctuated reply", "Caching cuts latency"],
    ["a final number", "The hit rate went from 40% to 95"],
    ["a marked answer", "We work it out, and then\nAnswer: 42"],
  ])("does not call %s truncated", (_what, draft) => {
    expect(signals(draft, "Explain how caching helps a web server.")).not.toContain("truncated");
  });

  it("flags a JSON task without parseable JSON", () => {
    const task = "Return a JSON object with fields name and age.";
    expect(signals("name: Ada, age: 36", task)).toEqual(["no JSON"]);
    expect(signals('{"name": "Ada", "age": 36', task)).toEqual(["no JSON"]);
    expect(signals('Here it is: {"name": "Ada", "age": 36}', task)).toEqual([]);
  });

  it("flags contradictory final answers, not repeated or unit-bearing ones", () => {
    expect(selfCheck("Answer: 10\nWait, that is off.\nFinal answer: 12", MATH).reasons).toEqual([
      'contradictory answers: the draft gives "10" and "12" as final answers',
    ]);
    expect(signals("Answer: 80 km/h\n#### 80", MATH)).toEqual([]);
    expect(signals("<answer>4</answer> ... <answer>5</answer>", MATH)).toEqual([
      "contradictory answers",
    ]);
    // Values tried inside <think> are reasoning, not answers.
    expect(signals("<think>Answer: 9</think>\nAnswer: 10", MATH)).toEqual([]);
  });
});

describe("asksForSingleValue / asksForJson", () => {
  it.each([
    [MATH, true],
    ["How many apples are left?", true],
    ["Calculate the area of a 3 by 4 rectangle.", true],
    ["What is the total cost of 3 pens at $2?", true],
    ["A plan costs 28 dollars plus 25 cents per text. What is his bill in dollars?", true],
    ["Two tickets cost 15 euros each. What are the costs for 4 people?", true],
    ["A room is 4 m by 5 m. What is the floor in square metres?", true],
    ["What is the capital of France in 1900?", false],
    ["Give only the number.", true],
    ["What is the capital of France?", false],
    ["What is the difference between TCP and UDP?", false],
    ["Explain how to calculate compound interest.", false],
    ["Write a function that computes 2 + 2.", false],
    ["Return the result of 2 + 2 as JSON.", false],
  ])("%j -> %s", (task, expected) => {
    expect(asksForSingleValue(task)).toBe(expected);
  });

  it("spots JSON tasks", () => {
    expect(asksForJson("Reply in JSON.")).toBe(true);
    expect(asksForJson("Reply in YAML.")).toBe(false);
  });
});

// Arithmetic tasks in a few shapes, numbers drawn from a seeded generator so the set is fixed.
function arithmeticTask(seed: number): string {
  let state = (seed * 2654435761) >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return 2 + (state % 98);
  };
  const [a, b, c, d] = [next(), next(), next(), next()];
  const shapes = [
    `What is ${a} * ${b} + ${c}?`,
    `What is (${a} + ${b}) * ${c} - ${d}?`,
    `Compute ${a} * ${b} - ${c} / ${d}.`,
    `How much is ${a} - ${b} * ${c}?`,
    `Calculate ${a} / ${d} * ${b} + ${c}.`,
  ];
  return shapes[seed % shapes.length] ?? `What is ${a} + ${b}?`;
}

describe("selfCheck on the simulated model's first drafts", () => {
  it("flags at least 95% of wrong drafts and at most 5% of correct ones over 200 tasks", async () => {
    let wrong = 0;
    let wrongFlagged = 0;
    let correct = 0;
    let correctFlagged = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const task = arithmeticTask(seed);
      // Slipped steps only: an invisible error (a misread operand) passes every cheap check by
      // design, see the next test.
      const model = new SimulatedChatModel({ seed, invisibleErrorRate: 0 });
      // The prompt the generate node sends for a fresh run (no context, no feedback yet).
      const messages = buildMessages(DEFAULT_PROMPTS.generate, {
        task,
        context_block: "",
        feedback_block: "",
      });
      const draft = (await model.invoke(messages, { refineryRole: "generate" })).text;
      const { doubtful } = selfCheck(draft, task);
      if (model.isCorrect(task, draft)) {
        correct++;
        if (doubtful) correctFlagged++;
      } else {
        wrong++;
        if (doubtful) wrongFlagged++;
      }
    }
    // Both populations must be large enough for the rates to mean something.
    expect(wrong).toBeGreaterThanOrEqual(30);
    expect(correct).toBeGreaterThanOrEqual(30);
    expect(wrongFlagged / wrong).toBeGreaterThanOrEqual(0.95);
    expect(correctFlagged / correct).toBeLessThanOrEqual(0.05);
  });

  it("does not see an invisible error: a misread operand with every step right passes it", async () => {
    let flagged = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const task = arithmeticTask(seed);
      const model = new SimulatedChatModel({
        seed,
        firstDraftErrorRate: 1,
        invisibleErrorRate: 1,
      });
      const messages = buildMessages(DEFAULT_PROMPTS.generate, {
        task,
        context_block: "",
        feedback_block: "",
      });
      const draft = (await model.invoke(messages, { refineryRole: "generate" })).text;
      expect(model.isCorrect(task, draft)).toBe(false);
      if (selfCheck(draft, task).doubtful) flagged++;
    }
    expect(flagged / 60).toBeLessThanOrEqual(0.1);
  });
});

describe("selfCheck: word problems without working", () => {
  it("doubts a bare value for a word problem (nothing deterministic can check it)", () => {
    const r = selfCheck(
      "Answer: 27",
      "A bakery sells muffins in boxes of 6. Priya buys 7 boxes and gives away 15. How many are left?",
    );
    expect(r.reasons).toEqual([expect.stringMatching(/^no working/)]);
  });
  it("trusts the same value when the working is shown and correct", () => {
    const r = selfCheck(
      "6 * 7 = 42\n42 - 15 = 27\nAnswer: 27",
      "A bakery sells muffins in boxes of 6. Priya buys 7 boxes and gives away 15. How many are left?",
    );
    expect(r.doubtful).toBe(false);
  });
  it("does not ask for working when the task is an explicit expression", () => {
    expect(selfCheck("Answer: 4", "What is 2 + 2?").doubtful).toBe(false);
  });
  it("counts reasoning kept apart from the draft (a PASR think block) as its working", () => {
    const task =
      "A bakery sells muffins in boxes of 6. Priya buys 7 boxes and gives away 15. How many are left?";
    for (const answer of ["\\boxed{27}", "Answer: 27", "There are \\boxed{27} left."]) {
      expect(selfCheck(answer, task).reasons, answer).toEqual([
        expect.stringMatching(/^no working/),
      ]);
      const working = "6 * 7 = 41<refine>6 * 7 = 42</refine>\n42 - 15 = 27";
      // Slips the think corrected itself are its business: only the draft is checked for them.
      expect(selfCheck(answer, task, { working }).doubtful, answer).toBe(false);
    }
  });
});

describe("isSoftDoubt", () => {
  it("tells doubts that name no defect from defects found in the draft", () => {
    const soft = selfCheck(
      "Step 1: think it through.\nAnswer: 27",
      "A bakery sells muffins in boxes of 6. Priya buys 7 boxes and gives away 15. How many are left?",
    );
    expect(soft.reasons.length).toBeGreaterThan(0);
    expect(soft.reasons.every(isSoftDoubt)).toBe(true);
    const slip = selfCheck("Step 1: 6 * 7 = 43\nAnswer: 28", "What is 6 * 7 - 15?");
    expect(slip.reasons.some((r) => !isSoftDoubt(r))).toBe(true);
    expect(isSoftDoubt('hedging: the draft says "maybe"')).toBe(true);
    expect(isSoftDoubt('approximate answer: the draft says "about 80"')).toBe(true);
    expect(isSoftDoubt('contradictory answers: the draft gives "3" and "4"')).toBe(false);
    expect(isSoftDoubt("no final answer: the task asks for a single value")).toBe(false);
  });
});
