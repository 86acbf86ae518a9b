// Open-QA scores as SQuAD defines them: answers are normalised (lower case, no punctuation, no
// articles a/an/the, single spaces), then compared by exact match and by token-overlap F1, each
// taking the best over the accepted answers.

/** SQuAD's normalize_answer. */
export function normalizeQaAnswer(text: string): string {
  return text
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, "")
    .replace(/\b(a|an|the)\b/g, " ")
    .split(/\s+/)
    .filter(Boolean)
    .join(" ");
}

export function exactMatch(prediction: string, golds: readonly string[]): boolean {
  const p = normalizeQaAnswer(prediction);
  return golds.some((g) => normalizeQaAnswer(g) === p);
}

/** Token F1 against the best-matching accepted answer (0..1). */
export function tokenF1(prediction: string, golds: readonly string[]): number {
  return Math.max(0, ...golds.map((g) => f1(prediction, g)));
}

function f1(prediction: string, gold: string): number {
  const p = normalizeQaAnswer(prediction).split(" ").filter(Boolean);
  const g = normalizeQaAnswer(gold).split(" ").filter(Boolean);
  if (p.length === 0 || g.length === 0) return p.length === g.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let common = 0;
  for (const t of p) {
    const n = counts.get(t) ?? 0;
    if (n > 0) {
      common++;
      counts.set(t, n - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / p.length;
  const recall = common / g.length;
  return (2 * precision * recall) / (precision + recall);
}
