// The thread protocol's HTTP routes (the SDK's ThreadStream; LangGraph server 1.5.1
// dist/api/protocol.mjs): POST /threads/{id}/commands (one command, its response as JSON),
// POST /threads/{id}/stream/events (the thread's events as SSE, filtered), and
// GET /threads/{id}/stream/events upgraded to a WebSocket (commands in, responses and the
// events of the connection's subscriptions out). The upgrade request goes through the same
// middleware as every request (Host check, Origin, auth, rate limit) before it is accepted.
import { randomUUID } from "node:crypto";
import { ServerResponse, type IncomingMessage, type Server } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { Router, type Request } from "express";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { RefineryError } from "../../core/errors.ts";
import { authOf, type RequestAuth } from "../auth/request.ts";
import { isUuid, type AppDeps } from "../context.ts";
import { parseBody, sendJson } from "../http.ts";
import { matchesFilter, type EventFilter, type ProtocolEvent } from "../protocol/events.ts";
import {
  asProtocolError,
  EventsFilterBody,
  PROTOCOL_LIMITS,
  ProtocolCommand,
  protocolError,
  ProtocolService,
  type ProtocolCommandBody,
  type ProtocolResponse,
} from "../protocol/service.ts";
import { createRunService } from "../run-service.ts";
import { toJson } from "../serde.ts";

/** Set on an upgrade request handed to the app: the socket to take over. */
const UPGRADE = Symbol.for("refinery.upgrade");
interface Upgrade {
  socket: Duplex;
  head: Buffer;
}

export function upgradeOf(req: IncomingMessage): Upgrade | undefined {
  return (req as unknown as Record<symbol, Upgrade | undefined>)[UPGRADE];
}

export function markUpgrade(req: IncomingMessage, upgrade: Upgrade): void {
  (req as unknown as Record<symbol, Upgrade>)[UPGRADE] = upgrade;
}

function threadIdOf(req: Request): string {
  const id = req.params.thread_id as string;
  if (!isUuid(id))
    throw new RefineryError("invalid_input", "thread_id must be a UUID", { field: "thread_id" });
  return id;
}

export function protocolRoutes(deps: AppDeps): { router: Router; service: ProtocolService } {
  const r = Router();
  const service = new ProtocolService({ ...deps, runs: createRunService(deps) });
  const keepAliveMs = deps.keepAliveMs ?? 15_000;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: PROTOCOL_LIMITS.maxMessageBytes,
    perMessageDeflate: false,
  });

  r.post("/threads/:thread_id/commands", async (req, res) => {
    const threadId = threadIdOf(req);
    const command = parseBody(ProtocolCommand, req.body);
    if (
      command.method === "subscription.subscribe" ||
      command.method === "subscription.unsubscribe"
    ) {
      // Over HTTP a stream's filter is its subscription: nothing to register here.
      sendJson(
        res,
        200,
        protocolError(
          command.id,
          "not_supported",
          `${command.method} is a WebSocket command; over HTTP open POST /threads/${threadId}/stream/events with the channels`,
        ),
      );
      return;
    }
    sendJson(res, 200, await service.command(authOf(req), threadId, command));
  });

  r.post("/threads/:thread_id/stream/events", async (req, res) => {
    const threadId = threadIdOf(req);
    const body = parseBody(EventsFilterBody, req.body);
    const auth = authOf(req);
    const thread = await service.checkThread(auth, threadId);
    const filter: EventFilter = {
      channels: new Set(body.channels),
      ...(body.namespaces ? { namespaces: body.namespaces } : {}),
      ...(body.depth !== undefined ? { depth: body.depth } : {}),
      ...(body.since !== undefined ? { since: body.since } : {}),
    };
    const id = randomUUID();
    const sink = {
      id,
      auth,
      verified: thread !== undefined,
      accepts: (e: ProtocolEvent) => matchesFilter(filter, e),
      send: (e: ProtocolEvent) => {
        if (res.writableEnded || res.destroyed) return;
        if (res.writableLength > PROTOCOL_LIMITS.maxBufferedBytes) {
          res.destroy();
          return;
        }
        res.write(`id: ${e.event_id}\nevent: ${e.method}\ndata: ${toJson(e)}\n\n`);
      },
      end: () => {
        if (!res.writableEnded) res.end();
      },
    };
    res.status(200);
    res.setHeader("Content-Type", "text/event-stream");
    res.setHeader("Cache-Control", "no-cache");
    res.setHeader("Connection", "keep-alive");
    res.setHeader("X-Accel-Buffering", "no");
    service.attach(threadId, sink, sink.accepts);
    res.flushHeaders();
    const ping = setInterval(() => {
      if (!res.writableEnded) res.write(": ping\n\n");
    }, keepAliveMs);
    await new Promise<void>((resolve) => res.on("close", resolve));
    clearInterval(ping);
    service.detach(threadId, id);
  });

  r.get("/threads/:thread_id/stream/events", async (req, _res) => {
    const threadId = threadIdOf(req);
    const upgrade = upgradeOf(req);
    if (!upgrade || (req.headers.upgrade ?? "").toLowerCase() !== "websocket") {
      throw new RefineryError("bad_request", "this endpoint is a WebSocket", {
        field: "Upgrade",
        fix: `connect with a WebSocket client (ws://…/threads/${threadId}/stream/events), or POST this path for SSE`,
      });
    }
    checkOrigin(req, deps);
    const auth = authOf(req);
    const thread = await service.checkThread(auth, threadId);
    wss.handleUpgrade(req, upgrade.socket, upgrade.head, (ws) => {
      serveSocket(ws, service, threadId, auth, thread !== undefined, deps);
    });
  });

  return { router: r, service };
}

/**
 * A WebSocket from a page of another origin is refused unless the origin is listed: browsers
 * let any page open one (no CORS), and without auth it could start runs.
 */
function checkOrigin(req: Request, deps: AppDeps): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string | undefined;
  try {
    host = new URL(origin).host.toLowerCase();
  } catch {
    host = undefined;
  }
  if (host !== undefined && host === (req.headers.host ?? "").toLowerCase()) return;
  const listed = deps.security?.corsOrigins;
  if (listed === "*" || listed?.has(origin.toLowerCase())) return;
  throw new RefineryError("forbidden", `WebSockets from the web origin ${origin} are not allowed`, {
    field: "Origin",
    fix: "list the origin in REFINERY_CORS_ORIGINS if this web app should use the API",
  });
}

function serveSocket(
  ws: WebSocket,
  service: ProtocolService,
  threadId: string,
  auth: RequestAuth,
  verified: boolean,
  deps: AppDeps,
): void {
  const subscriptions = new Map<string, EventFilter>();
  const id = randomUUID();
  let inFlight = 0;
  const send = (message: unknown) => {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > PROTOCOL_LIMITS.maxBufferedBytes) {
      ws.close(1008, "client too slow: too many events queued");
      return;
    }
    ws.send(toJson(message));
  };
  const sink = {
    id,
    auth,
    verified,
    accepts: (e: ProtocolEvent) => [...subscriptions.values()].some((f) => matchesFilter(f, e)),
    send,
    end: (reason: "forbidden" | "closed") =>
      reason === "forbidden"
        ? ws.close(4404, "Thread not found")
        : ws.close(1001, "server closing"),
  };
  try {
    service.attach(threadId, sink, () => false);
  } catch (err) {
    ws.close(4429, (err as Error).message.slice(0, 120));
    return;
  }
  ws.on("close", () => service.detach(threadId, id));
  ws.on("error", () => service.detach(threadId, id));

  /** A message as a command, or the error to answer it with. */
  const parse = (raw: RawData): ProtocolCommandBody | ProtocolResponse => {
    let payload: unknown;
    try {
      payload = JSON.parse(raw.toString());
    } catch {
      return protocolError(null, "invalid_argument", "Protocol commands must be valid JSON.");
    }
    const parsed = ProtocolCommand.safeParse(payload);
    if (parsed.success) return parsed.data;
    const cid = (payload as { id?: unknown } | null)?.id;
    const issue = parsed.error.issues[0];
    return protocolError(
      typeof cid === "number" && Number.isInteger(cid) && cid >= 0 ? cid : null,
      "invalid_argument",
      `Protocol commands must include an integer id and string method (${issue?.path.join(".") || "command"}: ${issue?.message ?? "invalid"}).`,
    );
  };

  /** subscription.subscribe / unsubscribe: answered at once, in order with the events. */
  const subscription = (command: ProtocolCommandBody): ProtocolResponse | null => {
    if (command.method === "subscription.unsubscribe") {
      const sid = command.params?.subscription_id;
      if (typeof sid !== "string")
        return protocolError(
          command.id,
          "invalid_argument",
          "subscription.unsubscribe requires a subscription_id.",
        );
      if (!subscriptions.delete(sid))
        return protocolError(command.id, "no_such_subscription", `Unknown subscription: ${sid}`);
      return { type: "success", id: command.id, result: {}, meta: service.meta(threadId) };
    }
    if (subscriptions.size >= PROTOCOL_LIMITS.subscriptionsPerConnection) {
      return protocolError(
        command.id,
        "invalid_argument",
        `this connection already has ${PROTOCOL_LIMITS.subscriptionsPerConnection} subscriptions; unsubscribe from some first`,
      );
    }
    const filter = service.parseSubscribe(command.params);
    const subscriptionId = randomUUID();
    const replay = service.runEvents(threadId).filter((e) => matchesFilter(filter, e));
    // The response first: the client registers the subscription before its events arrive.
    send({
      type: "success",
      id: command.id,
      result: { subscription_id: subscriptionId, replayed_events: replay.length },
      meta: service.meta(threadId),
    });
    for (const e of replay) send(e);
    subscriptions.set(subscriptionId, filter);
    return null;
  };

  ws.on("message", (raw) => {
    const command = parse(raw);
    if ("type" in command) {
      send(command);
      return;
    }
    if (command.method.startsWith("subscription.") && command.method !== "subscription.reconnect") {
      try {
        const response = subscription(command);
        if (response) send(response);
      } catch (err) {
        send(asProtocolError(command.id, err));
      }
      return;
    }
    if (inFlight >= PROTOCOL_LIMITS.commandsInFlight) {
      send(
        protocolError(
          command.id,
          "rate_limited",
          `too many commands in flight (${PROTOCOL_LIMITS.commandsInFlight}); wait for their responses`,
        ),
      );
      return;
    }
    inFlight += 1;
    service
      .command(auth, threadId, command)
      .catch((err: unknown) => {
        if (!(err instanceof RefineryError))
          deps.log("error", "protocol command failed", {
            thread_id: threadId,
            method: command.method,
            message: (err as Error).message,
          });
        return asProtocolError(command.id, err);
      })
      .then(send)
      .finally(() => {
        inFlight -= 1;
      });
  });
}

/**
 * Routes HTTP upgrade requests through the app, so an upgrade is checked like any request; the
 * protocol route takes the socket over, anything else is answered over it and closed.
 */
export function handleUpgrades(
  server: Server,
  app: (req: IncomingMessage, res: ServerResponse) => void,
): void {
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    markUpgrade(req, { socket, head });
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.on("finish", () => {
      res.detachSocket(socket as Socket);
      socket.end();
    });
    app(req, res);
  });
}
