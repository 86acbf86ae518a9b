// `refinery eval --replay FILE`: grades the answers kept in a records file again with the
// datasets' grading checks, without opening a model; writes NAME.replay.records.jsonl and
// NAME.replay.summary.json and prints the table.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { RefineryError } from "../core/errors.ts";
import { fileSink, formatTable, replayRecords, type Dataset } from "../graphs/eval/index.ts";
import type { CliIO } from "./main.ts";

export async function replayCommand(
  source: string,
  datasets: Dataset[],
  opts: { out: string; json: boolean; io: CliIO },
): Promise<number> {
  if (!existsSync(source)) {
    throw new RefineryError("invalid_input", `no records file at ${source}`, {
      field: "--replay",
      fix: "pass the NAME.records.jsonl file an evaluation wrote (in its --out directory)",
    });
  }
  const records = fileSink(source).existing();
  const { summary, records: regraded } = await replayRecords(source, records, datasets);
  const name = basename(source).replace(/\.records\.jsonl$|\.jsonl$/, "");
  mkdirSync(opts.out, { recursive: true });
  const recordsPath = join(opts.out, `${name}.replay.records.jsonl`);
  const summaryPath = join(opts.out, `${name}.replay.summary.json`);
  if (recordsPath === source) {
    throw new RefineryError("invalid_input", "the replay would overwrite the records it reads", {
      field: "--out",
      fix: "use another --out directory",
    });
  }
  writeFileSync(recordsPath, regraded.map((r) => `${JSON.stringify(r)}\n`).join(""));
  writeFileSync(summaryPath, `${JSON.stringify(summary, null, 2)}\n`);
  if (opts.json) opts.io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    opts.io.stdout.write(formatTable(summary));
    opts.io.stdout.write(
      `\n${summary.replay.changed} of ${regraded.length} record(s) graded differently than when recorded\n` +
        `records: ${recordsPath}\nsummary: ${summaryPath}\n`,
    );
  }
  return 0;
}
