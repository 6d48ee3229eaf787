// The review queue (supervisors, auditors, admins: who may review visits): what waits for a
// reviewer in the caller's scope — suspect, unverified and disputed visits and unconfirmed
// check-in claims — oldest first, filtered by kind, rep, territory and period and paged; an item's
// evidence beside the list (figures, its fixes on a small map, photos, checklist answers) with the
// visit's history; accept or reject one item with a reason, or many at once (POST /reviews/bulk).
import { t, register, locale } from '../../common/i18n.js';
import { esc } from '../../common/text.js';
import { dateTime, metres } from '../../common/format.js';
import { featureCollection } from '../../common/geo.js';
import { addSources, baseStyle, createMap, fitTo } from '../../common/map.js';
import { registerView } from '../views.js';
import { api, ctx as shared } from '../context.js';
import { REVIEWERS, drawVisitExtras, thumbnail, evidenceRows, fixesWithin, layers as evidenceLayers, rowsHtml, sources as evidenceSources } from '../evidence.js';
import { showErrors } from './form.js';
import { KINDS, apiPath, bulkBody, bulkCount, bulkOutcome, fill, itemKey, kindLabel, queuePath, reasonOf } from './reviewqueue.js';
import { REVIEWS_STRINGS } from './reviews.strings.js';

register(REVIEWS_STRINGS);

const PAGE = 50;
const view = {
  el: null, loaded: false, filter: { kinds: [...KINDS] }, items: [], next: null, total: 0, selected: new Set(),
  reps: [], territories: [], current: null, detail: null, history: [], outcome: null, map: null, urls: [], seq: 0,
};
/** What the browser test reads: the queue shown, the item opened, its history, the last bulk outcome. */
globalThis.fieldvisitReviews = view;

async function loadLists() {
  const [users, territories] = await Promise.all([api.all('/users').catch(() => []), api.all('/territories').catch(() => [])]);
  view.reps = users.filter((u) => u.role === 'rep').sort((a, b) => a.name.localeCompare(b.name));
  view.territories = territories;
}

/** The queue's first page for the filter (`more`: the next page, appended). */
async function loadQueue(more = false) {
  const form = view.el.querySelector('#queue-filter');
  showErrors(form, null);
  try {
    const page = await api.request(queuePath(view.filter, { limit: PAGE, after: more ? view.next : null }));
    view.items = more ? [...view.items, ...page.items] : page.items;
    view.next = page.next ?? null;
    view.total = page.total;
    if (!more) view.selected = new Set([...view.selected].filter((k) => view.items.some((i) => itemKey(i) === k)));
  } catch (err) {
    showErrors(form, err);
    view.items = [];
    view.next = null;
    view.total = 0;
  }
  drawQueue();
}

/** A time in the org's time zone (what reviewers of the org's days go by). */
const when = (instant) => dateTime(instant, locale(), shared.me?.org?.timezone);

const option = (value, label, selected) => `<option value="${esc(value)}" ${selected ? 'selected' : ''}>${esc(label)}</option>`;

/** The view's frame: the filter, the list, the bulk decision and the item panel (drawn empty). */
function drawFrame() {
  const f = view.filter;
  // The small map survives a redraw (a language switch): its element is moved into the new frame.
  const mapEl = view.map ? view.el.querySelector('[data-testid=review-map]') : null;
  view.el.innerHTML = `
    <h1>${esc(t('review_queue'))}</h1>
    <form id="queue-filter" class="queue-filter" data-testid="queue-filter">
      <fieldset><legend>${esc(t('kind'))}</legend>${KINDS.map((k) => `<label class="check"><input type="checkbox" name="kind" value="${k}"
        ${f.kinds.includes(k) ? 'checked' : ''}> ${esc(t(kindLabel(k)))}</label>`).join('')}
        <small class="field-error" data-error-for="kind"></small></fieldset>
      <label class="field"><span>${esc(t('rep'))}</span><select name="rep_id">${option('', t('all_reps'), !f.rep_id)}
        ${view.reps.map((r) => option(r.id, r.name, String(r.id) === String(f.rep_id))).join('')}</select>
        <small class="field-error" data-error-for="rep_id"></small></label>
      <label class="field"><span>${esc(t('territory'))}</span><select name="territory_id">${option('', t('all_territories'), !f.territory_id)}
        ${view.territories.map((tr) => option(tr.id, `${tr.name} (${tr.code})`, String(tr.id) === String(f.territory_id))).join('')}</select>
        <small class="field-error" data-error-for="territory_id"></small></label>
      <label class="field"><span>${esc(t('from'))}</span><input type="date" name="from" value="${esc(f.from ?? '')}">
        <small class="field-error" data-error-for="from"></small></label>
      <label class="field"><span>${esc(t('to'))}</span><input type="date" name="to" value="${esc(f.to ?? '')}">
        <small class="field-error" data-error-for="to"></small></label>
      <button type="submit">${esc(t('apply_filter'))}</button> <small>${esc(t('queue_hint'))}</small>
      <p class="field-error" data-error-for="" role="alert"></p>
    </form>
    <div class="reviews">
      <div class="queue-col">
        <p role="status" data-testid="queue-total"></p>
        <label class="check"><input type="checkbox" id="select-all"> ${esc(t('select_all'))}</label>
        <div class="table-wrap"><table data-testid="queue"><thead><tr>
          <th></th><th>${esc(t('kind'))}</th>
          <th>${esc(t('when'))}</th><th>${esc(t('rep'))}</th><th>${esc(t('outlet'))}</th><th>${esc(t('risk'))} / ${esc(t('distance'))}</th><th></th></tr></thead>
          <tbody></tbody></table></div>
        <button type="button" id="queue-more" data-testid="queue-more" hidden>${esc(t('more'))}</button>
        <form id="bulk" class="bulk" data-testid="bulk"><h2>${esc(t('bulk'))}</h2>
          <label class="check"><input type="radio" name="scope" value="selected" checked> ${esc(t('bulk_selected'))}</label>
          <label class="check"><input type="radio" name="scope" value="filter"> ${esc(t('bulk_filter'))}</label>
          <label class="field"><span>${esc(t('decision'))}</span><select name="decision">${option('accepted', t('accept'))}${option('rejected', t('reject'))}</select></label>
          <label class="field"><span>${esc(t('reason'))}</span><input name="reason" maxlength="2000">
            <small class="field-error" data-error-for="reason"></small></label>
          <button type="submit">${esc(t('bulk_apply'))}</button>
          <div class="confirm" data-testid="bulk-confirm" hidden><p></p>
            <button type="button" data-confirm>${esc(t('confirm'))}</button> <button type="button" data-cancel>${esc(t('cancel'))}</button></div>
          <p class="field-error" data-error-for="" role="alert"></p>
          <div data-testid="bulk-outcome" role="status"></div>
        </form>
      </div>
      <section id="review-item" class="review-item" data-testid="review-item" hidden>
        <h2 data-item-title></h2>
        <p class="notice" data-dispute hidden></p>
        <dl data-testid="item-evidence"></dl>
        <div class="review-map" data-testid="review-map" hidden></div>
        <p data-map-note></p>
        <div data-testid="item-photos"></div>
        <div data-testid="item-answers"></div>
        <div data-history-box><h3>${esc(t('history'))}</h3><ol data-testid="item-history"></ol></div>
        <form id="decide" data-testid="decide"><h3>${esc(t('decide_one'))}</h3>
          <label class="field"><span>${esc(t('reason'))}</span><input name="reason" maxlength="2000">
            <small class="field-error" data-error-for="reason"></small></label>
          <button type="button" data-decision="accepted">${esc(t('accept'))}</button>
          <button type="button" data-decision="rejected">${esc(t('reject'))}</button>
          <p class="field-error" data-error-for="" role="alert"></p>
          <p role="status" data-testid="decide-result"></p>
        </form>
      </section>
    </div>`;
  if (mapEl) view.el.querySelector('[data-testid=review-map]').replaceWith(mapEl);
  const form = view.el.querySelector('#queue-filter');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = new FormData(form);
    view.filter = {
      kinds: data.getAll('kind'), rep_id: data.get('rep_id'), territory_id: data.get('territory_id'), from: data.get('from'), to: data.get('to'),
    };
    view.selected.clear();
    loadQueue();
  });
  view.el.querySelector('#queue-more').addEventListener('click', () => loadQueue(true));
  view.el.querySelector('#select-all').addEventListener('change', (e) => {
    for (const i of view.items) {
      if (e.target.checked) view.selected.add(itemKey(i));
      else view.selected.delete(itemKey(i));
    }
    drawQueue();
  });
  const bulk = view.el.querySelector('#bulk');
  bulk.addEventListener('submit', (e) => { e.preventDefault(); askBulk(bulk); });
  bulk.querySelector('[data-cancel]').addEventListener('click', () => { bulk.querySelector('[data-testid=bulk-confirm]').hidden = true; });
  bulk.querySelector('[data-confirm]').addEventListener('click', () => applyBulk(bulk));
  for (const b of view.el.querySelectorAll('#decide [data-decision]')) b.addEventListener('click', () => decideOne(b.dataset.decision));
}

/** The list, its total and "more"; the opened item stays marked. */
function drawQueue() {
  const body = view.el.querySelector('[data-testid=queue] tbody');
  body.innerHTML = view.items.map((i) => {
    const key = itemKey(i);
    const risk = i.kind === 'claim' ? `${t('distance')} ${metres(i.distance_m, t('m'))}` : `${t('risk')} ${i.risk_score == null ? '–' : i.risk_score.toFixed(2)}`;
    return `<tr data-key="${esc(key)}" data-testid="queue-item-${esc(i.kind)}-${i.id}" data-kind="${esc(i.kind)}"
      aria-selected="${view.current && itemKey(view.current) === key}">
      <td class="q-sel"><input type="checkbox" data-select="${esc(key)}" aria-label="${esc(t('select_item'))}" ${view.selected.has(key) ? 'checked' : ''}></td>
      <td class="q-kind">${esc(t(kindLabel(i.kind)))}</td><td class="q-when">${esc(when(i.at))}</td><td class="q-rep">${esc(i.rep.name)}</td>
      <td class="q-outlet">${esc(i.outlet.code)} ${esc(i.outlet.name)}</td><td class="q-risk">${esc(risk)}</td>
      <td class="q-open"><button type="button" data-open="${esc(key)}">${esc(t('open_item'))}</button></td></tr>`;
  }).join('');
  view.el.querySelector('[data-testid=queue-total]').textContent = view.total
    ? `${t('queue_total')}: ${view.total}` : t('queue_empty');
  view.el.querySelector('#queue-more').hidden = view.next == null;
  view.el.querySelector('#select-all').checked = view.items.length > 0 && view.items.every((i) => view.selected.has(itemKey(i)));
  for (const c of body.querySelectorAll('[data-select]')) {
    c.addEventListener('change', () => {
      if (c.checked) view.selected.add(c.dataset.select);
      else view.selected.delete(c.dataset.select);
    });
  }
  for (const b of body.querySelectorAll('[data-open]')) {
    b.addEventListener('click', () => openItem(view.items.find((i) => itemKey(i) === b.dataset.open)));
  }
}

/** Opens an item in the panel: its evidence, its fixes, photos, answers and history. */
async function openItem(item) {
  if (!item) return;
  const seq = ++view.seq;
  view.current = item;
  view.detail = null;
  view.history = [];
  for (const tr of view.el.querySelectorAll('[data-testid=queue] tbody tr')) tr.setAttribute('aria-selected', String(tr.dataset.key === itemKey(item)));
  const box = view.el.querySelector('#review-item');
  box.hidden = false;
  box.dataset.item = itemKey(item);
  box.querySelector('[data-item-title]').textContent = `${t(kindLabel(item.kind))} · ${item.outlet.code} ${item.outlet.name} · ${item.rep.name}`;
  const dispute = box.querySelector('[data-dispute]');
  dispute.hidden = !item.dispute_reason;
  dispute.textContent = item.dispute_reason ? `${t('dispute')}: ${item.dispute_reason}` : '';
  box.querySelector('[data-testid=item-evidence]').innerHTML = `<dd>${esc(t('loading'))}</dd>`;
  box.querySelector('[data-map-note]').textContent = '';
  box.querySelector('[data-testid=item-history]').innerHTML = '';
  box.querySelector('[data-history-box]').hidden = !item.links.history;
  const decide = box.querySelector('#decide');
  showErrors(decide, null);
  decide.querySelector('[data-testid=decide-result]').textContent = '';
  box.scrollIntoView?.({ block: 'nearest' });
  const current = () => view.seq === seq;
  try {
    if (item.kind === 'claim') await showClaim(item, box, current);
    else await showVisit(item, box, current);
  } catch (err) {
    if (current()) box.querySelector('[data-testid=item-evidence]').innerHTML = `<dd class="error">${esc(err.detail || err.message)}</dd>`;
  }
  if (current()) box.dataset.loaded = itemKey(item);
}

async function showVisit(item, box, current) {
  const [detail, history] = await Promise.all([api.request(apiPath(item.links.evidence)), loadHistory(item)]);
  if (!current()) return;
  const v = (detail.visits ?? []).find((x) => x.id === item.visit_id);
  view.history = history;
  drawHistory(box);
  if (!v) throw new Error(t('failed'));
  view.detail = v;
  box.querySelector('[data-testid=item-evidence]').innerHTML = rowsHtml(evidenceRows(v, { timeZone: shared.me?.org?.timezone }));
  view.urls = drawVisitExtras(v, {
    photosEl: box.querySelector('[data-testid=item-photos]'), answersEl: box.querySelector('[data-testid=item-answers]'),
    urls: view.urls, current,
  });
  await showFixes(item, v, box, current);
}

/** The visit's fixes on a small map of the panel, drawn with the day view's evidence layer. */
async function showFixes(item, v, box, current) {
  const track = await api.request(`/reps/${item.rep.id}/track?date=${item.rep_day}`, { headers: { Accept: 'application/geo+json' } })
    .catch(() => ({ features: [] }));
  if (!current()) return;
  const fixes = featureCollection(fixesWithin((track.features ?? []).filter((f) => f.geometry?.type === 'Point'), v));
  view.fixes = fixes;
  const note = box.querySelector('[data-map-note]');
  const el = box.querySelector('[data-testid=review-map]');
  if (!fixes.features.length) {
    el.hidden = true;
    note.textContent = t('no_fixes');
    return;
  }
  note.textContent = `${t('fixes_map')}: ${fixes.features.length}`;
  el.hidden = false;
  if (!view.map) {
    const map = createMap({ container: el, style: await baseStyle(), center: fixes.features[0].geometry.coordinates, zoom: 15 });
    view.map = map;
    view.mapReady = new Promise((resolve) => map.on('load', () => {
      addSources(map, evidenceSources);
      for (const layer of evidenceLayers) map.addLayer(layer);
      resolve();
    }));
  }
  const map = view.map;
  await view.mapReady;
  if (!current() || map !== view.map) return;
  map.resize();
  map.getSource('evidence').setData(view.fixes);
  fitTo(map, view.fixes, 30);
}

async function showClaim(item, box, current) {
  const list = await api.request(apiPath(item.links.evidence));
  if (!current()) return;
  const c = list.find((x) => x.id === item.checkin_id);
  if (!c) throw new Error(t('failed'));
  view.detail = c;
  const m = (x) => metres(x, t('m'));
  const rows = [
    ['outlet', `${item.outlet.code} ${item.outlet.name}`], ['checkin_time', when(c.checked_in_at)],
    ['checkout_time', c.checked_out_at ? when(c.checked_out_at) : '–'], ['distance', m(c.distance_m)],
    ['allowance', m(c.allowance_m)], ['accuracy', m(c.accuracy_m)], ['claim_status', t(`checkin_${c.status}`)],
    ['evidence_unlinked', c.evidence_unlinked ? '✓' : '–'],
  ];
  box.querySelector('[data-testid=item-evidence]').innerHTML = rowsHtml(rows);
  box.querySelector('[data-testid=review-map]').hidden = true;
  for (const url of view.urls) URL.revokeObjectURL(url);
  view.urls = [];
  const cards = await Promise.all((c.photos ?? []).map(async (p) => {
    const img = await thumbnail(p.id, view.urls);
    return `<figure data-photo="${p.id}">${img}<figcaption>${esc(t(p.verdict ?? 'unverifiable'))}</figcaption></figure>`;
  }));
  if (!current()) return;
  box.querySelector('[data-testid=item-photos]').innerHTML = `<h3>${esc(t('photos'))}</h3>${cards.length ? cards.join('') : `<p>${esc(t('no_photos'))}</p>`}`;
  const outcomes = (c.outcomes ?? []).map((o) => `<li data-outcome="${o.id}">#${o.id}${o.problems?.length ? ` — ${esc(t('problems'))}: ${esc(o.problems.join(', '))}` : ''}</li>`);
  box.querySelector('[data-testid=item-answers]').innerHTML = `<h3>${esc(t('answers'))}</h3>${outcomes.length ? `<ul>${outcomes.join('')}</ul>` : `<p>${esc(t('no_answers'))}</p>`}`;
}

async function loadHistory(item) {
  return item.links.history ? api.request(apiPath(item.links.history)) : [];
}

/** The visit's history: who decided what, when, and why. */
function drawHistory(box) {
  box.querySelector('[data-testid=item-history]').innerHTML = view.history.length
    ? view.history.map((r) => `<li data-decision="${esc(r.decision)}"><strong>${esc(t(r.decision))}</strong> · ${esc(r.reviewer_name ?? `#${r.reviewer_id}`)}
      · ${esc(when(r.created_at))}<br>${esc(r.reason)}</li>`).join('')
    : `<li>${esc(t('no_history'))}</li>`;
}

/** Accepts or rejects the opened item with the typed reason; the queue and the history refresh. */
async function decideOne(decision) {
  const item = view.current;
  const form = view.el.querySelector('#decide');
  showErrors(form, null);
  if (!item) return;
  const reason = reasonOf(form.elements.reason.value);
  if (!reason) {
    form.querySelector('[data-error-for=reason]').textContent = t('reason_needed');
    return;
  }
  try {
    await api.request(apiPath(item.links.decide), { method: 'POST', json: { decision, reason } });
  } catch (err) {
    showErrors(form, err);
    return;
  }
  form.elements.reason.value = '';
  form.querySelector('[data-testid=decide-result]').textContent = `${t('reviewed')}: ${t(decision)}`;
  view.decided = { key: itemKey(item), decision };
  if (view.current === item && item.links.history) {
    view.history = await loadHistory(item).catch(() => view.history);
    drawHistory(view.el.querySelector('#review-item'));
  }
  await loadQueue();
}

/** Asks to confirm a bulk decision, saying how many items it will decide. */
function askBulk(form) {
  showErrors(form, null);
  const data = new FormData(form);
  const byFilter = data.get('scope') === 'filter';
  const confirmBox = form.querySelector('[data-testid=bulk-confirm]');
  confirmBox.hidden = true;
  if (!reasonOf(data.get('reason'))) {
    form.querySelector('[data-error-for=reason]').textContent = t('reason_needed');
    return;
  }
  const { count, remaining } = bulkCount({ selected: view.selected.size, total: view.total, byFilter });
  if (!count) {
    form.querySelector('[data-error-for=""]').textContent = byFilter ? t('queue_empty') : t('nothing_selected');
    return;
  }
  confirmBox.querySelector('p').textContent = [fill(t('bulk_confirm'), { n: count, decision: t(data.get('decision')) }),
    remaining ? fill(t('bulk_more_after'), { n: remaining }) : ''].filter(Boolean).join(' ');
  confirmBox.dataset.count = String(count);
  confirmBox.hidden = false;
}

/** Sends the confirmed bulk decision and shows what was decided and what was refused, item by item. */
async function applyBulk(form) {
  const data = new FormData(form);
  const confirmBox = form.querySelector('[data-testid=bulk-confirm]');
  confirmBox.hidden = true;
  const byFilter = data.get('scope') === 'filter';
  const items = byFilter ? null : view.items.filter((i) => view.selected.has(itemKey(i)));
  const out = form.querySelector('[data-testid=bulk-outcome]');
  out.innerHTML = '';
  let answer;
  try {
    answer = await api.request('/reviews/bulk', { method: 'POST', json: bulkBody(data.get('decision'), data.get('reason'), { items, filter: view.filter }) });
  } catch (err) {
    showErrors(form, err);
    return;
  }
  const o = bulkOutcome(answer);
  view.outcome = o;
  const name = (r) => {
    const i = view.items.find((x) => itemKey(x) === r.key);
    return i ? `${t(kindLabel(i.kind))} · ${i.outlet.code} ${i.outlet.name} · ${i.rep.name}` : `${t(kindLabel(r.kind))} #${r.id}`;
  };
  out.innerHTML = `<p data-decided="${o.decided}">${esc(fill(t('decided_n'), { n: o.decided }))}</p>
    ${o.refused.length ? `<p>${esc(fill(t('refused_n'), { n: o.refused.length }))}</p><ul data-testid="bulk-refused">${o.refused.map((r) => `
      <li data-key="${esc(r.key)}">${esc(name(r))}: ${esc(t(`refusal_${r.refusal}`))}${r.detail ? ` — ${esc(r.detail)}` : ''}</li>`).join('')}</ul>` : ''}
    ${o.remaining ? `<p>${esc(fill(t('bulk_more_after'), { n: o.remaining }))}</p>` : ''}`;
  view.selected.clear();
  await loadQueue();
}

registerView({
  id: 'reviews',
  label: 'view_reviews',
  roles: REVIEWERS,
  mount(el) {
    view.el = el;
  },
  async show() {
    await loadLists();
    drawFrame();
    view.loaded = true;
    view.current = null;
    await loadQueue();
  },
  translate() {
    if (!view.loaded) return;
    const current = view.current;
    drawFrame();
    drawQueue();
    if (current) openItem(current);
  },
});
