// IP addresses as numbers, and the ranges a request made on a caller's behalf may not reach
// unless the operator allows them: loopback, private, link-local, cloud metadata and every other
// special-purpose block (IANA registries), IPv6 included. IPv4-mapped IPv6 (::ffff:a.b.c.d) is
// classified as the IPv4 address it maps to; NAT64 and 6to4 by the IPv4 address they embed.
import { isIP } from "node:net";

export interface IpAddress {
  family: 4 | 6;
  /** The address as an unsigned 32- or 128-bit integer. */
  value: bigint;
}

/** Why an address is not a public unicast one. */
export type AddressKind =
  | "unspecified"
  | "loopback"
  | "private"
  | "shared (carrier-grade NAT)"
  | "link-local"
  | "unique-local"
  | "multicast"
  | "documentation"
  | "benchmarking"
  | "reserved"
  | "cloud metadata";

/**
 * Parses an IPv4 or IPv6 address (brackets and a zone id are accepted); undefined when `text` is
 * not one. An IPv4-mapped IPv6 address comes back as the IPv4 address it maps to.
 */
export function parseIp(text: string): IpAddress | undefined {
  let s = text.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  const family = isIP(s);
  if (family === 4) return { family: 4, value: v4(s) };
  if (family !== 6) return undefined;
  const value = v6(s);
  return value >> 32n === 0xffffn
    ? { family: 4, value: value & 0xffffffffn }
    : { family: 6, value };
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((ip.value >> shift) & 0xffn)).join(".");
  }
  const groups = [...Array(8).keys()].map((i) => (ip.value >> BigInt(112 - 16 * i)) & 0xffffn);
  // The longest run of zero groups (two or more) becomes "::", as RFC 5952 writes it.
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0n) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(":");
  return `${hex.slice(0, best.at).join(":")}::${hex.slice(best.at + best.len).join(":")}`;
}

/** True when `ip` lies in `network`/`prefix` (same family). */
export function inSubnet(ip: IpAddress, network: IpAddress, prefix: number): boolean {
  if (ip.family !== network.family) return false;
  const shift = BigInt((ip.family === 4 ? 32 : 128) - prefix);
  return ip.value >> shift === network.value >> shift;
}

/** Cloud instance metadata and credential endpoints: only an exact allow entry opens them. */
const METADATA = [
  "169.254.169.254", // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
  "169.254.170.2", // AWS ECS task credentials
  "169.254.170.23", // AWS EKS pod identity
  "100.100.100.200", // Alibaba Cloud
  "192.0.0.192", // Oracle Cloud (legacy)
  "fd00:ec2::254", // AWS IMDS over IPv6
  "fd00:ec2::23", // AWS EKS pod identity over IPv6
].map((text) => parseIp(text)!);

type Range = [network: string, prefix: number, kind: AddressKind];

// IANA IPv4 Special-Purpose Address Registry, the blocks that are not globally reachable.
const V4_RANGES: Range[] = [
  ["0.0.0.0", 8, "unspecified"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "shared (carrier-grade NAT)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "reserved"],
  ["192.0.2.0", 24, "documentation"],
  ["192.88.99.0", 24, "reserved"],
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "documentation"],
  ["203.0.113.0", 24, "documentation"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved"],
];

// Inside 2000::/3 (global unicast); everything outside it is unspecified, loopback, link-local,
// unique-local, multicast or reserved (below), except NAT64 which embeds an IPv4 address.
const V6_RANGES: Range[] = [
  ["::", 128, "unspecified"],
  ["::1", 128, "loopback"],
  ["fe80::", 10, "link-local"],
  ["fc00::", 7, "unique-local"],
  ["ff00::", 8, "multicast"],
  ["2001:db8::", 32, "documentation"],
  ["3fff::", 20, "documentation"],
  ["2001::", 23, "reserved"], // IETF protocol assignments, Teredo included
];

const parsed = (ranges: Range[]) =>
  ranges.map(([network, prefix, kind]) => ({ network: parseIp(network)!, prefix, kind }));
const V4 = parsed(V4_RANGES);
const V6 = parsed(V6_RANGES);
const GLOBAL_UNICAST = parseIp("2000::")!;
const NAT64 = parseIp("64:ff9b::")!;
const SIX_TO_FOUR = parseIp("2002::")!;

export function isMetadataAddress(ip: IpAddress): boolean {
  return METADATA.some((m) => m.family === ip.family && m.value === ip.value);
}

/** What kind of special-purpose address `ip` is; undefined for a public unicast address. */
export function classifyAddress(ip: IpAddress): AddressKind | undefined {
  if (isMetadataAddress(ip)) return "cloud metadata";
  if (ip.family === 4) return V4.find((r) => inSubnet(ip, r.network, r.prefix))?.kind;
  // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they embed.
  if (inSubnet(ip, NAT64, 96)) return classifyAddress({ family: 4, value: ip.value & 0xffffffffn });
  if (inSubnet(ip, SIX_TO_FOUR, 16)) {
    return classifyAddress({ family: 4, value: (ip.value >> 80n) & 0xffffffffn });
  }
  const special = V6.find((r) => inSubnet(ip, r.network, r.prefix))?.kind;
  if (special) return special;
  return inSubnet(ip, GLOBAL_UNICAST, 3) ? undefined : "reserved";
}

function v4(s: string): bigint {
  return s.split(".").reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
}

function v6(s: string): bigint {
  // A trailing dotted quad (::ffff:1.2.3.4) is two groups.
  const cut = s.lastIndexOf(":");
  const tail = s.slice(cut + 1);
  if (tail.includes(".")) {
    const n = v4(tail);
    s = `${s.slice(0, cut + 1)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = "", rest] = s.split("::");
  const groupsOf = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groupsOf(head);
  const right = rest === undefined ? [] : groupsOf(rest);
  const zeros = rest === undefined ? [] : Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...zeros, ...right].reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}
