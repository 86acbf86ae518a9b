// The logger `getLogger()` of `@langchain/langgraph-sdk/logging` returns: the LangGraph server
// registers its (winston) logger on a global symbol, and graphs that log through it fail to load
// anywhere that global is missing. Refinery registers a logger of the same shape (error, warn,
// info, debug and winston's other levels; `(message, ...meta)` or `(infoObject)`; chainable) that
// writes through the server's structured log.

export type SdkLogLevel = "debug" | "info" | "warn" | "error";
export type SdkLogSink = (
  level: SdkLogLevel,
  message: string,
  fields?: Record<string, unknown>,
) => void;

const GLOBAL_LOGGER = Symbol.for("langgraph.api.sdk-logger");

/** winston's levels, as the LangGraph server's logger has them, mapped onto Refinery's four. */
const LEVELS: Record<string, SdkLogLevel> = {
  error: "error",
  warn: "warn",
  help: "info",
  data: "info",
  info: "info",
  http: "info",
  prompt: "info",
  input: "info",
  verbose: "debug",
  debug: "debug",
  silly: "debug",
};

type LogMethod = (message: unknown, ...meta: unknown[]) => SdkLogger;
export type SdkLogger = Record<keyof typeof LEVELS, LogMethod> & {
  log(level: string, message: unknown, ...meta: unknown[]): SdkLogger;
};

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function entry(
  message: unknown,
  meta: unknown[],
): { msg: string; fields: Record<string, unknown> } {
  const fields: Record<string, unknown> = {};
  let msg: string;
  if (typeof message === "string") msg = message;
  else if (message instanceof Error) {
    msg = message.message;
    fields.stack = message.stack;
  } else if (isRecord(message)) {
    // winston's `logger.info({ message, ...fields })`.
    const { message: m, level: _level, ...rest } = message;
    msg = typeof m === "string" ? m : JSON.stringify(m ?? "");
    Object.assign(fields, rest);
  } else msg = JSON.stringify(message) ?? String(message);
  const extra: unknown[] = [];
  for (const m of meta) {
    if (m instanceof Error) Object.assign(fields, { error: m.message, stack: m.stack });
    else if (isRecord(m)) Object.assign(fields, m);
    else extra.push(m);
  }
  // winston's splat: further non-object arguments are appended to the message.
  if (extra.length) msg = [msg, ...extra.map((x) => String(x))].join(" ");
  return { msg, fields };
}

export function createSdkLogger(sink: SdkLogSink): SdkLogger {
  const logger = {} as SdkLogger;
  const write = (level: SdkLogLevel, message: unknown, meta: unknown[]): SdkLogger => {
    const { msg, fields } = entry(message, meta);
    sink(level, msg, { ...fields, logger: "graph" });
    return logger;
  };
  for (const [name, level] of Object.entries(LEVELS)) {
    logger[name] = (message, ...meta) => write(level, message, meta);
  }
  logger.log = (level, message, ...meta) => write(LEVELS[level] ?? "info", message, meta);
  return logger;
}

/** Registers the logger `getLogger()` returns in this thread (the last registration wins). */
export function registerSdkLogger(sink: SdkLogSink): SdkLogger {
  const logger = createSdkLogger(sink);
  (globalThis as unknown as Record<symbol, unknown>)[GLOBAL_LOGGER] = logger;
  return logger;
}
