// The web console: the static files of web/ (plain HTML, CSS and ES modules; no build step)
// under /console/. Middleware only, no API routes: the console talks to the same API as any
// client. /ui/ belongs to generative UI (POST /ui/{graph}, as on the LangGraph server); a browser
// opening the console's old address /ui or /ui/ is sent to /console/.
import { join } from "node:path";
import express, { Router, type Request } from "express";
import { ROOT } from "../../core/paths.ts";

// web/ is at the project root (core/paths.ts finds it from the sources and from the build).
export const WEB_DIR = join(ROOT, "web");

/** Where the console is served. */
export const CONSOLE_PATH = "/console";

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

/** A browser navigating (it prefers HTML); API clients keep their JSON answers. */
function isBrowserGet(req: Request): boolean {
  return (
    (req.method === "GET" || req.method === "HEAD") && req.accepts(["json", "html"]) === "html"
  );
}

function queryOf(req: Request): string {
  const query = req.originalUrl.split("?", 2)[1];
  return query === undefined ? "" : `?${query}`;
}

export function consoleRoutes(): Router {
  const r = Router();
  // Redirects are relative, so they survive a path prefix in front of the server.
  r.use((req, res, next) => {
    if (!isBrowserGet(req)) return next();
    // A browser opening the server's root lands on the console; API clients keep their 404.
    if (req.path === "/") return res.redirect(302, "console/");
    // The console's old address (bookmarks): only /ui and /ui/ themselves, the rest of /ui/ is
    // generative UI's (its assets are fetched by <script>/<link>, never navigated to).
    if (req.path === "/ui") return res.redirect(301, `console/${queryOf(req)}`);
    if (req.path === "/ui/") return res.redirect(301, `../console/${queryOf(req)}`);
    next();
  });
  r.use(CONSOLE_PATH, (req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    // "/console" → "/console/", so the page's relative URLs (./app.js, ../threads) resolve.
    const [path = ""] = req.originalUrl.split("?", 1);
    if (req.path === "/" && !path.endsWith("/")) {
      res.redirect(301, `console/${queryOf(req)}`);
      return;
    }
    res.setHeader("Content-Security-Policy", CSP);
    res.setHeader("X-Content-Type-Options", "nosniff");
    next();
  });
  r.use(
    CONSOLE_PATH,
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
