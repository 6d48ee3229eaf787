// Today: the planned stops in route order with their state (done, pending, late, missed), the
// distance from the rep and a link that opens the phone's maps app there; the next stop with its
// distance; the rep's reminders (problem found, never visited, overdue, due); and the outlets near
// the rep's fix, where an unplanned check-in is allowed too.
import { locale, t } from '../common/i18n.js';
import { distance } from '../common/format.js';
import { $ } from '../common/dom.js';
import { el, state, units } from './context.js';
import { distanceM, geoLink, localDate, nextStop, reminderUrgency, stopState } from './logic.js';
import { actionFor, checkedIn } from './checkin.js';

function windowText(s) {
  if (!s.window_start && !s.window_end) return null;
  const tz = state.me?.org?.timezone;
  const fmt = (v) => (v ? new Date(v).toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit', timeZone: tz }) : '…');
  return `${t('window')} ${fmt(s.window_start)}–${fmt(s.window_end)}`;
}

const away = (p) => (state.fix ? `${distance(distanceM(state.fix, p), units())} ${t('away')}` : null);

/** A link to the phone's maps app at an outlet. */
function mapsLink(p, name) {
  return el('a', { class: 'maps', href: geoLink({ lat: p.lat, lon: p.lon, name }), 'data-testid': 'maps-link' }, t('open_maps'));
}

/** The day's planned stops in route order, each with its state (also kept in `state.stops`). */
export function stopsOfDay() {
  const plan = state.plan;
  if (!plan) return [];
  const today = localDate(new Date(), state.me?.org?.timezone);
  return [...plan.visits].sort((a, b) => a.seq - b.seq)
    .map((s) => ({ ...s, state: stopState(s, { checkedIn: checkedIn(s.outlet_id, plan.date), dayOver: plan.date < today }) }));
}

export function renderStops() {
  const list = $('stops');
  if (!state.plan) { list.replaceChildren(); return; }
  const stops = stopsOfDay();
  state.stops = stops;
  const next = nextStop(stops);
  list.replaceChildren(...stops.map((s) => {
    const meta = [s.outlet_code, s.address, windowText(s), away(s)].filter(Boolean).join(' · ');
    return el('li', { class: `stop${next?.outlet_id === s.outlet_id ? ' is-next' : ''}`, 'data-outlet': s.outlet_id, 'data-state': s.state, 'data-testid': 'stop' },
      el('span', { class: 'seq' }, String(s.seq)),
      el('div', {},
        el('div', { class: 'name' }, s.outlet_name),
        el('div', { class: 'meta' }, meta),
        el('span', { class: 'badge', 'data-testid': 'state' }, t(`state_${s.state}`)), ' ',
        mapsLink(s, s.outlet_name)),
      actionFor({ ...s, planned: true }));
  }));
  $('no-stops').hidden = state.plan.visits.length > 0;
  renderNext(next);
}

function renderNext(next) {
  const box = $('next');
  box.hidden = !state.plan;
  if (!next) {
    box.dataset.outlet = '';
    box.replaceChildren(el('p', {}, t(state.plan?.visits.length ? 'all_done' : 'no_stops')));
    return;
  }
  box.dataset.outlet = String(next.outlet_id);
  box.replaceChildren(
    el('p', {}, el('strong', {}, `${t('next_stop')}: ${next.seq}. ${next.outlet_name}`), ' ',
      el('span', { class: 'badge' }, t(`state_${next.state}`))),
    el('p', { class: 'meta' }, [away(next), windowText(next)].filter(Boolean).join(' · ') || t('waiting_fix')),
    mapsLink(next, next.outlet_name),
  );
}

const REASONS = ['problem', 'never_visited', 'overdue', 'due'];

export function renderReminders() {
  const list = $('reminders');
  const r = state.reminders;
  if (!r) { list.replaceChildren(el('li', { class: 'muted' }, t(navigator.onLine ? 'loading' : 'not_kept'))); return; }
  const items = r.outlets ?? [];
  if (!items.length) { list.replaceChildren(el('li', { class: 'muted' }, t('no_reminders'))); return; }
  list.replaceChildren(...items.slice(0, 20).map((o) => {
    const reasons = REASONS.filter((k) => o.reasons?.includes(k));
    const since = o.days_since == null ? t('never_visited') : `${t('last_visit')} ${o.last_valid_visit} (${o.days_since} ${t('days')})`;
    return el('li', { class: `card ${reminderUrgency(o.reasons)}`, 'data-outlet': o.outlet_id, 'data-testid': 'reminder' },
      el('div', {}, el('div', { class: 'name' }, `${o.code} ${o.name}`),
        el('div', { class: 'meta' }, [since, o.due_on ? `${t('due_on')} ${o.due_on}` : null, away(o)].filter(Boolean).join(' · ')),
        ...reasons.map((k) => el('span', { class: `badge reason-${k}`, 'data-reason': k }, t(`reason_${k}`)))),
      mapsLink(o, o.name));
  }));
}

export function renderNearby() {
  const list = $('nearby');
  const n = state.nearby;
  if (!n) { list.replaceChildren(el('li', { class: 'muted' }, t(state.fix ? 'loading' : 'waiting_fix'))); return; }
  const planned = new Set((state.plan?.visits ?? []).map((s) => s.outlet_id));
  const items = n.items ?? [];
  if (!items.length) { list.replaceChildren(el('li', { class: 'muted' }, t('no_nearby'))); return; }
  list.replaceChildren(...items.map((o) => {
    const stop = { outlet_id: o.id, outlet_name: o.name, lat: o.lat, lon: o.lon, planned: planned.has(o.id) };
    return el('li', { class: 'card', 'data-outlet': o.id, 'data-testid': 'nearby-outlet' },
      el('div', {}, el('div', { class: 'name' }, `${o.code} ${o.name}`),
        el('div', { class: 'meta' }, [`${t('tier')} ${o.tier}`, away(o), planned.has(o.id) ? t('planned') : t('unplanned')].join(' · ')),
        mapsLink(o, o.name)),
      state.plan ? actionFor(stop) : null);
  }));
}
