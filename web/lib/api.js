// The console's HTTP client: JSON requests to the server's API and a fetch-based reader of a
// run's SSE stream. Paths resolve against the parent of /console/, so a path prefix works too.

import { authHeaders } from "./credentials.js";

const API_BASE = new URL("../", document.baseURI);

/** The server asked for credentials: the console shows its sign-in form. */
function unauthorized(status) {
  if (status === 401) window.dispatchEvent(new Event("refinery:unauthorized"));
}

/** An API answer other than 2xx, keeping the server's {error, message, field}. */
export class ApiError extends Error {
  constructor(status, body) {
    super(typeof body?.message === "string" ? body.message : `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = body?.error ?? null;
    this.field = body?.field ?? null;
  }
}

export function apiUrl(path) {
  return new URL(path.replace(/^\//, ""), API_BASE);
}

export async function api(path, { method = "GET", body, signal } = {}) {
  let res;
  try {
    res = await fetch(apiUrl(path), {
      method,
      headers: {
        ...authHeaders(),
        ...(body === undefined
          ? { Accept: "application/json" }
          : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new ApiError(0, {
      error: "network",
      message: "The server did not answer. Is it still running?",
    });
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text.slice(0, 500) };
    }
  }
  if (!res.ok) {
    unauthorized(res.status);
    throw new ApiError(res.status, data);
  }
  return data;
}

/** Splits the server's "problem Fix: remedy" message for display. */
export function describeError(err) {
  if (err?.name === "AbortError") return null;
  const message = String(err?.message ?? err);
  const at = message.indexOf(" Fix: ");
  const problem = at >= 0 ? message.slice(0, at) : message;
  const fix = at >= 0 ? message.slice(at + 6) : null;
  const status = err instanceof ApiError && err.status ? `${err.status} ` : "";
  return { title: `${status}${problem}`, fix };
}

function parseFrame(frame) {
  const out = { event: "message", data: "", id: undefined };
  const data = [];
  for (const line of frame.split(/\r?\n/)) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") out.event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") out.id = value;
  }
  out.data = data.join("\n");
  return data.length ? out : null;
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

/**
 * Follows a run's event stream (GET /threads/{id}/runs/{run}/stream) until the server ends it,
 * which it does when the run ends. A dropped connection is resumed with Last-Event-ID, so no
 * event is missed. Resolves when the run is over or `signal` aborts.
 */
export async function followRun(threadId, runId, onEvent, signal) {
  const url = apiUrl(
    `threads/${encodeURIComponent(threadId)}/runs/${encodeURIComponent(runId)}/stream`,
  );
  let lastEventId;
  let failures = 0;
  while (!signal.aborted) {
    let res;
    try {
      res = await fetch(url, {
        headers: {
          ...authHeaders(),
          Accept: "text/event-stream",
          ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}),
        },
        signal,
      });
    } catch (err) {
      if (signal.aborted) return;
      if (++failures > 5) throw err;
      await sleep(1000 * failures, signal);
      continue;
    }
    if (!res.ok || !res.body) {
      unauthorized(res.status);
      const body = await res.json().catch(() => null);
      throw new ApiError(res.status, body);
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        failures = 0;
        buffer += value;
        let end;
        while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const frame = parseFrame(buffer.slice(0, end));
          buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
          if (!frame) continue;
          if (frame.id) lastEventId = frame.id;
          let data;
          try {
            data = JSON.parse(frame.data);
          } catch {
            data = frame.data;
          }
          onEvent(frame.event, data);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      if (++failures > 5) throw err;
      await sleep(500 * failures, signal);
    }
  }
}
