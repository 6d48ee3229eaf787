// The reps' app (served at /app/): enrolment from the manager's link, today's planned stops in route
// order with their state and the distance from the rep, check-in and check-out at a stop, the
// phone's position sent while the app is open, and an outbox that keeps every write until the
// server has it (see outbox.js). Works offline after the first visit (see sw.js).
import { createApi } from '../common/api.js';
import { initLanguage, languageSwitch, locale, register, t } from '../common/i18n.js';
import { distance } from '../common/format.js';
import { $ } from '../common/dom.js';
import { APP_STRINGS } from './strings.js';
import { clientId, enrolCode, estimate, distanceM, localDate, pingOf, stopState } from './logic.js';
import { createOutbox } from './outbox.js';

register(APP_STRINGS);
const store = globalThis.localStorage;
const KEYS = { token: 'fv.app.token', rep: 'fv.app.rep', me: 'fv.app.me', plan: 'fv.app.plan', checkins: 'fv.app.checkins', visits: 'fv.app.visits', lang: 'fv.app.lang' };
const PING_EVERY_MS = 15000;
initLanguage({ storage: store, key: KEYS.lang });

const api = createApi({ storage: store, tokenKey: KEYS.token });
const read = (key, fallback = null) => { try { return JSON.parse(store.getItem(key)) ?? fallback; } catch { return fallback; } };
const write = (key, value) => store.setItem(key, JSON.stringify(value));

/** What the page shows, and hooks for the browser test. */
const state = {
  ready: false, me: null, plan: null, fromPhone: false, fix: null, fixError: null,
  serverCheckins: [], result: null, waiting: [], refused: [], outbox: null,
};
globalThis.fieldvisitApp = state;

const online = () => navigator.onLine;
const units = () => ({ m: t('m'), km: 'km' });

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children.filter((c) => c != null));
  return e;
}

// ---- enrolment -------------------------------------------------------------------------------

async function enrol(code) {
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
    write(KEYS.rep, { id: body.rep_id, name: body.rep_name, device_id: body.device_id, org_id: body.org_id });
    for (const k of [KEYS.me, KEYS.plan, KEYS.checkins]) store.removeItem(k);
    return true;
  } catch (e) {
    state.enrolKey = api.token ? null : 'not_enrolled';
    $('enrol-text').textContent = api.token ? '' : t('not_enrolled');
    $('enrol-error').textContent = `${t('enrol_failed')} ${e.message}`;
    return false;
  }
}

function showEnrol(textKey = 'not_enrolled') {
  state.enrolKey = textKey;
  $('today').hidden = true;
  $('enrol').hidden = false;
  $('enrol-text').textContent = t(textKey);
}

// ---- the day's data --------------------------------------------------------------------------

/** `path`'s JSON from the server; a 401 signs the phone out. */
async function get(path) {
  const res = await api.send(path);
  if (res.status === 401) {
    api.signOut();
    store.removeItem(KEYS.rep);
    throw Object.assign(new Error('signed out'), { signedOut: true });
  }
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

/** Who the phone is and today's plan: from the server when online, else the copies kept here. */
async function loadDay() {
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

// ---- check-ins made on this phone ------------------------------------------------------------

/** The check-ins made on this phone: `{ client_id, outlet_id, date, body, answer?, refused?, out? }`. */
const visits = () => read(KEYS.visits, []);
function saveVisit(v) {
  const all = visits().filter((x) => x.client_id !== v.client_id);
  all.push(v);
  write(KEYS.visits, all.slice(-200));
}

function visitAt(outletId, date) {
  return visits().filter((v) => v.outlet_id === outletId && v.date === date && !v.refused).at(-1) ?? null;
}

function checkedIn(outletId, date) {
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

async function checkIn(stop, button) {
  button.disabled = true;
  showResult({ text: t('locating') });
  const fix = await preciseFix();
  button.disabled = false;
  if (!fix) { showResult({ text: t('no_fix'), away: true }); return; }
  const id = clientId('app');
  const body = { outlet_id: stop.outlet_id, checked_in_at: new Date().toISOString(), lat: fix.lat, lon: fix.lon, ...(fix.accuracy_m > 0 ? { accuracy_m: fix.accuracy_m } : {}) };
  const visit = { client_id: id, outlet_id: stop.outlet_id, outlet_name: stop.outlet_name, date: state.plan.date, body, estimate: estimate(fix, stop) };
  saveVisit(visit);
  state.result = id;
  render();
  await state.outbox.add({ kind: 'checkin', method: 'PUT', path: `/checkins/${id}`, body, client_id: id, label: stop.outlet_name });
}

async function checkOut(stop, button) {
  const visit = visitAt(stop.outlet_id, state.plan.date);
  if (!visit) return;
  button.disabled = true;
  const fix = await preciseFix();
  button.disabled = false;
  const out = { checked_out_at: new Date().toISOString(), ...(fix ? { out_lat: fix.lat, out_lon: fix.lon, ...(fix.accuracy_m > 0 ? { out_accuracy_m: fix.accuracy_m } : {}) } : {}) };
  const body = { ...visit.body, ...out };
  saveVisit({ ...visit, body, out: true });
  state.result = visit.client_id;
  render();
  await state.outbox.add({ kind: 'checkout', method: 'PUT', path: `/checkins/${visit.client_id}`, body, client_id: visit.client_id, label: stop.outlet_name });
}

/** An answer of the outbox: the server's verdict on a check-in is kept with it. */
function onResult(item, outcome, { status, body }) {
  if (!item.client_id || outcome === 'retry') return;
  const v = visits().find((x) => x.client_id === item.client_id);
  if (!v) return;
  if (outcome === 'sent') saveVisit({ ...v, answer: body });
  else saveVisit({ ...v, refused: { status, detail: body?.detail || body?.title || '' } });
  render();
}

// ---- positions while open --------------------------------------------------------------------

function fixOf(p) {
  return { lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: p.coords.accuracy, time: p.timestamp || Date.now() };
}

let lastPinged = 0;
function watchPosition() {
  if (!navigator.geolocation) { state.fixError = true; return; }
  navigator.geolocation.watchPosition(
    (p) => { state.fix = fixOf(p); state.fixError = false; renderPosition(); renderStops(); },
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

// ---- drawing ---------------------------------------------------------------------------------

function showResult({ text, away = false }) {
  const box = $('result');
  box.hidden = false;
  box.className = away ? 'away' : '';
  box.replaceChildren(el('p', {}, text));
}

function renderResult() {
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

function renderPosition() {
  const f = state.fix;
  $('position').textContent = f
    ? `${t('position')}: ${f.lat.toFixed(5)}, ${f.lon.toFixed(5)} (${t('accuracy')} ±${distance(f.accuracy_m, units())})`
    : `${t('position')}: ${t(state.fixError ? 'no_fix' : 'waiting_fix')}`;
}

function windowText(s) {
  if (!s.window_start && !s.window_end) return null;
  const tz = state.me?.org?.timezone;
  const fmt = (v) => (v ? new Date(v).toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit', timeZone: tz }) : '…');
  return `${t('window')} ${fmt(s.window_start)}–${fmt(s.window_end)}`;
}

function renderStops() {
  const plan = state.plan;
  const list = $('stops');
  if (!plan) { list.replaceChildren(); return; }
  const today = localDate(new Date(), state.me?.org?.timezone);
  const items = [...plan.visits].sort((a, b) => a.seq - b.seq).map((s) => {
    const done = checkedIn(s.outlet_id, plan.date);
    const st = stopState(s, { checkedIn: done, dayOver: plan.date < today });
    const visit = visitAt(s.outlet_id, plan.date);
    const away = state.fix ? `${distance(distanceM(state.fix, s), units())} ${t('away')}` : null;
    const meta = [s.outlet_code, s.address, windowText(s), away].filter(Boolean).join(' · ');
    let button;
    if (visit && !visit.out) button = el('button', { type: 'button', class: 'checkout', 'data-action': 'checkout', onclick: (e) => checkOut(s, e.currentTarget) }, t('check_out'));
    else if (visit?.out) button = el('span', { class: 'muted' }, t('checked_out'));
    else button = el('button', { type: 'button', class: 'checkin', 'data-action': 'checkin', onclick: (e) => checkIn(s, e.currentTarget) }, t('check_in'));
    return el('li', { class: 'stop', 'data-outlet': s.outlet_id, 'data-state': st, 'data-testid': 'stop' },
      el('span', { class: 'seq' }, String(s.seq)),
      el('div', {},
        el('div', { class: 'name' }, s.outlet_name),
        el('div', { class: 'meta' }, meta),
        el('span', { class: 'badge', 'data-testid': 'state' }, t(`state_${st}`))),
      button);
  });
  list.replaceChildren(...items);
  $('no-stops').hidden = plan.visits.length > 0;
}

function renderOutbox() {
  const kind = (i) => t(`kind_${i.kind}`);
  const time = (iso) => new Date(iso).toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  $('outbox-count').textContent = String(state.waiting.length);
  $('outbox-items').replaceChildren(...(state.waiting.length
    ? state.waiting.slice(0, 20).map((i) => el('li', { 'data-kind': i.kind }, `${kind(i)}${i.label ? ` · ${i.label}` : ''} · ${time(i.created_at)}`))
    : [el('li', { class: 'muted' }, t('outbox_empty'))]));
  $('send-now').hidden = state.waiting.length === 0 || !online();
  $('refused-box').hidden = state.refused.length === 0;
  $('refused').replaceChildren(...state.refused.map((i) => el('li', { 'data-kind': i.kind },
    `${kind(i)}${i.label ? ` · ${i.label}` : ''}: ${i.problem.status} ${i.problem.title} — ${i.problem.detail} `,
    el('button', { type: 'button', onclick: () => state.outbox.dismiss(i.seq) }, t('dismiss')))));
}

function renderNet() {
  const net = $('net');
  net.textContent = t(online() ? 'online' : 'offline');
  net.classList.toggle('off', !online());
}

function render() {
  renderNet();
  if (state.enrolKey && !$('enrol').hidden) $('enrol-text').textContent = t(state.enrolKey);
  if (!state.plan) return;
  const rep = read(KEYS.rep);
  $('rep-name').textContent = state.me?.rep?.name ?? rep?.name ?? '';
  $('date').textContent = `${t('today')} ${state.plan.date}`;
  $('saved').hidden = !state.fromPhone;
  $('saved').textContent = t('plan_saved');
  renderPosition();
  renderStops();
  renderResult();
  renderOutbox();
}

async function refreshOutbox() {
  state.waiting = await state.outbox.waiting();
  state.refused = await state.outbox.refused();
  renderOutbox();
}

// ---- start -----------------------------------------------------------------------------------

async function start() {
  languageSwitch($('lang'), { storage: store, key: KEYS.lang, onChange: render })();
  renderNet();
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js').catch(() => {});
  const code = enrolCode(location.hash);
  if (code && !(await enrol(code)) && !api.token) { state.ready = true; return; }
  if (!api.token) { showEnrol(); state.ready = true; return; }
  state.outbox = await createOutbox({ api, onChange: refreshOutbox, onResult });
  try {
    await loadDay();
  } catch (e) {
    if (e.signedOut) { showEnrol('signed_out'); state.ready = true; return; }
    throw e;
  }
  state.enrolKey = null;
  $('enrol').hidden = true;
  $('today').hidden = false;
  if (!state.plan) {
    $('saved').hidden = false;
    $('saved').textContent = t('loading');
  }
  render();
  await refreshOutbox();
  watchPosition();
  $('send-now').addEventListener('click', () => state.outbox.drain({ now: true }));
  addEventListener('online', async () => {
    renderNet();
    await state.outbox.drain({ now: true });
    await loadDay().catch(() => {});
    render();
  });
  addEventListener('offline', render);
  setInterval(() => state.outbox.drain(), 10000);
  state.outbox.drain();
  state.ready = true;
}

start().catch((e) => {
  console.error(e);
  state.error = String(e);
});
