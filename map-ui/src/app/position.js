// The phone's position while the app is open: `navigator.geolocation.watchPosition` into
// `state.fix`, and every 15 s the latest new fix into the outbox as a native ping (`ping-<uuid>`).
import { t } from '../common/i18n.js';
import { distance } from '../common/format.js';
import { $ } from '../common/dom.js';
import { api, state, units } from './context.js';
import { clientId, pingOf } from './logic.js';

const PING_EVERY_MS = 15000;

export function fixOf(p) {
  return { lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: p.coords.accuracy, time: p.timestamp || Date.now() };
}

let lastPinged = 0;

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
    if (!fix || fix.time <= lastPinged || !api.token) return;
    lastPinged = fix.time;
    state.outbox.add({ kind: 'ping', method: 'POST', path: '/pings', body: [pingOf(fix, clientId('ping'))] });
  }, PING_EVERY_MS);
}

export function renderPosition() {
  const f = state.fix;
  $('position').textContent = f
    ? `${t('position')}: ${f.lat.toFixed(5)}, ${f.lon.toFixed(5)} (${t('accuracy')} ±${distance(f.accuracy_m, units())})`
    : `${t('position')}: ${t(state.fixError ? 'no_fix' : 'waiting_fix')}`;
}
