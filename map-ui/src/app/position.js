// The phone's position while the app is open: `navigator.geolocation.watchPosition` into
// `state.fix`, and the latest new fix into the outbox as a native ping (`ping-<uuid>`) every 15 s,
// every 5 s while a check-in is open (the visit the server derives from them needs those fixes).
import { t } from '../common/i18n.js';
import { distance } from '../common/format.js';
import { $ } from '../common/dom.js';
import { api, state, units } from './context.js';
import { clientId, pingDue, pingOf } from './logic.js';
import { openVisit } from './checkin.js';

export function fixOf(p) {
  return { lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: p.coords.accuracy, time: p.timestamp || Date.now() };
}

let lastPinged = 0;
let lastSentAt = 0;

/** Watches the phone's position (`onFix` after each new one) and sends it as pings while open. */
export function watchPosition(onFix) {
  if (!navigator.geolocation) { state.fixError = true; return; }
  navigator.geolocation.watchPosition(
    (p) => { state.fix = fixOf(p); state.fixError = false; onFix(); },
    () => { state.fixError = true; renderPosition(); },
    { enableHighAccuracy: true, maximumAge: 10000 },
  );
  setInterval(() => {
    const fix = state.fix;
    if (!api.token || !pingDue({ fix, lastPinged, lastSentAt, now: Date.now(), checkedIn: openVisit() != null })) return;
    lastPinged = fix.time;
    lastSentAt = Date.now();
    state.outbox.add({ kind: 'ping', method: 'POST', path: '/pings', body: [pingOf(fix, clientId('ping'))] });
  }, 1000);
}

export function renderPosition() {
  const f = state.fix;
  $('position').textContent = f
    ? `${t('position')}: ${f.lat.toFixed(5)}, ${f.lon.toFixed(5)} (${t('accuracy')} ±${distance(f.accuracy_m, units())})`
    : `${t('position')}: ${t(state.fixError ? 'no_fix' : 'waiting_fix')}`;
}
