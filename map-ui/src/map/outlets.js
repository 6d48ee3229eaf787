// The outlets layer: each outlet by its period status (symbol per status), and its popup.
import { esc } from '../common/text.js';
import { visitCount } from '../common/format.js';
import { t } from '../common/i18n.js';
import { popup } from '../common/map.js';
import { api, period } from './context.js';
import { STATUSES, statusImage } from './symbols.js';

export const sources = ['outlets'];
export const layers = [
  { id: 'outlets', type: 'symbol', source: 'outlets', layout: {
    'icon-image': ['concat', 'status-', ['get', 'status']], 'icon-allow-overlap': true, 'icon-size': 0.9 } },
];

/** The status symbols the layer draws (`status-visited`, ...). */
export function addImages(map) {
  for (const s of STATUSES) map.addImage(`status-${s}`, statusImage(s).getContext('2d').getImageData(0, 0, 18, 18));
}

/** The outlets in `bbox` with their status in the chosen period. */
export function load(bbox) {
  return api.request(`/layers/outlets?${period()}&bbox=${bbox}&limit=5000`);
}

export function showPopup(map, f, lngLat) {
  const p = f.properties;
  const required = Number(p.required_visits);
  popup(map, lngLat, `<div data-testid="outlet-popup" data-outlet="${f.id}"><h3>${esc(p.name)}</h3><dl>
    <dt>${t('code')}</dt><dd data-field="code">${esc(p.code)}</dd>
    <dt>${t('tier')}</dt><dd data-field="tier">${esc(p.tier)}</dd>
    <dt>${t('channel_type')}</dt><dd data-field="channel_type">${esc(p.channel_type)}</dd>
    <dt>${t('status')}</dt><dd data-field="status">${esc(t(p.status))}</dd>
    <dt>${t('last_visit')}</dt><dd data-field="last_valid_visit">${p.last_valid_visit && p.last_valid_visit !== 'null' ? esc(p.last_valid_visit) : t('none')}</dd>
    <dt>${t('visits_vs_required')}</dt><dd data-field="visits">${Number(p.valid_visits)} / ${visitCount(required)}</dd>
  </dl></div>`);
}
