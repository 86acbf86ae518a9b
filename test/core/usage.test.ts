// The state's one usage channel: totals and each node's share, folded by one reducer.
import { describe, expect, it } from "vitest";
import { reducers, usageByNodeOf } from "../../core/state.ts";
import { nodeUsage, totalsOnly, ZERO_TOTALS, type UsageTotals } from "../../core/usage.ts";

const u = (promptTokens: number, completionTokens: number, calls = 1) => ({
  promptTokens,
  completionTokens,
  totalTokens: promptTokens + completionTokens,
  calls,
});

describe("usage channel", () => {
  it("adds each node's spend to the totals and to that node's share", () => {
    let s: UsageTotals = ZERO_TOTALS;
    s = reducers.sumUsage(s, nodeUsage("generate", u(10, 5)));
    s = reducers.sumUsage(s, nodeUsage("critique", u(7, 3)));
    s = reducers.sumUsage(s, nodeUsage("critique", u(0, 0, 2))); // failed attempts: calls only
    expect(totalsOnly(s)).toEqual({
      promptTokens: 17,
      completionTokens: 8,
      totalTokens: 25,
      calls: 4,
    });
    expect(usageByNodeOf({ usage: s })).toEqual({
      generate: u(10, 5),
      critique: { promptTokens: 7, completionTokens: 3, totalTokens: 10, calls: 3 },
    });
    expect(ZERO_TOTALS).toEqual({ ...u(0, 0, 0), byNode: {} });
  });

  it("keeps counting on a checkpoint written before byNode existed", () => {
    const old = u(4, 1) as UsageTotals;
    const s = reducers.sumUsage(old, nodeUsage("revise", u(2, 2)));
    expect(totalsOnly(s)).toEqual({
      promptTokens: 6,
      completionTokens: 3,
      totalTokens: 9,
      calls: 2,
    });
    expect(usageByNodeOf({ usage: s })).toEqual({ revise: u(2, 2) });
    expect(usageByNodeOf({ usage: old })).toEqual({});
  });

  it("adds a write without a node name to the totals only", () => {
    const s = reducers.sumUsage(ZERO_TOTALS, u(3, 1) as ReturnType<typeof nodeUsage>);
    expect(s.totalTokens).toBe(4);
    expect(usageByNodeOf({ usage: s })).toEqual({});
  });
});
