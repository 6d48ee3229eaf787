// The H3 coverage layer: cells coloured by outlet coverage at the chosen resolution, and a cell's popup.
import { esc } from '../common/text.js';
import { pct } from '../common/format.js';
import { t } from '../common/i18n.js';
import { $ } from '../common/dom.js';
import { popup } from '../common/map.js';
import { api, period } from './context.js';
import { COVERAGE_STOPS } from './symbols.js';

export const sources = ['coverage'];
export const layers = [
  { id: 'coverage', type: 'fill', source: 'coverage', paint: {
    'fill-color': ['interpolate', ['linear'], ['coalesce', ['get', 'coverage_pct'], 0], ...COVERAGE_STOPS.flat()],
    'fill-opacity': 0.55, 'fill-outline-color': '#4a6f8a' } },
];

/** The cells in `bbox` at the chosen resolution, for the chosen period. */
export function load(bbox) {
  return api.request(`/layers/coverage?${period()}&bbox=${bbox}&h3_res=${$('h3-res').value}&limit=5000`);
}

export function showPopup(map, f, lngLat) {
  const p = f.properties;
  popup(map, lngLat, `<h3>${t('cell')} ${esc(p.cell)}</h3><dl><dt>${t('coverage_pct')}</dt><dd>${pct(p.coverage_pct)}</dd>
        <dt>${t('active_outlets')}</dt><dd>${Number(p.active_outlets)}</dd><dt>${t('visited_outlets')}</dt><dd>${Number(p.visited_outlets)}</dd></dl>`);
}
