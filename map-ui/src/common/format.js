// Pure helpers that turn the API's numbers and times into shown text: percentages, durations,
// distances, days and times (in a given time zone, e.g. the org's; the browser's when none).
// No DOM here: the unit tests run them under node.

/** What a missing figure shows as. */
export const MISSING = '–';

/** `12.3%` (one decimal), or – when there is no figure. */
export function pct(v) { return v == null ? MISSING : `${v.toFixed(1)}%`; }

/** A duration in hours and minutes, `h:mm` (rounded to the minute; none is 0:00). */
export function hm(seconds) {
  const m = Math.round((seconds ?? 0) / 60);
  return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}`;
}

/** Whole minutes of a duration in seconds. */
export function minutes(seconds) { return Math.round(seconds / 60); }

/** A distance in whole metres with its unit (`42 m`), or – when there is none. */
export function metres(m, unit = 'm') { return m == null ? MISSING : `${Math.round(m)} ${unit}`; }

/** A distance in metres under 1 km, else in kilometres with one decimal; – when there is none. */
export function distance(m, units = { m: 'm', km: 'km' }) {
  if (m == null || !Number.isFinite(m)) return MISSING;
  return Math.round(m) < 1000 ? `${Math.round(m)} ${units.m}` : `${(m / 1000).toFixed(1)} ${units.km}`;
}

/** A required number of visits: whole, or with two decimals when the rule gives a fraction. */
export function visitCount(n) { return Number.isInteger(n) ? String(n) : n.toFixed(2); }

/** The UTC calendar day of a Date, `YYYY-MM-DD`. */
export function isoDay(d) { return d.toISOString().slice(0, 10); }

/** The calendar day, `YYYY-MM-DD`, that an instant falls on in `timeZone` (an IANA name). */
export function dayIn(instant, timeZone) {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })
    .formatToParts(new Date(instant));
  const part = (type) => parts.find((p) => p.type === type).value;
  return `${part('year')}-${part('month')}-${part('day')}`;
}

/** `n` days after (or before, when negative) the Date `d`. */
export function addDays(d, n) { return new Date(d.getTime() + n * 86400000); }

/** The time of day of an instant in `locale` (hours, minutes and seconds), in `timeZone`. */
export function clock(instant, locale, timeZone) {
  return new Date(instant).toLocaleTimeString(locale, { timeZone });
}

/** The hour and minute of an instant in `locale`, in `timeZone`; '' when there is no instant. */
export function hourMinute(instant, locale, timeZone) {
  return instant ? new Date(instant).toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit', timeZone }) : '';
}

/** Date and time of an instant in `locale`, in `timeZone`; – when there is no instant. */
export function dateTime(instant, locale, timeZone) {
  return instant ? new Date(instant).toLocaleString(locale, { timeZone }) : MISSING;
}
