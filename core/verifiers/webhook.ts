// The webhook verifier: POSTs the draft to a user's HTTP endpoint and reads its verdict. A
// verifier being down must not crash a run, so every transport or protocol failure becomes a
// failed verdict marked with VERIFIER_ERROR_PREFIX; only the run's own abort propagates.
import { z } from "zod";
import { RefineryError } from "../errors.ts";
import { truncate } from "./json-schema.ts";
import { VERIFIER_ERROR_PREFIX, type WebhookVerifierSpec } from "./spec.ts";
import type { Verifier, VerifierResult } from "./types.ts";

/** What the endpoint must answer with (extra fields are ignored). */
export const webhookReplySchema = z.object({
  pass: z.boolean(),
  score: z.number().min(0).max(1).optional(),
  feedback: z.string().optional(),
});

const REPLY_SHAPE = '{"pass": boolean, "score"?: number 0..1, "feedback"?: string}';

// A verdict is a few lines of JSON; a reply bigger than this is a misconfigured endpoint.
const MAX_REPLY_CHARS = 1_000_000;

export function createWebhookVerifier(
  spec: WebhookVerifierSpec,
  id: string,
  field = "verifier",
): Verifier {
  const headers = new Headers({ "content-type": "application/json", accept: "application/json" });
  try {
    for (const [name, value] of Object.entries(spec.headers ?? {})) headers.set(name, value);
  } catch (error) {
    throw new RefineryError(
      "invalid_config",
      `invalid webhook header: ${error instanceof Error ? error.message : String(error)}`,
      {
        field: `${field}.headers`,
        fix: "use HTTP token characters in header names and no newlines in values",
        cause: error,
      },
    );
  }
  const label = `webhook ${spec.url}`;
  const broken = (message: string): VerifierResult => ({
    pass: false,
    score: 0,
    message: `${VERIFIER_ERROR_PREFIX}${label} ${message}`,
  });

  return {
    id,
    kind: "webhook",
    hard: spec.hard,
    deterministic: false,
    async verify(draft, ctx) {
      const timeout = AbortSignal.timeout(spec.timeoutMs);
      const signal = ctx.signal ? AbortSignal.any([ctx.signal, timeout]) : timeout;
      const body = JSON.stringify({
        draft,
        task: ctx.task,
        context: ctx.context ?? null,
        iteration: ctx.iteration,
        verifier_id: id,
      });
      let status: number;
      let text: string;
      try {
        const response = await fetch(spec.url, { method: "POST", headers, body, signal });
        status = response.status;
        text = await response.text();
      } catch (error) {
        // The run was cancelled: that is not a verdict, let the caller see the abort.
        if (ctx.signal?.aborted) throw ctx.signal.reason;
        if (timeout.aborted) return broken(`timed out after ${spec.timeoutMs} ms`);
        return broken(`could not be reached: ${describeFetchError(error)}`);
      }
      if (status < 200 || status > 299) {
        const snippet = text.trim() === "" ? "" : `: ${truncate(text.trim(), 200)}`;
        return broken(`returned HTTP ${status}${snippet}`);
      }
      if (text.length > MAX_REPLY_CHARS) {
        return broken(`sent a reply of ${text.length} characters; expected a small ${REPLY_SHAPE}`);
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return broken(
          `sent a reply that is not JSON (${JSON.stringify(truncate(text.trim(), 120))}); expected ${REPLY_SHAPE}`,
        );
      }
      const reply = webhookReplySchema.safeParse(json);
      if (!reply.success) {
        const issue = reply.error.issues[0];
        const path = issue && issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
        return broken(
          `sent a malformed reply (${path}${issue?.message ?? "invalid"}); expected ${REPLY_SHAPE}`,
        );
      }
      const { pass, score, feedback } = reply.data;
      const fallback = pass ? "webhook check passed" : "webhook check failed without feedback";
      return {
        pass,
        score: score ?? (pass ? 1 : 0),
        message: feedback?.trim() ? feedback.trim() : fallback,
      };
    },
  };
}

/** undici reports "fetch failed" and hides the useful part (ECONNREFUSED, DNS) in `cause`. */
function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (cause instanceof Error) {
    const code = (cause as Error & { code?: unknown }).code;
    return typeof code === "string" ? `${code} (${cause.message})` : cause.message;
  }
  return error.message;
}
