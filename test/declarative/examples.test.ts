// Each example graph of graphs/examples/, compiled from its file and run on a scripted model:
// JSON extraction verified by a schema, a support reply approved by a human before sending,
// a translation verified by back-translation, and code verified by a test-runner webhook.
import { readdirSync } from "node:fs";
import { Command } from "@langchain/langgraph";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApprovalRequest } from "../../core/approval.ts";
import { setOutboundPolicy, strictPolicy } from "../../core/net/policy.ts";
import { usageByNodeOf } from "../../core/state.ts";
import { RefineryError } from "../../core/errors.ts";
import { continueAfterModelError } from "../../graphs/continue.ts";
import { validateGraphSpec } from "../../graphs/declarative/compile.ts";
import { createNodeKindRegistry } from "../../graphs/declarative/kinds.ts";
import { backTranslateKind, overlap } from "../../graphs/examples/back-translate.ts";
import { checkAdd, startCodeChecker, type CodeChecker } from "./code-checker.ts";
import { compileScripted, EXAMPLES_DIR, readExample } from "./support.ts";

const PASS = '{"verdict":"pass","score":0.9,"issues":[]}';

function kindsWithBackTranslate() {
  const kinds = createNodeKindRegistry();
  kinds.register("back_translate", backTranslateKind);
  return kinds;
}

// code-answer's test runner (and the checker standing in for it) listen on loopback, which the
// outbound policy refuses unless REFINERY_OUTBOUND_ALLOW lists it.
beforeAll(() => setOutboundPolicy(strictPolicy("127.0.0.1")));
afterAll(() => setOutboundPolicy(undefined));

describe("example graphs", () => {
  it("there are at least four, and every one compiles", () => {
    const files = readdirSync(EXAMPLES_DIR).filter((f) => /\.(ya?ml|json)$/.test(f));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const file of files)
      expect(() => validateGraphSpec(readExample(file), kindsWithBackTranslate())).not.toThrow();
  });

  it("json-extraction: a draft that fails the schema is repaired with the failed check", async () => {
    const { graph, config, model } = compileScripted(readExample("json-extraction.yaml"), {
      generate: ['{"name": "Ada Lovelace", "age": "36"}'],
      revise: ['{"name": "Ada Lovelace", "age": 36, "email": "ada@example.org"}'],
    });
    const out = await graph.invoke(
      {
        task: "Extract the person's name, age and email.",
        context: "Ada Lovelace (36) can be reached at ada@example.org.",
      },
      config,
    );
    expect(out.stopReason).toBe("accepted");
    expect(JSON.parse(out.answer ?? "")).toEqual({
      name: "Ada Lovelace",
      age: 36,
      email: "ada@example.org",
    });
    expect(out.drafts).toHaveLength(2);
    const first = out.verdicts.filter((v) => v.iteration === 1);
    expect(first[0]).toMatchObject({ verifierId: "record", pass: false });
    // The repair prompt carries the failed check, and the example's own system prompt.
    const repair = model.callsFor("revise")[0]?.messages;
    expect(repair?.[0]?.content).toMatch(/You repair a JSON object/);
    expect(repair?.[1]?.content).toMatch(/\[record\]/);
    expect(model.callsFor("critique")).toHaveLength(0);
  });

  it("json-extraction: a repair stopped by model_error continues at that node (its id, not its kind) on the next run", async () => {
    const { graph, config, model } = compileScripted(readExample("json-extraction.yaml"), {
      generate: ['{"name": "Ada Lovelace", "age": "36"}'],
      revise: [
        new RefineryError("model_unavailable", "endpoint down"),
        '{"name": "Ada Lovelace", "age": 36, "email": "ada@example.org"}',
      ],
    });
    const input = { task: "Extract.", context: "Ada Lovelace (36), ada@example.org" };
    const stopped = await graph.invoke(input, config);
    expect(stopped.stopReason).toBe("model_error");
    expect(stopped.error).toMatchObject({ node: "revise", step: "repair" });

    const again = await continueAfterModelError(graph, config);
    expect(again?.goto).toEqual(["repair"]);
    const out = await graph.invoke(again as never, config);
    expect(out.stopReason).toBe("accepted");
    expect(out.error).toBeNull();
    expect(out.drafts).toHaveLength(2);
    expect(model.callsFor("generate")).toHaveLength(1);
    expect(model.callsFor("revise")).toHaveLength(2);
  });

  it("json-extraction: stops at maxIterations with the best draft when the schema never passes", async () => {
    const { graph, config } = compileScripted(readExample("json-extraction.yaml"), {
      generate: ['{"name": "Ada"}'],
      revise: ['{"name": "Ada", "age": 36}', '{"name": "Ada", "age": 36, "email": "no"}'],
    });
    const out = await graph.invoke({ task: "Extract.", context: "Ada, 36" }, config);
    expect(out.stopReason).toBe("max_iterations");
    expect(out.drafts).toHaveLength(3);
    expect(out.answer).toBe(out.best?.text);
  });

  describe("support-reply", () => {
    const good =
      "Hello Sam,\nSorry your order arrived damaged. We have sent a replacement today.\nThe Support Team";
    const better =
      "Hello Sam,\nI am sorry your order arrived damaged. A replacement left our warehouse today; the tracking link follows by email.\nThe Support Team";

    async function pending(graph: ReturnType<typeof compileScripted>["graph"], config: object) {
      const state = await graph.getState(config);
      return state.tasks.flatMap((t) => t.interrupts).map((i) => i.value as ApprovalRequest)[0];
    }

    it("waits for approval; reject sends feedback to polish; approve sends", async () => {
      const { graph, config, model } = compileScripted(readExample("support-reply.yaml"), {
        generate: [good],
        critique: [PASS],
        revise: [better],
      });
      await graph.invoke({ task: "My parcel arrived broken!", context: "order 1234" }, config);
      let request = await pending(graph, config);
      expect(request).toMatchObject({ type: "approval", draft: good, iteration: 1 });
      expect((await graph.getState(config)).next).toEqual(["review"]);

      await graph.invoke(
        new Command({ resume: { action: "reject", feedback: "mention the tracking link" } }),
        config,
      );
      expect(model.callsFor("revise")[0]?.messages[1]?.content).toMatch(
        /Reviewer feedback[\s\S]*mention the tracking link/,
      );
      request = await pending(graph, config);
      expect(request).toMatchObject({ draft: better, iteration: 2 });

      const out = await graph.invoke(new Command({ resume: { action: "approve" } }), config);
      expect(out.stopReason).toBe("approved");
      expect(out.answer).toBe(better);
      expect(out.vars).toMatchObject({
        status: "ready_to_send",
        words: better.split(/\s+/).length,
      });
      expect(out.approvals.map((a) => a.action)).toEqual(["reject", "approve"]);
    });

    it("nothing is sent without approval: abort ends the run unsent, and a draft still breaking the policy goes to a reviewer too", async () => {
      const bad = "We guarantee a full refund tomorrow.";
      const { graph, config } = compileScripted(readExample("support-reply.yaml"), {
        generate: [bad],
        critique: [PASS],
        revise: [`${bad} Really.`, `${bad} Truly.`],
      });
      await graph.invoke({ task: "Broken parcel" }, config);
      const request = await pending(graph, config);
      expect(request?.draft).toBe(`${bad} Truly.`);
      expect(request?.verdicts[0]).toMatchObject({ verifierId: "policy", pass: false });
      const out = await graph.invoke(new Command({ resume: { action: "abort" } }), config);
      expect(out.stopReason).toBe("aborted");
      expect(out.vars.status).toBeUndefined();
    });

    it("a reviewer's edit is checked against the policy again before it is approved", async () => {
      const { graph, config } = compileScripted(readExample("support-reply.yaml"), {
        generate: [good],
        critique: [PASS],
      });
      await graph.invoke({ task: "Broken parcel" }, config);
      const edited = `${good}\nP.S. Your new tracking number is 42.`.replace(
        "\nThe Support Team\nP.S.",
        "\nP.S.",
      );
      await graph.invoke(
        new Command({ resume: { action: "edit", text: `${edited}\nThe Support Team` } }),
        config,
      );
      const request = await pending(graph, config);
      expect(request?.draft).toBe(`${edited}\nThe Support Team`);
      expect(request?.verdicts[0]).toMatchObject({ pass: true });
    });
  });

  it("translation: a back-translation that drifts from the source sends the translation to fix", async () => {
    const source = "The black cat sleeps on the red sofa every afternoon.";
    const { graph, config, model } = compileScripted(
      readExample("translation.yaml"),
      {
        generate: ["Le chat dort."],
        judge: ["The cat sleeps.", "The black cat sleeps on the red sofa every afternoon."],
        revise: ["Le chat noir dort sur le canapé rouge tous les après-midi."],
      },
      kindsWithBackTranslate(),
    );
    const out = await graph.invoke(
      { task: "Translate the text into French.", context: source },
      config,
    );
    expect(out.answer).toBe("Le chat noir dort sur le canapé rouge tous les après-midi.");
    expect(out.verdicts.map((v) => [v.iteration, v.verifierId, v.pass])).toEqual([
      [1, "back_translation", false],
      [2, "back_translation", true],
    ]);
    expect(out.vars).toMatchObject({ similarity: 1 });
    // The back-translation went to the model as text to translate, and its verdict to revise.
    expect(model.callsFor("judge")[0]?.messages[1]?.content).toBe("Le chat dort.");
    expect(model.callsFor("revise")[0]?.messages[1]?.content).toMatch(
      /\[back_translation\] translated back into English it reads "The cat sleeps\."/,
    );
    expect(usageByNodeOf(out).back?.calls).toBe(2);
    expect(overlap("a b c", "a b c")).toBe(1);
    expect(overlap("a b c d", "x y")).toBe(0);
  });

  describe("code-answer", () => {
    let checker: CodeChecker;
    beforeAll(async () => {
      checker = await startCodeChecker();
    });
    afterAll(() => checker.close());

    it("a test-runner webhook rejects the wrong code; its failing tests drive the fix", async () => {
      const spec = readExample("code-answer.yaml") as {
        nodes: { tests: { verifiers: { url: string }[] } };
      };
      spec.nodes.tests.verifiers[0]!.url = checker.url;
      const wrong = "```js\nfunction add(a, b) { return a - b; }\n```";
      const right = "```js\nfunction add(a, b) { return a + b; }\n```";
      const { graph, config, model } = compileScripted(spec, {
        generate: [wrong],
        revise: [right],
      });
      const out = await graph.invoke({ task: "Write add(a, b) returning the sum." }, config);
      expect(out.stopReason).toBe("accepted");
      expect(out.answer).toBe(right);
      expect(checker.requests.map((r) => [r.iteration, r.verifier_id])).toEqual([
        [1, "tests"],
        [2, "tests"],
      ]);
      expect(model.callsFor("revise")[0]?.messages[1]?.content).toMatch(
        /\[tests\] failing tests: add\(2, 3\) returned -1, expected 5/,
      );
    });

    it("the checker never runs the code: it only evaluates the return expression safely", () => {
      expect(checkAdd("function add(a, b) { return process.exit(1); }").pass).toBe(false);
      expect(checkAdd("function add(a, b) { return b + a; }").pass).toBe(true);
      expect(checkAdd("const add = () => 0").feedback).toMatch(/no `function add/);
    });
  });
});
