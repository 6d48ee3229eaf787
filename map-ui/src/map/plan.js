// The plan-vs-actual table of a rep's day: each planned stop in route order with its outcome and
// the actual order of the visit that answered it, then the unplanned visits.
import { esc } from '../common/text.js';
import { hourMinute } from '../common/format.js';
import { locale, t } from '../common/i18n.js';
import { $ } from '../common/dom.js';
import { state } from './context.js';
import { showEvidence } from './evidence.js';

/** Length of the longest increasing run of `xs` (not necessarily adjacent): the stops done in planned order. */
export function increasingRun(xs) {
  const tails = [];
  for (const x of xs) {
    let lo = 0, hi = tails.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (tails[mid] < x) lo = mid + 1; else hi = mid; }
    tails[lo] = x;
  }
  return tails.length;
}

/**
 * The day's plan beside what happened. `stops` are the planned visits in route order, `results`
 * the compliance's planned visits (outcome and answering visit), `visits` the day's visits by id
 * (each with its `order` of arrival). A stop without a result was missed.
 */
export function planVsActual(stops, results, visits) {
  const byPlanned = new Map(results.map((r) => [r.planned_visit_id, r]));
  const answered = new Set();
  const rows = stops.map((p, i) => {
    const r = byPlanned.get(p.planned_visit_id);
    const v = r?.visit_id != null ? visits.get(r.visit_id) : null;
    if (v) answered.add(v.id);
    return { planned: i + 1, outlet: `${p.outlet_code} ${p.outlet_name}`, window: [p.window_start, p.window_end], outcome: r?.outcome ?? 'missed', visit: v };
  });
  const unplanned = [...visits.values()].filter((v) => !answered.has(v.id))
    .map((v) => ({ planned: null, outlet: `${v.outlet_code} ${v.outlet_name}`, window: [null, null], outcome: 'unplanned', visit: v }));
  const actual = rows.filter((r) => r.visit).map((r) => r.visit.order);
  return { rows: [...rows, ...unplanned], inOrder: increasingRun(actual), matched: actual.length, planned: stops.length };
}

/** The table of `state.plan`; a row with a visit opens its evidence. */
export function renderPlan() {
  const p = state.plan;
  if (!p || (p.rows.length === 0)) { $('plan').innerHTML = ''; return; }
  const time = (x) => hourMinute(x, locale());
  const body = p.rows.map((r) => `<tr data-outcome="${r.outcome}"${r.visit ? ` data-visit="${r.visit.id}" tabindex="0"` : ''}>
      <td data-col="planned">${r.planned ?? '–'}</td><td data-col="actual">${r.visit?.order ?? '–'}</td>
      <td>${esc(r.outlet)}${r.window[0] || r.window[1] ? `<br><small>${time(r.window[0])}–${time(r.window[1])}</small>` : ''}</td>
      <td data-col="outcome">${esc(t(r.outcome))}${r.visit ? `<br><small>${time(r.visit.arrival)}</small>` : ''}</td></tr>`).join('');
  $('plan').innerHTML = `<p data-testid="plan-order">${t('in_planned_order')}: ${p.inOrder} / ${p.planned}</p>
    <table><thead><tr><th>${t('planned_no')}</th><th>${t('actual_no')}</th><th>${t('outlet')}</th><th>${t('outcome')}</th></tr></thead><tbody>${body}</tbody></table>`;
  $('plan').querySelectorAll('tr[data-visit]').forEach((tr) => {
    const open = () => showEvidence(Number(tr.dataset.visit));
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
  });
}
