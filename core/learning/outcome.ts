// A finished run, reduced to what the learning loop needs: the task, every draft with the
// critique and verdicts that judged it, human decisions, the final answer and how it was judged.
// Built from the plain state values of a run (pure; tolerant of graphs whose state lacks fields).

export interface OutcomeDraft {
  iteration: number;
  text: string;
  source: string;
}

export interface OutcomeCritique {
  iteration: number;
  verdict: "pass" | "revise";
  score?: number;
  issues: string[];
}

export interface OutcomeVerdict {
  iteration: number;
  verifier_id: string;
  hard: boolean;
  pass: boolean;
  score: number;
  message: string;
}

export interface OutcomeApproval {
  iteration: number;
  action: string;
  reason?: string;
  feedback?: string;
}

export interface RunOutcome {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  graph_id: string;
  finished_at: string;
  task: string;
  context: string;
  answer: string | null;
  stop_reason: string | null;
  strategy: string | null;
  drafts: OutcomeDraft[];
  critiques: OutcomeCritique[];
  verdicts: OutcomeVerdict[];
  approvals: OutcomeApproval[];
  feedback: string[];
  /** Ids of the lessons the run's generate prompt carried. */
  lessons_used: string[];
  /** The final answer passed every hard verifier it was checked with. */
  verified: boolean;
  /** A person approved (or edited and approved) the final answer. */
  human_approved: boolean;
  /** The first draft passed every hard verifier and its critique (if any) found nothing. */
  first_passed: boolean;
  tokens: number;
  simulated: boolean;
}

export interface OutcomeMeta {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  graph_id: string;
  finished_at?: string;
}

/** Undefined when the values are not a refinement state (no task or no drafts). */
export function outcomeFromValues(
  values: Record<string, unknown> | null | undefined,
  meta: OutcomeMeta,
): RunOutcome | undefined {
  if (!values || typeof values.task !== "string" || !Array.isArray(values.drafts)) return undefined;
  const drafts = arr(values.drafts)
    .map((d) => ({
      iteration: num(d.iteration),
      text: str(d.text),
      source: str(d.source) || "generate",
    }))
    .filter((d) => d.text !== "");
  if (drafts.length === 0) return undefined;
  const critiques = arr(values.critiques).map((c) => ({
    iteration: num(c.iteration),
    verdict: c.verdict === "pass" ? ("pass" as const) : ("revise" as const),
    ...(typeof c.score === "number" ? { score: c.score } : {}),
    issues: Array.isArray(c.issues) ? c.issues.map(String) : [],
  }));
  const verdicts = arr(values.verdicts).map((v) => ({
    iteration: num(v.iteration),
    verifier_id: str(v.verifierId ?? v.verifier_id),
    hard: v.hard !== false,
    pass: v.pass === true,
    score: typeof v.score === "number" ? v.score : v.pass ? 1 : 0,
    message: str(v.message),
  }));
  const approvals = arr(values.approvals).map((a) => ({
    iteration: num(a.iteration),
    action: str(a.action),
    ...(typeof a.reason === "string" ? { reason: a.reason } : {}),
    ...(typeof a.feedback === "string" && a.feedback ? { feedback: a.feedback } : {}),
  }));
  const answer =
    typeof values.answer === "string" && values.answer
      ? values.answer
      : typeof (values.best as { text?: unknown } | null)?.text === "string"
        ? String((values.best as { text: string }).text)
        : (drafts[drafts.length - 1]?.text ?? null);
  const answerIteration =
    drafts.findLast((d) => d.text === answer)?.iteration ?? drafts[drafts.length - 1]!.iteration;
  const hardOf = (iteration: number) => verdicts.filter((v) => v.iteration === iteration && v.hard);
  const finalHard = hardOf(answerIteration);
  const first = drafts[0]!;
  const firstCritique = critiques.find((c) => c.iteration === first.iteration);
  const usage = values.usage as { total?: unknown; totalTokens?: unknown } | undefined;
  const last = approvals[approvals.length - 1];
  return {
    ...meta,
    finished_at: meta.finished_at ?? new Date().toISOString(),
    task: values.task,
    context: typeof values.context === "string" ? values.context : "",
    answer,
    stop_reason: typeof values.stopReason === "string" ? values.stopReason : null,
    strategy: typeof values.strategy === "string" ? values.strategy : null,
    drafts,
    critiques,
    verdicts,
    approvals,
    feedback: arr(values.feedback)
      .map((f) => str(f.text))
      .filter(Boolean),
    lessons_used: arr(values.lessons)
      .map((l) => str(l.id))
      .filter(Boolean),
    verified: finalHard.every((v) => v.pass),
    human_approved:
      values.stopReason === "approved" ||
      (last !== undefined && (last.action === "approve" || last.action === "edit")),
    first_passed:
      hardOf(first.iteration).every((v) => v.pass) && firstCritique?.verdict !== "revise",
    tokens: num(usage?.total ?? usage?.totalTokens),
    simulated: values.simulated === true,
  };
}

function arr(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value)
    ? value.filter((v): v is Record<string, unknown> => typeof v === "object" && v !== null)
    : [];
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function num(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}
