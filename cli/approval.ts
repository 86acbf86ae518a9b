// Human approval from the command line: what a run waiting for a reviewer prints, the interactive
// prompt on a terminal, and the decisions of `refinery approve|reject|edit|abort THREAD_ID`.
import { createInterface } from "node:readline/promises";
import { readFileSync } from "node:fs";
import {
  ApprovalDecisionSchema,
  isApprovalRequest,
  type ApprovalDecision,
  type ApprovalRequest,
} from "../core/approval.ts";
import { RefineryError } from "../core/errors.ts";
import type { StateSnapshotLike } from "../graphs/registry.ts";
import type { Flags } from "./args.ts";
import type { CliIO } from "./main.ts";
import { excerpt } from "./render.ts";

export const DECISION_COMMANDS = ["approve", "reject", "edit", "abort"] as const;
export type DecisionCommand = (typeof DECISION_COMMANDS)[number];

/** The approval a thread waits on, from its state (undefined: it waits on none). */
export function pendingApproval(state: StateSnapshotLike): ApprovalRequest | undefined {
  if (state.next.length === 0) return undefined;
  for (const task of state.tasks)
    for (const i of task.interrupts ?? []) if (isApprovalRequest(i.value)) return i.value;
  return undefined;
}

/** How to answer, one command per line. */
export function answerHelp(threadId: string): string {
  return [
    `  refinery approve ${threadId}`,
    `  refinery reject ${threadId} --feedback "what to change"`,
    `  refinery edit ${threadId} --text "the corrected draft"   (or --file PATH)`,
    `  refinery abort ${threadId}`,
    `or, from a server on the same database: the console's Approvals page, POST /threads/${threadId}/approval`,
  ].join("\n");
}

/** The block `run` prints when the run stops for a reviewer. */
export function renderWaiting(threadId: string, request: ApprovalRequest): string {
  const lines = [
    "",
    `── waiting for a reviewer (${request.reason}) ──`,
    `draft (iteration ${request.iteration}):`,
    request.draft,
  ];
  if (request.critique)
    lines.push(
      `critique: ${request.critique.verdict}${request.critique.score === undefined ? "" : `, score ${request.critique.score.toFixed(2)}`}${request.critique.issues.length ? ` — ${excerpt(request.critique.issues.join("; "), 200)}` : ""}`,
    );
  for (const v of request.verdicts)
    lines.push(
      `${v.pass ? "pass" : "FAIL"} ${v.verifierId}${v.hard ? "" : " (soft)"} ${v.score.toFixed(2)}${v.pass ? "" : ` — ${excerpt(v.message, 120)}`}`,
    );
  lines.push(
    `──\nnothing is final until a reviewer answers. Answer with:`,
    answerHelp(threadId),
    "",
  );
  return lines.join("\n");
}

/** The decision a `refinery approve|reject|edit|abort` command stands for, validated. */
export function decisionFromFlags(command: DecisionCommand, flags: Flags): ApprovalDecision {
  const text = (flag: string) =>
    typeof flags[flag] === "string" ? String(flags[flag]) : undefined;
  let raw: Record<string, unknown>;
  if (command === "approve") raw = { action: "approve", comment: text("comment") };
  else if (command === "abort") raw = { action: "abort", reason: text("reason") };
  else if (command === "reject") {
    if (text("feedback") === undefined || text("feedback")!.trim() === "")
      throw new RefineryError("invalid_input", "reject needs feedback: say what to change", {
        field: "--feedback",
        fix: 'refinery reject THREAD_ID --feedback "shorten the second paragraph"',
      });
    raw = { action: "reject", feedback: text("feedback") };
  } else {
    let draft = text("text");
    const file = text("file");
    if (draft !== undefined && file !== undefined)
      throw new RefineryError("invalid_input", "give the new draft either with --text or --file", {
        field: "--file",
        fix: "drop one of --text and --file",
      });
    if (file !== undefined) {
      try {
        draft = readFileSync(file, "utf8");
      } catch (err) {
        throw new RefineryError(
          "invalid_input",
          `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
          { field: "--file", fix: "pass the path of an existing text file" },
        );
      }
    }
    if (draft === undefined || draft.trim() === "")
      throw new RefineryError("invalid_input", "edit needs the replacement draft", {
        field: "--text",
        fix: 'refinery edit THREAD_ID --text "the corrected draft" (or --file PATH)',
      });
    raw = { action: "edit", text: draft };
  }
  for (const k of Object.keys(raw)) if (raw[k] === undefined) delete raw[k];
  const parsed = ApprovalDecisionSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = {
      feedback: "--feedback",
      text: "--text",
      comment: "--comment",
      reason: "--reason",
    }[String(issue?.path[0] ?? "")];
    throw new RefineryError("invalid_input", issue?.message ?? "invalid decision", {
      ...(field ? { field } : {}),
      fix: "see refinery --help",
    });
  }
  return parsed.data;
}

/**
 * On a terminal: asks the reviewer what to do. Undefined: leave the approval pending (w, an empty
 * answer at the end of input, Ctrl-D).
 */
export async function promptDecision(io: CliIO): Promise<ApprovalDecision | undefined> {
  const rl = createInterface({
    input: io.stdin as NodeJS.ReadableStream,
    output: io.stdout as unknown as NodeJS.WritableStream,
    terminal: true,
  });
  let closed = false;
  rl.on("close", () => (closed = true));
  // Ctrl-C or Ctrl-D at the prompt: leave the approval waiting.
  rl.on("SIGINT", () => rl.close());
  const ask = (q: string): Promise<string | undefined> =>
    closed
      ? Promise.resolve(undefined)
      : new Promise((resolve) => {
          rl.once("close", () => resolve(undefined));
          rl.question(q).then(resolve, () => resolve(undefined));
        });
  try {
    for (;;) {
      const choice = (
        await ask("[a]pprove, [r]eject with feedback, [e]dit the draft, a[b]ort, [w]ait? ")
      )
        ?.trim()
        .toLowerCase();
      if (choice === undefined || choice === "w" || choice === "wait") return undefined;
      if (choice === "a" || choice === "approve") return { action: "approve" };
      if (choice === "b" || choice === "abort") return { action: "abort" };
      if (choice === "r" || choice === "reject") {
        const feedback = (await ask("feedback (what to change): "))?.trim();
        if (feedback) return { action: "reject", feedback };
        io.stdout.write("reject needs feedback; choose again\n");
        continue;
      }
      if (choice === "e" || choice === "edit") {
        io.stdout.write("the corrected draft, ended by an empty line:\n");
        const lines: string[] = [];
        for (;;) {
          const l = await ask("");
          if (l === undefined || l === "") break;
          lines.push(l);
        }
        const text = lines.join("\n").trim();
        if (text) return { action: "edit", text };
        io.stdout.write("edit needs the draft; choose again\n");
        continue;
      }
      io.stdout.write(`"${choice}" is not a choice: type a, r, e, b or w\n`);
    }
  } finally {
    rl.close();
  }
}
