// The guarded outbound client against real listeners on loopback: refused before any connection
// (literal IPs, mapped forms, localhost resolved at connect time), allowed when listed, redirects
// checked hop by hop, the reply size cap, the connect and total timeouts, the caller's abort.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server as TcpServer,
  type Socket,
} from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { checkOutboundUrl, createOutboundClient, OutboundError } from "../../core/net/outbound.ts";
import { PERMISSIVE_POLICY, strictPolicy } from "../../core/net/policy.ts";

interface Hit {
  server: string;
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

const hits: Hit[] = [];
let main: Server;
let other: Server;
let v6: Server | undefined;
let silent: TcpServer;
const sockets = new Set<Socket>();
let port = 0;
let otherPort = 0;
let silentPort = 0;

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

function listen(name: string, routes: Record<string, Handler>, host = "127.0.0.1") {
  return new Promise<Server>((resolve, reject) => {
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString("utf8")));
      req.on("end", () => {
        const path = req.url ?? "/";
        hits.push({ server: name, method: req.method ?? "", path, headers: req.headers, body });
        (routes[path] ?? ((_q, r) => r.writeHead(404).end("nope")))(req, res, body);
      });
    });
    server.on("error", reject);
    server.listen(0, host, () => resolve(server));
  });
}

const portOf = (s: Server | TcpServer) => (s.address() as AddressInfo).port;
const strict = (allow = "") => createOutboundClient(() => strictPolicy(allow));
const permissive = createOutboundClient(() => PERMISSIVE_POLICY);

async function failure(promise: Promise<unknown>): Promise<OutboundError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof OutboundError) return error;
    throw error;
  }
  throw new Error("the request succeeded");
}

beforeAll(async () => {
  other = await listen("other", { "/ok": (_q, r) => r.end("other ok") });
  otherPort = portOf(other);
  main = await listen("main", {
    "/ok": (_q, r) => r.end("hello"),
    "/echo": (_q, r, body) => r.end(body),
    "/to-other-307": (_q, r) =>
      r.writeHead(307, { location: `http://127.0.0.1:${otherPort}/ok` }).end(),
    "/to-same-308": (_q, r) => r.writeHead(308, { location: "/echo" }).end(),
    "/to-metadata": (_q, r) =>
      r.writeHead(307, { location: "http://169.254.169.254/latest/meta-data/" }).end(),
    "/to-ftp": (_q, r) => r.writeHead(307, { location: "ftp://127.0.0.1/x" }).end(),
    "/302": (_q, r) => r.writeHead(302, { location: "/ok" }).end("moved"),
    "/loop": (_q, r) => r.writeHead(307, { location: "/loop" }).end(),
    "/big-declared": (_q, r) =>
      r.writeHead(200, { "content-length": "5000" }).end("x".repeat(5000)),
    "/big-chunked": (_q, r) => {
      r.writeHead(200);
      for (let i = 0; i < 50; i++) r.write("y".repeat(100));
      r.end();
    },
    "/slow": (_q, r) => void setTimeout(() => !r.destroyed && r.end("late"), 3_000),
  });
  port = portOf(main);
  v6 = await listen("v6", { "/ok": (_q, r) => r.end("six") }, "::1").catch(() => undefined);
  // Accepts connections and never says a word: a TLS handshake to it never completes.
  silent = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  silentPort = portOf(silent);
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  for (const s of [main, other, v6, silent]) {
    if (!s) continue;
    if ("closeAllConnections" in s) s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

beforeEach(() => {
  hits.length = 0;
});

describe("the strict policy", () => {
  it.each([
    ["127.0.0.1", "127.0.0.1 is a loopback address"],
    ["[::1]", "::1 is a loopback address"],
    ["[::ffff:127.0.0.1]", "127.0.0.1 is a loopback address"],
    ["[::ffff:7f00:1]", "127.0.0.1 is a loopback address"],
    ["2130706433", "127.0.0.1 is a loopback address"],
    ["0x7f.1", "127.0.0.1 is a loopback address"],
    ["0.0.0.0", "0.0.0.0 is an unspecified address"],
    ["[64:ff9b::7f00:1]", "64:ff9b::7f00:1 is a loopback address"],
  ])("refuses http://%s:PORT before connecting: %s", async (host, why) => {
    const url = `http://${host}:${port}/ok`;
    const error = await failure(strict().request(url));
    expect(error.reason).toBe("denied");
    expect(error.message).toContain(why);
    expect(error.fix).toContain("REFINERY_OUTBOUND_ALLOW");
    expect(strict().precheck(url)?.reason).toBe("denied");
    expect(hits).toHaveLength(0);
  });

  it("refuses a host name that resolves to loopback when it connects (localhost), naming the host, not the address", async () => {
    const error = await failure(
      strict().request(`http://localhost:${port}/ok`, { method: "POST", body: "x" }),
    );
    expect(error).toMatchObject({ reason: "denied", host: `localhost:${port}` });
    expect(error.message).toBe(
      `localhost:${port} may not be called by this server: it resolves to a loopback address`,
    );
    expect(error.fix).toBe(
      "use a public address, or have the operator list localhost in REFINERY_OUTBOUND_ALLOW",
    );
    expect(hits).toHaveLength(0);
  });

  it("allows what REFINERY_OUTBOUND_ALLOW lists: the IP, the IP and port, the host name", async () => {
    for (const allow of ["127.0.0.1", `127.0.0.1:${port}`, "127.0.0.0/8", "::ffff:127.0.0.1"]) {
      const res = await strict(allow).request(`http://127.0.0.1:${port}/ok`);
      expect(res.text()).toBe("hello");
    }
    expect((await strict("localhost").request(`http://localhost:${port}/ok`)).status).toBe(200);
    expect((await strict("127.0.0.1").request(`http://localhost:${port}/ok`)).status).toBe(200);
    expect(hits).toHaveLength(6);
    await expect(
      failure(strict(`127.0.0.1:${port + 1}`).request(`http://127.0.0.1:${port}/ok`)),
    ).resolves.toMatchObject({ reason: "denied" });
    expect(hits).toHaveLength(6);
  });

  it("checks IPv6 addresses as such", async (ctx) => {
    if (!v6) return ctx.skip();
    const url = `http://[::1]:${portOf(v6)}/ok`;
    expect((await failure(strict("127.0.0.1").request(url))).reason).toBe("denied");
    expect((await strict("::1").request(url)).text()).toBe("six");
    expect(hits.map((h) => h.server)).toEqual(["v6"]);
  });

  it("refuses other schemes and URLs with credentials", async () => {
    for (const url of [
      "ftp://example.com/x",
      "file:///etc/passwd",
      `http://u:p@127.0.0.1:${port}/`,
    ]) {
      expect((await failure(permissive.request(url))).reason).toBe("invalid_url");
      expect(permissive.precheck(url)?.reason).toBe("invalid_url");
    }
    expect(hits).toHaveLength(0);
  });

  it("leaves DNS names other than localhost to send time in precheck", () => {
    expect(strict().precheck("https://hooks.example.com/x")).toBeUndefined();
    expect(strict().precheck("http://app.localhost/x")?.reason).toBe("denied");
    expect(strict("localhost:3000").precheck("http://localhost:3000/x")).toBeUndefined();
    expect(() => checkOutboundUrl("http://10.0.0.1/", "approval.webhook.url", strict())).toThrow(
      expect.objectContaining({ code: "invalid_config", field: "approval.webhook.url" }),
    );
  });
});

describe("redirects", () => {
  const loopback = () => strict("127.0.0.1");

  it("follows 307 and 308 keeping the method and body, checking each target", async () => {
    const res = await loopback().request(`http://127.0.0.1:${port}/to-same-308`, {
      method: "POST",
      body: "draft",
    });
    expect(res.text()).toBe("draft");
    expect(res.url).toBe(`http://127.0.0.1:${port}/echo`);
    const cross = await loopback().request(`http://127.0.0.1:${port}/to-other-307`, {
      method: "POST",
      body: "b",
      headers: { authorization: "Bearer t", "x-keep": "1" },
    });
    expect(cross.text()).toBe("other ok");
    const last = hits.at(-1)!;
    expect(last).toMatchObject({ server: "other", method: "POST", body: "b" });
    // Credentials are not handed to another origin.
    expect(last.headers.authorization).toBeUndefined();
    expect(last.headers["x-keep"]).toBe("1");
  });

  it("refuses a redirect to a denied target without calling it", async () => {
    const toOther = await failure(
      strict(`127.0.0.1:${port}`).request(`http://127.0.0.1:${port}/to-other-307`),
    );
    expect(toOther).toMatchObject({ reason: "denied", host: `127.0.0.1:${otherPort}` });
    const toMetadata = await failure(
      strict("127.0.0.1").request(`http://127.0.0.1:${port}/to-metadata`),
    );
    expect(toMetadata.message).toContain("169.254.169.254 is a cloud metadata address");
    const toFtp = await failure(strict("127.0.0.1").request(`http://127.0.0.1:${port}/to-ftp`));
    expect(toFtp.reason).toBe("invalid_url");
    expect(hits.map((h) => h.server)).toEqual(["main", "main", "main"]);
  });

  it("stops after 3 redirects, and returns 301/302/303 as they are", async () => {
    const error = await failure(loopback().request(`http://127.0.0.1:${port}/loop`));
    expect(error).toMatchObject({ reason: "redirect" });
    expect(hits).toHaveLength(4);
    const res = await loopback().request(`http://127.0.0.1:${port}/302`);
    expect(res).toMatchObject({ status: 302, ok: false });
    const kept = await loopback().request(`http://127.0.0.1:${port}/to-same-308`, {
      maxRedirects: 0,
    });
    expect(kept).toMatchObject({ status: 308, ok: false });
  });
});

describe("limits", () => {
  it("fails past the size cap, declared or streamed", async () => {
    for (const path of ["/big-declared", "/big-chunked"]) {
      const error = await failure(
        permissive.request(`http://127.0.0.1:${port}${path}`, { maxBytes: 1000 }),
      );
      expect(error).toMatchObject({ reason: "too_large" });
      expect(error.message).toBe(`127.0.0.1:${port} sent a reply larger than 1000 bytes`);
    }
    const res = await permissive.request(`http://127.0.0.1:${port}/big-chunked`, {
      maxBytes: 5000,
    });
    expect(res.body.length).toBe(5000);
  });

  it("times out a reply that takes too long", async () => {
    const error = await failure(
      permissive.request(`http://127.0.0.1:${port}/slow`, { timeoutMs: 150 }),
    );
    expect(error).toMatchObject({ reason: "timeout" });
    expect(error.message).toBe(`127.0.0.1:${port} did not answer within 150 ms`);
  });

  it("times out a connection whose TLS handshake never completes", async () => {
    const error = await failure(
      permissive.request(`https://127.0.0.1:${silentPort}/`, {
        connectTimeoutMs: 150,
        timeoutMs: 5_000,
      }),
    );
    expect(error).toMatchObject({ reason: "timeout" });
    expect(error.message).toBe(`127.0.0.1:${silentPort} could not be connected within 150 ms`);
  });

  it("rejects with the caller's abort reason", async () => {
    const controller = new AbortController();
    const pending = permissive.request(`http://127.0.0.1:${port}/slow`, {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new Error("run cancelled")), 50);
    await expect(pending).rejects.toThrow("run cancelled");
  });

  it("names an unreachable host with the system's code", async () => {
    const closed = await listen("closed", {});
    const closedPort = portOf(closed);
    await new Promise((r) => closed.close(r));
    const error = await failure(permissive.request(`http://127.0.0.1:${closedPort}/`));
    expect(error.message).toBe(`127.0.0.1:${closedPort} could not be reached (ECONNREFUSED)`);
  });
});
