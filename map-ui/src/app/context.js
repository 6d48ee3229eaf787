// What the views of the reps' app share: the phone's storage (the day's data kept for offline use),
// the API client with the device's token, `state` (globalThis.fieldvisitApp: what the views last
// drew, read by the browser test), a small element builder, and `redraw`, set by main.js.
import { createApi } from '../common/api.js';
import { t } from '../common/i18n.js';

export const store = globalThis.localStorage;

/** The localStorage keys of what the phone keeps. */
export const KEYS = {
  token: 'fv.app.token', rep: 'fv.app.rep', me: 'fv.app.me', plan: 'fv.app.plan', checkins: 'fv.app.checkins',
  visits: 'fv.app.visits', lang: 'fv.app.lang', reminders: 'fv.app.reminders', nearby: 'fv.app.nearby',
  checklists: 'fv.app.checklists', tiers: 'fv.app.tiers', record: 'fv.app.record',
};

/** Everything the phone keeps of the day, dropped when another phone's token signs in. */
export const DAY_KEYS = [KEYS.me, KEYS.plan, KEYS.checkins, KEYS.reminders, KEYS.nearby, KEYS.checklists, KEYS.tiers, KEYS.record];

export const api = createApi({ storage: store, tokenKey: KEYS.token });

export const read = (key, fallback = null) => { try { return JSON.parse(store.getItem(key)) ?? fallback; } catch { return fallback; } };
export const write = (key, value) => store.setItem(key, JSON.stringify(value));

/**
 * What the page shows, and hooks for the browser test: `plan`, `reminders` (the rep's reminders),
 * `nearby` (outlets near the rep's fix), `checklists` (latest version of each), `record` (my record:
 * visits, compliance, access log, check-ins), `map` (`{ loaded, stops, me }` once the map module
 * drew), `listShownAt` and `mapShownAt` (performance.now() when each was first drawn), `view` (the
 * tab shown), `formErrors` (the checklist form's last check), `outbox`, `waiting`, `refused`.
 */
export const state = {
  ready: false, me: null, plan: null, fromPhone: false, fix: null, fixError: null,
  serverCheckins: [], result: null, waiting: [], refused: [], outbox: null,
  reminders: null, nearby: null, checklists: [], tiers: [], record: null, map: null, formErrors: [],
};
globalThis.fieldvisitApp = state;

export const online = () => navigator.onLine;
export const units = () => ({ m: t('m'), km: 'km' });

/** Redraws the page (main.js sets it); views call it after changing what they show. */
export const view = { redraw: () => {} };

/** An element: `attrs` (`class`, `on<event>` listeners, other attributes), then its children. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children.flat().filter((c) => c != null && c !== false));
  return e;
}

/** `path`'s JSON from the server; a 401 signs the phone out. */
export const get = (path) => answer(api.send(path));

/** The JSON of `response` (a fetch Response or its promise); a 401 signs the phone out. */
export async function answer(response) {
  const res = await response;
  if (res.status === 401) {
    api.signOut();
    // Only the device is remembered: a new link for the same device keeps the phone's check-ins.
    const deviceId = read(KEYS.rep)?.device_id;
    if (deviceId != null) write(KEYS.rep, { device_id: deviceId }); else store.removeItem(KEYS.rep);
    throw Object.assign(new Error('signed out'), { signedOut: true });
  }
  if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status });
  return res.json();
}
