// Reads a critic's reply. Critics are asked for JSON, but models wrap it in prose or fences, so
// parsing is lenient; anything unreadable is kept as a single issue rather than dropped.
import { extractJson } from "./verifiers/json-schema.ts";

export interface ParsedCritique {
  verdict: "pass" | "revise";
  score?: number;
  issues: string[];
}

const CLEAN_REPLY =
  /^\s*(no issues?( found)?|looks good|lgtm|the draft is correct|nothing to fix)\b/i;

export function parseCritique(text: string): ParsedCritique {
  const json = extractJson(text)?.value;
  if (json && typeof json === "object") {
    const obj = json as Record<string, unknown>;
    const issues = Array.isArray(obj.issues)
      ? obj.issues
          .map((i) => (typeof i === "string" ? i : JSON.stringify(i)))
          .filter((i) => i.trim() !== "")
      : [];
    const score = toScore(obj.score);
    const said = typeof obj.verdict === "string" ? obj.verdict.toLowerCase() : undefined;
    const verdict =
      said === "pass" && issues.length === 0
        ? "pass"
        : said === "pass" || said === "revise"
          ? said
          : issues.length
            ? "revise"
            : "pass";
    return {
      verdict: verdict === "pass" && issues.length > 0 ? "revise" : verdict,
      issues,
      ...(score === undefined ? {} : { score }),
    };
  }
  const trimmed = text.trim();
  if (trimmed === "" || CLEAN_REPLY.test(trimmed)) return { verdict: "pass", issues: [] };
  return { verdict: "revise", issues: [trimmed] };
}

export function toScore(value: unknown): number | undefined {
  let n: number | undefined;
  if (typeof value === "number") n = value;
  else if (typeof value === "string") {
    const m = /^\s*(-?\d+(?:\.\d+)?)\s*(%|\/\s*(\d+(?:\.\d+)?))?\s*$/.exec(value);
    if (m) {
      n = Number(m[1]);
      if (m[2] === "%") n /= 100;
      else if (m[3]) n /= Number(m[3]);
    }
  }
  if (n === undefined || !Number.isFinite(n)) return undefined;
  if (n > 1 && n <= 10) n /= 10;
  else if (n > 10 && n <= 100) n /= 100;
  return Math.min(1, Math.max(0, n));
}
