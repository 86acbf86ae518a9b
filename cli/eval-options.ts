// The options of `refinery eval` for real endpoints: decoding parameters sent with every request
// (--temperature, --max-tokens, --model-seed, --n), several models in one report (--model, repeated)
// and the optional LLM judge (--judge-model, --judge-rubric). Each is checked with a precise error.
import { RefineryError } from "../core/errors.ts";
import type { Decoding, EvalStrategy } from "../graphs/eval/index.ts";

export const EVAL_MODEL_FLAGS = {
  model: { type: "string", multiple: true },
  "strategy-model": { type: "string", multiple: true },
  temperature: { type: "string" },
  "max-tokens": { type: "string" },
  "model-seed": { type: "string" },
  n: { type: "string" },
  "judge-model": { type: "string" },
  "judge-rubric": { type: "string" },
  replay: { type: "string" },
} as const;

export const EVAL_MODEL_HELP = `      --model NAME     +     model(s) of the endpoint; repeat to compare models in one report
      --strategy-model S=M + strategy S runs on model M of the same endpoint (e.g. self-refine=gpt-4o)
      --temperature T        sampling temperature sent to the endpoint (0..2)
      --max-tokens N         max_tokens of every completion
      --model-seed N         the request's seed (best-effort determinism at the endpoint)
      --n N                  completions per request (the first is used; all are counted)
      --judge-model NAME     also grade every answer with this LLM judge against the reference
                             (reported apart, marked model-graded; not deterministic)
      --judge-rubric TEXT    the judge's rubric (default: same meaning as the reference)
      --replay FILE          re-grade the answers kept in a records file; no model is called
`;

interface Flags {
  model?: string[];
  "strategy-model"?: string[];
  temperature?: string;
  "max-tokens"?: string;
  "model-seed"?: string;
  n?: string;
  "judge-model"?: string;
  "judge-rubric"?: string;
}

function number(
  raw: string | undefined,
  flag: string,
  opts: { int: boolean; min: number; max: number; example: string },
): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (
    raw.trim() === "" ||
    !Number.isFinite(n) ||
    (opts.int && !Number.isInteger(n)) ||
    n < opts.min ||
    n > opts.max
  ) {
    throw new RefineryError(
      "invalid_input",
      `expected ${opts.int ? "an integer" : "a number"} from ${opts.min} to ${opts.max}, got "${raw}"`,
      { field: `--${flag}`, fix: `e.g. --${flag} ${opts.example}` },
    );
  }
  return n;
}

/** The decoding parameters given on the command line (empty when none). */
export function decodingFromFlags(flags: Flags): Decoding {
  const decoding: Decoding = {
    temperature: number(flags.temperature, "temperature", {
      int: false,
      min: 0,
      max: 2,
      example: "0",
    }),
    maxTokens: number(flags["max-tokens"], "max-tokens", {
      int: true,
      min: 1,
      max: 1_000_000,
      example: "1024",
    }),
    seed: number(flags["model-seed"], "model-seed", {
      int: true,
      min: -(2 ** 31),
      max: 2 ** 31 - 1,
      example: "1234",
    }),
    n: number(flags.n, "n", { int: true, min: 1, max: 16, example: "1" }),
  };
  return Object.fromEntries(
    Object.entries(decoding).filter(([, v]) => v !== undefined),
  ) as Decoding;
}

/** The models to compare: the --model flags (deduplicated), or undefined for the configured one. */
export function modelsFromFlags(flags: Flags): string[] | undefined {
  const names = (flags.model ?? []).map((m) => m.trim());
  if (names.some((m) => m === "")) {
    throw new RefineryError("invalid_input", "--model needs a model name", {
      field: "--model",
      fix: "e.g. --model gpt-4o-mini --model llama-3.1-8b",
    });
  }
  return names.length === 0 ? undefined : [...new Set(names)];
}

/** Refuses real-endpoint options on the simulated model (they would silently do nothing). */
export function checkOnlineOptions(flags: Flags, offline: boolean): void {
  if (flags["judge-rubric"] !== undefined && flags["judge-model"] === undefined) {
    throw new RefineryError("invalid_input", "--judge-rubric needs --judge-model", {
      field: "--judge-rubric",
      fix: "add --judge-model NAME",
    });
  }
  if (!offline) return;
  const given = (
    [
      "model",
      "strategy-model",
      "temperature",
      "max-tokens",
      "model-seed",
      "n",
      "judge-model",
    ] as const
  ).find((f) =>
    Array.isArray(flags[f]) ? (flags[f] as string[]).length > 0 : flags[f] !== undefined,
  );
  if (given !== undefined) {
    throw new RefineryError(
      "invalid_input",
      `--${given} needs a real model endpoint, and this evaluation uses the simulated model`,
      {
        field: `--${given}`,
        fix: "set OPENAI_API_KEY (and OPENAI_BASE_URL) and drop --offline/--seed, or drop this option",
      },
    );
  }
}

/** A file-name-safe form of a model name, for per-model records files. */
export function modelSlug(model: string): string {
  return model.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "") || "model";
}

/** `--strategy-model STRATEGY=MODEL` flags, for strategies this evaluation runs. */
export function strategyModelsFromFlags(
  flags: Flags,
  strategies: readonly EvalStrategy[],
): Partial<Record<EvalStrategy, string>> | undefined {
  const raw = flags["strategy-model"] ?? [];
  if (raw.length === 0) return undefined;
  const out: Partial<Record<EvalStrategy, string>> = {};
  for (const pair of raw) {
    const m = /^\s*([^=\s]+)\s*=\s*(\S.*?)\s*$/.exec(pair);
    const strategy = m?.[1] as EvalStrategy | undefined;
    if (!m || strategy === undefined || !strategies.includes(strategy)) {
      throw new RefineryError(
        "invalid_input",
        m ? `strategy "${m[1]}" is not evaluated here` : `expected STRATEGY=MODEL, got "${pair}"`,
        {
          field: "--strategy-model",
          fix: `name one of the --strategies (${strategies.join(", ")}), e.g. --strategy-model ${strategies[0] ?? "self-refine"}=gpt-4o`,
        },
      );
    }
    out[strategy] = m[2] as string;
  }
  return out;
}
