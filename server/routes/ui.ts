// The web console: the static files of web/ (plain HTML, CSS and ES modules; no build step)
// under /ui/. Middleware only, no API routes: the console talks to the same API as any client.
import { join } from "node:path";
import express, { Router } from "express";

export const WEB_DIR = join(import.meta.dirname, "../../web");

// Everything the console loads comes from this server: no CDN, no inline script.
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export function uiRoutes(): Router {
  const r = Router();
  // A browser opening the server's root lands on the console; API clients keep their 404.
  r.use((req, res, next) => {
    if (req.method === "GET" && req.path === "/" && req.accepts(["json", "html"]) === "html") {
      res.redirect(302, "ui/");
      return;
    }
    next();
  });
  r.use("/ui", (req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    // "/ui" → "/ui/", so the page's relative URLs (./app.js, ../threads) resolve (also behind a
    // path prefix: the redirect is relative).
    const [path = "", query] = req.originalUrl.split("?", 2);
    if (req.path === "/" && !path.endsWith("/")) {
      res.redirect(301, `ui/${query === undefined ? "" : `?${query}`}`);
      return;
    }
    res.setHeader("Content-Security-Policy", CSP);
    res.setHeader("X-Content-Type-Options", "nosniff");
    next();
  });
  r.use(
    "/ui",
    express.static(WEB_DIR, {
      index: "index.html",
      redirect: false,
      fallthrough: true,
      // Always revalidate: the files change with the server, not with a build hash.
      setHeaders: (res) => res.setHeader("Cache-Control", "no-cache"),
    }),
  );
  return r;
}
