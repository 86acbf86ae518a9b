// Whether an answer passes its hard checks, and whether an earlier draft did: what a reviewer,
// the console and an export must say plainly when the answer offered is worse than one before it
// (a reviewer's reject can discard a right draft for revisions that fail). Pure.

/** One verifier verdict, in the shape both the graph state and a stored outcome can give. */
export interface CheckedVerdict {
  iteration: number;
  id: string;
  hard: boolean;
  pass: boolean;
}

export interface HardCheckReport {
  /** The draft the report is about. */
  iteration: number;
  passed: number;
  total: number;
  /** Ids of the hard verifiers that fail on it. */
  failed: string[];
  /** When it fails a hard check: the newest earlier draft that passed every hard check, else null. */
  earlierPassing: number | null;
}

function hardOf(verdicts: readonly CheckedVerdict[], iteration: number): CheckedVerdict[] {
  return verdicts.filter((v) => v.iteration === iteration && v.hard);
}

export function hardCheckReport(
  verdicts: readonly CheckedVerdict[],
  iteration: number,
): HardCheckReport {
  const hard = hardOf(verdicts, iteration);
  const failed = [...new Set(hard.filter((v) => !v.pass).map((v) => v.id))];
  let earlierPassing: number | null = null;
  if (failed.length) {
    const earlier = [...new Set(verdicts.map((v) => v.iteration))]
      .filter((i) => i < iteration)
      .sort((a, b) => b - a);
    for (const i of earlier) {
      const checks = hardOf(verdicts, i);
      if (checks.length && checks.every((v) => v.pass)) {
        earlierPassing = i;
        break;
      }
    }
  }
  return {
    iteration,
    passed: hard.filter((v) => v.pass).length,
    total: hard.length,
    failed,
    earlierPassing,
  };
}

/** One plain sentence when the answer fails a hard check (null when it passes them all). */
export function hardCheckWarning(report: HardCheckReport): string | null {
  if (!report.failed.length) return null;
  const names = report.failed.join(", ");
  const fails = `The answer offered (draft ${report.iteration}) fails hard check${report.failed.length > 1 ? "s" : ""} ${names}`;
  return report.earlierPassing !== null
    ? `${fails}; draft ${report.earlierPassing} passed every hard check.`
    : `${fails}; no earlier draft passed them all.`;
}
