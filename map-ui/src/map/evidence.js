// A visit's evidence: its figures in the panel, its fixes on the map (the evidence layer), its
// photos and checklist answers, and accept/reject with a reason for reviewers.
import { esc } from '../common/text.js';
import { clock, dateTime, metres, minutes } from '../common/format.js';
import { locale, t } from '../common/i18n.js';
import { $ } from '../common/dom.js';
import { featureCollection } from '../common/geo.js';
import { api, ctx, replay, setData, state } from './context.js';

export const sources = ['evidence'];
export const layers = [
  { id: 'evidence', type: 'circle', source: 'evidence', paint: {
    'circle-radius': 4, 'circle-color': '#F0E442', 'circle-stroke-color': '#000', 'circle-stroke-width': 1 } },
];

export const REVIEWERS = ['supervisor', 'auditor', 'admin'];

/**
 * The evidence of visit `v` as [key, shown value] rows: outlet, verdict, times, dwell, fixes,
 * distances, accuracy, longest gap, spoofing flags, rules; `order` (`{actual, planned}`) adds its
 * number in the day and in the plan; times in `timeZone` (the browser's when absent).
 */
export function evidenceRows(v, { order = null, timeZone } = {}) {
  const flags = Object.entries(v.evidence?.signals ?? {}).filter(([, x]) => x === true || x > 0).map(([k, x]) => (x === true ? t(k) : `${t(k)} ${x}`));
  const time = (x) => clock(x, locale(), timeZone);
  const m = (x) => metres(x, t('m'));
  return [
    ['outlet', `${v.outlet_code} ${v.outlet_name}`], ['verdict', t(v.verdict)], ['arrival', time(v.arrival)], ['departure', time(v.departure)],
    ...(order ? [['actual_no', order.actual ?? '–'], ['planned_no', order.planned ?? t('unplanned')]] : []),
    ['dwell', `${minutes(v.dwell_s)} ${t('min')}`], ['ping_count', v.ping_count], ['min_distance', m(v.min_distance_m)],
    ['median_distance', m(v.median_distance_m)], ['median_accuracy', m(v.median_accuracy_m)],
    ['max_gap', `${v.max_gap_s ?? '–'} ${t('s')}`], ['flags', flags.length ? flags.join(', ') : t('none')], ['rule_version', v.rule_version],
  ];
}

/** Rows as the inside of a `<dl>`. */
export function rowsHtml(rows) {
  return rows.map(([k, x]) => `<dt>${esc(t(k))}</dt><dd data-key="${k}">${esc(x)}</dd>`).join('');
}

/** The track's point features within the visit's arrival and departure (its fixes). */
export function fixesWithin(points, v) {
  const [from, to] = [Date.parse(v.arrival), Date.parse(v.departure)];
  return points.filter((f) => Date.parse(f.properties.fix_time) >= from && Date.parse(f.properties.fix_time) <= to);
}

/** Shows the evidence of the day's visit `id`. */
export function showEvidence(id) {
  const v = state.visits?.get(id);
  if (!v) return;
  state.evidenceVisit = v;
  const planned = state.plan?.rows.find((r) => r.visit?.id === v.id)?.planned;
  $('evidence').innerHTML = rowsHtml(evidenceRows(v, { order: { actual: v.order, planned } }));
  $('evidence-panel').hidden = false;
  $('review').hidden = !REVIEWERS.includes(ctx.me.user?.role);
  $('review-result').textContent = '';
  setData('evidence', featureCollection(fixesWithin(replay.frames, v)));
  state.photoUrls = drawVisitExtras(v, {
    photosEl: $('visit-photos'), answersEl: $('visit-answers'), urls: state.photoUrls, current: () => state.evidenceVisit === v,
  });
}

/** Hides the panel and the fixes (another day is shown). */
export function hideEvidence() {
  $('evidence-panel').hidden = true;
  setData('evidence', featureCollection());
}

/**
 * Draws visit `v`'s photos (thumbnails, fetched with the token, and what each shows) into
 * `photosEl` and its checklist answers (problems marked) into `answersEl`, unless `current()` has
 * become false meanwhile. Revokes the object URLs in `urls` (the previous drawing's) and returns
 * the new drawing's list, filled as the thumbnails arrive.
 */
export function drawVisitExtras(v, { photosEl, answersEl, urls = [], current = () => true }) {
  for (const url of urls) URL.revokeObjectURL(url);
  const mine = [];
  photosEl.innerHTML = '';
  answersEl.innerHTML = '';
  visitExtras(v, photosEl, answersEl, mine, current).catch((e) => { photosEl.textContent = e.message; });
  return mine;
}

/** Photo `id`'s thumbnail as an `<img>` (fetched with the token; its object URL added to `urls`), '' when there is none. */
export async function thumbnail(id, urls) {
  const res = await api.send(`/photos/${id}/thumbnail`).catch(() => null);
  if (!res?.ok) return '';
  const url = URL.createObjectURL(await res.blob());
  urls.push(url);
  return `<img src="${url}" alt="${esc(t('photos'))} ${id}" width="96">`;
}

async function visitExtras(v, photosEl, answersEl, urls, current) {
  const [photos, outcomes] = await Promise.all([api.request(`/visits/${v.id}/photos`), api.request(`/visits/${v.id}/outcomes`)]);
  if (!current()) return;
  const cards = await Promise.all(photos.map(async (p) => {
    const img = p.has_thumbnail ? await thumbnail(p.id, urls) : '';
    const f = p.findings ?? {};
    const notes = [t(f.verdict ?? 'unverifiable')];
    if (f.distance_m != null) notes.push(metres(f.distance_m, t('m')));
    if (f.far) notes.push(t('far'));
    if (p.reused_photo_id != null) notes.push(`${t('reused')} (#${p.reused_photo_id})`);
    return `<figure data-photo="${p.id}" data-verdict="${esc(f.verdict ?? '')}">${img}<figcaption>${esc(notes.join(', '))}<br>${esc(t('taken'))}: ${esc(dateTime(p.taken_at, locale()))}</figcaption></figure>`;
  }));
  if (!current()) return;
  photosEl.innerHTML = `<h3>${esc(t('photos'))}</h3>${cards.length ? cards.join('') : `<p>${esc(t('no_photos'))}</p>`}`;
  const rows = outcomes.map((o) => {
    const answers = Object.entries(o.answers ?? {}).map(([k, x]) => {
      const bad = (o.problems ?? []).includes(k);
      return `<li${bad ? ' class="problem"' : ''} data-key="${esc(k)}">${esc(k)}: ${esc(Array.isArray(x) ? x.join(', ') : String(x))}</li>`;
    });
    return `<div data-outcome="${o.id}"><strong>${esc(o.checklist_name)} v${esc(o.checklist_version)}</strong><ul>${answers.join('')}</ul></div>`;
  });
  answersEl.innerHTML = `<h3>${esc(t('answers'))}</h3>${rows.length ? rows.join('') : `<p>${esc(t('no_answers'))}</p>`}`;
}

/** Accepts or rejects the shown visit (`decision`: accepted or rejected) with the typed reason. */
export async function review(decision) {
  const v = state.evidenceVisit;
  const reason = $('review-reason').value.trim();
  if (!v) return;
  if (!reason) { $('review-result').textContent = t('reason_needed'); return; }
  try {
    await api.request(`/visits/${v.id}/reviews`, { method: 'POST', json: { decision, reason } });
    $('review-result').textContent = `${t('reviewed')}: ${t(decision)}`;
    state.reviewed = { id: v.id, decision };
  } catch (e) {
    $('review-result').textContent = e.message;
  }
}
