// Per-identity request rate limits: a token bucket per caller (its identity with auth, its
// address without), refilled continuously at REFINERY_RATE_LIMIT requests per minute with
// bursts of up to ten seconds' worth. A caller past its limit gets 429 with Retry-After.
import type { RequestHandler } from "express";
import { RefineryError } from "../../core/errors.ts";
import { authOf } from "./request.ts";

interface Bucket {
  tokens: number;
  at: number;
}

/** Idle callers are forgotten after this long (their bucket would be full again anyway). */
const IDLE_MS = 60_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  readonly burst: number;
  private sweptAt = 0;

  constructor(
    perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.perMs = perMinute / 60_000;
    this.burst = Math.max(1, Math.ceil(perMinute / 6));
  }

  /** Takes one request's token: 0 when allowed, else the ms until one is available. */
  take(key: string): number {
    const t = this.now();
    if (t - this.sweptAt > IDLE_MS) this.sweep(t);
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + (t - b.at) * this.perMs);
    b.at = t;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) / this.perMs);
  }

  private sweep(t: number): void {
    this.sweptAt = t;
    for (const [key, b] of this.buckets) if (t - b.at > IDLE_MS) this.buckets.delete(key);
  }
}

export function rateLimitMiddleware(limiter: RateLimiter): RequestHandler {
  return (req, _res, next) => {
    const auth = authOf(req);
    const key = auth.user ? `id:${auth.user.identity}` : `ip:${req.socket.remoteAddress ?? ""}`;
    const waitMs = limiter.take(key);
    if (waitMs === 0) return next();
    next(
      new RefineryError("rate_limited", "too many requests", {
        fix: `wait ${Math.ceil(waitMs / 1000)} s (Retry-After); the operator sets the limit with REFINERY_RATE_LIMIT (requests per minute per caller)`,
        retryAfterMs: waitMs,
      }),
    );
  };
}
