// The day's data: who the phone is, today's plan and check-ins, the rep's reminders, the org's
// checklists (latest version of each) and tier policies, and the outlets near the rep's fix. From
// the server when online, each answer kept on the phone; offline (or when the network fails), the
// copies kept here, and no request leaves the page. A kept plan of today is drawn before the
// network answers (`showKeptDay`); the answer then replaces it, redrawn only when it changed.
import { KEYS, answer, api, get, online, read, state, write } from './context.js';
import { latestChecklists } from './checklist.js';
import { dayPaths, earlyFor, fingerprint, keptDayState, localDate, movedFar } from './logic.js';

/** The day kept on the phone: who it is, the plan and the server's check-ins, as last loaded. */
export function keptDay() {
  return { me: read(KEYS.me), plan: read(KEYS.plan), checkins: read(KEYS.checkins, []) };
}

const listOf = (v) => (Array.isArray(v) ? v : v?.items ?? []);

/**
 * Draws from the phone before the network answers: when the kept plan is today's (in the org's
 * time zone), `state` gets it with the kept check-ins, reminders, checklists, tier policies, outlets
 * nearby and record. A plan of another day is not taken (it must not show as today's). Answers
 * `today`, `other` or `none` (logic.js's `keptDayState`).
 */
export function showKeptDay(now = new Date()) {
  const kept = keptDay();
  const day = keptDayState(kept, now);
  if (day !== 'today') return day;
  Object.assign(state, { me: kept.me, plan: kept.plan, serverCheckins: kept.checkins ?? [], fromPhone: !online() });
  state.reminders = read(KEYS.reminders, null);
  state.checklists = latestChecklists(listOf(read(KEYS.checklists, [])));
  state.tiers = listOf(read(KEYS.tiers, []));
  state.nearby = state.nearby ?? read(KEYS.nearby, null);
  const record = read(KEYS.record, null);
  if (record?.date === kept.plan.date) {
    const { fromPhone, ...loaded } = record;
    state.record = online() ? loaded : { ...loaded, fromPhone: true };
  }
  return day;
}

/** The rep and the day the phone asks for: the rep kept at enrolment, today in the kept time zone (else the server's today). */
function dayGuess(now = new Date()) {
  const rep = read(KEYS.rep);
  const me = read(KEYS.me);
  const tz = me?.org?.timezone;
  return { repId: rep?.id ?? me?.rep_id ?? null, date: tz ? localDate(now, tz) : null };
}

/** A promise whose failure is left to whoever awaits it (not reported as unhandled meanwhile). */
const settled = (p) => { p.catch(() => {}); return p; };

/** The plan and the server's check-ins of rep `repId` on `date`, asked for together. */
async function planOf(repId, date) {
  const paths = dayPaths(repId, date);
  const [plan, checkins] = await Promise.all([get(paths.plan), get(paths.checkins).catch(() => [])]);
  return { plan, checkins };
}

/**
 * Who the phone is, today's plan and check-ins from the server: the three asked for at once with
 * the rep id kept at enrolment (no wait for `/me`), or taken over from `early` (index.html's
 * requests, started before app.js arrived) when they are the same. Asked again when `/me` tells
 * another rep or another day.
 */
async function fetchDay(early) {
  const { repId, date } = dayGuess();
  if (repId == null) {
    const me = await get('/me');
    return { me, ...(await planOf(me.rep_id, localDate(new Date(), me.org?.timezone))) };
  }
  const paths = dayPaths(repId, date);
  const sent = earlyFor(early, { token: api.token, repId, date })
    ?? { me: api.send(paths.me), plan: api.send(paths.plan), checkins: api.send(paths.checkins) };
  const [me, plan, checkins] = ['me', 'plan', 'checkins'].map((k) => settled(answer(sent[k])));
  const who = await me;
  const today = localDate(new Date(), who.org?.timezone);
  if (who.rep_id !== repId || (date != null && date !== today)) return { me: who, ...(await planOf(who.rep_id, today)) };
  return { me: who, plan: await plan, checkins: await checkins.catch(() => []) };
}

/** What the page shows of the day: it is redrawn after a refresh only when this changed. */
const shownDay = () => fingerprint({ me: state.me, plan: state.plan, checkins: state.serverCheckins, fromPhone: state.fromPhone });

/**
 * Who the phone is and today's plan: from the server when online (each answer kept on the phone),
 * else what is shown already, else the copies kept here (whatever their day). `early`: index.html's
 * requests (see `fetchDay`). Answers whether what the page shows of the day changed.
 */
export async function loadDay(early = null) {
  const before = shownDay();
  const rep = read(KEYS.rep);
  if (online()) {
    try {
      const { me, plan, checkins } = await fetchDay(early);
      write(KEYS.me, me);
      write(KEYS.plan, plan);
      write(KEYS.checkins, checkins);
      write(KEYS.rep, { ...rep, id: me.rep_id, name: me.rep?.name ?? rep?.name, device_id: me.device_id });
      Object.assign(state, { me, plan, serverCheckins: checkins, fromPhone: false });
      return shownDay() !== before;
    } catch (e) {
      if (e.signedOut) throw e;
      // The network failed: fall back to what the phone kept.
    }
  }
  if (!state.plan) {
    const kept = keptDay();
    Object.assign(state, { me: kept.me, plan: kept.plan, serverCheckins: kept.checkins ?? [] });
  }
  state.fromPhone = true;
  return shownDay() !== before;
}

/** `path`'s answer kept under `key`, or the kept copy when offline or the request fails. */
async function kept(key, path, fallback) {
  if (online()) {
    try {
      const value = await get(path);
      write(key, value);
      return value;
    } catch (e) {
      if (e.signedOut) throw e;
    }
  }
  return read(key, fallback);
}

/** The rep's reminders, the org's checklists and tier policies (after the day's list is shown). */
export async function loadExtras() {
  const repId = state.me?.rep_id;
  if (!repId) return;
  const [reminders, checklists, tiers] = await Promise.all([
    kept(KEYS.reminders, `/reps/${repId}/reminders?date=${state.plan?.date ?? ''}&horizon_days=3&limit=50`, null),
    kept(KEYS.checklists, '/checklists', []),
    kept(KEYS.tiers, '/tier-policies', []),
  ]);
  state.reminders = reminders;
  state.checklists = latestChecklists(listOf(checklists));
  state.tiers = listOf(tiers);
}

let nearbyFrom = null;
/** The outlets near the rep's fix (looked up again after a move of 200 m), or the kept ones offline. */
export async function loadNearby() {
  const fix = state.fix;
  if (!state.nearby) state.nearby = read(KEYS.nearby, null);
  if (!online() || !movedFar(nearbyFrom, fix)) return false;
  nearbyFrom = fix;
  try {
    const found = await get(`/outlets/nearest?lat=${fix.lat.toFixed(6)}&lon=${fix.lon.toFixed(6)}&k=8`);
    state.nearby = { lat: fix.lat, lon: fix.lon, items: found.items ?? [] };
    write(KEYS.nearby, state.nearby);
    return true;
  } catch (e) {
    nearbyFrom = null;
    if (e.signedOut) throw e;
    return false;
  }
}
