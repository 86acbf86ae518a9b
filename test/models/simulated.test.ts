// Tests for the offline simulated chat model: determinism, per-role behaviour, the arithmetic
// parser, aggregate rates against the parameters, token usage, abort, invoke and stream.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import type { AIMessageChunk, BaseMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { isRefineryError } from "../../core/errors.ts";
import { isVagueIssue } from "../../core/critique-parse.ts";
import { PASR_SYSTEM_PROMPT, parsePasr } from "../../core/pasr.ts";
import { checkArithmeticSteps } from "../../core/verifiers/arithmetic-steps.ts";
import {
  DEFAULT_SIMULATED_OPTIONS,
  SIMULATED_MODEL_NOTICE,
  SimulatedChatModel,
  createSimulatedModel,
  evaluateArithmetic,
  extractArithmetic,
  isSimulatedModel,
} from "../../core/models/simulated.ts";
import type { SimulatedModelOptions } from "../../core/models/simulated.ts";
import type { ModelRole } from "../../core/models/types.ts";
import { DEFAULT_PROMPTS, renderTemplate } from "../../core/prompts.ts";

const MODULE_PATH = fileURLToPath(new URL("../../core/models/simulated.ts", import.meta.url));

const CritiqueSchema = z.strictObject({
  verdict: z.enum(["pass", "revise"]),
  score: z.number().min(0).max(1),
  issues: z.array(z.string()),
});
const JudgeSchema = z.strictObject({ score: z.number().min(0).max(1), reason: z.string() });

function prompt(role: ModelRole, values: Record<string, string>): BaseMessage[] {
  const template = DEFAULT_PROMPTS[role];
  return [
    new SystemMessage(template.system),
    new HumanMessage(
      renderTemplate(template.user, {
        context_block: "",
        feedback_block: "",
        rubric: "The final answer must be correct.",
        failed_checks: "(all checks passed)",
        ...values,
      }),
    ),
  ];
}

async function call(
  model: SimulatedChatModel,
  role: ModelRole,
  values: Record<string, string>,
  withRole = true,
): Promise<string> {
  const message = await model.invoke(prompt(role, values), withRole ? { refineryRole: role } : {});
  return message.text;
}

const arithmeticTask = (i: number) => `What is ${i} * (${i % 7} + 3) - ${i % 5}?`;

describe("evaluateArithmetic", () => {
  it("respects precedence, parentheses, negatives and division", () => {
    expect(evaluateArithmetic("2 + 3 * 4")).toBe(14);
    expect(evaluateArithmetic("(2 + 3) * 4")).toBe(20);
    expect(evaluateArithmetic("10 - 4 - 3")).toBe(3);
    expect(evaluateArithmetic("-(2 + 3) * -2")).toBe(10);
    expect(evaluateArithmetic("-3 - -3")).toBe(0);
    expect(evaluateArithmetic("7 / 2")).toBe(3.5);
    expect(evaluateArithmetic("120 / 1.5")).toBe(80);
    expect(evaluateArithmetic("12 / 3 / 2")).toBe(2);
    expect(evaluateArithmetic("((1))")).toBe(1);
    expect(evaluateArithmetic("3 × 4 ÷ 6")).toBe(2);
  });

  it("returns undefined for invalid input, division by zero and code", () => {
    for (const bad of [
      "",
      "2 +",
      "(1 + 2",
      "1 + 2)",
      "2 ** 3",
      "1 / 0",
      "1 / (2 - 2)",
      "abc",
      "process.exit(1)",
      "constructor",
      "1e3",
      "2 (3)",
      "1".repeat(600),
    ]) {
      expect(evaluateArithmetic(bad), bad).toBeUndefined();
    }
  });

  it("uses no eval or Function constructor", () => {
    const source = readFileSync(MODULE_PATH, "utf8");
    expect(source).not.toMatch(/\beval\s*\(|new Function\b|\bFunction\s*\(/);
  });
});

describe("extractArithmetic", () => {
  it("finds the expression inside a task, words included", () => {
    expect(extractArithmetic("What is 12 * (3 + 4)?")).toEqual({
      expression: "12 * (3 + 4)",
      value: 84,
    });
    expect(extractArithmetic("Compute 7 plus 5 times 2.")?.value).toBe(17);
    expect(extractArithmetic("What is 9 divided by 3 minus 1?")?.value).toBe(2);
  });

  it("ignores prose that only looks numeric", () => {
    expect(extractArithmetic("Explain tides in 2-3 sentences.")).toBeUndefined();
    expect(extractArithmetic("Name 3 planets.")).toBeUndefined();
    expect(extractArithmetic("Summarize the meeting of 2024-05-01.")).toBeUndefined();
  });
});

describe("SimulatedChatModel: construction and labels", () => {
  it("is labelled as a simulation", () => {
    const model = createSimulatedModel();
    expect(model.simulated).toBe(true);
    expect(model._llmType()).toBe("refinery-simulated");
    expect(isSimulatedModel(model)).toBe(true);
    expect(isSimulatedModel({})).toBe(false);
    expect(SIMULATED_MODEL_NOTICE).toMatch(/simulated/);
    expect(model.options).toEqual(DEFAULT_SIMULATED_OPTIONS);
    expect(DEFAULT_SIMULATED_OPTIONS).toMatchObject({
      seed: 42,
      firstDraftErrorRate: 0.35,
      detectRate: 0.85,
      uncheckableDetectRate: 0.5,
      falseAlarmRate: 0.15,
      fixRateSpecific: 0.9,
      fixRateVague: 0.3,
      breakRate: 0.3,
      latencyMs: 0,
    });
  });

  it("rejects invalid options with an invalid_config error naming the field", () => {
    const attempt = (options: unknown) => () =>
      new SimulatedChatModel(options as SimulatedModelOptions);
    for (const [options, field] of [
      [{ detectRate: 1.5 }, "simulatedModel.detectRate"],
      [{ latencyMs: -1 }, "simulatedModel.latencyMs"],
      [{ oracle: "Paris" }, "simulatedModel.oracle"],
      [{ families: { json: { breakRate: 2 } } }, "simulatedModel.families.json.breakRate"],
    ] as const) {
      try {
        attempt(options)();
        expect.unreachable();
      } catch (error) {
        expect(isRefineryError(error)).toBe(true);
        if (isRefineryError(error)) {
          expect(error.code).toBe("invalid_config");
          expect(error.field).toBe(field);
        }
      }
    }
    expect(attempt({ errorRate: 0.5 })).toThrow(/unrecognized|errorRate/i);
    expect(attempt({ families: { prose: { breakRate: 0.1 } } })).toThrow(/prose/);
    expect(attempt({ families: { json: { seed: 1 } } })).toThrow(/seed/);
  });

  it("a family's own rates replace the general ones for that family only", async () => {
    const model = createSimulatedModel({
      seed: 2,
      firstDraftErrorRate: 0,
      families: { json: { firstDraftErrorRate: 1 } },
    });
    const json = "Return JSON with fields name, age (number) and email.";
    for (let i = 0; i < 20; i++) {
      const task = arithmeticTask(i);
      expect(model.isCorrect(task, await call(model, "generate", { task }))).toBe(true);
    }
    expect(model.isCorrect(json, await call(model, "generate", { task: json }))).toBe(false);
  });
});

describe("SimulatedChatModel: determinism", () => {
  const tasks = [
    arithmeticTask(11),
    "A train travels 120 km in 1.5 hours. What is its average speed in km/h?",
    "Return a JSON object with fields name, age and email.",
    "Write a short note on code review etiquette.",
  ];

  async function transcript(model: SimulatedChatModel): Promise<string[]> {
    const out: string[] = [];
    for (const task of tasks) {
      const draft = await call(model, "generate", { task });
      const critique = await call(model, "critique", { task, draft });
      const revised = await call(model, "revise", { task, draft, critique });
      const judged = await call(model, "judge", { task, draft: revised });
      out.push(draft, critique, revised, judged);
    }
    return out;
  }

  it("gives the same outputs for the same seed, on one instance and a fresh one", async () => {
    const model = createSimulatedModel({ seed: 7 });
    const first = await transcript(model);
    expect(await transcript(model)).toEqual(first);
    expect(await transcript(createSimulatedModel({ seed: 7 }))).toEqual(first);
  });

  it("gives the same outputs in a separate process", async () => {
    const local = await transcript(createSimulatedModel({ seed: 7 }));
    const script = `
      import { createSimulatedModel } from ${JSON.stringify(MODULE_PATH)};
      import { DEFAULT_PROMPTS, renderTemplate } from ${JSON.stringify(MODULE_PATH.replace(/models[\\/]simulated\.ts$/, "prompts.ts"))};
      const tasks = ${JSON.stringify(tasks)};
      const model = createSimulatedModel({ seed: 7 });
      const base = { context_block: "", feedback_block: "", rubric: "The final answer must be correct.", failed_checks: "(all checks passed)" };
      const run = async (role, values) => {
        const t = DEFAULT_PROMPTS[role];
        const msgs = [["system", t.system], ["human", renderTemplate(t.user, { ...base, ...values })]];
        return (await model.invoke(msgs, { refineryRole: role })).text;
      };
      const out = [];
      for (const task of tasks) {
        const draft = await run("generate", { task });
        const critique = await run("critique", { task, draft });
        const revised = await run("revise", { task, draft, critique });
        out.push(draft, critique, revised, await run("judge", { task, draft: revised }));
      }
      process.stdout.write(JSON.stringify(out));
    `;
    const stdout = execFileSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      {
        encoding: "utf8",
      },
    );
    expect(JSON.parse(stdout)).toEqual(local);
  });

  it("keeps a fixed output for a fixed seed and prompt (golden)", async () => {
    const model = createSimulatedModel({ seed: 42 });
    // Fixed messages (not DEFAULT_PROMPTS) so that editing the templates cannot move this.
    const message = await model.invoke("Task:\nWhat is 2 + 2?", { refineryRole: "generate" });
    expect(message.text).toBe("We need the value of 2 + 2.\nStep 1: 2 + 2 = 2\nAnswer: 2");
  });

  it("gives different outcomes for different seeds in aggregate", async () => {
    const wrongSet = async (seed: number) => {
      const model = createSimulatedModel({ seed });
      const wrong: number[] = [];
      for (let i = 0; i < 100; i++) {
        const task = arithmeticTask(i);
        if (!model.isCorrect(task, await call(model, "generate", { task }))) wrong.push(i);
      }
      return wrong;
    };
    expect(await wrongSet(1)).not.toEqual(await wrongSet(2));
  });

  it("draws the same outcome for the same task, draft and feedback whatever the instructions say", async () => {
    // Strategies whose prompts differ only in wording (revise vs reviseTargeted) are compared
    // on common random numbers: the system message is not part of the key.
    const model = createSimulatedModel({ seed: 11 });
    let same = 0;
    for (let i = 0; i < 40; i++) {
      const task = arithmeticTask(i);
      const user = renderTemplate(DEFAULT_PROMPTS.revise.user, {
        task,
        context_block: "",
        feedback_block: "",
        draft: `Answer: ${Number(model.expectedAnswer(task)) + 1}`,
        critique: "- Double-check the work.",
        failed_checks: "(all checks passed)",
      });
      const out = async (system: string) =>
        (
          await model.invoke([new SystemMessage(system), new HumanMessage(user)], {
            refineryRole: "revise",
          })
        ).text;
      if (
        (await out(DEFAULT_PROMPTS.revise.system)) ===
        (await out(DEFAULT_PROMPTS.reviseTargeted.system))
      )
        same++;
    }
    expect(same).toBe(40);
  });

  it("criticCorrelation: at 1 every critique of the same final answer agrees, whatever the prompt; at 0 a follow-up is a fresh look", async () => {
    // A wrong bare value (no working): the critic must re-solve, detecting at uncheckableDetectRate.
    const outcomes = async (criticCorrelation: number) => {
      const model = createSimulatedModel({ seed: 3, criticCorrelation });
      let agree = 0;
      for (let i = 0; i < 40; i++) {
        const task = arithmeticTask(i);
        const draft = `Answer: ${Number(model.expectedAnswer(task)) + 2}`;
        const vars = { task, context_block: "", feedback_block: "", draft };
        const first = renderTemplate(DEFAULT_PROMPTS.critique.user, vars);
        const follow = renderTemplate(DEFAULT_PROMPTS.localize.user, {
          ...vars,
          critique: "- Double-check the work.",
        });
        const verdict = async (user: string) => {
          const out = JSON.parse(
            (await model.invoke([new HumanMessage(user)], { refineryRole: "critique" })).text,
          ) as { verdict: string; issues: string[] };
          return `${out.verdict}:${out.issues.join("|")}`;
        };
        if ((await verdict(first)) === (await verdict(follow))) agree++;
      }
      return agree;
    };
    expect(await outcomes(1)).toBe(40);
    expect(await outcomes(0)).toBeLessThan(35);
  });

  it("varies repeated identical prompts only when varyRepeats is on", async () => {
    const task = arithmeticTask(3);
    const fixed = createSimulatedModel({ seed: 5, firstDraftErrorRate: 0.5 });
    const fixedOut = new Set<string>();
    for (let i = 0; i < 10; i++) fixedOut.add(await call(fixed, "generate", { task }));
    expect(fixedOut.size).toBe(1);

    const sample = async () => {
      const m = createSimulatedModel({ seed: 5, firstDraftErrorRate: 0.5, varyRepeats: true });
      const out: string[] = [];
      for (let i = 0; i < 10; i++) out.push(await call(m, "generate", { task }));
      return out;
    };
    const varied = await sample();
    expect(new Set(varied).size).toBeGreaterThan(1);
    expect(await sample()).toEqual(varied);
  });
});

describe("SimulatedChatModel: roles", () => {
  const task = "What is 12 * (3 + 4) - 5?";

  it("generate: shows steps and ends with an Answer line", async () => {
    const right = createSimulatedModel({ firstDraftErrorRate: 0 });
    const draft = await call(right, "generate", { task });
    expect(draft).toMatch(/^Step 1: 3 \+ 4 = 7$/m);
    expect(draft.trimEnd().split("\n").at(-1)).toBe("Answer: 79");

    const wrong = createSimulatedModel({ firstDraftErrorRate: 1 });
    const bad = await call(wrong, "generate", { task });
    const value = Number(/Answer: (.+)$/.exec(bad)?.[1]);
    expect(value).not.toBe(79);
    expect(Math.abs(value - 79)).toBeLessThanOrEqual(3 * 12);
    expect(wrong.isCorrect(task, bad)).toBe(false);
    expect(wrong.expectedAnswer(task)).toBe("79");
  });

  it("critique: names the wrong value and step when it detects an error", async () => {
    const model = createSimulatedModel({ detectRate: 1 });
    const draft = "Step 1: 3 + 4 = 7\nStep 2: 12 * 7 = 86\nStep 3: 86 - 5 = 81\nAnswer: 81";
    const out = CritiqueSchema.parse(JSON.parse(await call(model, "critique", { task, draft })));
    expect(out.verdict).toBe("revise");
    expect(out.score).toBeLessThan(0.5);
    expect(out.issues).toEqual(["The final answer 81 is wrong: recheck step 2 (12 * 7 = 86)."]);
  });

  it("critique: passes a correct draft unless a false alarm fires", async () => {
    const draft = "Step 1: 3 + 4 = 7\nStep 2: 12 * 7 = 84\nStep 3: 84 - 5 = 79\nAnswer: 79";
    const calm = createSimulatedModel({ falseAlarmRate: 0 });
    const pass = CritiqueSchema.parse(JSON.parse(await call(calm, "critique", { task, draft })));
    expect(pass).toMatchObject({ verdict: "pass", issues: [] });
    expect(pass.score).toBeGreaterThanOrEqual(0.85);

    const jumpy = createSimulatedModel({ falseAlarmRate: 1, specificFalseAlarmRate: 0 });
    const alarm = CritiqueSchema.parse(JSON.parse(await call(jumpy, "critique", { task, draft })));
    expect(alarm.verdict).toBe("revise");
    expect(alarm.issues).toHaveLength(1);
    expect(alarm.issues[0]).not.toMatch(/\d/);
  });

  it("infers the role from the default prompts when refineryRole is absent", async () => {
    const model = createSimulatedModel();
    const draft = "Answer: 79";
    const critique = await call(model, "critique", { task, draft }, false);
    expect(CritiqueSchema.safeParse(JSON.parse(critique)).success).toBe(true);
    const judged = await call(model, "judge", { task, draft }, false);
    expect(JudgeSchema.safeParse(JSON.parse(judged)).success).toBe(true);
    const revised = await call(model, "revise", { task, draft, critique: "ok" }, false);
    expect(revised).toMatch(/Answer: /);
    expect(await call(model, "generate", { task }, false)).toMatch(/^Answer: -?\d+$/m);
  });

  it("judge: scores correct drafts high and wrong drafts low, with a reason", async () => {
    const model = createSimulatedModel();
    const good = JudgeSchema.parse(
      JSON.parse(await call(model, "judge", { task, draft: "Answer: 79" })),
    );
    const bad = JudgeSchema.parse(
      JSON.parse(await call(model, "judge", { task, draft: "Answer: 80" })),
    );
    expect(good.score).toBeGreaterThanOrEqual(0.8);
    expect(bad.score).toBeLessThanOrEqual(0.4);
    expect(bad.reason).toMatch(/80 is wrong/);
  });

  it("revise: fixes with specific feedback and keeps a correct draft", async () => {
    const model = createSimulatedModel({ fixRateSpecific: 1, breakRate: 0, unchangedRate: 0 });
    const wrong = "Step 1: 3 + 4 = 7\nStep 2: 12 * 7 = 86\nStep 3: 86 - 5 = 81\nAnswer: 81";
    const critique = '{"verdict":"revise","score":0.3,"issues":["The final answer 81 is wrong."]}';
    const fixed = await call(model, "revise", { task, draft: wrong, critique });
    expect(fixed).toMatch(/^Revised/);
    expect(model.isCorrect(task, fixed)).toBe(true);

    const right = "Step 1: 3 + 4 = 7\nStep 2: 12 * 7 = 84\nStep 3: 84 - 5 = 79\nAnswer: 79";
    const kept = await call(model, "revise", { task, draft: right, critique: "Looks fine." });
    expect(model.isCorrect(task, kept)).toBe(true);
  });

  it("revise: a failed check line counts as specific feedback", async () => {
    const model = createSimulatedModel({ fixRateSpecific: 1, fixRateVague: 0 });
    const draft = "Answer: 81";
    const vague = '{"verdict":"revise","score":0.6,"issues":["Double-check the work."]}';
    const withoutCheck = await call(model, "revise", { task, draft, critique: vague });
    expect(model.isCorrect(task, withoutCheck)).toBe(false);
    const withCheck = await call(model, "revise", {
      task,
      draft,
      critique: vague,
      failed_checks: "- answer_match: the final answer does not match the expected value",
    });
    expect(model.isCorrect(task, withCheck)).toBe(true);
  });

  it("revise: placeholder and soft check lines are not specific feedback", async () => {
    const model = createSimulatedModel({ fixRateSpecific: 1, fixRateVague: 0, unchangedRate: 1 });
    const draft = "Answer: 81";
    for (const failed_checks of [
      "(all checks passed)",
      "(none)",
      "- [judge-1, soft] The draft could be better.",
    ]) {
      const out = await call(model, "revise", {
        task,
        draft,
        critique: "(no critique issues)",
        failed_checks,
      });
      expect(out, failed_checks).toBe(draft);
    }
    const hard = await call(model, "revise", {
      task,
      draft,
      critique: "(no critique issues)",
      failed_checks: "- [answer] final answer does not match",
    });
    expect(model.isCorrect(task, hard)).toBe(true);
  });

  it("revise: reviewer feedback naming the expected value is specific", async () => {
    const model = createSimulatedModel({ fixRateSpecific: 1, fixRateVague: 0, unchangedRate: 1 });
    const out = await call(model, "revise", {
      task,
      draft: "Answer: 81",
      critique: "(no critique issues)",
      feedback_block: "\nReviewer feedback (must be honoured):\n- The result should be 79.\n",
    });
    expect(model.isCorrect(task, out)).toBe(true);
  });

  it("parses the task up to the context and reviewer feedback blocks", async () => {
    const model = createSimulatedModel({
      answerKey: { "Name a prime.": "7" },
      firstDraftErrorRate: 0,
    });
    const out = await call(model, "generate", {
      task: "Name a prime.",
      context_block: "\nContext:\nPrimes are integers above 1.\n",
      feedback_block: "\nReviewer feedback (must be honoured):\n- Keep it short.\n",
    });
    expect(out).toMatch(/^Answer: 7$/m);
  });

  it("revise: returns the previous draft verbatim when vague feedback fails to help", async () => {
    const model = createSimulatedModel({ fixRateVague: 0, unchangedRate: 1 });
    const draft = "Step 1: 3 + 4 = 7\nStep 2: 12 * 7 = 86\nStep 3: 86 - 5 = 81\nAnswer: 81";
    const critique = "Some parts may contain mistakes.";
    expect(await call(model, "revise", { task, draft, critique })).toBe(draft);
  });

  it("revise: breaks a correct draft with breakRate", async () => {
    const model = createSimulatedModel({ breakRate: 1 });
    const draft = "Answer: 79";
    const broken = await call(model, "revise", { task, draft, critique: "Be clearer." });
    expect(model.isCorrect(task, broken)).toBe(false);
  });
});

describe("SimulatedChatModel: knowledge sources", () => {
  it("uses the answer key before anything else, with a plausible distractor when wrong", async () => {
    const task = "What is the capital of France?";
    const right = createSimulatedModel({ answerKey: { [task]: "Paris" }, firstDraftErrorRate: 0 });
    expect(await call(right, "generate", { task })).toMatch(/^Answer: Paris$/m);
    const wrong = createSimulatedModel({ answerKey: { [task]: "Paris" }, firstDraftErrorRate: 1 });
    const bad = await call(wrong, "generate", { task });
    expect(bad).toMatch(/^Answer: France$/m);
    const critique = CritiqueSchema.parse(
      JSON.parse(await call(wrong, "critique", { task, draft: bad })),
    );
    // detectRate 0.85 at the default seed: either way the verdict JSON is well formed.
    expect(["pass", "revise"]).toContain(critique.verdict);
  });

  it("uses the oracle, case- and whitespace-insensitive answer keys", async () => {
    const oracle = (task: string) => (task.includes("Everest") ? "8849" : undefined);
    const model = createSimulatedModel({ oracle, firstDraftErrorRate: 0 });
    const task = "How tall is Everest in metres?";
    expect(await call(model, "generate", { task })).toMatch(/^Answer: 8849$/m);
    expect(model.isCorrect(task, "Answer: 8848")).toBe(false);
    const keyed = createSimulatedModel({ answerKey: { "what is  LOVE?": "yes" } });
    expect(keyed.expectedAnswer("What is love?")).toBe("yes");
  });

  it("answers the demo rate problem offline", async () => {
    const task = "A train travels 120 km in 1.5 hours. What is its average speed in km/h?";
    const model = createSimulatedModel({ firstDraftErrorRate: 0 });
    expect(model.expectedAnswer(task)).toBe("80");
    expect(await call(model, "generate", { task })).toMatch(/^Answer: 80$/m);
  });

  it("JSON tasks: errors are missing or mistyped fields, named by the critic", async () => {
    const task = "Return a JSON object with fields name, age and email.";
    const model = createSimulatedModel({ firstDraftErrorRate: 0 });
    const good = JSON.parse(await call(model, "generate", { task })) as Record<string, unknown>;
    expect(Object.keys(good)).toEqual(["name", "age", "email"]);
    expect(typeof good.age).toBe("number");

    const critic = createSimulatedModel({ firstDraftErrorRate: 1, detectRate: 1 });
    let named = 0;
    for (let i = 0; i < 20; i++) {
      const t = `${task} Person #${i}.`;
      const bad = await call(critic, "generate", { task: t });
      expect(critic.isCorrect(t, bad)).toBe(false);
      const out = CritiqueSchema.parse(
        JSON.parse(await call(critic, "critique", { task: t, draft: bad })),
      );
      if (/The field "(name|age|email)" (is missing|must be)/.test(out.issues[0] ?? "")) named++;
    }
    expect(named).toBe(20);
  });

  it("JSON tasks with a schema: feedback naming the field fixes it", async () => {
    const schema = {
      type: "object",
      properties: { title: { type: "string" }, year: { type: "integer", minimum: 1900 } },
      required: ["title", "year"],
    };
    const task = `Describe a book as JSON matching ${JSON.stringify(schema)}`;
    const model = createSimulatedModel({ fixRateSpecific: 1, fixRateVague: 0, unchangedRate: 1 });
    const draft = JSON.stringify({ title: "Dune" }, null, 2);
    const vague = await call(model, "revise", { task, draft, critique: "Could be better." });
    expect(vague).toBe(draft);
    const fixed = await call(model, "revise", {
      task,
      draft,
      critique: 'The field "year" is missing.',
    });
    const obj = JSON.parse(fixed) as Record<string, unknown>;
    expect(obj).toMatchObject({ year: 1900 });
    expect(model.isCorrect(task, fixed)).toBe(true);
  });

  it("free-text tasks: completeness (a Summary line) is what the simulation can judge", async () => {
    const task = "Write a short note on code review etiquette.";
    const model = createSimulatedModel({ firstDraftErrorRate: 0 });
    const draft = await call(model, "generate", { task });
    expect(draft).toMatch(/^Summary: /m);
    expect(model.expectedAnswer(task)).toBeUndefined();
    expect(model.isCorrect(task, draft.replace(/\n\nSummary: .*$/s, ""))).toBe(false);
  });
});

describe("SimulatedChatModel: aggregate rates follow the parameters", () => {
  const N = 1000;

  it("first drafts, detection and false alarms", async () => {
    // Every error visible (a slipped step), so detection runs at detectRate.
    const model = createSimulatedModel({ seed: 3, invisibleErrorRate: 0 });
    let wrong = 0;
    let detected = 0;
    let correct = 0;
    let alarms = 0;
    for (let i = 0; i < N; i++) {
      const task = arithmeticTask(i);
      const draft = await call(model, "generate", { task });
      const critique = CritiqueSchema.parse(
        JSON.parse(await call(model, "critique", { task, draft })),
      );
      if (model.isCorrect(task, draft)) {
        correct++;
        if (critique.verdict === "revise") alarms++;
      } else {
        wrong++;
        if (critique.issues.some((issue) => issue.includes("is wrong"))) detected++;
      }
    }
    expect(wrong / N).toBeGreaterThan(0.35 - 0.06);
    expect(wrong / N).toBeLessThan(0.35 + 0.06);
    expect(detected / wrong).toBeGreaterThan(0.85 - 0.06);
    expect(detected / wrong).toBeLessThan(0.85 + 0.06);
    expect(alarms / correct).toBeGreaterThan(0.15 - 0.06);
    expect(alarms / correct).toBeLessThan(0.15 + 0.06);
  });

  it("specific feedback fixes more often than vague feedback; correct drafts break at breakRate", async () => {
    const model = createSimulatedModel({ seed: 9 });
    const trials = 400;
    let specificFixes = 0;
    let vagueFixes = 0;
    let breaks = 0;
    for (let i = 0; i < trials; i++) {
      const task = arithmeticTask(i);
      const answer = Number(model.expectedAnswer(task));
      const wrongDraft = `Step 1: worked it out\nAnswer: ${answer + 2}`;
      const specific = `{"verdict":"revise","score":0.3,"issues":["The final answer ${answer + 2} is wrong."]}`;
      const vague = '{"verdict":"revise","score":0.6,"issues":["Double-check the work."]}';
      const a = await call(model, "revise", { task, draft: wrongDraft, critique: specific });
      const b = await call(model, "revise", { task, draft: wrongDraft, critique: vague });
      const c = await call(model, "revise", { task, draft: `Answer: ${answer}`, critique: vague });
      if (model.isCorrect(task, a)) specificFixes++;
      if (model.isCorrect(task, b)) vagueFixes++;
      if (!model.isCorrect(task, c)) breaks++;
    }
    expect(specificFixes / trials).toBeGreaterThan(0.9 - 0.06);
    expect(vagueFixes / trials).toBeGreaterThan(0.3 - 0.08);
    expect(vagueFixes / trials).toBeLessThan(0.3 + 0.08);
    expect(specificFixes).toBeGreaterThan(vagueFixes + trials * 0.4);
    expect(breaks / trials).toBeGreaterThan(0.3 - 0.08);
    expect(breaks / trials).toBeLessThan(0.3 + 0.08);
  });

  it("a wrong value with no wrong step to recheck is detected at uncheckableDetectRate, a slipped step at detectRate", async () => {
    const model = createSimulatedModel({ seed: 5 });
    let bare = 0;
    let worked = 0;
    let consistent = 0;
    for (let i = 0; i < N; i++) {
      const task = arithmeticTask(i);
      const wrong = Number(model.expectedAnswer(task)) + 2;
      const critiqueOf = async (draft: string) =>
        CritiqueSchema.parse(JSON.parse(await call(model, "critique", { task, draft })));
      const a = await critiqueOf(
        `Step 1: worked it out: the result is ${wrong}.\nAnswer: ${wrong}`,
      );
      const b = await critiqueOf(`Step 1: 2 + 3 = 6\nAnswer: ${wrong}`);
      const c = await critiqueOf(`Step 1: 2 + 3 = 5\nAnswer: ${wrong}`);
      if (a.issues.some((issue) => issue.includes("is wrong"))) bare++;
      if (b.issues.some((issue) => issue.includes("is wrong"))) worked++;
      if (c.issues.some((issue) => issue.includes("is wrong"))) consistent++;
    }
    expect(bare / N).toBeGreaterThan(0.5 - 0.06);
    expect(bare / N).toBeLessThan(0.5 + 0.06);
    expect(consistent / N).toBeGreaterThan(0.5 - 0.06);
    expect(consistent / N).toBeLessThan(0.5 + 0.06);
    expect(worked / N).toBeGreaterThan(0.85 - 0.06);
    expect(worked / N).toBeLessThan(0.85 + 0.06);
  });
});

describe("SimulatedChatModel: invisible errors", () => {
  const N = 600;

  it("a share invisibleErrorRate of wrong step-by-step drafts has every step right (a misread operand)", async () => {
    const model = createSimulatedModel({ seed: 11, firstDraftErrorRate: 1 });
    let invisible = 0;
    for (let i = 0; i < N; i++) {
      const task = arithmeticTask(i);
      const draft = await call(model, "generate", { task });
      expect(model.isCorrect(task, draft)).toBe(false);
      if (checkArithmeticSteps(draft).every((s) => s.correct)) invisible++;
    }
    expect(invisible / N).toBeGreaterThan(0.58 - 0.07);
    expect(invisible / N).toBeLessThan(0.58 + 0.07);
    const none = createSimulatedModel({ seed: 11, firstDraftErrorRate: 1, invisibleErrorRate: 0 });
    for (let i = 0; i < 50; i++) {
      const task = arithmeticTask(i);
      const draft = await call(none, "generate", { task });
      expect(checkArithmeticSteps(draft).some((s) => !s.correct)).toBe(true);
    }
  });

  it("an invisible JSON error is a well-typed wrong value that the schema accepts", async () => {
    const task = "Extract the person as JSON. Text: Maria Chen, 34, lives in Lisbon.";
    const key = { [task]: JSON.stringify({ name: "Maria Chen", age: 34, city: "Lisbon" }) };
    let wrongValues = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const model = createSimulatedModel({
        seed,
        firstDraftErrorRate: 1,
        invisibleErrorRate: 1,
        answerKey: key,
      });
      const draft = await call(model, "generate", { task });
      const obj = JSON.parse(draft) as Record<string, unknown>;
      expect(model.isCorrect(task, draft)).toBe(false);
      expect(typeof obj.name).toBe("string");
      expect(typeof obj.age).toBe("number");
      expect(typeof obj.city).toBe("string");
      wrongValues++;
    }
    expect(wrongValues).toBe(40);
  });
});

describe("SimulatedChatModel: specific false alarms", () => {
  it("a share specificFalseAlarmRate of false alarms names a wrong value instead of a vague doubt", async () => {
    const model = createSimulatedModel({ seed: 4, firstDraftErrorRate: 0, falseAlarmRate: 1 });
    const N = 600;
    let specific = 0;
    for (let i = 0; i < N; i++) {
      const task = arithmeticTask(i);
      const draft = await call(model, "generate", { task });
      const critique = CritiqueSchema.parse(
        JSON.parse(await call(model, "critique", { task, draft })),
      );
      expect(critique.verdict).toBe("revise");
      const issue = critique.issues[0] ?? "";
      if (!isVagueIssue(issue)) {
        specific++;
        const answer = model.expectedAnswer(task) ?? "";
        const m = /is wrong: it should be (-?[\d.]+)\.$/.exec(issue);
        expect(issue).toContain(`The final answer ${answer} is wrong`);
        expect(Number(m?.[1])).not.toBe(Number(answer));
      }
    }
    expect(specific / N).toBeGreaterThan(0.5 - 0.07);
    expect(specific / N).toBeLessThan(0.5 + 0.07);
    const never = createSimulatedModel({
      seed: 4,
      firstDraftErrorRate: 0,
      falseAlarmRate: 1,
      specificFalseAlarmRate: 0,
    });
    for (let i = 0; i < 50; i++) {
      const task = arithmeticTask(i);
      const draft = await call(never, "generate", { task });
      const critique = CritiqueSchema.parse(
        JSON.parse(await call(never, "critique", { task, draft })),
      );
      expect(critique.issues.every((issue) => isVagueIssue(issue))).toBe(true);
    }
  });

  it("a specific false alarm on a JSON draft names one of its fields", async () => {
    const task = "Return JSON with fields name, age (number) and email.";
    for (let seed = 1; seed <= 10; seed++) {
      const model = createSimulatedModel({
        seed,
        firstDraftErrorRate: 0,
        falseAlarmRate: 1,
        specificFalseAlarmRate: 1,
      });
      const draft = await call(model, "generate", { task });
      const critique = CritiqueSchema.parse(
        JSON.parse(await call(model, "critique", { task, draft })),
      );
      expect(critique.issues[0]).toMatch(/^The field "(name|age|email)" has the wrong value/);
    }
  });
});

describe("SimulatedChatModel: PASR output", () => {
  const pasrCall = async (model: SimulatedChatModel, task: string) =>
    (
      await model.invoke(
        [new SystemMessage(PASR_SYSTEM_PROMPT), new HumanMessage(`Task:\n${task}`)],
        {
          refineryRole: "generate",
        },
      )
    ).text;

  it("asked for the PASR format, it writes <think>, <refine> when it catches a wrong start, and <answer>", async () => {
    const N = 400;
    const model = createSimulatedModel({ seed: 6, firstDraftErrorRate: 1 });
    let refined = 0;
    for (let i = 0; i < N; i++) {
      const task = arithmeticTask(i);
      const parsed = parsePasr(await pasrCall(model, task));
      expect(parsed.ok).toBe(true);
      expect(parsed.errors).toEqual([]);
      const right = model.isCorrect(task, parsed.answer ?? "");
      // A refinement is what turns the wrong start into a right answer, and nothing else does.
      expect(right).toBe(parsed.refinements.length === 1);
      if (right) refined++;
    }
    expect(refined / N).toBeGreaterThan(0.21 - 0.06);
    expect(refined / N).toBeLessThan(0.21 + 0.06);
  });

  it("a right start is answered without refinement; the same task without the PASR prompt gets a plain draft", async () => {
    const model = createSimulatedModel({ seed: 6, firstDraftErrorRate: 0 });
    const task = arithmeticTask(12);
    const parsed = parsePasr(await pasrCall(model, task));
    expect(parsed).toMatchObject({ ok: true, refinements: [] });
    expect(model.isCorrect(task, parsed.answer ?? "")).toBe(true);
    const plain = await call(model, "generate", { task });
    expect(plain).not.toMatch(/<think>|<answer>/);
    expect(model.isCorrect(task, plain)).toBe(true);
  });

  it("pasrFormatErrorRate 1 leaves the answer unclosed, so the parser reports an error", async () => {
    const model = createSimulatedModel({ seed: 6, pasrFormatErrorRate: 1 });
    const parsed = parsePasr(await pasrCall(model, arithmeticTask(3)));
    expect(parsed.ok).toBe(false);
  });
});

describe("SimulatedChatModel: usage, invoke, stream and abort", () => {
  const task = "What is 6 * 7?";

  it("reports usage_metadata and simulated response_metadata", async () => {
    const model = createSimulatedModel({ reasoningTokens: 10, charsPerToken: 4 });
    const messages = prompt("generate", { task });
    const message = await model.invoke(messages, { refineryRole: "generate" });
    const promptChars = messages.reduce((n, m) => n + m.text.length, 0);
    const input = Math.ceil(promptChars / 4);
    const output = Math.ceil(message.text.length / 4) + 10;
    expect(message.usage_metadata).toMatchObject({
      input_tokens: input,
      output_tokens: output,
      total_tokens: input + output,
    });
    expect(message.response_metadata).toMatchObject({
      model_name: "refinery-simulated",
      simulated: true,
    });
  });

  it("streams a few chunks that add up to the invoked text, usage counted once", async () => {
    const model = createSimulatedModel({ firstDraftErrorRate: 0 });
    const messages = prompt("generate", { task: arithmeticTask(4) });
    const invoked = await model.invoke(messages, { refineryRole: "generate" });
    const chunks: AIMessageChunk[] = [];
    for await (const chunk of await model.stream(messages, { refineryRole: "generate" })) {
      chunks.push(chunk);
    }
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.map((c) => c.text).join("")).toBe(invoked.text);
    const merged = chunks.reduce((a, b) => a.concat(b));
    expect(merged.usage_metadata?.total_tokens).toBe(invoked.usage_metadata?.total_tokens);
    expect(merged.response_metadata).toMatchObject({
      model_name: "refinery-simulated",
      simulated: true,
    });
  });

  it("honours the abort signal while simulating latency (invoke and stream)", async () => {
    const model = createSimulatedModel({ latencyMs: 10_000 });
    const messages = prompt("generate", { task });

    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 20);
    await expect(model.invoke(messages, { signal: controller.signal })).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(2_000);

    const streamController = new AbortController();
    setTimeout(() => streamController.abort(), 20);
    const consume = async () => {
      for await (const _chunk of await model.stream(messages, {
        signal: streamController.signal,
      })) {
        // drain
      }
    };
    await expect(consume()).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(4_000);

    const already = new AbortController();
    already.abort();
    await expect(
      createSimulatedModel().invoke(messages, { signal: already.signal }),
    ).rejects.toThrow();
  });

  it("waits about latencyMs per call", async () => {
    const model = createSimulatedModel({ latencyMs: 60 });
    const started = Date.now();
    await model.invoke(prompt("generate", { task }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
  });
});

describe("SimulatedChatModel: lessons in the generate prompt", () => {
  const task = "A courier drives 45 km in 30 minutes. What is the courier's average speed in km/h?";
  const answerKey = { [task]: "90" };
  const generate = async (seed: number, lessons: string, lessonBenefit?: number) => {
    const m = createSimulatedModel({
      seed,
      answerKey,
      ...(lessonBenefit !== undefined ? { lessonBenefit } : {}),
    });
    const reply = await m.invoke([new HumanMessage(`Task:\n${task}\n${lessons}`)], {
      refineryRole: "generate",
    } as never);
    return String(reply.content);
  };
  const relevant =
    "\nLessons from earlier, similar tasks:\n- Convert minutes to hours first. (learned on: courier, speed, minute)\n";
  const unrelated =
    "\nLessons from earlier, similar tasks:\n- Quote every field. (learned on: json, field, schema)\n";

  it("an irrelevant lesson changes nothing: the block is not part of the random key", async () => {
    for (let seed = 1; seed <= 30; seed += 1)
      expect(await generate(seed, unrelated)).toBe(await generate(seed, ""));
  });

  it("a relevant lesson turns first-draft errors into right drafts at rate lessonBenefit", async () => {
    let wrongWithout = 0;
    let fixedWith = 0;
    let brokenWith = 0;
    for (let seed = 1; seed <= 200; seed += 1) {
      const without = (await generate(seed, "")).endsWith("Answer: 90");
      const withAll = (await generate(seed, relevant, 1)).endsWith("Answer: 90");
      if (!without) wrongWithout += 1;
      if (!without && withAll) fixedWith += 1;
      if (without && !withAll) brokenWith += 1;
    }
    expect(wrongWithout).toBeGreaterThan(40);
    // lessonBenefit 1: every error the lesson applies to is prevented, nothing right is broken.
    expect(fixedWith).toBe(wrongWithout);
    expect(brokenWith).toBe(0);
  });
});
