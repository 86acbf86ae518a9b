// The webhook verifier: POSTs the draft to a user's HTTP endpoint and reads its verdict, through
// the guarded outbound client (core/net/outbound.ts). A verifier being down must not crash a run,
// so every transport or protocol failure becomes a failed verdict marked with
// VERIFIER_ERROR_PREFIX; only the run's own abort propagates. Those messages reach whoever created
// the run, so they carry status codes, sizes and the expected shape, never the reply's body.
import { z } from "zod";
import { RefineryError } from "../errors.ts";
import {
  checkOutboundUrl,
  isOutboundError,
  outbound,
  type OutboundClient,
} from "../net/outbound.ts";
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
const MAX_REPLY_BYTES = 1024 * 1024;

export function createWebhookVerifier(
  spec: WebhookVerifierSpec,
  id: string,
  field = "verifier",
  client: OutboundClient = outbound,
): Verifier {
  // A literal IP or localhost the outbound policy denies is refused now; names when sent.
  checkOutboundUrl(spec.url, `${field}.url`, client);
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
      const body = JSON.stringify({
        draft,
        task: ctx.task,
        context: ctx.context ?? null,
        iteration: ctx.iteration,
        verifier_id: id,
      });
      let status: number;
      let raw: Buffer;
      try {
        const response = await client.request(spec.url, {
          method: "POST",
          headers: Object.fromEntries(headers),
          body,
          signal: ctx.signal,
          timeoutMs: spec.timeoutMs,
          maxBytes: MAX_REPLY_BYTES,
        });
        status = response.status;
        raw = response.body;
      } catch (error) {
        // The run was cancelled: that is not a verdict, let the caller see the abort.
        if (ctx.signal?.aborted) throw ctx.signal.reason;
        if (!isOutboundError(error)) {
          return broken(`failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        if (error.reason === "timeout") return broken(`timed out after ${spec.timeoutMs} ms`);
        if (error.reason === "too_large") {
          return broken(
            `sent a reply larger than ${MAX_REPLY_BYTES} bytes; expected a small ${REPLY_SHAPE}`,
          );
        }
        // Denied, unreachable, too many redirects: the client's message names the host.
        return broken(`failed: ${error.message}${error.fix ? `. Fix: ${error.fix}` : ""}`);
      }
      const size = `${raw.length} bytes`;
      if (status < 200 || status > 299) {
        const redirect =
          status >= 300 && status <= 399
            ? "; only 307/308 redirects are followed, give the final URL"
            : "";
        return broken(
          `returned HTTP ${status} (${size})${redirect}; expected 2xx with ${REPLY_SHAPE}`,
        );
      }
      let json: unknown;
      try {
        json = JSON.parse(raw.toString("utf8"));
      } catch {
        return broken(`sent a reply that is not JSON (${size}); expected ${REPLY_SHAPE}`);
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
