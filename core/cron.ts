// Cron schedules of scheduled runs (POST /runs/crons): a 5-field expression (minute hour
// day-of-month month day-of-week, or @hourly, @daily, @weekly, @monthly, @yearly), read in UTC or
// an IANA time zone, as LangGraph's server takes them. Parsing and next fire times are croner's
// (time zones and DST included). A sixth field is refused rather than guessed at: croner reads it
// as seconds first, LangGraph's Python server (croniter) as seconds last.
import { Cron } from "croner";
import { RefineryError } from "./errors.ts";

const EXAMPLES = '"*/15 * * * *" (every 15 minutes) or "0 9 * * 1-5" (09:00 on weekdays)';
export const MAX_SCHEDULE_LENGTH = 200;

/** The parsed schedule; throws a 422 naming `field` and the fix. */
function parse(schedule: string, timezone: string | null, field: string): Cron {
  const text = schedule.trim();
  if (text === "" || text.length > MAX_SCHEDULE_LENGTH) {
    throw new RefineryError(
      "invalid_input",
      `schedule must be a cron expression of at most ${MAX_SCHEDULE_LENGTH} characters`,
      {
        field,
        fix: `give 5 fields (minute hour day-of-month month day-of-week), e.g. ${EXAMPLES}`,
      },
    );
  }
  const parts = text.split(/\s+/).length;
  if (!text.startsWith("@") && parts !== 5) {
    throw new RefineryError(
      "invalid_input",
      `schedule ${JSON.stringify(text)} has ${parts} fields; a schedule has 5 (minute hour day-of-month month day-of-week), seconds and years are not supported`,
      { field, fix: `give 5 fields, e.g. ${EXAMPLES}` },
    );
  }
  try {
    return new Cron(text, { mode: "5-part", paused: true, ...(timezone ? { timezone } : {}) });
  } catch (err) {
    const detail = (err as Error).message.replace(/^CronPattern:\s*/, "");
    throw new RefineryError(
      "invalid_input",
      `schedule ${JSON.stringify(text)} is not a valid cron expression (${detail})`,
      {
        field,
        fix: `give 5 fields (minute hour day-of-month month day-of-week), e.g. ${EXAMPLES}`,
      },
    );
  }
}

/** Throws a 422 naming `timezone` unless it is an IANA time zone this runtime knows. */
export function checkTimezone(timezone: string, field = "timezone"): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw new RefineryError("invalid_input", `timezone ${JSON.stringify(timezone)} is not known`, {
      field,
      fix: 'give an IANA time zone such as "UTC", "Europe/Paris" or "America/New_York", or leave it out for UTC',
    });
  }
}

/**
 * The first fire time strictly after `after`, as ISO (UTC); null when there is none before
 * `endTime` (or none at all). Throws a 422 for a schedule or time zone that is not valid.
 */
export function nextFireTime(
  schedule: string,
  timezone: string | null,
  after: Date,
  endTime: string | null = null,
  field = "schedule",
): string | null {
  if (timezone) checkTimezone(timezone);
  const next = parse(schedule, timezone, field).nextRun(after);
  if (!next) return null;
  if (endTime !== null && next.getTime() > Date.parse(endTime)) return null;
  return next.toISOString();
}

/**
 * Checks a schedule as a create or update gives it: valid, and firing at least once (before
 * `endTime` when one is given). Returns the first fire time after `now`.
 */
export function firstFireTime(
  schedule: string,
  timezone: string | null,
  now: Date,
  endTime: string | null,
): string | null {
  if (timezone) checkTimezone(timezone);
  const cron = parse(schedule, timezone, "schedule");
  const next = cron.nextRun(now);
  if (!next) {
    throw new RefineryError(
      "invalid_input",
      `schedule ${JSON.stringify(schedule.trim())} never fires (no such date)`,
      { field: "schedule", fix: `give a date that exists, e.g. ${EXAMPLES}` },
    );
  }
  if (endTime !== null && next.getTime() > Date.parse(endTime)) return null;
  return next.toISOString();
}

/** An ISO time as UTC ISO, or a 422 naming `field`. */
export function isoTime(value: string, field: string): string {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) {
    throw new RefineryError(
      "invalid_input",
      `${field} ${JSON.stringify(value)} is not an ISO time`,
      {
        field,
        fix: "give an ISO 8601 time such as 2030-01-01T00:00:00Z",
      },
    );
  }
  return new Date(ms).toISOString();
}
