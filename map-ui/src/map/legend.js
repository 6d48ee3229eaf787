// The legend: outlet statuses (symbol and name), cell coverage, visit verdicts and planned stops.
import { $ } from '../common/dom.js';
import { t } from '../common/i18n.js';
import { COVERAGE_STOPS, STATUSES, VERDICT_COLOR, statusImage } from './symbols.js';

export function renderLegend() {
  const rows = STATUSES.map((s) => `<div class="row" data-status="${s}"><img alt="" src="${statusImage(s).toDataURL()}"> ${t(s)}</div>`);
  const cov = COVERAGE_STOPS.map(([v, c]) => `<div class="row"><span class="swatch" style="background:${c};border:1px solid #999"></span> ${t('coverage_legend')} ≥ ${v}%</div>`);
  const verdicts = Object.entries(VERDICT_COLOR).map(([k, c]) => `<div class="row" data-verdict="${k}"><span class="swatch dot" style="background:${c}"></span> ${t('visit')}: ${t(k)}</div>`);
  const plan = `<div class="row"><span class="swatch plan">1</span> ${t('planned_stop')}</div>`;
  $('legend').innerHTML = rows.join('') + cov.join('') + verdicts.join('') + plan;
}
