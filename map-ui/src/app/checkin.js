// Check-in and check-out at an outlet (a planned stop or one nearby): a precise fix, the check-in
// kept on the phone and put in the outbox (`PUT /checkins/{client_id}`), the server's answer (or the
// offline estimate) shown, and the check-ins of this phone for the other views.
import { t } from '../common/i18n.js';
import { distance } from '../common/format.js';
import { $ } from '../common/dom.js';
import { KEYS, el, read, state, units, view, write } from './context.js';
import { clientId, estimate, localDate } from './logic.js';
import { fixOf } from './position.js';

/** The check-ins made on this phone: `{ client_id, outlet_id, date, body, answer?, refused?, out?, photos?, answers? }`. */
export const visits = () => read(KEYS.visits, []);

export function saveVisit(v) {
  const all = visits().filter((x) => x.client_id !== v.client_id);
  all.push(v);
  write(KEYS.visits, all.slice(-200));
}

/** This phone's latest check-in at the outlet on `date` that the server did not refuse. */
export function visitAt(outletId, date) {
  return visits().filter((v) => v.outlet_id === outletId && v.date === date && !v.refused).at(-1) ?? null;
}

/** The check-in still open (not checked out) on this phone today, the latest one. */
export function openVisit() {
  const date = state.plan?.date;
  return visits().filter((v) => v.date === date && !v.refused && !v.out).at(-1) ?? null;
}

export function checkedIn(outletId, date) {
  return visitAt(outletId, date) != null
    || state.serverCheckins.some((c) => c.outlet_id === outletId && localDate(new Date(c.checked_in_at), state.me?.org?.timezone) === date);
}

/** A precise fix for a check-in (the last one watched when none comes in time). */
function preciseFix() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) { resolve(state.fix); return; }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve(fixOf(p)),
      () => resolve(state.fix),
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 5000 },
    );
  });
}

/** Checks in at `stop` (`{ outlet_id, outlet_name, lat, lon }`): planned or not. */
export async function checkIn(stop, button) {
  button.disabled = true;
  showResult({ text: t('locating') });
  const fix = await preciseFix();
  button.disabled = false;
  if (!fix) { showResult({ text: t('no_fix'), away: true }); return; }
  const id = clientId('app');
  const body = { outlet_id: stop.outlet_id, checked_in_at: new Date().toISOString(), lat: fix.lat, lon: fix.lon, ...(fix.accuracy_m > 0 ? { accuracy_m: fix.accuracy_m } : {}) };
  const visit = { client_id: id, outlet_id: stop.outlet_id, outlet_name: stop.outlet_name, date: state.plan.date, body, estimate: estimate(fix, stop), planned: !!stop.planned };
  saveVisit(visit);
  state.result = id;
  view.redraw();
  await state.outbox.add({ kind: 'checkin', method: 'PUT', path: `/checkins/${id}`, body, client_id: id, label: stop.outlet_name });
}

export async function checkOut(stop, button) {
  const visit = visitAt(stop.outlet_id, state.plan.date);
  if (!visit) return;
  button.disabled = true;
  const fix = await preciseFix();
  button.disabled = false;
  const out = { checked_out_at: new Date().toISOString(), ...(fix ? { out_lat: fix.lat, out_lon: fix.lon, ...(fix.accuracy_m > 0 ? { out_accuracy_m: fix.accuracy_m } : {}) } : {}) };
  const body = { ...visit.body, ...out };
  // Read again after waiting for the fix: the outbox may have recorded the server's answer or sent
  // evidence meanwhile.
  const current = visits().find((v) => v.client_id === visit.client_id) ?? visit;
  saveVisit({ ...current, body, out: true });
  state.result = visit.client_id;
  view.redraw();
  await state.outbox.add({ kind: 'checkout', method: 'PUT', path: `/checkins/${visit.client_id}`, body, client_id: visit.client_id, label: stop.outlet_name });
}

/** The check-in, check-out or "checked out" control of an outlet today. */
export function actionFor(stop) {
  const visit = visitAt(stop.outlet_id, state.plan.date);
  if (visit && !visit.out) return el('button', { type: 'button', class: 'checkout', 'data-action': 'checkout', onclick: (e) => checkOut(stop, e.currentTarget) }, t('check_out'));
  if (visit?.out) return el('span', { class: 'muted' }, t('checked_out'));
  return el('button', { type: 'button', class: 'checkin', 'data-action': 'checkin', onclick: (e) => checkIn(stop, e.currentTarget) }, t('check_in'));
}

/** An answer of the outbox about a check-in: the server's verdict (or refusal) is kept with it. */
export function onCheckinResult(item, outcome, { status, body }) {
  if (!item.client_id || outcome === 'retry' || (item.kind !== 'checkin' && item.kind !== 'checkout')) return;
  const v = visits().find((x) => x.client_id === item.client_id);
  if (!v) return;
  if (outcome === 'sent') saveVisit({ ...v, answer: body });
  else saveVisit({ ...v, refused: { status, detail: body?.detail || body?.title || '' } });
  view.redraw();
}

export function showResult({ text, away = false }) {
  const box = $('result');
  box.hidden = false;
  box.className = away ? 'away' : '';
  box.replaceChildren(el('p', {}, text));
}

export function renderResult() {
  const v = state.result && visits().find((x) => x.client_id === state.result);
  if (!v) return;
  const box = $('result');
  box.hidden = false;
  const kind = t(v.out ? 'kind_checkout' : 'kind_checkin');
  if (v.refused) {
    box.className = 'away';
    box.dataset.outcome = 'refused';
    box.replaceChildren(el('p', {}, `${kind} · ${v.outlet_name}: ${t('refused')} (${v.refused.status}) ${v.refused.detail}`));
  } else if (v.answer) {
    const a = v.answer;
    box.className = a.at_outlet ? 'at' : 'away';
    box.dataset.outcome = a.at_outlet ? 'at_outlet' : 'not_at_outlet';
    box.replaceChildren(
      el('p', {}, el('strong', {}, `${kind} · ${v.outlet_name}: ${t(a.at_outlet ? 'at_outlet' : 'not_at_outlet')}`)),
      el('p', {}, `${t('distance')} ${distance(a.distance_m, units())} (${t('allowance')} ${distance(a.allowance_m, units())}) · ${t(`status_${a.status}`)}`),
    );
  } else {
    const e = v.estimate;
    box.className = e.likely_at_outlet ? 'at' : 'away';
    box.dataset.outcome = 'to_confirm';
    box.replaceChildren(
      el('p', {}, el('strong', {}, `${kind} · ${v.outlet_name}: ${t(e.likely_at_outlet ? 'likely_at' : 'likely_not')}`)),
      el('p', {}, `${t('distance')} ≈ ${distance(e.distance_m, units())}. ${t('to_confirm')}`),
    );
  }
}
