// The CLI's number formatting: token counts as toLocaleString("en-US") writes them, without
// loading ICU's locale data for whole numbers (cli/render.ts).
import { describe, expect, it } from "vitest";
import { fmt } from "../../cli/render.ts";

describe("fmt", () => {
  it("writes numbers as toLocaleString('en-US') does", () => {
    for (const n of [0, 7, 999, 1000, 12_345, 1_000_000, -1_234_567, 2 ** 53 - 1, 1234.5, NaN]) {
      expect(fmt(n)).toBe(n.toLocaleString("en-US"));
    }
  });
});
