// Comparing what the two servers recorded for one case: steps are made comparable (normalised;
// error bodies by shape only), diffed, and each difference classified as intended (listed in
// diff/intended.ts, with its reason) or unexpected.
import type { Case } from "./corpus.ts";
import { INTENDED, type Intended } from "./intended.ts";
import { compare, normalize, shapeOf, type Difference } from "./normalize.ts";
import type { Step } from "./target.ts";

/**
 * What is compared of a step. An error's status is compared, not its body or Content-Type:
 * Refinery answers JSON `{error, message, field, fix}` where the reference answers plain text or
 * zod issues (clients read the status; the SDK shows the text).
 */
export function comparable(step: Step): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const failed = (step.status ?? 200) >= 400;
  if (step.status !== undefined) out.status = step.status;
  if (step.headers) {
    const headers = normalize(step.headers) as Record<string, unknown>;
    if (failed) delete headers["content-type"];
    out.headers = headers;
  }
  if (step.body !== undefined && !failed) {
    out.body = normalize(step.body);
    if (step.unordered && Array.isArray(out.body)) {
      out.body = [...(out.body as unknown[])].sort((a, b) =>
        JSON.stringify(a).localeCompare(JSON.stringify(b)),
      );
    }
  }
  if (step.events) out.events = normalize(step.events);
  if (step.result !== undefined) out.result = normalize(step.result);
  if (step.error) out.error = step.error;
  if (step.requests) out.requests = normalize(step.requests);
  return out;
}

export interface CaseResult {
  c: Case;
  unexpected: Difference[];
  intended: { d: Difference; why: Intended }[];
  crash?: string;
}

export function diffSteps(ours: Step[], ref: Step[]): Difference[] {
  const out: Difference[] = [];
  const n = Math.max(ours.length, ref.length);
  for (let i = 0; i < n; i++) {
    const o = ours[i];
    const r = ref[i];
    const label = (r ?? o)!.label;
    if (!o) out.push({ path: label, kind: "missing", ref: comparable(r!) });
    else if (!r) out.push({ path: label, kind: "extra", ours: comparable(o) });
    else if (o.status !== r.status) {
      // A different status makes every body difference noise: one difference, bodies attached.
      out.push({
        path: `${label}.status`,
        kind: "value",
        ours: { status: o.status, body: shapeOf(o.body) },
        ref: { status: r.status, body: shapeOf(r.body) },
      });
    } else out.push(...compare(comparable(o), comparable(r), label));
  }
  return out;
}

export function classify(
  c: Pick<Case, "route" | "name">,
  diffs: Difference[],
  intendedList: readonly Intended[] = INTENDED,
): Omit<CaseResult, "c" | "crash"> {
  const unexpected: Difference[] = [];
  const intended: CaseResult["intended"] = [];
  for (const d of diffs) {
    const why = intendedList.find(
      (e) =>
        (e.route === "*" || e.route === c.route) &&
        (!e.case || e.case.test(c.name)) &&
        (!e.kind || e.kind === d.kind) &&
        e.path.test(d.path) &&
        (!e.when || e.when(d)),
    );
    if (why) intended.push({ d, why });
    else unexpected.push(d);
  }
  return { unexpected, intended };
}
