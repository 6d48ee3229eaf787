// The reps' app's pure logic: client ids, the outbox's order and what to do with an answer, the
// distance estimate shown offline, and the state of a planned stop. No DOM, no storage: the unit
// tests run these under node.

/** Client ids the server accepts for a check-in: 8-100 of A-Z a-z 0-9 _ . : - */
export const CLIENT_ID = /^[A-Za-z0-9_.:-]{8,100}$/;

/** A new client id with `prefix` (`app-` + a random UUID unless `uuid` is given). */
export function clientId(prefix = 'app', uuid = globalThis.crypto.randomUUID()) {
  const id = `${prefix}-${uuid}`.replace(/[^A-Za-z0-9_.:-]/g, '-').slice(0, 100);
  if (!CLIENT_ID.test(id)) throw new Error(`not a valid client id: ${id}`);
  return id;
}

export function isClientId(id) { return typeof id === 'string' && CLIENT_ID.test(id); }

/** The outbox's items in the order they are sent: by sequence number (the order they were written). */
export function sendOrder(items) { return [...items].sort((a, b) => a.seq - b.seq); }

/**
 * What to do with an outbox item after an attempt: `sent` (a success: it leaves the queue),
 * `refused` (the server said no for good, 4xx: it leaves the queue and the rep is shown why) or
 * `retry` (no answer, 5xx, 408 or 429: it stays, and the items after it wait behind it). A 401
 * (the phone's token was replaced or withdrawn) is not the write's fault: it stays for the phone's
 * next enrolment.
 */
export function decide(status) {
  if (status == null || status === 0) return 'retry';
  if (status >= 200 && status < 300) return 'sent';
  if (status === 401 || status === 408 || status === 429) return 'retry';
  if (status >= 400 && status < 500) return 'refused';
  return 'retry';
}

/** Seconds to wait before the next attempt after `attempts` failed ones: 5 s doubling, at most 5 min. */
export function retryDelay(attempts) { return Math.min(300, 5 * 2 ** Math.max(0, attempts - 1)); }

/** The great-circle distance in metres between two `{lat, lon}` (haversine, mean Earth radius). */
export function distanceM(a, b) {
  const R = 6371008.8;
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The allowance the app assumes offline (the server judges with the outlet's own radius later). */
export const ASSUMED_ALLOWANCE_M = 100;

/** The most a fix's accuracy widens the allowance: the server's visit rule caps it the same way. */
export const ACCURACY_CAP_M = 50;

/**
 * The offline estimate of a check-in: the distance from the fix to the outlet and whether it looks
 * to be at the outlet (within the assumed allowance, widened by the fix's accuracy up to
 * `ACCURACY_CAP_M`, as the server judges it).
 */
export function estimate(fix, outlet, allowance = ASSUMED_ALLOWANCE_M) {
  const distance_m = distanceM(fix, outlet);
  const widen = Math.min(Math.max(fix.accuracy_m ?? 0, 0), ACCURACY_CAP_M);
  return { distance_m, likely_at_outlet: distance_m <= allowance + widen };
}

/**
 * The state of a planned stop at `now`: `done` once checked in there, else `missed` when its day
 * is over, `late` when its window has ended, else `pending`. `stop` is a visit of the day plan
 * (`window_end` an ISO time or null), `dayOver` whether the plan's day has ended.
 */
export function stopState(stop, { checkedIn = false, now = new Date(), dayOver = false } = {}) {
  if (checkedIn) return 'done';
  if (dayOver) return 'missed';
  if (stop.window_end && new Date(stop.window_end) < now) return 'late';
  return 'pending';
}

/** The date (YYYY-MM-DD) of `now` in time zone `tz` (the org's). */
export function localDate(now, tz) {
  try {
    return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
  } catch {
    return new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
  }
}

/** The enrolment code in a location hash (`#enrol=<code>`), or null. */
export function enrolCode(hash) {
  const m = /(?:^#|&)enrol=([^&]+)/.exec(hash || '');
  return m ? decodeURIComponent(m[1]) : null;
}

/**
 * Whether outbox `item` was written under another sign-in than `deviceId` (the phone enrolled again
 * as another device since): it must not be sent with the new device's token. Items written before
 * writes were stamped (no `device_id`) and a phone whose device is not known go as they are.
 */
export function otherSignIn(item, deviceId) {
  return item.device_id != null && deviceId != null && item.device_id !== deviceId;
}

/** Milliseconds between the app's pings: 15 s, 5 s while a check-in is open. */
export const PING_EVERY_MS = { idle: 15000, checkedIn: 5000 };

/**
 * Whether the app sends `fix` as a ping now: a fix newer than the last one sent, and the interval
 * (shorter while `checkedIn`) passed since the last ping left (`now`, `lastSentAt` in ms).
 */
export function pingDue({ fix, lastPinged, lastSentAt, now, checkedIn }) {
  if (!fix || fix.time <= lastPinged) return false;
  return now - lastSentAt >= (checkedIn ? PING_EVERY_MS.checkedIn : PING_EVERY_MS.idle);
}

/** A native ping from a geolocation fix: the API's field names, with the phone's id for the fix. */
export function pingOf(fix, pingId) {
  return { fix_time: new Date(fix.time).toISOString(), lat: fix.lat, lon: fix.lon, ...(fix.accuracy_m > 0 ? { accuracy_m: fix.accuracy_m } : {}), ping_id: pingId };
}

/**
 * A link that opens the phone's maps app at an outlet: `geo:lat,lon?q=lat,lon(name)` (RFC 5870, with
 * the `q` query Android's and most maps apps read to drop a labelled pin).
 */
export function geoLink({ lat, lon, name }) {
  const at = `${+lat.toFixed(6)},${+lon.toFixed(6)}`;
  return `geo:${at}?q=${at}${name ? `(${encodeURIComponent(name)})` : ''}`;
}

/** The next stop to go to: the first in route order (`seq`) whose `state` is pending or late, else null. */
export function nextStop(stops) {
  return [...stops].sort((a, b) => a.seq - b.seq).find((s) => s.state === 'pending' || s.state === 'late') ?? null;
}

/** The first day (YYYY-MM-DD) of the month of the date `day` (YYYY-MM-DD). */
export function monthStart(day) { return `${day.slice(0, 7)}-01`; }

/** Whether the outlets near `prev` (a fix, or null) must be looked up again from `fix`: none yet, or moved over `metres`. */
export function movedFar(prev, fix, metres = 200) {
  if (!fix) return false;
  return !prev || distanceM(prev, fix) > metres;
}

/** `template` with each `{name}` replaced by `vars[name]` (kept as is when there is none). */
export function fill(template, vars = {}) {
  return template.replace(/\{(\w+)\}/g, (m, k) => (vars[k] == null ? m : String(vars[k])));
}

/**
 * The reasons of a reminder (`problem`, `never_visited`, `overdue`, `due`), most urgent first, and
 * how urgent it is: `problem` and `overdue` (and never visited) are `urgent`, `due` is `soon`.
 */
export function reminderUrgency(reasons = []) {
  return reasons.some((r) => r === 'problem' || r === 'overdue' || r === 'never_visited') ? 'urgent' : 'soon';
}

/**
 * The paths of the day's data for rep `repId`: who the phone is, the plan and the server's check-ins
 * of `date` (YYYY-MM-DD), or of the org's today as the server counts it when `date` is null. They
 * do not depend on each other, so they are asked for at once (index.html's early start asks for
 * these same paths before app.js arrives).
 */
export function dayPaths(repId, date = null) {
  const on = (param) => (date ? `?${param}=${date}` : '');
  return { me: '/me', plan: `/reps/${repId}/plan${on('date')}`, checkins: `/reps/${repId}/checkins${on('from')}` };
}

/** Whether `plan` (a day plan, with its `date`) is the plan of today in time zone `tz` at `now`. */
export function isTodayPlan(plan, tz, now = new Date()) {
  return plan?.date != null && plan.date === localDate(now, tz);
}

/**
 * What the phone kept of the day, for drawing it before the network answers: `today` (a plan of
 * today, in the org's time zone as kept with `me`: drawn at once), `other` (a plan of another day:
 * not shown as today's) or `none`.
 */
export function keptDayState({ me = null, plan = null } = {}, now = new Date()) {
  if (!plan || !Array.isArray(plan.visits)) return 'none';
  return isTodayPlan(plan, me?.org?.timezone, now) ? 'today' : 'other';
}

/**
 * The requests index.html started before app.js arrived (`{ token, repId, date, me, plan, checkins }`,
 * each a promise of a Response), when they are the ones the app would make now: the same token,
 * rep and day. Else null (the app asks itself).
 */
export function earlyFor(early, { token, repId, date = null }) {
  if (!early || !token || early.token !== token || early.repId !== repId || (early.date ?? null) !== (date ?? null)) return null;
  return ['me', 'plan', 'checkins'].every((k) => typeof early[k]?.then === 'function') ? early : null;
}

/** What changes what the page shows of `value`: its JSON without when it was loaded. */
export function fingerprint(value) {
  return JSON.stringify(value ?? null, (k, v) => (k === 'loaded_at' ? undefined : v));
}
