// Live terminal output for `refinery run`: one block per node as it finishes, a status line
// that ticks while a node is working (on a terminal only), and the final summary.
import { usageByNodeOf, type Critique, type Draft, type RefineStateType } from "../core/state.ts";
import { totalsOnly } from "../core/usage.ts";
import type { Verdict } from "../core/verifiers/types.ts";

export interface Out {
  write(text: string): void;
  isTTY: boolean;
}

const SPIN = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export function excerpt(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * 12345 → "12,345", as toLocaleString("en-US") writes it; whole numbers by hand, because the
 * first toLocaleString of a process loads ICU's locale data (70–110 ms of an offline run).
 */
export function fmt(n: number): string {
  if (!Number.isSafeInteger(n)) return n.toLocaleString("en-US");
  return String(n).replace(/\B(?=(\d{3})+$)/g, ",");
}

export class LiveRenderer {
  private timer?: NodeJS.Timeout;
  private frame = 0;
  private status = "";
  private tokens = 0;
  private readonly started = Date.now();

  constructor(
    private readonly out: Out,
    private readonly maxIterations: number,
  ) {}

  start(threadId: string, simulated: boolean): void {
    this.out.write(`thread ${threadId}  (resume with: refinery resume ${threadId})\n`);
    if (simulated)
      this.out.write(
        "model: offline simulated model — outputs are simulated, not from a real LLM\n",
      );
    this.working("generate", 1);
  }

  /** Called with each `updates` chunk: {node: partialState}. */
  update(chunk: Record<string, Partial<RefineStateType> | undefined>): void {
    this.clearStatus();
    for (const [node, update] of Object.entries(chunk)) {
      if (!update) continue;
      if (update.usage) this.tokens += update.usage.totalTokens;
      const drafts = asList<Draft>(update.drafts);
      const critiques = asList<Critique>(update.critiques);
      const verdicts = asList<Verdict>(update.verdicts);
      for (const d of drafts) {
        this.out.write(`\n[${d.iteration}/${this.maxIterations}] ${node}: ${excerpt(d.text)}\n`);
        this.out.write(`      ${fmt(d.usage.totalTokens)} tokens, ${d.latencyMs} ms\n`);
      }
      for (const c of critiques) {
        const head = c.verdict === "pass" ? "no issues" : `${c.issues.length} issue(s)`;
        const score = c.score === undefined ? "" : `, score ${c.score.toFixed(2)}`;
        this.out.write(
          `      critique: ${head}${score}${c.issues.length ? ` — ${excerpt(c.issues.join("; "), 140)}` : ""}\n`,
        );
      }
      for (const v of verdicts) {
        const mark = v.pass ? "pass" : "FAIL";
        this.out.write(
          `      ${mark} ${v.verifierId}${v.hard ? "" : " (soft)"} ${v.score.toFixed(2)}${v.pass ? "" : ` — ${excerpt(v.message, 120)}`}\n`,
        );
      }
      if (update.error)
        this.out.write(`      error in ${update.error.node}: ${update.error.message}\n`);
      const next = nextOf(node);
      const iteration = drafts.at(-1)?.iteration ?? update.iteration;
      if (!update.stopReason && next) this.working(next, iteration ?? 0);
    }
  }

  finish(state: RefineStateType): void {
    this.clearStatus();
    const u = state.usage;
    this.out.write(
      `\n── answer (best of ${state.drafts.length} draft(s): iteration ${state.best?.iteration ?? "-"}) ──\n`,
    );
    this.out.write(`${state.answer ?? "(none)"}\n`);
    this.out.write(`──\nstop reason: ${state.stopReason ?? "(not finished)"}`);
    if (state.best)
      this.out.write(
        `; hard verifiers ${state.best.hardPassed}/${state.best.hardTotal}; score ${state.best.score.toFixed(2)}`,
      );
    this.out.write(
      `\ntokens: ${fmt(u.totalTokens)} total (${fmt(u.promptTokens)} prompt + ${fmt(u.completionTokens)} completion) in ${u.calls} model call(s); ${((Date.now() - this.started) / 1000).toFixed(1)} s\n`,
    );
    if (u.estimatedTokens)
      this.out.write(
        `note: the endpoint reported no usage for some calls; ${fmt(u.estimatedTokens)} of the tokens were counted with the cl100k_base tokenizer\n`,
      );
    if (state.simulated)
      this.out.write(
        "note: produced by the offline simulated model (set OPENAI_API_KEY for a real one)\n",
      );
  }

  stop(): void {
    this.clearStatus();
  }

  private working(node: string, iteration: number): void {
    if (!this.out.isTTY) return;
    this.status = `${node} (iteration ${iteration}/${this.maxIterations}, ${fmt(this.tokens)} tokens so far)`;
    this.timer ??= setInterval(() => this.draw(), 80);
    this.timer.unref();
    this.draw();
  }

  private draw(): void {
    if (!this.status) return;
    const s = SPIN[this.frame++ % SPIN.length];
    this.out.write(`\r\x1b[2K${s} ${this.status}`);
  }

  private clearStatus(): void {
    if (!this.out.isTTY) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.status) this.out.write("\r\x1b[2K");
    this.status = "";
  }
}

function nextOf(node: string): string | undefined {
  return { generate: "critique", critique: "verify", verify: "revise", revise: "critique" }[node];
}

function asList<T>(value: unknown): T[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value as T[];
  const overwritten = (value as { value?: unknown }).value;
  if (Array.isArray(overwritten)) return overwritten as T[];
  return [value as T];
}

export function resultJson(threadId: string, state: RefineStateType): Record<string, unknown> {
  const finalVerdicts = state.best
    ? state.verdicts.filter((v) => v.iteration === state.best?.iteration)
    : [];
  return {
    thread_id: threadId,
    answer: state.answer,
    stop_reason: state.stopReason,
    iterations: state.drafts.length,
    best: state.best && { ...state.best, text: undefined },
    verdicts: finalVerdicts.map(({ verifierId, hard, pass, score, message }) => ({
      verifier_id: verifierId,
      hard,
      pass,
      score,
      message,
    })),
    usage: totalsOnly(state.usage),
    usage_by_node: usageByNodeOf(state),
    error: state.error,
    simulated: state.simulated,
    ...(state.simulated
      ? { notice: "offline simulated model — outputs are simulated, not from a real LLM" }
      : {}),
  };
}
