// Graceful stop of the HTTP side: the server stops accepting connections, the requests already
// in flight (a `wait` or `join` following a run that now finishes in another process, a
// response being written) are answered, and requests that still arrive on kept-alive
// connections are served with "Connection: close", before the connections close. So a rolling
// restart behind a load balancer fails no client request.
import type { Server, ServerResponse } from "node:http";
import { Server as NetServer } from "node:net";

export interface RequestDrain {
  /**
   * Stops accepting connections (not closing the kept-alive ones, as http's close() does: a
   * request already sent on one would be reset) and marks every response "Connection: close".
   * Resolves when every connection has ended.
   */
  stopAccepting(): Promise<void>;
  /** Resolves when no request is in flight, or after `timeoutMs`. */
  idle(timeoutMs: number): Promise<void>;
}

/** Tracks the requests in flight on `server`. */
export function trackRequests(server: Server): RequestDrain {
  const inFlight = new Set<ServerResponse>();
  const waiters = new Set<() => void>();
  let draining = false;
  const closeAfter = (res: ServerResponse) => {
    if (!res.headersSent) res.setHeader("connection", "close");
  };
  server.on("request", (_req, res: ServerResponse) => {
    inFlight.add(res);
    if (draining) closeAfter(res);
    res.once("close", () => {
      inFlight.delete(res);
      if (inFlight.size === 0) for (const w of waiters) w();
    });
  });
  return {
    stopAccepting() {
      draining = true;
      for (const res of inFlight) closeAfter(res);
      return new Promise<void>((r) => NetServer.prototype.close.call(server, () => r()));
    },
    async idle(timeoutMs) {
      if (inFlight.size === 0) return;
      let done!: () => void;
      const drained = new Promise<void>((r) => (done = r));
      waiters.add(done);
      const timer = setTimeout(done, timeoutMs);
      await drained;
      clearTimeout(timer);
      waiters.delete(done);
    },
  };
}
