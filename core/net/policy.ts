// The outbound policy: which hosts and addresses a request made on a caller's behalf (webhooks,
// webhook verifiers) may reach. Strict denies every special-purpose address (address.ts) unless
// REFINERY_OUTBOUND_ALLOW lists it; permissive (the CLI, whose user is the operator) allows all.
// One policy per process (per worker thread: each has its own module state), installed at
// start-up by the server runtime or the CLI; a process that installed none gets strict from env.
import { isIP } from "node:net";
import { RefineryError } from "../errors.ts";
import {
  classifyAddress,
  formatIp,
  inSubnet,
  parseIp,
  type AddressKind,
  type IpAddress,
} from "./address.ts";

export const OUTBOUND_ALLOW_ENV = "REFINERY_OUTBOUND_ALLOW";

/** One entry of REFINERY_OUTBOUND_ALLOW. */
export type AllowEntry =
  | { kind: "ip"; ip: IpAddress; port?: number; text: string }
  | { kind: "cidr"; ip: IpAddress; prefix: number; text: string }
  | { kind: "host"; host: string; port?: number; text: string };

export interface OutboundPolicy {
  readonly mode: "strict" | "permissive";
  readonly allow: readonly AllowEntry[];
}

/** Every address allowed (http and https only, timeouts and size caps still apply). */
export const PERMISSIVE_POLICY: OutboundPolicy = Object.freeze({ mode: "permissive", allow: [] });

/** Where a request goes: the URL's host name (lower case, no brackets) and effective port. */
export interface OutboundTarget {
  host: string;
  port: number;
}

/** Why the policy refuses an address. */
export interface Refusal {
  address: string;
  kind: AddressKind;
}

export function strictPolicy(allow: string | undefined = ""): OutboundPolicy {
  return Object.freeze({ mode: "strict", allow: parseOutboundAllow(allow) });
}

export function outboundPolicyFromEnv(env: Record<string, string | undefined>): OutboundPolicy {
  return strictPolicy(env[OUTBOUND_ALLOW_ENV]);
}

let installed: OutboundPolicy | undefined;

/** Installs the policy of this process (server runtime, CLI); undefined restores the default. */
export function setOutboundPolicy(policy: OutboundPolicy | undefined): void {
  installed = policy;
}

/** The installed policy, else strict with REFINERY_OUTBOUND_ALLOW from process.env. */
export function outboundPolicy(): OutboundPolicy {
  return installed ?? outboundPolicyFromEnv(process.env);
}

/**
 * Why `target` at `address` may not be called; undefined when it may. A host entry allows its
 * host at any address except a metadata one; an IP entry allows that address (at its port, when
 * it names one); a CIDR entry allows its range, metadata addresses excepted. Only an exact IP
 * entry opens a cloud metadata address.
 */
export function refusal(
  policy: OutboundPolicy,
  target: OutboundTarget,
  address: IpAddress,
): Refusal | undefined {
  if (policy.mode === "permissive") return undefined;
  const kind = classifyAddress(address);
  if (!kind) return undefined;
  const portMatches = (port?: number) => port === undefined || port === target.port;
  const allowed = policy.allow.some((entry) => {
    switch (entry.kind) {
      case "ip":
        return (
          entry.ip.family === address.family &&
          entry.ip.value === address.value &&
          portMatches(entry.port)
        );
      case "cidr":
        return kind !== "cloud metadata" && inSubnet(address, entry.ip, entry.prefix);
      case "host":
        return kind !== "cloud metadata" && entry.host === target.host && portMatches(entry.port);
    }
  });
  return allowed ? undefined : { address: formatIp(address), kind };
}

/** Lower case, without brackets or a trailing dot: the form host entries are compared in. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  return h.endsWith(".") ? h.slice(0, -1) : h;
}

const FORMS =
  "comma-separated entries: an IP (10.0.0.5, ::1), a CIDR (10.0.0.0/8, fd00::/8), a host name (hooks.internal) or any of these with a port (10.0.0.5:8080, [::1]:8080, hooks.internal:8443)";

/** Parses REFINERY_OUTBOUND_ALLOW; an invalid entry is an invalid_config error naming it. */
export function parseOutboundAllow(raw: string | undefined): AllowEntry[] {
  const entries: AllowEntry[] = [];
  for (const item of (raw ?? "").split(",")) {
    const text = item.trim();
    if (text === "") continue;
    const entry = parseEntry(text);
    if (!entry) {
      throw new RefineryError(
        "invalid_config",
        `${OUTBOUND_ALLOW_ENV} entry ${JSON.stringify(text)} is not an IP, a CIDR or a host name`,
        { field: OUTBOUND_ALLOW_ENV, fix: `use ${FORMS}` },
      );
    }
    entries.push(entry);
  }
  return entries;
}

const HOST_NAME =
  /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

function parseEntry(text: string): AllowEntry | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) {
    const ip = isIP(bracketed[1]!) === 6 ? parseIp(bracketed[1]!) : undefined;
    const port = parsePort(bracketed[2]);
    return ip && port !== null ? { kind: "ip", ip, ...portField(port), text } : undefined;
  }
  const slash = text.indexOf("/");
  if (slash >= 0) {
    const ip = parseIp(text.slice(0, slash));
    const bits = text.slice(slash + 1);
    if (!ip || !/^\d{1,3}$/.test(bits)) return undefined;
    // A mapped IPv6 CIDR (::ffff:10.0.0.0/104) is its IPv4 range.
    const written = isIP(text.slice(0, slash)) === 6 && ip.family === 4 ? 96 : 0;
    const prefix = Number(bits) - written;
    if (prefix < 0 || prefix > (ip.family === 4 ? 32 : 128)) return undefined;
    return { kind: "cidr", ip, prefix, text };
  }
  if (isIP(text)) return { kind: "ip", ip: parseIp(text)!, text };
  const withPort = /^(.+):(\d+)$/.exec(text);
  const name = withPort ? withPort[1]! : text;
  const port = parsePort(withPort?.[2]);
  if (port === null || name.includes(":")) return undefined;
  if (isIP(name) === 4) return { kind: "ip", ip: parseIp(name)!, ...portField(port), text };
  const host = normalizeHost(name);
  return HOST_NAME.test(host) ? { kind: "host", host, ...portField(port), text } : undefined;
}

/** undefined: no port given; null: an invalid one. */
function parsePort(raw: string | undefined): number | undefined | null {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : null;
}

function portField(port: number | undefined): { port?: number } {
  return port === undefined ? {} : { port };
}
