// Enrolment: the manager's one-time link (`#enrol=<code>`) exchanged for the device's token, or the
// page that asks the rep to open it.
import { t } from '../common/i18n.js';
import { $ } from '../common/dom.js';
import { DAY_KEYS, KEYS, api, read, state, store, write } from './context.js';

/** Redeems the one-time `code`; true when the phone is signed in with it. */
export async function enrol(code) {
  // The code works once: out of the address bar (and history) before anything else.
  history.replaceState(null, '', location.pathname + location.search);
  $('enrol').hidden = false;
  $('enrol-text').textContent = t('enrolling');
  state.enrolKey = 'enrolling';
  try {
    const res = await fetch('/api/v1/enrolments/redeem', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }),
    });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error(body?.detail || body?.title || `HTTP ${res.status}`);
    api.signIn(body.token);
    // Signed in as another device: this phone's check-ins of the old one are not the new one's.
    if (read(KEYS.rep)?.device_id !== body.device_id) store.removeItem(KEYS.visits);
    // The service worker's copies of the day's answers were the old sign-in's.
    await globalThis.caches?.delete('fv-app-data').catch(() => {});
    write(KEYS.rep, { id: body.rep_id, name: body.rep_name, device_id: body.device_id, org_id: body.org_id });
    for (const k of DAY_KEYS) store.removeItem(k);
    return true;
  } catch (e) {
    state.enrolKey = api.token ? null : 'not_enrolled';
    $('enrol-text').textContent = api.token ? '' : t('not_enrolled');
    $('enrol-error').textContent = `${t('enrol_failed')} ${e.message}`;
    return false;
  }
}

/** Shows the enrolment page with `textKey`'s text (no token, or signed out). */
export function showEnrol(textKey = 'not_enrolled') {
  state.enrolKey = textKey;
  $('today').hidden = true;
  $('record').hidden = true;
  $('tabs').hidden = true;
  $('enrol').hidden = false;
  $('enrol-text').textContent = t(textKey);
}
