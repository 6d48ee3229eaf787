// My record: today's and this month's visits with their verdict and the reason in words (reason.js,
// from the evidence the server stored), plan compliance of today and of the month, the check-ins of
// the day with their status, who has looked at my track (the access log), and a dispute with a
// reason (`POST /visits/{id}/reviews`, sent at once: it needs the network).
import { locale, t } from '../common/i18n.js';
import { dateTime, hourMinute, pct } from '../common/format.js';
import { $ } from '../common/dom.js';
import { KEYS, api, el, get, online, read, state, write } from './context.js';
import { fill, monthStart } from './logic.js';
import { visitReason } from './reason.js';
import { visits as phoneCheckins } from './checkin.js';

/** Loads the record (the month's visits, compliance, access log) or, offline, the copy kept. */
export async function loadRecord() {
  const repId = state.me?.rep_id;
  const date = state.plan?.date;
  const kept = read(KEYS.record, null);
  if (!repId || !date) { state.record = kept; return; }
  if (!online()) { state.record = kept ? { ...kept, fromPhone: true } : null; return; }
  try {
    const from = monthStart(date);
    const [v, compliance, access] = await Promise.all([
      get(`/reps/${repId}/visits?from=${from}&to=${date}`),
      get(`/reps/${repId}/compliance?from=${from}&to=${date}`).catch(() => null),
      get(`/access-log?rep_id=${repId}&limit=20`).catch(() => null),
    ]);
    state.record = { date, visits: v.visits ?? [], compliance, access: access?.items ?? [], disputes: kept?.disputes ?? {}, loaded_at: new Date().toISOString() };
    write(KEYS.record, state.record);
  } catch (e) {
    if (e.signedOut) throw e;
    state.record = kept ? { ...kept, fromPhone: true } : null;
  }
}

/** The minimum stay of a visit's outlet, when the app knows its tier's policy. */
function minDwellOf(v) {
  const tiers = state.tiers ?? [];
  if (!tiers.length) return null;
  const known = [...(state.nearby?.items ?? []), ...(state.reminders?.outlets ?? [])];
  const tier = known.find((o) => (o.id ?? o.outlet_id) === v.outlet_id)?.tier;
  const policy = tiers.find((p) => p.tier === tier);
  if (policy) return policy.min_dwell_s;
  const all = new Set(tiers.map((p) => p.min_dwell_s));
  return all.size === 1 ? [...all][0] : null;
}

/** Disputes visit `v` with the reason typed in `form`. */
async function dispute(v, form) {
  const reason = form.querySelector('textarea').value.trim();
  const out = form.querySelector('.form-status');
  if (!reason) { out.textContent = t('reason_needed'); return; }
  if (!online()) { out.textContent = t('dispute_online'); return; }
  const button = form.querySelector('button');
  button.disabled = true;
  try {
    const review = await api.request(`/visits/${v.id}/reviews`, { method: 'POST', json: { decision: 'disputed', reason } });
    state.record.disputes = { ...(state.record.disputes ?? {}), [v.id]: { id: review.id, reason: review.reason, at: review.created_at } };
    write(KEYS.record, state.record);
    renderRecord();
  } catch (e) {
    button.disabled = false;
    out.textContent = `${t('refused')}: ${e.status ?? ''} ${e.message}`;
  }
}

function visitCard(v) {
  const tz = state.me?.org?.timezone;
  const disputed = state.record?.disputes?.[v.id];
  const form = el('form', { class: 'dispute', hidden: true, onsubmit: (e) => { e.preventDefault(); dispute(v, e.currentTarget); } },
    el('label', {}, t('dispute_reason'), el('textarea', { name: 'reason', rows: 2, maxlength: 2000 })),
    el('button', { type: 'submit', class: 'primary', 'data-action': 'send-dispute' }, t('send_dispute')),
    el('p', { class: 'form-status error', role: 'status' }));
  return el('li', { class: `card visit verdict-${v.verdict}`, 'data-visit': v.id, 'data-verdict': v.verdict, 'data-testid': 'visit' },
    el('div', {},
      el('div', { class: 'name' }, `${v.outlet_code} ${v.outlet_name}`),
      el('div', { class: 'meta' }, `${v.rep_day} ${hourMinute(v.arrival, locale(), tz)}–${hourMinute(v.departure, locale(), tz)}`),
      el('p', { class: 'reason', 'data-testid': 'reason' }, visitReason(v, { t, minDwellS: minDwellOf(v) })),
      disputed
        ? el('p', { class: 'disputed', 'data-testid': 'disputed' }, `${t('disputed')}: ${disputed.reason}`)
        : [el('button', { type: 'button', class: 'secondary', 'data-action': 'dispute', onclick: () => { form.hidden = !form.hidden; } }, t('dispute')), form]));
}

function figures(f) {
  if (!f) return [el('dd', {}, t('none'))];
  const rows = [
    ['planned', f.planned], ['done', f.done], ['late', f.late], ['short', f.short], ['missed', f.missed],
    ['plan_compliance', pct(f.plan_compliance_pct)], ['verified_rate', pct(f.verified_rate_pct)],
  ];
  return rows.flatMap(([k, v]) => [el('dt', {}, t(`fig_${k}`)), el('dd', { 'data-key': k }, String(v ?? '–'))]);
}

function checkinCard(c) {
  const tz = state.me?.org?.timezone;
  const unlinked = c.evidence_unlinked === true;
  return el('li', { class: 'card', 'data-checkin': c.client_id, 'data-status': c.status, 'data-testid': 'record-checkin' },
    el('div', {},
      el('div', { class: 'name' }, c.outlet_name ?? `#${c.outlet_id}`),
      el('div', { class: 'meta' }, `${hourMinute(c.checked_in_at, locale(), tz)}${c.checked_out_at ? `–${hourMinute(c.checked_out_at, locale(), tz)}` : ''}`),
      el('span', { class: `badge status-${c.status}` }, t(`status_${c.status}`)),
      unlinked ? el('p', { class: 'notice', 'data-testid': 'evidence-unlinked' }, t('evidence_unlinked')) : null));
}

/** The day's check-ins: the server's (with their status) and those of this phone still on the way. */
function checkinsOfDay() {
  const date = state.plan?.date;
  const names = new Map((state.plan?.visits ?? []).map((s) => [s.outlet_id, s.outlet_name]));
  for (const o of state.nearby?.items ?? []) names.set(o.id, o.name);
  const server = (state.serverCheckins ?? []).map((c) => ({ ...c, outlet_name: names.get(c.outlet_id) }));
  const known = new Set(server.map((c) => c.client_id));
  const phone = phoneCheckins().filter((v) => v.date === date && !known.has(v.client_id)).map((v) => ({
    client_id: v.client_id, outlet_id: v.outlet_id, outlet_name: v.outlet_name, checked_in_at: v.body.checked_in_at,
    checked_out_at: v.body.checked_out_at, status: v.refused ? 'refused' : v.answer?.status ?? 'waiting',
  }));
  return [...server, ...phone].sort((a, b) => a.checked_in_at.localeCompare(b.checked_in_at));
}

export function renderRecord() {
  const r = state.record;
  const date = state.plan?.date;
  $('record-saved').hidden = !r?.fromPhone;
  $('record-saved').textContent = r?.loaded_at ? fill(t('record_saved'), { at: dateTime(r.loaded_at, locale()) }) : '';
  const days = r?.compliance?.days ?? [];
  $('compliance').replaceChildren(
    el('dt', { class: 'group' }, t('today')), el('dd', { class: 'group' }),
    ...figures(days.find((d) => d.day === date)),
    el('dt', { class: 'group' }, t('this_month')), el('dd', { class: 'group' }),
    ...figures(r?.compliance?.totals),
  );
  const cs = checkinsOfDay();
  $('record-checkins').replaceChildren(...(cs.length ? cs.map(checkinCard) : [el('li', { class: 'muted' }, t('no_checkins'))]));
  const all = r?.visits ?? [];
  const today = all.filter((v) => v.rep_day === date);
  const month = all.filter((v) => v.rep_day !== date).reverse().slice(0, 60);
  const empty = (key) => [el('li', { class: 'muted' }, t(r ? key : (online() ? 'loading' : 'not_kept')))];
  $('visits-today').replaceChildren(...(today.length ? today.map(visitCard) : empty('no_visits')));
  $('visits-month').replaceChildren(...(month.length ? month.map(visitCard) : empty('no_visits')));
  const access = r?.access ?? [];
  $('access').replaceChildren(...(access.length
    ? access.map((a) => el('li', { class: 'card', 'data-testid': 'access-entry' }, `${dateTime(a.at, locale(), state.me?.org?.timezone)} · ${a.reader_login} · ${t(`what_${a.what}`)}`))
    : empty('no_access')));
}
