// The territories layer (outlines) and the territory picker of the period panel.
import { esc } from '../common/text.js';
import { t } from '../common/i18n.js';
import { $ } from '../common/dom.js';
import { emptyCollection, featureCollection } from '../common/geo.js';
import { fitTo } from '../common/map.js';
import { api, state } from './context.js';

export const sources = ['territories'];
export const layers = [
  { id: 'territories', type: 'line', source: 'territories', paint: { 'line-color': '#12355b', 'line-width': 1.5 } },
];

/** The outlines of the territories in scope (none when they cannot be read). */
export function loadOutlines() {
  return api.request('/layers/territories?zoom=10&limit=5000').catch(() => emptyCollection());
}

/**
 * Fills the picker. "All in my scope" is the caller's own territory, or the org's top territory;
 * with several top territories each is listed first so that the summary can be read for each.
 */
export function renderPicker(territories) {
  const ids = new Set(territories.map((x) => x.id));
  const roots = territories.filter((x) => x.parent_id == null || !ids.has(x.parent_id));
  state.rootTerritory = roots[0]?.id;
  const rest = territories.filter((x) => !roots.includes(x));
  $('territory').innerHTML = `<option value="">${t('all_territories')}</option>` +
    [...roots, ...rest].map((x) => `<option value="${x.id}">${esc(x.code)} ${esc(x.name)}</option>`).join('');
}

/** The "All in my scope" option in the page language. */
export function translatePicker() {
  const all = $('territory').querySelector('option[value=""]');
  if (all) all.textContent = t('all_territories');
}

/** Moves the map to the picked territory and its children. */
export async function showPicked(map) {
  const id = $('territory').value;
  if (!id) return;
  const fc = await loadOutlines();
  fitTo(map, featureCollection(fc.features.filter((f) => String(f.id) === id || String(f.properties.parent_id) === id)), 20);
}
