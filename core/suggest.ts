// "Did you mean …?": the closest of the valid names to a misspelt one, for error messages that
// name the fix (a field, a flag, an option). Case-insensitive optimal string alignment distance.

/** Edit distance with transpositions (maxIterations / maxItreations is 1). */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) =>
    Array.from({ length: t.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[s.length]![t.length]!;
}

/**
 * The candidate closest to `name`, when close enough to be what was meant: within a third of its
 * length (at least 2 edits), or sharing most of its beginning.
 */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: { c: string; d: number } | undefined;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (!best || d < best.d) best = { c, d };
  }
  if (!best) return undefined;
  if (best.d <= Math.max(2, Math.floor(name.length / 3))) return best.c;
  // Or a long enough shared beginning: maxIteration / maxIterations, critic / critique.
  const shared = sharedPrefix(name.toLowerCase(), best.c.toLowerCase());
  return shared >= 4 && shared >= (2 / 3) * Math.min(name.length, best.c.length)
    ? best.c
    : undefined;
}

/** "did you mean X?" or the list of valid names, for an error's fix. */
export function suggestion(name: string, candidates: readonly string[], what = "fields"): string {
  const near = closest(name, candidates);
  return near
    ? `did you mean "${near}"?`
    : `valid ${what}: ${candidates.slice(0, 30).join(", ")}${candidates.length > 30 ? ", …" : ""}`;
}

function sharedPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}
