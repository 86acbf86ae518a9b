// The custom HTTP app (langgraph.json `http.app`) both servers of the differential harness
// mount: a route of its own, one that replaces a built-in route, and a middleware that changes
// the body of POST /threads before the built-in route sees it (only when asked, with
// `x-rewrite: 1`, so the other cases see the plain API).
import { Hono } from "hono";

export const app = new Hono();

app.use("/threads", async (c, next) => {
  if (c.req.method === "POST" && c.req.header("x-rewrite") === "1") {
    const body = (await c.req.json()) as { metadata?: Record<string, unknown> };
    const changed = { ...body, metadata: { ...body.metadata, stamped_by: "custom-app" } };
    c.req.raw = new Request(c.req.raw, { body: JSON.stringify(changed) });
    c.req.bodyCache = {};
  }
  await next();
});

app.get("/custom/hello", (c) => c.json({ hello: "world", query: c.req.query("q") ?? null }));

app.post("/custom/echo", async (c) => c.json({ received: await c.req.json() }, 201));
