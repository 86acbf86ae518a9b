// Renders diff rows (lib/diff.js) as red/green lines; <ins>/<del> carry the meaning for
// assistive technology, the +/- gutter for everyone else.
import { h } from "../lib/dom.js";
import { collapse, diffStats } from "../lib/diff.js";

export function diffView(rows, { label = "Changes" } = {}) {
  const { added, removed } = diffStats(rows);
  if (added === 0 && removed === 0) return h("p", { class: "muted small" }, "No changes.");
  const body = collapse(rows).map((r) => {
    if (r.type === "hunk") return h("div", { class: "line hunk" }, r.text);
    if (r.type === "skip") return h("div", { class: "line skip" }, `⋯ ${r.text}`);
    const tag = r.type === "add" ? "ins" : r.type === "del" ? "del" : "div";
    const sign = r.type === "add" ? "+" : r.type === "del" ? "−" : " ";
    return h(
      tag,
      { class: ["line", r.type] },
      h("span", { class: "sign", "aria-hidden": "true" }, sign),
      r.text || " ",
    );
  });
  return h(
    "figure",
    { class: "diff-figure" },
    h(
      "figcaption",
      { class: "diff-caption" },
      label,
      h("span", { class: "stat add" }, `+${added}`),
      h("span", { class: "stat del" }, `−${removed}`),
    ),
    h(
      "div",
      {
        class: "diff",
        role: "group",
        "aria-label": `${label}: ${added} lines added, ${removed} removed`,
      },
      body,
    ),
  );
}
