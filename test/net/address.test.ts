// Address parsing and classification: every range the outbound policy denies, in IPv4 and IPv6,
// the IPv4-mapped, NAT64 and 6to4 forms of denied IPv4 addresses, and public addresses left alone.
import { describe, expect, it } from "vitest";
import { classifyAddress, formatIp, parseIp } from "../../core/net/address.ts";

const kind = (text: string) => {
  const ip = parseIp(text);
  if (!ip) throw new Error(`not an address: ${text}`);
  return classifyAddress(ip);
};

describe("parseIp", () => {
  it("parses IPv4, IPv6 (compressed, bracketed, with a zone, with a dotted tail)", () => {
    expect(parseIp("10.1.2.3")).toEqual({ family: 4, value: 0x0a010203n });
    expect(parseIp("[::1]")).toEqual({ family: 6, value: 1n });
    expect(parseIp("fe80::1%eth0")).toEqual({ family: 6, value: (0xfe80n << 112n) | 1n });
    expect(parseIp("64:ff9b::10.0.0.1")).toEqual(parseIp("64:ff9b::a00:1"));
    expect(parseIp("hooks.internal")).toBeUndefined();
    expect(parseIp("999.1.1.1")).toBeUndefined();
  });

  it("turns IPv4-mapped IPv6 into the IPv4 address it maps to, in both spellings", () => {
    expect(parseIp("::ffff:127.0.0.1")).toEqual(parseIp("127.0.0.1"));
    expect(parseIp("[::ffff:7f00:1]")).toEqual(parseIp("127.0.0.1"));
    expect(parseIp("0:0:0:0:0:ffff:a9fe:a9fe")).toEqual(parseIp("169.254.169.254"));
  });

  it("formats addresses back, IPv6 compressed as RFC 5952 writes it", () => {
    for (const text of ["127.0.0.1", "::1", "::", "fd00:ec2::254", "2001:db8:0:1::", "1:0:0:2::3"])
      expect(formatIp(parseIp(text)!)).toBe(text);
  });
});

describe("classifyAddress", () => {
  it.each([
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "shared (carrier-grade NAT)"],
    ["100.127.255.255", "shared (carrier-grade NAT)"],
    ["169.254.1.1", "link-local"],
    ["169.254.169.254", "cloud metadata"],
    ["169.254.170.2", "cloud metadata"],
    ["100.100.100.200", "cloud metadata"],
    ["192.0.0.192", "cloud metadata"],
    ["192.0.0.8", "reserved"],
    ["192.0.2.1", "documentation"],
    ["198.51.100.7", "documentation"],
    ["203.0.113.9", "documentation"],
    ["198.18.0.1", "benchmarking"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "reserved"],
  ])("IPv4 %s is %s", (address, expected) => {
    expect(kind(address)).toBe(expected);
  });

  it.each([
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["fe80::1", "link-local"],
    ["febf:ffff::1", "link-local"],
    ["fc00::1", "unique-local"],
    ["fd12:3456::1", "unique-local"],
    ["fd00:ec2::254", "cloud metadata"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "documentation"],
    ["2001::1", "reserved"],
    ["fec0::1", "reserved"],
    ["100::1", "reserved"],
    ["::127.0.0.1", "reserved"],
    ["4000::1", "reserved"],
  ])("IPv6 %s is %s", (address, expected) => {
    expect(kind(address)).toBe(expected);
  });

  it.each([
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:10.0.0.1", "private"],
    ["::ffff:169.254.169.254", "cloud metadata"],
    ["64:ff9b::127.0.0.1", "loopback"],
    ["64:ff9b::a9fe:a9fe", "cloud metadata"],
    ["2002:7f00:1::1", "loopback"],
    ["2002:c0a8:101::", "private"],
  ])("%s embeds a denied IPv4 address (%s)", (address, expected) => {
    expect(kind(address)).toBe(expected);
  });

  it.each([
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",
    "100.128.0.1",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::8.8.8.8",
    "2002:808:808::1",
  ])("%s is public", (address) => {
    expect(kind(address)).toBeUndefined();
  });
});
