// Start-up bench (issue 20): wall-clock time of `refinery --help`, of an offline `refinery run` to
// its answer, of `npm start` to the first 200 from GET /ok on a fresh temporary database, and of
// `npm start` to the answer of the first runs.wait (the run thread's warm-up).
// Each command runs as a child process, the checkouts interleaved round by round, so a noisy
// machine loads them alike; the medians and the ratios to the first checkout are printed.
//
//   npm run bench:startup                            this checkout
//   npm run bench:startup -- --compare /work/main    another checkout first (e.g. before a change)
//   npm run bench:startup -- --repeats 7
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { firstRunMeasure, measureOnce, measures } from "./startup-measures.ts";
import { describeMachine, formatMachine, median } from "./support.ts";

const { values } = parseArgs({
  options: {
    compare: { type: "string", multiple: true },
    repeats: { type: "string", default: "5" },
  },
});
const repeats = Math.max(1, Number(values.repeats));
const here = resolve(import.meta.dirname, "..");
const roots = [...(values.compare ?? []).map((p) => resolve(p)), here];

console.log(`Machine: ${formatMachine(describeMachine())}`);
console.log(
  `Load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
console.log(`Checkouts: ${roots.join(", ")}; ${repeats} repeats each, interleaved\n`);

const rows: string[][] = [];
for (const measure of [...measures, firstRunMeasure]) {
  const times = roots.map(() => [] as number[]);
  for (let i = 0; i < repeats; i++) {
    for (const [r, root] of roots.entries()) {
      // A fresh temporary database (and data directory) for every repeat.
      times[r]!.push(await measureOnce(measure, root));
    }
  }
  const medians = times.map((t) => median(t));
  for (const [r, root] of roots.entries()) {
    const ratio = r === 0 ? "" : ` (${(medians[r]! / medians[0]!).toFixed(2)}× the first)`;
    rows.push([
      measure.name,
      root,
      `${medians[r]!.toFixed(0)} ms${ratio}`,
      times[r]!.map((t) => t.toFixed(0)).join(" "),
    ]);
  }
  const last = rows.slice(-roots.length);
  for (const row of last) console.log(`${row[0]} | ${row[1]} | median ${row[2]} | ${row[3]}`);
}
console.log(
  `\nLoad average at end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
