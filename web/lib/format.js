// Formatting of numbers, durations, times and the API's status words for people.

const integer = new Intl.NumberFormat("en-US");

export function tokens(n) {
  return integer.format(Math.round(Number(n) || 0));
}

export function duration(ms) {
  const n = Number(ms) || 0;
  if (n < 1000) return `${Math.round(n)} ms`;
  if (n < 60_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)} s`;
  const minutes = Math.floor(n / 60_000);
  return `${minutes} min ${Math.round((n % 60_000) / 1000)} s`;
}

export function score(value) {
  return typeof value === "number" ? value.toFixed(2) : "–";
}

/** A time of day for today, a date and time otherwise. */
export function dateTime(iso, now = new Date()) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toDateString() === now.toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

export function ago(iso, now = Date.now()) {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return "";
  const s = Math.round((now - t) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export function until(iso, now = Date.now()) {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return "";
  const s = Math.round((t - now) / 1000);
  if (s <= 0) return "expired";
  if (s < 60) return `in ${s} s`;
  if (s < 3600) return `in ${Math.floor(s / 60)} min`;
  return `in ${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function shortId(id) {
  return String(id ?? "").slice(0, 8);
}

export const STATUS_TEXT = {
  idle: "idle",
  busy: "busy",
  interrupted: "interrupted",
  error: "error",
};

export const STATUS_HELP = {
  idle: "No run in progress",
  busy: "A run is in progress",
  interrupted: "Paused: waiting for a human decision",
  error: "The last run failed",
};

export const STOP_TEXT = {
  accepted: "accepted",
  approved: "approved",
  single_pass: "single pass",
  max_iterations: "max iterations",
  token_budget: "token budget",
  unchanged: "unchanged",
  model_error: "model error",
  aborted: "aborted",
};

export const STOP_HELP = {
  accepted: "The stop policy accepted the draft",
  approved: "A reviewer approved the answer",
  single_pass: "One pass, no refinement",
  max_iterations: "Stopped at the iteration cap",
  token_budget: "Stopped before overspending the token budget",
  unchanged: "A revision was identical to the draft it revised",
  model_error: "The model failed; the best draft so far was kept",
  aborted: "A reviewer aborted the run",
};

/** First line of a task, shortened for lists. */
export function headline(text, max = 120) {
  const line =
    String(text ?? "")
      .trim()
      .split("\n")[0] ?? "";
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
