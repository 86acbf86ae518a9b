// What a report must carry to be reproduced: the code version, the prompts each strategy used
// (text and hash) and the engine limits. Dataset hashes, the model, decoding and simulator
// parameters are in the summary's `datasets` and `model`.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_LIMITS } from "../../core/config.ts";
import { ROOT } from "../../core/paths.ts";
import { DEFAULT_PROMPTS, type PromptName } from "../../core/prompts.ts";
import { promptsOf, type EvalStrategy } from "./baselines.ts";

export interface CodeVersion {
  /** The package version, always known. */
  version: string;
  /** The git commit of the checkout, when it is one. */
  commit?: string;
  /** True when the checkout had uncommitted changes (the commit alone does not pin the code). */
  dirty?: boolean;
}

let cached: CodeVersion | undefined;

/** The running code's version: package.json, and the git commit when run from a checkout. */
export function codeVersion(): CodeVersion {
  if (cached) return cached;
  let version = "unknown";
  try {
    version = String(
      (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version?: unknown })
        .version ?? "unknown",
    );
  } catch {
    // A bundled install without package.json beside it: the version stays unknown.
  }
  const git = (args: string[]) =>
    execFileSync("git", args, {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  try {
    const commit = git(["rev-parse", "HEAD"]);
    const dirty = git(["status", "--porcelain", "--untracked-files=no"]) !== "";
    cached = { version, commit, dirty };
  } catch {
    cached = { version };
  }
  return cached;
}

export interface PromptRecord {
  sha256: string;
  system: string;
  user: string;
}

export interface Provenance {
  code: CodeVersion;
  /** Per strategy, the prompts its runs use, by name. */
  prompts: Record<string, Record<string, PromptRecord>>;
  limits: typeof DEFAULT_LIMITS;
}

export function promptRecord(name: PromptName): PromptRecord {
  const { system, user } = DEFAULT_PROMPTS[name];
  const sha256 = createHash("sha256").update(JSON.stringify({ system, user })).digest("hex");
  return { sha256, system, user };
}

export function provenanceOf(strategies: readonly EvalStrategy[], judged: boolean): Provenance {
  const prompts: Provenance["prompts"] = {};
  for (const s of strategies) {
    prompts[s] = Object.fromEntries(
      promptsOf(s).map((name) => [name, promptRecord(name as PromptName)]),
    );
  }
  if (judged) prompts["llm-judge"] = { judge: promptRecord("judge") };
  return { code: codeVersion(), prompts, limits: DEFAULT_LIMITS };
}
