// Reads a critic's reply. Critics are asked for JSON, but models wrap it in prose or fences, so
// parsing is lenient; anything unreadable is kept as a single issue rather than dropped.

export interface ParsedCritique {
  verdict: "pass" | "revise";
  score?: number;
  issues: string[];
}

const CLEAN_REPLY =
  /^\s*(no issues?( found)?|looks good|lgtm|the draft is correct|nothing to fix)\b/i;

export function parseCritique(text: string): ParsedCritique {
  const json = extractJsonObject(text);
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

/** The first JSON object in `text`: the whole text, a fenced block, or the first balanced braces. */
export function extractJsonObject(text: string): unknown {
  const candidates: string[] = [text.trim()];
  const fence = /```(?:json)?\s*([\s\S]*?)```/i.exec(text);
  if (fence?.[1]) candidates.push(fence[1].trim());
  const start = text.indexOf("{");
  if (start >= 0) {
    let depth = 0;
    let inString = false;
    for (let i = start; i < text.length; i++) {
      const ch = text[i];
      if (inString) {
        if (ch === "\\") i++;
        else if (ch === '"') inString = false;
      } else if (ch === '"') inString = true;
      else if (ch === "{") depth++;
      else if (ch === "}" && --depth === 0) {
        candidates.push(text.slice(start, i + 1));
        break;
      }
    }
  }
  for (const c of candidates) {
    try {
      const value: unknown = JSON.parse(c);
      if (value && typeof value === "object") return value;
    } catch {
      // try the next candidate
    }
  }
  return undefined;
}
