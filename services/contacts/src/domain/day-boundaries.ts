import { DateTime, IANAZone } from "luxon";
import { invalidArgument } from "@chatcrm/grpc";

/**
 * The instant a calendar day starts in a time zone. Seed 002: "registered before 23.05.2023" keeps 22.05 23:59
 * and drops 23.05 00:00, i.e. createdAt < start of the day; "registered after 20.05.2023" keeps 20.05 00:01 and
 * drops 19.05 23:59, i.e. createdAt >= start of the day.
 */
export function startOfDay(field: string, date: string, timeZone: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw invalidArgument(field, `"${date}" is not a date in the form YYYY-MM-DD`);
  const day = DateTime.fromISO(date, { zone: timeZone });
  if (!day.isValid) throw invalidArgument(field, `"${date}" is not a calendar date`);
  return day.startOf("day").toJSDate();
}

/** The time zone filter dates are read in; UTC when none is given. */
export function checkTimeZone(field: string, timeZone: string): string {
  if (!timeZone) return "UTC";
  if (!IANAZone.isValidZone(timeZone)) throw invalidArgument(field, `"${timeZone}" is not an IANA time zone such as Europe/Moscow`);
  return timeZone;
}
