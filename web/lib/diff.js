// Line diffs between drafts (an LCS over lines) and parsing of the server's unified diffs,
// both into the same rows: {type: "same" | "add" | "del" | "hunk" | "skip", text}. Pure: no DOM.

const MAX_CELLS = 4_000_000;

function lines(text) {
  const s = String(text ?? "").replace(/\r\n/g, "\n");
  if (s === "") return [];
  return (s.endsWith("\n") ? s.slice(0, -1) : s).split("\n");
}

/** Rows turning `before` into `after`, line by line. */
export function lineDiff(before, after) {
  const a = lines(before);
  const b = lines(after);
  // Common prefix and suffix first: revisions usually touch a few lines.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const rows = a.slice(0, start).map((text) => ({ type: "same", text }));
  if (midA.length * midB.length > MAX_CELLS) {
    rows.push(...midA.map((text) => ({ type: "del", text })));
    rows.push(...midB.map((text) => ({ type: "add", text })));
  } else {
    const n = midA.length;
    const m = midB.length;
    // lcs[i][j]: length of the LCS of midA[i:] and midB[j:]
    const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        lcs[i][j] =
          midA[i] === midB[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (midA[i] === midB[j]) {
        rows.push({ type: "same", text: midA[i] });
        i++;
        j++;
      } else if (lcs[i + 1][j] >= lcs[i][j + 1]) rows.push({ type: "del", text: midA[i++] });
      else rows.push({ type: "add", text: midB[j++] });
    }
    while (i < n) rows.push({ type: "del", text: midA[i++] });
    while (j < m) rows.push({ type: "add", text: midB[j++] });
  }
  rows.push(...a.slice(endA).map((text) => ({ type: "same", text })));
  return rows;
}

/** Rows of a unified diff (file headers dropped, hunk headers kept). */
export function parseUnified(patch) {
  const rows = [];
  for (const line of lines(patch)) {
    if (line.startsWith("---") || line.startsWith("+++") || line.startsWith("\\")) continue;
    if (line.startsWith("@@")) rows.push({ type: "hunk", text: line });
    else if (line.startsWith("+")) rows.push({ type: "add", text: line.slice(1) });
    else if (line.startsWith("-")) rows.push({ type: "del", text: line.slice(1) });
    else if (line.startsWith(" ")) rows.push({ type: "same", text: line.slice(1) });
  }
  return rows;
}

/** Collapses runs of unchanged lines longer than 2 * context + 1 into one "skip" row. */
export function collapse(rows, context = 3) {
  const out = [];
  let i = 0;
  while (i < rows.length) {
    if (rows[i].type !== "same") {
      out.push(rows[i++]);
      continue;
    }
    let j = i;
    while (j < rows.length && rows[j].type === "same") j++;
    const run = rows.slice(i, j);
    const head = i === 0 ? 0 : context;
    const tail = j === rows.length ? 0 : context;
    if (run.length > head + tail + 1) {
      out.push(...run.slice(0, head));
      out.push({
        type: "skip",
        text: `${run.length - head - tail} unchanged lines`,
        count: run.length - head - tail,
      });
      out.push(...run.slice(run.length - tail));
    } else out.push(...run);
    i = j;
  }
  return out;
}

export function diffStats(rows) {
  let added = 0;
  let removed = 0;
  for (const r of rows) {
    if (r.type === "add") added++;
    else if (r.type === "del") removed++;
  }
  return { added, removed };
}
