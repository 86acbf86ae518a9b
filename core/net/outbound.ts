// The one HTTP client for requests the server makes on a caller's behalf (run and approval
// webhooks, webhook verifiers). The policy (policy.ts) is applied to the address actually
// connected to: a literal IP before connecting, a host name inside the socket's DNS lookup, so the
// checked address is the one used (no DNS rebinding between check and connect). 307/308 redirects
// are followed (at most 3, each target checked again); others are returned as they are. Every
// request has a connect and a total timeout and a cap on the bytes of reply read.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import http from "node:http";
import https from "node:https";
import type { LookupFunction, Socket } from "node:net";
import { RefineryError } from "../errors.ts";
import { parseIp } from "./address.ts";
import {
  normalizeHost,
  OUTBOUND_ALLOW_ENV,
  outboundPolicy,
  refusal,
  type OutboundPolicy,
  type OutboundTarget,
  type Refusal,
} from "./policy.ts";

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_BYTES = 1024 * 1024;
export const DEFAULT_MAX_REDIRECTS = 3;

export interface OutboundRequest {
  /** Default GET, or POST when there is a body. */
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** The caller's cancellation; the request rejects with its reason. */
  signal?: AbortSignal;
  /** Whole request, redirects and reading the reply included. @default 10000 */
  timeoutMs?: number;
  /** DNS lookup, TCP connect and TLS handshake of each hop. @default 5000 */
  connectTimeoutMs?: number;
  /** Bytes of reply read at most; a longer reply fails with `too_large`. @default 1 MiB */
  maxBytes?: number;
  /** 307/308 redirects followed, each target checked again; 0 returns them. @default 3 */
  maxRedirects?: number;
}

export interface OutboundResponse {
  status: number;
  ok: boolean;
  /** The URL that answered (after redirects). */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text(): string;
}

export type OutboundFailure =
  "invalid_url" | "denied" | "timeout" | "too_large" | "redirect" | "unreachable";

/** Why an outbound request was not made or did not complete. Never carries the reply's body. */
export class OutboundError extends Error {
  readonly reason: OutboundFailure;
  /** The URL's host (and port when not the default): what the messages name. */
  readonly host: string;
  readonly fix?: string;

  constructor(
    reason: OutboundFailure,
    host: string,
    message: string,
    options: { fix?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OutboundError";
    this.reason = reason;
    this.host = host;
    this.fix = options.fix;
  }
}

export function isOutboundError(value: unknown): value is OutboundError {
  return value instanceof OutboundError;
}

export interface OutboundClient {
  /** Sends one request; rejects with an OutboundError, or the caller's abort reason. */
  request(url: string | URL, init?: OutboundRequest): Promise<OutboundResponse>;
  /**
   * What can be refused without a DNS lookup: a URL that is not http(s), or whose host is a
   * literal IP or `localhost` the policy denies. Host names are checked when the request is sent.
   */
  precheck(url: string): OutboundError | undefined;
}

/** A client under `policy` (default: the process's policy, read at every request). */
export function createOutboundClient(
  policy: () => OutboundPolicy = outboundPolicy,
): OutboundClient {
  return {
    precheck: (url) => precheck(url, policy()),
    request: (url, init) => send(url, init ?? {}, policy()),
  };
}

/** The client every caller-driven request uses unless one is injected (tests). */
export const outbound: OutboundClient = createOutboundClient();

/**
 * Refuses, when a run, assistant or verifier is created, a URL the policy would deny without a
 * lookup: invalid_config naming `field` and the fix.
 */
export function checkOutboundUrl(url: string, field: string, client = outbound): void {
  const refused = client.precheck(url);
  if (refused) {
    throw new RefineryError("invalid_config", refused.message, { field, fix: refused.fix });
  }
}

const SENSITIVE_HEADERS = ["authorization", "cookie", "proxy-authorization"];

async function send(
  url: string | URL,
  init: OutboundRequest,
  policy: OutboundPolicy,
): Promise<OutboundResponse> {
  const timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = init.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
  const maxRedirects = init.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  let target = parseTarget(url);
  let headers = { ...init.headers };
  for (let redirects = 0; ; redirects++) {
    const response = await sendOnce(target, init, headers, policy, signal, () =>
      init.signal?.aborted
        ? init.signal.reason
        : new OutboundError(
            "timeout",
            target.url.host,
            `${target.url.host} did not answer within ${timeoutMs} ms`,
          ),
    );
    const location = response.headers.location;
    const follow = (response.status === 307 || response.status === 308) && location;
    if (!follow || maxRedirects === 0) return response;
    if (redirects >= maxRedirects) {
      throw new OutboundError(
        "redirect",
        target.url.host,
        `${target.url.host} redirected more than ${maxRedirects} times`,
        { fix: "use the URL the redirects end at" },
      );
    }
    const next = parseTarget(new URL(location, target.url));
    // As fetch does: credentials are not handed to another origin.
    if (next.url.origin !== target.url.origin) {
      headers = Object.fromEntries(
        Object.entries(headers).filter(([name]) => !SENSITIVE_HEADERS.includes(name.toLowerCase())),
      );
    }
    target = next;
  }
}

interface ParsedTarget extends OutboundTarget {
  url: URL;
  /** The host as an address when the URL names one. */
  literal?: ReturnType<typeof parseIp>;
}

function parseTarget(raw: string | URL): ParsedTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (cause) {
    throw new OutboundError("invalid_url", String(raw), `${String(raw)} is not a URL`, {
      fix: "use an absolute http:// or https:// URL",
      cause,
    });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new OutboundError("invalid_url", url.host, `${url.protocol} URLs may not be called`, {
      fix: "use an http:// or https:// URL",
    });
  }
  if (url.username || url.password) {
    throw new OutboundError("invalid_url", url.host, "URLs with credentials may not be called", {
      fix: "send credentials in a header instead of the URL",
    });
  }
  const host = normalizeHost(url.hostname);
  const port = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  return { url, host, port, literal: parseIp(host) };
}

function precheck(raw: string, policy: OutboundPolicy): OutboundError | undefined {
  let target: ParsedTarget;
  try {
    target = parseTarget(raw);
  } catch (error) {
    if (error instanceof OutboundError) return error;
    throw error;
  }
  if (target.literal) {
    const refused = refusal(policy, target, target.literal);
    return refused ? denied(target, refused, false) : undefined;
  }
  if (target.host === "localhost" || target.host.endsWith(".localhost")) {
    const refused = ["127.0.0.1", "::1"].map((a) => refusal(policy, target, parseIp(a)!));
    if (refused.every(Boolean)) return denied(target, refused[0]!, true);
  }
  return undefined;
}

/** The denial message: names the URL's host and the fix; a resolved address is not named. */
function denied(target: ParsedTarget, refused: Refusal, resolved: boolean): OutboundError {
  const host = target.url.host;
  const a = /^[aeiou]/.test(refused.kind) ? "an" : "a";
  const what = resolved
    ? `it resolves to ${a} ${refused.kind} address`
    : `${refused.address} is ${a} ${refused.kind} address`;
  const entry = target.literal
    ? `${target.literal.family === 6 ? `[${refused.address}]` : refused.address}:${target.port}`
    : target.host;
  const metadata = resolved ? "the metadata address" : refused.address;
  return new OutboundError("denied", host, `${host} may not be called by this server: ${what}`, {
    fix:
      refused.kind === "cloud metadata"
        ? `only if the server must call it, have the operator list ${metadata} itself in ${OUTBOUND_ALLOW_ENV}`
        : `use a public address, or have the operator list ${entry} in ${OUTBOUND_ALLOW_ENV}`,
  });
}

/**
 * The socket's DNS lookup: resolves every address, keeps those the policy allows and hands only
 * those to connect. Fails when none is left.
 */
function guardedLookup(target: ParsedTarget, policy: OutboundPolicy): LookupFunction {
  return (hostname: string, options: LookupOptions, done) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return done(err, "");
      let firstRefusal: Refusal | undefined;
      const allowed = addresses.filter((a) => {
        const refused = refusal(policy, target, parseIp(a.address)!);
        firstRefusal ??= refused;
        return !refused;
      });
      if (allowed.length === 0) return done(denied(target, firstRefusal!, true), "");
      if (options.all) return done(null, allowed);
      return done(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

function sendOnce(
  target: ParsedTarget,
  init: OutboundRequest,
  headers: Record<string, string>,
  policy: OutboundPolicy,
  signal: AbortSignal,
  abortError: () => unknown,
): Promise<OutboundResponse> {
  if (target.literal) {
    const refused = refusal(policy, target, target.literal);
    if (refused) return Promise.reject(denied(target, refused, false));
  }
  const host = target.url.host;
  const maxBytes = init.maxBytes ?? DEFAULT_MAX_BYTES;
  const connectMs = init.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const tooLarge = () =>
    new OutboundError("too_large", host, `${host} sent a reply larger than ${maxBytes} bytes`);
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: unknown, response?: OutboundResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      signal.removeEventListener("abort", onAbort);
      if (error === undefined) return resolve(response!);
      request.destroy();
      reject(error);
    };
    const onAbort = () => finish(abortError());
    const transport = target.url.protocol === "https:" ? https : http;
    const request = transport.request(
      {
        hostname: target.literal ? target.host : target.url.hostname,
        port: target.port,
        path: `${target.url.pathname}${target.url.search}`,
        method: init.method ?? (init.body === undefined ? "GET" : "POST"),
        headers,
        agent: false,
        ...(target.literal ? {} : { lookup: guardedLookup(target, policy) }),
      },
      (res) => {
        clearTimeout(connectTimer);
        if (Number(res.headers["content-length"]) > maxBytes) return finish(tooLarge());
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) return finish(tooLarge());
          chunks.push(chunk);
        });
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          const status = res.statusCode ?? 0;
          finish(undefined, {
            status,
            ok: status >= 200 && status <= 299,
            url: target.url.href,
            headers: res.headers,
            body,
            text: () => body.toString("utf8"),
          });
        });
        res.on("close", () => {
          if (!res.complete) finish(unreachable(host, "the connection closed mid-reply"));
        });
        res.on("error", (error) => finish(mapError(error, host)));
      },
    );
    const connectTimer = setTimeout(
      () =>
        finish(
          new OutboundError(
            "timeout",
            host,
            `${host} could not be connected within ${connectMs} ms`,
          ),
        ),
      connectMs,
    );
    request.on("socket", (socket: Socket) => {
      const event = target.url.protocol === "https:" ? "secureConnect" : "connect";
      socket.once(event, () => clearTimeout(connectTimer));
    });
    request.on("error", (error) => finish(mapError(error, host)));
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) return onAbort();
    request.end(init.body);
  });
}

function mapError(error: unknown, host: string): unknown {
  if (error instanceof OutboundError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return unreachable(host, code ?? (error as Error | undefined)?.message ?? String(error), error);
}

function unreachable(host: string, why: string, cause?: unknown): OutboundError {
  return new OutboundError("unreachable", host, `${host} could not be reached (${why})`, { cause });
}
