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

const REVIEWERS = ['supervisor', 'auditor', 'admin'];

/** Shows the evidence of the day's visit `id`. */
export function showEvidence(id) {
  const v = state.visits?.get(id);
  if (!v) return;
  state.evidenceVisit = v;
  const flags = Object.entries(v.evidence?.signals ?? {}).filter(([, x]) => x === true || x > 0).map(([k, x]) => (x === true ? t(k) : `${t(k)} ${x}`));
  const time = (x) => clock(x, locale());
  const m = (x) => metres(x, t('m'));
  const rows = [
    ['outlet', `${v.outlet_code} ${v.outlet_name}`], ['verdict', t(v.verdict)], ['arrival', time(v.arrival)], ['departure', time(v.departure)],
    ['actual_no', v.order ?? '–'], ['planned_no', state.plan?.rows.find((r) => r.visit?.id === v.id)?.planned ?? t('unplanned')],
    ['dwell', `${minutes(v.dwell_s)} ${t('min')}`], ['ping_count', v.ping_count], ['min_distance', m(v.min_distance_m)],
    ['median_distance', m(v.median_distance_m)], ['median_accuracy', m(v.median_accuracy_m)],
    ['max_gap', `${v.max_gap_s ?? '–'} ${t('s')}`], ['flags', flags.length ? flags.join(', ') : t('none')], ['rule_version', v.rule_version],
  ];
  $('evidence').innerHTML = rows.map(([k, x]) => `<dt>${t(k)}</dt><dd data-key="${k}">${esc(x)}</dd>`).join('');
  $('evidence-panel').hidden = false;
  $('review').hidden = !REVIEWERS.includes(ctx.me.user?.role);
  $('review-result').textContent = '';
  const [from, to] = [Date.parse(v.arrival), Date.parse(v.departure)];
  const inWindow = replay.frames.filter((f) => Date.parse(f.properties.fix_time) >= from && Date.parse(f.properties.fix_time) <= to);
  setData('evidence', featureCollection(inWindow));
  showVisitExtras(v).catch((e) => { $('visit-photos').textContent = e.message; });
}

/** Hides the panel and the fixes (another day is shown). */
export function hideEvidence() {
  $('evidence-panel').hidden = true;
  setData('evidence', featureCollection());
}

/** The visit's photos (thumbnails, fetched with the token, and what each shows) and checklist answers. */
async function showVisitExtras(v) {
  for (const url of state.photoUrls ?? []) URL.revokeObjectURL(url);
  state.photoUrls = [];
  $('visit-photos').innerHTML = '';
  $('visit-answers').innerHTML = '';
  const [photos, outcomes] = await Promise.all([api.request(`/visits/${v.id}/photos`), api.request(`/visits/${v.id}/outcomes`)]);
  if (state.evidenceVisit !== v) return;
  const cards = await Promise.all(photos.map(async (p) => {
    let img = '';
    if (p.has_thumbnail) {
      const res = await api.send(`/photos/${p.id}/thumbnail`);
      if (res.ok) {
        const url = URL.createObjectURL(await res.blob());
        state.photoUrls.push(url);
        img = `<img src="${url}" alt="${esc(t('photos'))} ${p.id}" width="96">`;
      }
    }
    const f = p.findings ?? {};
    const notes = [t(f.verdict ?? 'unverifiable')];
    if (f.distance_m != null) notes.push(metres(f.distance_m, t('m')));
    if (f.far) notes.push(t('far'));
    if (p.reused_photo_id != null) notes.push(`${t('reused')} (#${p.reused_photo_id})`);
    return `<figure data-photo="${p.id}" data-verdict="${esc(f.verdict ?? '')}">${img}<figcaption>${esc(notes.join(', '))}<br>${esc(t('taken'))}: ${esc(dateTime(p.taken_at, locale()))}</figcaption></figure>`;
  }));
  if (state.evidenceVisit !== v) return;
  $('visit-photos').innerHTML = `<h3>${esc(t('photos'))}</h3>${cards.length ? cards.join('') : `<p>${esc(t('no_photos'))}</p>`}`;
  const rows = outcomes.map((o) => {
    const answers = Object.entries(o.answers ?? {}).map(([k, x]) => {
      const bad = (o.problems ?? []).includes(k);
      return `<li${bad ? ' class="problem"' : ''} data-key="${esc(k)}">${esc(k)}: ${esc(Array.isArray(x) ? x.join(', ') : String(x))}</li>`;
    });
    return `<div data-outcome="${o.id}"><strong>${esc(o.checklist_name)} v${esc(o.checklist_version)}</strong><ul>${answers.join('')}</ul></div>`;
  });
  $('visit-answers').innerHTML = `<h3>${esc(t('answers'))}</h3>${rows.length ? rows.join('') : `<p>${esc(t('no_answers'))}</p>`}`;
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
