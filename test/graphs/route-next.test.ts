// The refine graph's one edge function, branch by branch.
import { END } from "@langchain/langgraph";
import { describe, expect, it } from "vitest";
import { routeNext } from "../../graphs/refine.ts";

const st = (
  s: Partial<{
    stopReason: "accepted" | null;
    route: "critique" | "verify" | "revise" | "approve" | null;
    strategy: "self-refine" | "proactive" | null;
  }>,
) => ({
  stopReason: null,
  route: null,
  strategy: null,
  ...s,
});

describe("routeNext", () => {
  it("ends once a stop reason is recorded", () => {
    expect(routeNext("verify", "revise")(st({ stopReason: "accepted", route: "revise" }))).toBe(
      END,
    );
  });
  it("self-refine follows its fixed order and ignores a stale route", () => {
    expect(
      routeNext("generate", "critique")(st({ strategy: "self-refine", route: "verify" })),
    ).toBe("critique");
    expect(routeNext("critique", "verify")(st({ strategy: "self-refine", route: "revise" }))).toBe(
      "verify",
    );
    expect(routeNext("verify", "revise")(st({}))).toBe("revise");
    expect(routeNext("revise", "critique")(st({ strategy: "self-refine", route: "verify" }))).toBe(
      "critique",
    );
  });
  it("goes to approve when a node asked for a reviewer, under any strategy", () => {
    expect(routeNext("verify", "revise")(st({ strategy: "self-refine", route: "approve" }))).toBe(
      "approve",
    );
    expect(routeNext("critique", "verify")(st({ strategy: "proactive", route: "approve" }))).toBe(
      "approve",
    );
  });
  it("other strategies follow the recorded route, else the fallback", () => {
    expect(routeNext("verify", "revise")(st({ strategy: "proactive", route: "critique" }))).toBe(
      "critique",
    );
    expect(routeNext("revise", "critique")(st({ strategy: "proactive" }))).toBe("critique");
  });
  it("after approve, the decision's route (revise / verify)", () => {
    expect(routeNext("approve", "revise")(st({ strategy: "self-refine", route: "verify" }))).toBe(
      "verify",
    );
  });
});
