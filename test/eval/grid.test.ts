// The sensitivity grid: the grid file's checks (file, field, fix), the cells, and a small grid run
// through the CLI on the simulated model whose every figure is recomputed from its records files.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isRefineryError } from "../../core/errors.ts";
import {
  comparePaired,
  gridCells,
  parseGrid,
  type GridSummary,
  type ItemRecord,
} from "../../graphs/eval/index.ts";
import { runCliInProcess, writeDataset } from "./fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "refinery-eval-grid-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VALID = `strategies: [self-refine, proactive]
seeds: [1, 2]
params:
  specificFalseAlarmRate: [0, 1]
`;

function errorOf(text: string): string {
  try {
    parseGrid(text, "grid.yaml");
  } catch (err) {
    if (isRefineryError(err)) return `${err.field}: ${err.message}. Fix: ${err.fix}`;
    throw err;
  }
  throw new Error("no error");
}

describe("grid file", () => {
  it.each([
    ["strategies: [self-refine, proactive\n", /^grid\.yaml line \d+: not valid YAML/],
    ["- a\n- b\n", /^grid\.yaml: the grid file must be a YAML mapping/],
    [VALID.replace("proactive", "telepathy"), /^grid\.yaml: strategies\[1\]: Invalid option/],
    [
      VALID.replace("[self-refine, proactive]", "[proactive]"),
      /^grid\.yaml: strategies: name at least two/,
    ],
    [
      `${VALID}baseline: vanilla\n`,
      /^grid\.yaml: baseline: the baseline "vanilla" is not among the strategies/,
    ],
    [VALID.replace("[1, 2]", "[1, 2.5]"), /^grid\.yaml: seeds/],
    [
      VALID.replace("[0, 1]", "[0, 1.5]"),
      /^grid\.yaml: params\.specificFalseAlarmRate\[1\]: .*(Too big|<=1)/,
    ],
    [
      VALID.replace("specificFalseAlarmRate", "frobnicate"),
      /^grid\.yaml: params\.frobnicate\[0\]: .*frobnicate/,
    ],
    [VALID.replace("[0, 1]", "[]"), /^grid\.yaml: params\.specificFalseAlarmRate: /],
    [
      VALID.replace("specificFalseAlarmRate: [0, 1]", "seed: [1, 2]"),
      /^grid\.yaml: params\.seed: seed cannot be a grid parameter/,
    ],
    [
      `${VALID}fixed: {detectRate: 2}\n`,
      /^grid\.yaml: fixed\.detectRate: .*Fix: see docs\/simulated-model\.md/,
    ],
    [`${VALID}colour: red\n`, /^grid\.yaml: colour: unknown field "colour"/],
    [`${VALID}bootstrap: {samples: 5}\n`, /^grid\.yaml: bootstrap\.samples: /],
    [
      VALID.replace("specificFalseAlarmRate", "families.json.invisibleErrorRate").replace(
        "[0, 1]",
        "[0, 7]",
      ),
      /^grid\.yaml: params\.families\.json\.invisibleErrorRate\[1\]: /,
    ],
  ])("%j is refused with the file and the field", (text, message) => {
    expect(errorOf(text)).toMatch(message);
  });

  it("reads seeds as a list or a range, resolves datasets against the file's folder, and lists every combination", () => {
    const spec = parseGrid(
      `datasets: [data/a.jsonl]\nstrategies: [self-refine, proactive]\nseeds: {from: 3, count: 3}\nparams:\n  detectRate: [0.5, 0.85]\n  families.json.invisibleErrorRate: [0, 0.3, 1]\n`,
      "/tmp/x/grid.yaml",
    );
    expect(spec.seeds).toEqual([3, 4, 5]);
    expect(spec.datasets).toEqual(["/tmp/x/data/a.jsonl"]);
    expect(spec.baseline).toBe("self-refine");
    const cells = gridCells(spec);
    expect(cells).toHaveLength(6);
    expect(cells[0]).toEqual({ detectRate: 0.5, "families.json.invisibleErrorRate": 0 });
    expect(cells[5]).toEqual({ detectRate: 0.85, "families.json.invisibleErrorRate": 1 });
  });
});

describe("refinery eval --grid", () => {
  it("runs every cell and seed; the summary's figures are the records' figures; a rerun resumes", async () => {
    const dataset = writeDataset(dir, "small");
    const grid = join(dir, "grid.yaml");
    writeFileSync(grid, `datasets: [small.jsonl]\n${VALID}`);
    const out = join(dir, "out");
    const r = await runCliInProcess(["eval", "--grid", grid, "--out", out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^SIMULATED — offline simulated model/);
    expect(r.stdout).toMatch(
      /parameters \(defaults of DEFAULT_SIMULATED_OPTIONS.*docs\/simulated-model\.md\): .*invisibleErrorRate=0\.58/,
    );
    expect(r.stdout).toMatch(/varied: specificFalseAlarmRate ∈ \{0, 1\}/);
    const summary = JSON.parse(readFileSync(join(out, "grid.summary.json"), "utf8")) as GridSummary;
    expect(summary).toMatchObject({ label: "simulated", status: "complete", seeds: [1, 2] });
    expect(summary.cells).toHaveLength(2);
    expect(summary.datasets[0]?.name).toBe("small");
    for (const cell of summary.cells) {
      const runs = cell.records_files.map((file, i) => ({
        seed: summary.seeds[i],
        records: readFileSync(file, "utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as ItemRecord),
      }));
      expect(runs.every((run) => run.records.length === 16)).toBe(true);
      const again = comparePaired(runs, "proactive", "self-refine", summary.bootstrap);
      expect(cell.comparisons).toEqual(again);
      const all = cell.comparisons.find((c) => c.family === "all");
      expect(all?.runs).toBe(16);
      expect(cell.comparisons.map((c) => c.family)).toEqual(["all", "c", "w", "x"]);
    }
    const svg = readFileSync(join(out, "grid.chart.svg"), "utf8");
    expect(svg).toMatch(/<title>SIMULATED — sensitivity grid: proactive vs self-refine<\/title>/);
    // One row per cell and family, each with a point for accuracy and one for tokens.
    const rows = summary.cells.reduce((n, c) => n + c.comparisons.length, 0);
    expect(rows).toBe(8);
    expect(svg.match(/<circle /g)).toHaveLength(2 * rows);
    const table = r.stdout.split("\n").filter((l) => /^[12]\s+[01]\s+(all|c|w|x)\s/.test(l));
    expect(table).toHaveLength(rows);
    expect(existsSync(dataset)).toBe(true);

    const rerun = await runCliInProcess(["eval", "--grid", grid, "--out", out]);
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toMatch(/16 already recorded \(resuming\)/);
    const second = JSON.parse(readFileSync(join(out, "grid.summary.json"), "utf8")) as GridSummary;
    expect(second.cells.map((c) => c.comparisons)).toEqual(summary.cells.map((c) => c.comparisons));
  });

  it.each([
    [["--seed", "3"], /--seed: --seed cannot be combined with --grid/],
    [["--sim", "detectRate=0.5"], /--sim: --sim cannot be combined with --grid/],
  ])("--grid with %j: one line, exit 2", async (extra, message) => {
    const grid = join(dir, "plain.yaml");
    writeFileSync(grid, VALID);
    const r = await runCliInProcess(["eval", "--grid", grid, ...extra]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("a missing grid file or one without datasets: one line, exit 2", async () => {
    const missing = await runCliInProcess(["eval", "--grid", join(dir, "nope.yaml")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--grid: cannot read grid file/);
    const grid = join(dir, "nodata.yaml");
    writeFileSync(grid, VALID);
    const none = await runCliInProcess(["eval", "--grid", grid]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/nodata\.yaml: datasets: no dataset given/);
  });
});
