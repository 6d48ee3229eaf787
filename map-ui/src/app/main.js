// The reps' app (served at /app/): the entry that wires the views. Enrolment (enrol.js); Today
// (today.js: the planned stops, the next one, reminders, outlets nearby; appmap.js: the map, loaded
// after the list); check-in and check-out (checkin.js) and the evidence of an open check-in
// (evidence.js: photos, checklist); My record (record.js); the phone's position and pings
// (position.js); the outbox (outbox.js, outboxview.js). The day's data (day.js) is kept on the
// phone, so the app works offline after the first visit (see sw.js).
import { initLanguage, languageSwitch, register, t } from '../common/i18n.js';
import { $ } from '../common/dom.js';
import { KEYS, api, online, read, state, store, view } from './context.js';
import { APP_STRINGS } from './strings.js';
import { enrolCode, fill, fingerprint, isTodayPlan, nextStop } from './logic.js';
import { createOutbox } from './outbox.js';
import { enrol, showEnrol } from './enrol.js';
import { loadDay, loadExtras, loadNearby, showKeptDay } from './day.js';
import { onCheckinResult, renderResult } from './checkin.js';
import { renderPosition, watchPosition } from './position.js';
import { renderNearby, renderReminders, renderStops } from './today.js';
import { onEvidenceResult, renderEvidence } from './evidence.js';
import { loadRecord, renderRecord } from './record.js';
import { refreshOutbox, renderOutbox } from './outboxview.js';

register(APP_STRINGS);
initLanguage({ storage: store, key: KEYS.lang });

/** The view shown: `today` or `record`. */
let shown = 'today';

function renderNet() {
  const net = $('net');
  net.textContent = t(online() ? 'online' : 'offline');
  net.classList.toggle('off', !online());
}

// ---- the map, after the list ---------------------------------------------------------------------

let mapModule = null;
/** Loads the map module (MapLibre, its own chunk) once the list is drawn, then keeps it up to date. */
async function drawMap() {
  if (!state.plan) return;
  const data = { stops: state.stops ?? [], next: nextStop(state.stops ?? [])?.outlet_id ?? null, me: state.fix, nearby: state.nearby?.items ?? [] };
  if (!mapModule) {
    if (!state.mapLoading) {
      state.mapLoading = import('./appmap.js')
        .then(async (m) => { state.map = await m.showMap($('map'), data); state.mapShownAt = performance.now(); mapModule = m; drawMap(); })
        .catch((e) => { $('map-note').textContent = `${t('map_failed')} ${e.message ?? e}`; state.mapError = String(e); });
    }
    return;
  }
  state.map = mapModule.update(data);
}

function showView(name) {
  shown = name;
  $('today').hidden = name !== 'today';
  $('record').hidden = name !== 'record';
  for (const b of $('tabs').querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.view === name));
  state.view = name;
  if (name !== 'record') return;
  renderRecord();
  // Opened online, the record is asked for again: the visits the server derived since are shown.
  if (online() && state.ready) loadRecord().then(() => { if (shown === 'record') renderRecord(); }).catch(() => {});
}

function render() {
  renderNet();
  if (state.enrolKey && !$('enrol').hidden) $('enrol-text').textContent = t(state.enrolKey);
  if (!state.plan) return;
  const rep = read(KEYS.rep);
  $('rep-name').textContent = state.me?.rep?.name ?? rep?.name ?? '';
  // A plan of another day (kept on the phone, shown offline) is never labelled as today's.
  const today = isTodayPlan(state.plan, state.me?.org?.timezone);
  $('date').textContent = today ? `${t('today')} ${state.plan.date}` : state.plan.date;
  $('saved').hidden = !state.fromPhone && today;
  $('saved').textContent = [state.fromPhone ? t('plan_saved') : null, today ? null : fill(t('plan_other_day'), { date: state.plan.date })]
    .filter(Boolean).join(' ');
  renderPosition();
  renderStops();
  if (!state.listShownAt) state.listShownAt = performance.now();
  renderResult();
  renderEvidence();
  renderReminders();
  renderNearby();
  renderOutbox();
  if (shown === 'record') renderRecord();
  drawMap();
}
view.redraw = render;

/** A new fix: the distances, the outlets nearby (after a move), the map. */
async function onFix() {
  if (!api.token) return; // signed out meanwhile
  renderPosition();
  renderStops();
  if (await loadNearby().catch(() => false)) renderNearby();
  drawMap();
}

/** Everything after the day's list: reminders, checklists, the record, outlets nearby (redrawn when changed). */
async function loadRest() {
  const shown = () => fingerprint([state.reminders, state.checklists, state.tiers, state.record, state.nearby]);
  const before = shown();
  await loadExtras().catch((e) => { if (e.signedOut) throw e; });
  await loadRecord().catch((e) => { if (e.signedOut) throw e; });
  state.nearby = state.nearby ?? read(KEYS.nearby, null);
  if (shown() !== before) render();
}

// ---- start -----------------------------------------------------------------------------------

/** The requests index.html started before app.js arrived (taken once: day.js checks they are this phone's). */
function takeEarly() {
  const early = globalThis.fvEarlyDay ?? null;
  delete globalThis.fvEarlyDay;
  return early;
}

async function start() {
  languageSwitch($('lang'), { storage: store, key: KEYS.lang, onChange: render })();
  renderNet();
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js').catch(() => {});
  const code = enrolCode(location.hash);
  const early = code ? null : takeEarly();
  if (code && !(await enrol(code)) && !api.token) { state.ready = true; return; }
  if (!api.token) { showEnrol(); state.ready = true; return; }
  state.outbox = await createOutbox({
    api, onChange: refreshOutbox, signedInAs: () => read(KEYS.rep)?.device_id ?? null,
    onResult: (item, outcome, answer) => { onCheckinResult(item, outcome, answer); onEvidenceResult(item, outcome, answer); },
  });
  state.enrolKey = null;
  $('enrol').hidden = true;
  $('tabs').hidden = false;
  showView('today');
  for (const b of $('tabs').querySelectorAll('button')) b.addEventListener('click', () => showView(b.dataset.view));
  await refreshOutbox();
  // Offline first: today's plan kept on the phone is drawn at once, the network's answer after it.
  const kept = showKeptDay();
  if (kept === 'today') {
    render();
  } else {
    $('saved').hidden = false;
    $('saved').textContent = t('loading');
  }
  watchPosition(() => { onFix().catch(() => {}); });
  let changed;
  try {
    changed = await loadDay(early);
  } catch (e) {
    if (e.signedOut) { showEnrol('signed_out'); state.ready = true; return; }
    throw e;
  }
  if (changed || kept !== 'today') render();
  $('send-now').addEventListener('click', () => state.outbox.drain({ now: true }));
  addEventListener('online', async () => {
    renderNet();
    await state.outbox.drain({ now: true });
    await loadDay().catch(() => {});
    await loadRest().catch(() => {});
    render();
  });
  addEventListener('offline', render);
  setInterval(() => state.outbox.drain(), 10000);
  state.outbox.drain();
  state.ready = true;
  loadRest().catch((e) => { if (e.signedOut) showEnrol('signed_out'); });
}

start().catch((e) => {
  console.error(e);
  state.error = String(e);
});
