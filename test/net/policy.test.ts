// The outbound policy: the forms REFINERY_OUTBOUND_ALLOW accepts (and the error for others),
// what each entry opens, the metadata exception, permissive mode, and the process default.
import { afterEach, describe, expect, it } from "vitest";
import { parseIp } from "../../core/net/address.ts";
import {
  outboundPolicy,
  parseOutboundAllow,
  PERMISSIVE_POLICY,
  refusal,
  setOutboundPolicy,
  strictPolicy,
} from "../../core/net/policy.ts";

const refused = (allow: string, host: string, port: number, address: string) =>
  refusal(strictPolicy(allow), { host, port }, parseIp(address)!);

describe("REFINERY_OUTBOUND_ALLOW", () => {
  it("accepts IPs, CIDRs, host names, and each with a port", () => {
    const entries = parseOutboundAllow(
      " 10.0.0.5, ::1 ,[fd00::7], 10.0.0.0/8, fd00::/8, ::ffff:192.168.0.0/112, Hooks.Internal., 10.0.0.5:8080, [::1]:9000, hooks.internal:8443,,",
    );
    expect(entries.map((e) => [e.kind, "port" in e ? e.port : undefined])).toEqual([
      ["ip", undefined],
      ["ip", undefined],
      ["ip", undefined],
      ["cidr", undefined],
      ["cidr", undefined],
      ["cidr", undefined],
      ["host", undefined],
      ["ip", 8080],
      ["ip", 9000],
      ["host", 8443],
    ]);
    expect(entries[6]).toMatchObject({ kind: "host", host: "hooks.internal" });
    expect(entries[5]).toMatchObject({ kind: "cidr", prefix: 16, ip: parseIp("192.168.0.0") });
  });

  it.each([
    "10.0.0.0/33",
    "fd00::/129",
    "10.0.0.5:0",
    "10.0.0.5:70000",
    "localhost:",
    "http://x",
    "a b",
    "-bad-.host",
    "[10.0.0.1]",
  ])("refuses %j, naming the variable and the forms", (entry) => {
    expect(() => parseOutboundAllow(entry)).toThrow(
      expect.objectContaining({
        code: "invalid_config",
        field: "REFINERY_OUTBOUND_ALLOW",
        fix: expect.stringContaining("a CIDR (10.0.0.0/8, fd00::/8)"),
      }),
    );
  });
});

describe("refusal", () => {
  it("denies special-purpose addresses by default and allows public ones", () => {
    expect(refused("", "127.0.0.1", 80, "127.0.0.1")).toEqual({
      address: "127.0.0.1",
      kind: "loopback",
    });
    expect(refused("", "x", 443, "::ffff:10.0.0.1")).toEqual({
      address: "10.0.0.1",
      kind: "private",
    });
    expect(refused("", "x", 443, "fd00::1")).toMatchObject({ kind: "unique-local" });
    expect(refused("", "x", 443, "93.184.216.34")).toBeUndefined();
    expect(refused("", "x", 443, "2606:4700::1")).toBeUndefined();
  });

  it("an IP entry opens that address (mapped forms too), at its port when it names one", () => {
    expect(refused("127.0.0.1", "127.0.0.1", 9000, "127.0.0.1")).toBeUndefined();
    expect(refused("127.0.0.1", "x", 9000, "::ffff:127.0.0.1")).toBeUndefined();
    expect(refused("::ffff:127.0.0.1", "x", 9000, "127.0.0.1")).toBeUndefined();
    expect(refused("127.0.0.1", "x", 9000, "127.0.0.2")).toBeDefined();
    expect(refused("127.0.0.1", "x", 9000, "::1")).toBeDefined();
    expect(refused("127.0.0.1:9000", "x", 9000, "127.0.0.1")).toBeUndefined();
    expect(refused("127.0.0.1:9000", "x", 9001, "127.0.0.1")).toBeDefined();
    expect(refused("[::1]:9000", "x", 9000, "::1")).toBeUndefined();
  });

  it("a CIDR entry opens its range", () => {
    expect(refused("10.0.0.0/8", "x", 80, "10.200.1.1")).toBeUndefined();
    expect(refused("10.0.0.0/8", "x", 80, "11.0.0.1")).toBeUndefined(); // public anyway
    expect(refused("10.0.0.0/8", "x", 80, "192.168.0.1")).toBeDefined();
    expect(refused("fd00::/8", "x", 80, "fd12::1")).toBeUndefined();
    expect(refused("fd00::/8", "x", 80, "fc00::1")).toBeDefined();
  });

  it("a host entry opens its host at any address, at its port when it names one", () => {
    expect(refused("hooks.internal", "hooks.internal", 80, "10.0.0.9")).toBeUndefined();
    expect(refused("hooks.internal", "other.internal", 80, "10.0.0.9")).toBeDefined();
    expect(refused("hooks.internal:8443", "hooks.internal", 8443, "10.0.0.9")).toBeUndefined();
    expect(refused("hooks.internal:8443", "hooks.internal", 443, "10.0.0.9")).toBeDefined();
    expect(refused("localhost", "localhost", 3000, "::1")).toBeUndefined();
  });

  it("only an exact IP entry opens a cloud metadata address", () => {
    expect(refused("169.254.0.0/16", "x", 80, "169.254.169.254")).toMatchObject({
      kind: "cloud metadata",
    });
    expect(refused("169.254.0.0/16", "x", 80, "169.254.1.1")).toBeUndefined();
    expect(refused("metadata.internal", "metadata.internal", 80, "169.254.169.254")).toBeDefined();
    expect(refused("0.0.0.0/0", "x", 80, "169.254.169.254")).toBeDefined();
    expect(refused("169.254.169.254", "x", 80, "169.254.169.254")).toBeUndefined();
    expect(refused("fd00::/8", "x", 80, "fd00:ec2::254")).toBeDefined();
    expect(refused("fd00:ec2::254", "x", 80, "fd00:ec2::254")).toBeUndefined();
  });

  it("the permissive policy (the CLI) allows every address", () => {
    for (const address of ["127.0.0.1", "::1", "169.254.169.254", "10.0.0.1"])
      expect(
        refusal(PERMISSIVE_POLICY, { host: "x", port: 80 }, parseIp(address)!),
      ).toBeUndefined();
  });
});

describe("the process policy", () => {
  afterEach(() => {
    setOutboundPolicy(undefined);
    delete process.env.REFINERY_OUTBOUND_ALLOW;
  });

  it("is strict with REFINERY_OUTBOUND_ALLOW from the environment until one is installed", () => {
    expect(outboundPolicy()).toEqual({ mode: "strict", allow: [] });
    process.env.REFINERY_OUTBOUND_ALLOW = "10.0.0.0/8";
    expect(outboundPolicy().allow).toHaveLength(1);
    setOutboundPolicy(PERMISSIVE_POLICY);
    expect(outboundPolicy().mode).toBe("permissive");
    setOutboundPolicy(undefined);
    expect(outboundPolicy().mode).toBe("strict");
  });
});
