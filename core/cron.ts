// Cron schedules of scheduled runs (POST /runs/crons): a 5-field expression (minute hour
// day-of-month month day-of-week, or @hourly, @daily, @weekly, @monthly, @yearly), read in UTC or
// an IANA time zone, as LangGraph's server takes them; or 6 fields, the sixth the seconds, as
// LangGraph's Python server (croniter) reads a sixth field ("* * * * * */15": every 15 seconds).
// Parsing and next fire times are croner's (time zones and DST included); croner puts seconds
// first, so a 6-field schedule is handed to it with its last field moved to the front.
import { Cron } from "croner";
import { RefineryError } from "./errors.ts";

const EXAMPLES =
  '"*/15 * * * *" (every 15 minutes), "0 9 * * 1-5" (09:00 on weekdays) or "* * * * * */10" (every 10 seconds: seconds last)';
const FIELDS = "5 fields (minute hour day-of-month month day-of-week), or 6 with the seconds last";
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
        fix: `give ${FIELDS}, e.g. ${EXAMPLES}`,
      },
    );
  }
  const fields = text.split(/\s+/);
  if (!text.startsWith("@") && fields.length !== 5 && fields.length !== 6) {
    throw new RefineryError(
      "invalid_input",
      `schedule ${JSON.stringify(text)} has ${fields.length} fields; a schedule has ${FIELDS} (years are not supported)`,
      { field, fix: `give ${FIELDS}, e.g. ${EXAMPLES}` },
    );
  }
  const sixth = fields.length === 6;
  // croner reads seconds first.
  const pattern = sixth ? [fields[5], ...fields.slice(0, 5)].join(" ") : text;
  try {
    return new Cron(pattern, {
      mode: sixth ? "6-part" : "5-part",
      paused: true,
      ...(timezone ? { timezone } : {}),
    });
  } catch (err) {
    // croner counts its entries from the seconds (entry 0); name the schedule's own field.
    const detail = (err as Error).message
      .replace(/^CronPattern:\s*/, "")
      .replace(/configuration entry (\d)/, (_m, n: string) => {
        const entry = Number(n);
        return `field ${sixth && entry === 0 ? 6 : entry}`;
      });
    throw new RefineryError(
      "invalid_input",
      `schedule ${JSON.stringify(text)} is not a valid cron expression (${detail})`,
      {
        field,
        fix: `give ${FIELDS}, e.g. ${EXAMPLES}`,
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
