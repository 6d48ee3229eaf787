// The day's data: who the phone is, today's plan and check-ins, the rep's reminders, the org's
// checklists (latest version of each) and tier policies, and the outlets near the rep's fix. From
// the server when online, each answer kept on the phone; offline (or when the network fails), the
// copies kept here, and no request leaves the page.
import { KEYS, get, online, read, state, write } from './context.js';
import { latestChecklists } from './checklist.js';
import { localDate, movedFar } from './logic.js';

/** Who the phone is and today's plan: from the server when online, else the copies kept here. */
export async function loadDay() {
  const rep = read(KEYS.rep);
  if (online()) {
    try {
      const me = await get('/me');
      const date = localDate(new Date(), me.org?.timezone);
      const plan = await get(`/reps/${me.rep_id}/plan?date=${date}`);
      const checkins = await get(`/reps/${me.rep_id}/checkins?from=${date}`).catch(() => []);
      write(KEYS.me, me);
      write(KEYS.plan, plan);
      write(KEYS.checkins, checkins);
      write(KEYS.rep, { ...rep, id: me.rep_id, name: me.rep?.name ?? rep?.name, device_id: me.device_id });
      Object.assign(state, { me, plan, serverCheckins: checkins, fromPhone: false });
      return;
    } catch (e) {
      if (e.signedOut) throw e;
      // The network failed: fall back to what the phone kept.
    }
  }
  Object.assign(state, { me: read(KEYS.me), plan: read(KEYS.plan), serverCheckins: read(KEYS.checkins, []), fromPhone: true });
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
  state.checklists = latestChecklists(Array.isArray(checklists) ? checklists : checklists?.items ?? []);
  state.tiers = Array.isArray(tiers) ? tiers : tiers?.items ?? [];
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
