// The summary panel: the figures of the picked territory (or of the signed-in rep) for the period,
// bar charts, and the same rows as a CSV download.
import { csvText, esc } from '../common/text.js';
import { hm, pct } from '../common/format.js';
import { t } from '../common/i18n.js';
import { $, download } from '../common/dom.js';
import { api, ctx, isRep, period, state } from './context.js';
import { STATUSES, STATUS_STYLE, statusImage } from './symbols.js';

/** The summary rows of `s` (`{ rep }` or `{ coverage, compliance }`): [key, shown value]. */
export function summaryRows(s) {
  if (s.rep) {
    const p = s.rep.totals;
    return [
      ['plan_pct', pct(p.plan_compliance_pct)], ['planned', p.planned], ['done', p.done], ['late', p.late],
      ['short', p.short], ['missed', p.missed], ['visit_count', p.visits], ['unplanned', p.unplanned_visits],
      ['time_in_market', hm(p.time_in_market_s)], ['suspect_visits', p.suspect_visits], ['verified_rate', pct(p.verified_rate_pct)],
    ];
  }
  const o = s.coverage.outlets;
  const p = s.compliance?.plan ?? {};
  return [
    ['plan_pct', pct(p.plan_compliance_pct)], ['coverage_pct', pct(o.coverage_pct)],
    ['frequency_pct', pct(o.frequency_compliance_pct)], ['dwell_pct', pct(o.dwell_compliance_pct)],
    ['time_in_market', hm(p.time_in_market_s)], ['suspect_visits', p.suspect_visits ?? '–'],
    ['verified_rate', pct(p.verified_rate_pct)],
    ['active_outlets', o.active_outlets], ['visited_outlets', o.visited_outlets],
    ['white_space', s.coverage.h3?.white_space_cells ?? '–'],
    ...STATUSES.map((k) => [k, s.coverage.status_counts?.[k] ?? 0]),
  ];
}

/** A small horizontal bar chart (SVG): rows of [label, value, max, shown text, colour, icon]; '' without rows. */
export function barChart(id, title, rows) {
  if (!rows.length) return '';
  const w = 260, bar = 14, left = 90;
  const body = rows.map(([label, value, max, text, colour, icon], i) => {
    const y = i * (bar + 4);
    const width = max > 0 ? Math.max(1, (value / max) * (w - left - 50)) : 1;
    return `${icon ? `<image href="${icon}" x="0" y="${y}" width="14" height="14"></image>` : ''}
      <text x="${icon ? 18 : 0}" y="${y + 11}" font-size="11">${esc(label)}</text>
      <rect x="${left}" y="${y}" width="${width}" height="${bar}" fill="${colour}"></rect>
      <text x="${w - 45}" y="${y + 11}" font-size="11">${esc(text)}</text>`;
  }).join('');
  return `<figure data-chart="${id}"><figcaption>${esc(title)}</figcaption><svg width="${w}" height="${rows.length * (bar + 4)}" role="img" aria-label="${esc(title)}">${body}</svg></figure>`;
}

/** What the summary is of: a territory (code and name) or the signed-in rep. */
function summaryScope(s) {
  return s.rep ? ctx.me.user.name : `${s.coverage.code} ${s.coverage.name ?? ''}`.trim();
}

export function renderSummary(s) {
  state.summary = s;
  $('summary-scope').textContent = summaryScope(s);
  $('summary').innerHTML = summaryRows(s).map(([k, v]) => `<dt>${t(k)}</dt><dd data-key="${k}">${esc(v)}</dd>`).join('');
  const cut = (x) => (x.length > 12 ? `${x.slice(0, 11)}…` : x);
  if (s.rep) {
    // Plan compliance per day of the period.
    const days = s.rep.days.filter((d) => d.planned > 0);
    $('chart').innerHTML = barChart('plan-by-day', t('plan_by_day'), days.map((d) => [d.day.slice(5), d.plan_compliance_pct ?? 0, 100, pct(d.plan_compliance_pct), '#0072B2']));
    return;
  }
  const tiers = s.coverage.by_tier ?? [];
  const counts = s.coverage.status_counts ?? {};
  const most = Math.max(0, ...STATUSES.map((k) => counts[k] ?? 0));
  // The reps furthest behind their plan first.
  const reps = (s.compliance?.reps ?? []).filter((r) => r.totals.planned > 0)
    .sort((a, b) => (a.totals.plan_compliance_pct ?? 0) - (b.totals.plan_compliance_pct ?? 0)).slice(0, 10);
  $('chart').innerHTML = [
    barChart('coverage-by-tier', t('coverage_by_tier'), tiers.map((g) => [g.key, g.coverage_pct ?? 0, 100, pct(g.coverage_pct), '#0072B2'])),
    barChart('outlets-by-status', t('outlets_by_status'), STATUSES.map((k) => [t(k), counts[k] ?? 0, most, String(counts[k] ?? 0), STATUS_STYLE[k].color, statusImage(k, 14).toDataURL()])),
    barChart('plan-by-rep', t('plan_by_rep'), reps.map((r) => [cut(r.name), r.totals.plan_compliance_pct ?? 0, 100, pct(r.totals.plan_compliance_pct), '#56B4E9'])),
  ].join('');
}

let summarySeq = 0;

/** Reads and shows the summary of the period (the latest call wins). */
export async function loadSummary() {
  const seq = ++summarySeq;
  if (isRep()) {
    const rep = await api.request(`/reps/${ctx.me.user.id}/compliance?${period()}`);
    if (seq === summarySeq) renderSummary({ rep });
    return;
  }
  const id = $('territory').value || ctx.me.user?.territory_id || state.rootTerritory;
  if (!id) { $('summary').innerHTML = ''; return; }
  const [coverage, compliance] = await Promise.all([
    api.request(`/territories/${id}/coverage?${period()}&h3_res=${$('h3-res').value}`),
    api.request(`/territories/${id}/compliance?${period()}`).catch(() => null),
  ]);
  if (seq === summarySeq) renderSummary({ coverage, compliance });
}

/** The shown summary as a CSV file (the same rows, with its scope and period). */
export function downloadCsv() {
  if (!state.summary) return;
  const scope = state.summary.rep ? [t('rep'), ctx.me.user.login] : [t('territory'), state.summary.coverage.code];
  const lines = [[t('metric'), t('value')], scope, [t('from'), $('from').value], [t('to'), $('to').value],
    ...summaryRows(state.summary).map(([k, v]) => [t(k), v])];
  download(`fieldvisit-${scope[1]}-${$('from').value}-${$('to').value}.csv`, csvText(lines), 'text/csv');
}
