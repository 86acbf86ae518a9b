// Whether a refine thread's answer passes its hard checks, and whether an earlier draft did (the
// console's copy of core/hard-checks.ts, read from the thread's values). Pure: no DOM.

function hardOf(verdicts, iteration) {
  return verdicts.filter((v) => v.iteration === iteration && v.hard);
}

/** The iteration whose draft is the answer: the best-so-far when it is the answer, else the newest equal draft. */
export function answerIteration(values) {
  const drafts = Array.isArray(values?.drafts) ? values.drafts : [];
  if (values?.best && values.best.text === values.answer) return values.best.iteration;
  const same = drafts.findLast((d) => d.text === values?.answer);
  return same?.iteration ?? drafts[drafts.length - 1]?.iteration ?? null;
}

/**
 * @returns {{iteration: number, passed: number, total: number, failed: string[], earlierPassing: number|null} | null}
 */
export function hardCheckReport(verdicts, iteration) {
  if (iteration === null || iteration === undefined) return null;
  const list = Array.isArray(verdicts) ? verdicts : [];
  const hard = hardOf(list, iteration);
  const failed = [...new Set(hard.filter((v) => !v.pass).map((v) => v.verifierId ?? v.kind))];
  let earlierPassing = null;
  if (failed.length) {
    const earlier = [...new Set(list.map((v) => v.iteration))]
      .filter((i) => i < iteration)
      .sort((a, b) => b - a);
    earlierPassing =
      earlier.find((i) => {
        const checks = hardOf(list, i);
        return checks.length > 0 && checks.every((v) => v.pass);
      }) ?? null;
  }
  return {
    iteration,
    passed: hard.filter((v) => v.pass).length,
    total: hard.length,
    failed,
    earlierPassing,
  };
}

/** The report on a finished thread's answer (null when there is no answer yet). */
export function answerChecks(values) {
  if (typeof values?.answer !== "string") return null;
  return hardCheckReport(values.verdicts, answerIteration(values));
}

/** One plain sentence about a report. */
export function checksSentence(report) {
  if (!report) return "";
  if (!report.total) return "No hard check ran on this answer.";
  if (!report.failed.length) return `Passes its hard checks (${report.passed} of ${report.total}).`;
  const fails = `Fails hard check${report.failed.length > 1 ? "s" : ""} ${report.failed.join(", ")} (${report.passed} of ${report.total} pass).`;
  return report.earlierPassing !== null
    ? `${fails} Draft ${report.earlierPassing} passed every hard check.`
    : `${fails} No earlier draft passed them all.`;
}
