// The llm_judge verifier: asks the judge model to grade the draft against a rubric and reads a
// `{"score", "reason"}` reply leniently. A judge is a soft signal (BACKGROUND.md, lesson 2), so by
// default it does not gate acceptance, and an unreadable reply fails soft instead of throwing.
import { AIMessage, HumanMessage, SystemMessage, type BaseMessage } from "@langchain/core/messages";
import type { ModelInvoker } from "../models/types.ts";
import { DEFAULT_PROMPTS, renderTemplate } from "../prompts.ts";
import { addUsage, ZERO_USAGE, type TokenUsage } from "../usage.ts";
import { extractJson, truncate } from "./json-schema.ts";
import { VERIFIER_ERROR_PREFIX, type LlmJudgeVerifierSpec } from "./spec.ts";
import type { Verifier } from "./types.ts";

export interface JudgeGrade {
  /** 0..1 */
  score: number;
  reason: string;
}

/** One reformatting retry: a second unreadable reply is unlikely to be fixed by a third call. */
const MAX_ATTEMPTS = 2;

const REASON_KEYS = ["reason", "reasoning", "explanation", "rationale", "feedback", "comment"];

/**
 * Reads `{"score", "reason"}` from a judge reply: bare, fenced or inside prose. The score may be
 * 0.8, "0.8", "8/10", "80%", or a bare 8 or 80 (read as out of 10 or 100). As a last resort a
 * `score: 0.8` line in plain text is accepted.
 */
export function parseJudgeReply(text: string): JudgeGrade | undefined {
  const json = extractJson(text)?.value;
  if (json !== null && typeof json === "object" && !Array.isArray(json)) {
    const record = json as Record<string, unknown>;
    const score = parseScore(record.score ?? record.rating ?? record.grade);
    if (score !== undefined) {
      const key = REASON_KEYS.find((k) => typeof record[k] === "string");
      return { score, reason: key ? String(record[key]).trim() : "" };
    }
  }
  const line = /\bscore\b["']?\s*[:=]\s*["']?([-\d.]+\s*(?:\/\s*\d+(?:\.\d+)?|%)?)/i.exec(text);
  const score = parseScore(line?.[1]);
  if (score === undefined) return undefined;
  const reason = /\breason\b["']?\s*[:=]\s*["']?(.+)/i.exec(text)?.[1]?.replace(/["'}]+$/, "");
  return { score, reason: reason?.trim() ?? "" };
}

export function parseScore(value: unknown): number | undefined {
  let n: number;
  if (typeof value === "number") {
    n = value;
  } else if (typeof value === "string") {
    const s = value.trim();
    const ratio = /^(-?\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)$/.exec(s);
    const percent = /^(-?\d+(?:\.\d+)?)\s*%$/.exec(s);
    if (ratio) {
      const den = Number(ratio[2]);
      if (den === 0) return undefined;
      return clampScore(Number(ratio[1]) / den);
    }
    if (percent) return clampScore(Number(percent[1]) / 100);
    if (!/^-?\d+(?:\.\d+)?$/.test(s)) return undefined;
    n = Number(s);
  } else {
    return undefined;
  }
  if (!Number.isFinite(n) || n < 0) return undefined;
  // Judges asked for 0..1 still answer on 10- or 100-point scales; anything above 100 is noise.
  if (n <= 1) return n;
  if (n <= 10) return n / 10;
  if (n <= 100) return n / 100;
  return undefined;
}

function clampScore(n: number): number | undefined {
  if (!Number.isFinite(n) || n < 0) return undefined;
  return Math.min(1, n);
}

export function createLlmJudgeVerifier(
  spec: LlmJudgeVerifierSpec,
  id: string,
  judge: ModelInvoker,
): Verifier {
  const system = spec.prompt?.system ?? DEFAULT_PROMPTS.judge.system;
  const user = spec.prompt?.user ?? DEFAULT_PROMPTS.judge.user;

  return {
    id,
    kind: "llm_judge",
    hard: spec.hard,
    deterministic: false,
    async verify(draft, ctx) {
      const values = {
        rubric: spec.rubric,
        task: ctx.task,
        draft,
        context: ctx.context ?? "",
        context_block: ctx.context ? `Context:\n${ctx.context}\n` : "",
        iteration: String(ctx.iteration),
      };
      const messages: BaseMessage[] = [
        new SystemMessage(renderTemplate(system, values)),
        new HumanMessage(renderTemplate(user, values)),
      ];
      let usage: TokenUsage = ZERO_USAGE;
      let lastReply = "";
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        let reply;
        try {
          reply = await judge(messages, { role: "judge", signal: ctx.signal });
        } catch (error) {
          // The earlier, unreadable replies were paid for too.
          throw withEarlierUsage(error, usage);
        }
        usage = addUsage(usage, reply.usage);
        lastReply = reply.text;
        const grade = parseJudgeReply(reply.text);
        if (grade) {
          const pass = grade.score >= spec.threshold;
          const reason = grade.reason === "" ? "no reason given" : grade.reason;
          return {
            pass,
            score: grade.score,
            message: pass
              ? `judge score ${round(grade.score)} meets threshold ${spec.threshold}: ${reason}`
              : `judge score ${round(grade.score)} is below threshold ${spec.threshold}: ${reason}`,
            usage,
          };
        }
        // Show the judge its own reply so the retry is a reformatting, not a fresh grading.
        messages.push(
          new AIMessage(reply.text),
          new HumanMessage(
            'Your reply could not be read. Reply with JSON only, exactly: {"score": <number from 0 to 1>, "reason": "<one or two sentences>"}',
          ),
        );
      }
      return {
        pass: false,
        score: 0,
        message:
          `${VERIFIER_ERROR_PREFIX}the judge reply could not be parsed as {"score", "reason"} JSON ` +
          `after ${MAX_ATTEMPTS} attempts; last reply: ${JSON.stringify(truncate(lastReply.trim(), 200))}`,
        usage,
      };
    },
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** The failure of a judge call, carrying the usage of the judge calls made before it. */
function withEarlierUsage(error: unknown, earlier: TokenUsage): unknown {
  if (earlier.calls === 0 || typeof error !== "object" || error === null) return error;
  const own = (error as { usage?: TokenUsage }).usage;
  Object.defineProperty(error, "usage", {
    value: addUsage(earlier, own),
    configurable: true,
    enumerable: true,
  });
  return error;
}
