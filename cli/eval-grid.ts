// `refinery eval --grid grid.yaml`: the sensitivity grid on the offline simulated model. Writes
// one records file per cell and seed (a rerun resumes), grid.summary.json and grid.chart.svg, and
// prints the table.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RefineryError } from "../core/errors.ts";
import { openEngine } from "../graphs/engine.ts";
import {
  engineRunner,
  formatGridTable,
  gridCells,
  gridRecordsPath,
  loadDataset,
  readGrid,
  renderGridSvg,
  runGrid,
} from "../graphs/eval/index.ts";
import { settingsFromFlags } from "./args.ts";
import { createProgress } from "./eval.ts";
import { EVAL_MODEL_FLAGS } from "./eval-options.ts";
import type { CliIO } from "./main.ts";

// Flags that the grid file sets itself, or that make no sense for a grid.
const NOT_WITH_GRID = [
  "strategies",
  "limit",
  "max-iterations",
  "offline",
  "seed",
  "replicates",
  "sim",
  // The endpoint's options: a grid runs on the simulated model only.
  ...Object.keys(EVAL_MODEL_FLAGS),
];

export async function gridCommand(
  path: string,
  flags: Record<string, unknown>,
  io: CliIO,
): Promise<number> {
  const clash = NOT_WITH_GRID.find((f) => flags[f] !== undefined);
  if (clash !== undefined) {
    throw new RefineryError("invalid_input", `--${clash} cannot be combined with --grid`, {
      field: `--${clash}`,
      fix: "set strategies, seeds, limit, max_iterations and parameters in the grid file",
    });
  }
  const spec = readGrid(path);
  const paths = (flags.dataset as string[] | undefined)?.length
    ? (flags.dataset as string[])
    : spec.datasets;
  if (paths.length === 0) {
    throw new RefineryError("invalid_input", "no dataset given", {
      field: `${path}: datasets`,
      fix: "list datasets: in the grid file, or pass --dataset PATH",
    });
  }
  const datasets = paths.map((p) => loadDataset(p));
  const concurrency = flags.concurrency === undefined ? undefined : Number(flags.concurrency);
  if (
    concurrency !== undefined &&
    (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)
  ) {
    throw new RefineryError(
      "invalid_input",
      `expected an integer from 1 to 256, got "${String(flags.concurrency)}"`,
      {
        field: "--concurrency",
        fix: "pass a whole number between 1 and 256, e.g. --concurrency 4",
      },
    );
  }
  const out = (flags.out as string | undefined) ?? "results/grid";
  if (flags.fresh) {
    gridCells(spec).forEach((_, cell) => {
      for (const seed of spec.seeds) rmSync(gridRecordsPath(out, cell, seed), { force: true });
    });
  }
  const engine = openEngine({ settings: settingsFromFlags(io.env, undefined), memory: true });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  let progress: ReturnType<typeof createProgress> | undefined;
  let at = "";
  try {
    const summary = await runGrid({
      spec,
      datasets,
      runner: engineRunner(engine),
      out,
      concurrency,
      signal: abort.signal,
      onProgress: (cell, cells, seed, p) => {
        const label = `cell ${cell + 1}/${cells} seed ${seed} `;
        if (label !== at) {
          progress?.end();
          progress = createProgress(io, label);
          at = label;
        }
        progress?.update(p);
      },
    });
    progress?.end();
    mkdirSync(out, { recursive: true });
    const summaryPath = join(out, "grid.summary.json");
    const chartPath = join(out, "grid.chart.svg");
    writeFileSync(summaryPath, `${JSON.stringify(summary, null, 2)}\n`);
    writeFileSync(chartPath, renderGridSvg(summary));
    if (flags.json) io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else {
      io.stdout.write(formatGridTable(summary));
      io.stdout.write(
        `\nrecords: ${join(out, "grid-*.seed-*.records.jsonl")}\nsummary: ${summaryPath}\nchart:   ${chartPath}\n`,
      );
    }
    if (summary.status === "interrupted") {
      io.stderr.write("refinery: grid interrupted; run the same command again to resume\n");
      return 130;
    }
    return 0;
  } finally {
    progress?.end();
    process.off("SIGINT", onSignal);
    engine.close();
  }
}
