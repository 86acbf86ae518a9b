// Reads a critic's reply. Critics are asked for JSON, but models wrap it in prose or fences, so
// parsing is lenient; anything unreadable is kept as a single issue rather than dropped. Also
// tells an issue a targeted revise can act on from one that names nothing to repair.
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

// ---------------------------------------------------------------------------------------------
// Actionable or vague. A targeted revise needs a target: models correct a mistake well once they
// are told where it is, but are poor at finding it themselves (Tyen et al., arXiv 2311.08516),
// and a bare challenge ("are you sure?") makes them flip right answers (Laban et al., arXiv
// 2311.08596). An issue is vague when it carries no anchor (a number, quoted text, a code span)
// and every word in it is either a function word or generic talk about drafts and quality.

const ANCHOR = /\d|"[^"\n]+"|“[^”\n]+”|`[^`\n]+`|(?<![A-Za-z])'[^'\n]+'(?![A-Za-z])/;

const FUNCTION_WORDS =
  "a an the and or but nor of to in on at by for with from into onto about as than then so too very " +
  "be is are was were been being am it its it's this that these those there here which what who " +
  "some any all each every other another more most less least much many few once again also just " +
  "still even yet only quite rather really bit little whole entire overall general generally " +
  "could would should may might can must will shall do does did done doing have has had not no " +
  "you your we our us i me my they them their he she his her please make sure sure before after " +
  "while when where how why if whether up out off over under";

// Talk about a draft's quality that points at no particular part of it.
const GENERIC_WORDS =
  "draft drafts answer answers result results response solution output text work working " +
  "reasoning logic explanation argument approach method step steps calculation calculations " +
  "computation computations math arithmetic part parts portion portions section sections detail " +
  "details point points thing things something anything everything somewhere aspect aspects " +
  "content mistake mistakes error errors issue issues problem problems flaw flaws wrong " +
  "incorrect inaccurate inaccuracies off flawed unclear clear clearer clarity precise precision " +
  "imprecise concise accurate accuracy correct correctness careful carefully thorough thoroughly " +
  "rigor rigour rigorous organized organised organization organisation structure structured " +
  "better improve improved improvement improvements polish polished quality readable readability " +
  "check checked checking checks double recheck rechecked verify verifying verified verification " +
  "confirm confirming review reviewing revisit reconsider consider considering ensure look " +
  "finalize finalizing finalise finalising final contain contains containing seem seems " +
  "appear appears possibly perhaps maybe potentially likely somewhat slightly certain fully " +
  "completely missing incomplete lacks lacking needs need necessary further additional " +
  "explained explain specific specifics clarify elaborate revise revised rewrite task question " +
  "given provided stated";

const VAGUE_VOCABULARY = new Set(`${FUNCTION_WORDS} ${GENERIC_WORDS}`.split(/\s+/));

/** True when the issue names nothing a targeted revise could repair ("double-check the work"). */
export function isVagueIssue(issue: string): boolean {
  if (ANCHOR.test(issue)) return false;
  const words = issue.toLowerCase().match(/[a-z]+(?:'[a-z]+)?/g) ?? [];
  return words.every((w) => VAGUE_VOCABULARY.has(w) || VAGUE_VOCABULARY.has(w.replace(/'.*$/, "")));
}

/** The issues a targeted revise can act on. */
export function actionableIssues(issues: readonly string[]): string[] {
  return issues.filter((i) => !isVagueIssue(i));
}
