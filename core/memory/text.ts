// Lexical helpers for the lessons memory: tokenising, keywords, near-duplicate detection and a
// small BM25 ranker. Pure functions, no I/O, so ranking is deterministic and unit-tested.

const STOPWORDS = new Set(
  (
    "a an and are as at be been but by can do does for from had has have he her his how i if in " +
    "into is it its me my no not of on or our she so than that the their them then there these " +
    "they this to too up us was we were what when where which while who whom why will with you " +
    "your each every any all some many much more most less least one two three per after before " +
    "about over under again also only just very out off own same such other both few nor yet " +
    "would should could must may might shall did done being having give gives given get gets " +
    "answer task draft"
  ).split(" "),
);

/** Lower-case word tokens (letters, digits), stop words and 1-letter tokens dropped. */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
    if (raw.length < 2 || STOPWORDS.has(raw) || /^\d+$/.test(raw)) continue;
    out.push(stem(raw));
  }
  return out;
}

/** A light suffix stripper so "apples"/"apple" and "travelled"/"travel" meet. */
function stem(word: string): string {
  if (word.length > 5 && word.endsWith("ies")) return `${word.slice(0, -3)}y`;
  if (word.length > 5 && word.endsWith("ing")) return word.slice(0, -3);
  if (word.length > 4 && word.endsWith("ed")) return word.slice(0, -2);
  if (word.length > 3 && word.endsWith("s") && !word.endsWith("ss")) return word.slice(0, -1);
  return word;
}

/** The task's most frequent distinct terms, first occurrence breaking ties (at most `max`). */
export function keywords(text: string, max = 12): string[] {
  const counts = new Map<string, number>();
  for (const t of tokenize(text)) counts.set(t, (counts.get(t) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, max)
    .map(([t]) => t);
}

/** Jaccard similarity of the token sets of two texts (0..1). */
export function jaccard(a: string, b: string): number {
  const sa = new Set(tokenize(a));
  const sb = new Set(tokenize(b));
  if (sa.size === 0 && sb.size === 0) return a.trim() === b.trim() ? 1 : 0;
  let common = 0;
  for (const t of sa) if (sb.has(t)) common += 1;
  return common / (sa.size + sb.size - common);
}

/** Whitespace-collapsed, lower-cased text: the exact-duplicate key of a lesson. */
export function normalizeText(text: string): string {
  return text.toLowerCase().replace(/\s+/g, " ").trim();
}

export interface RankDoc {
  id: string;
  terms: string[];
}

/**
 * Okapi BM25 scores of `query` against each doc (k1 1.2, b 0.75), over this corpus only. Docs
 * sharing no term with the query score 0.
 */
export function bm25(query: string[], docs: RankDoc[]): Map<string, number> {
  const scores = new Map<string, number>();
  if (docs.length === 0) return scores;
  const k1 = 1.2;
  const b = 0.75;
  const df = new Map<string, number>();
  let totalLen = 0;
  for (const d of docs) {
    totalLen += d.terms.length;
    for (const t of new Set(d.terms)) df.set(t, (df.get(t) ?? 0) + 1);
  }
  const avgLen = totalLen / docs.length || 1;
  const q = [...new Set(query)];
  for (const d of docs) {
    const tf = new Map<string, number>();
    for (const t of d.terms) tf.set(t, (tf.get(t) ?? 0) + 1);
    let score = 0;
    for (const t of q) {
      const f = tf.get(t);
      if (!f) continue;
      const n = df.get(t) ?? 0;
      const idf = Math.log(1 + (docs.length - n + 0.5) / (n + 0.5));
      score += (idf * f * (k1 + 1)) / (f + k1 * (1 - b + (b * d.terms.length) / avgLen));
    }
    scores.set(d.id, score);
  }
  return scores;
}

/** Cosine similarity of two equal-length vectors (0 when either is all zeros). */
export function cosine(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}
