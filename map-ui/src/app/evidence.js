// Evidence at an open check-in: camera photos (`<input type=file accept=image/* capture=environment>`)
// with the app's own fix and time at capture, and the org's checklist rendered from its definition
// (yes/no, number, choice, text), checked here (checklist.js) and again by the server. Both go to the
// outbox behind their check-in, with their own client ids, so a retry never stores them twice:
//   PUT /checkins/{checkin}/photos/{photo}    multipart: photo, note, captured_at, lat, lon, accuracy_m
//   PUT /checkins/{checkin}/answers/{answers} JSON {checklist_id, answers}
import { language, t } from '../common/i18n.js';
import { $ } from '../common/dom.js';
import { el, state, view } from './context.js';
import { clientId, fill } from './logic.js';
import { answerOf, checkAnswers } from './checklist.js';
import { openVisit, saveVisit, visits } from './checkin.js';

let drawn = null; // what the form was drawn for: check-in, checklist and language
let chosen = null; // the checklist id picked when the org has several

/** Adds the photo `file` (a File or Blob) to the outbox for the open check-in `visit`. */
export async function addPhoto(visit, file) {
  const fix = state.fix;
  const id = clientId('photo');
  const note = $('photo-note').value.trim();
  const fields = {
    captured_at: new Date().toISOString(),
    ...(fix ? { lat: String(fix.lat), lon: String(fix.lon), ...(fix.accuracy_m > 0 ? { accuracy_m: String(fix.accuracy_m) } : {}) } : {}),
    ...(note ? { note } : {}),
  };
  // The Blob itself goes into IndexedDB: the picture survives a reload with no network.
  const blob = file.slice(0, file.size, file.type || 'image/jpeg');
  saveVisit({ ...visit, photos: [...(visit.photos ?? []), { client_id: id, status: 'waiting' }] });
  await state.outbox.add({
    kind: 'photo', method: 'PUT', path: `/checkins/${visit.client_id}/photos/${id}`, form: fields,
    file: blob, file_name: file.name || `${id}.jpg`, checkin_client_id: visit.client_id, evidence_id: id, label: visit.outlet_name,
  });
  $('photo-note').value = '';
  view.redraw();
}

/** The answers the form holds for `items`, by key (unanswered items left out). */
function formAnswers(form, items) {
  const answers = {};
  for (const item of items) {
    const fields = [...form.querySelectorAll(`[name="${item.key}"]`)];
    let raw;
    if (item.type === 'choice' && item.multiple) raw = fields.filter((f) => f.checked).map((f) => f.value);
    else if (fields.length && (fields[0].type === 'radio')) raw = fields.find((f) => f.checked)?.value ?? '';
    else raw = fields[0]?.value ?? '';
    const v = answerOf(item, raw);
    if (v != null) answers[item.key] = v;
  }
  return answers;
}

/** Checks the form's answers and, when the server would take them, puts them in the outbox. */
export async function submitAnswers(visit, checklist, form) {
  const items = checklist.items ?? [];
  const answers = formAnswers(form, items);
  const errors = checkAnswers(items, answers);
  state.formErrors = errors;
  for (const p of form.querySelectorAll('[data-error-for]')) {
    const e = errors.find((x) => x.key === p.dataset.errorFor);
    p.textContent = e ? fill(t(`check_${e.code}`), e.params) : '';
  }
  const status = form.querySelector('.form-status');
  if (errors.length) { status.textContent = t('answers_fix'); status.dataset.state = 'invalid'; return false; }
  const id = clientId('answers');
  saveVisit({ ...visit, answers: [...(visit.answers ?? []), { client_id: id, checklist_id: checklist.id, status: 'waiting' }] });
  await state.outbox.add({
    kind: 'answers', method: 'PUT', path: `/checkins/${visit.client_id}/answers/${id}`, body: { checklist_id: checklist.id, answers },
    checkin_client_id: visit.client_id, evidence_id: id, label: `${visit.outlet_name} · ${checklist.name}`,
  });
  status.textContent = t('answers_saved');
  status.dataset.state = 'saved';
  return true;
}

/** An outbox answer about a photo or answers: kept with their check-in (sent, or refused and why). */
export function onEvidenceResult(item, outcome, { status, body }) {
  if (outcome === 'retry' || (item.kind !== 'photo' && item.kind !== 'answers')) return;
  const v = visits().find((x) => x.client_id === item.checkin_client_id);
  if (!v) return;
  const list = item.kind === 'photo' ? 'photos' : 'answers';
  const mark = (e) => (e.client_id === item.evidence_id
    ? { ...e, status: outcome === 'sent' ? 'sent' : 'refused', http: status, ...(outcome === 'sent' ? { id: body?.id } : { detail: body?.detail || body?.title || '' }) }
    : e);
  saveVisit({ ...v, [list]: (v[list] ?? []).map(mark) });
  view.redraw();
}

function field(item) {
  const name = item.key;
  const id = `q-${name}`;
  const req = item.required ? ' *' : '';
  const label = el('label', { for: id, class: 'q-label' }, `${item.label}${req}`);
  let input;
  switch (item.type) {
    case 'yes_no':
      input = el('div', { class: 'choices', role: 'radiogroup', 'aria-label': item.label },
        ['true', 'false'].map((v) => el('label', { class: 'choice' }, el('input', { type: 'radio', name, value: v, id: v === 'true' ? id : null }), t(v === 'true' ? 'yes' : 'no'))));
      break;
    case 'number':
      input = el('input', { id, name, type: 'text', inputmode: item.integer ? 'numeric' : 'decimal', autocomplete: 'off' });
      break;
    case 'choice':
      input = el('div', { class: 'choices', 'aria-label': item.label },
        (item.choices ?? []).map((c, i) => el('label', { class: 'choice' }, el('input', { type: item.multiple ? 'checkbox' : 'radio', name, value: c, id: i === 0 ? id : null }), c)));
      break;
    default:
      input = el('textarea', { id, name, rows: 2 });
  }
  const hint = item.type === 'number' && (item.min != null || item.max != null)
    ? el('span', { class: 'muted hint' }, `${item.min ?? '…'} – ${item.max ?? '…'}`) : null;
  return el('div', { class: 'q', 'data-key': name, 'data-type': item.type }, label, hint, input, el('p', { class: 'error', 'data-error-for': name, role: 'alert' }));
}

function drawForm(visit) {
  const form = $('checklist');
  const lists = state.checklists ?? [];
  const checklist = lists.find((c) => c.id === chosen) ?? lists[0];
  const key = `${visit.client_id}|${checklist?.id}|${language()}|${lists.length}`;
  if (drawn === key) return;
  drawn = key;
  if (!checklist) { form.replaceChildren(el('p', { class: 'muted' }, t('no_checklist'))); return; }
  const picker = lists.length > 1
    ? el('select', { name: '_checklist', 'aria-label': t('checklist'), onchange: (e) => { chosen = Number(e.target.value); view.redraw(); } },
      lists.map((c) => el('option', { value: c.id, selected: c.id === checklist.id }, `${c.name} v${c.version}`)))
    : null;
  form.dataset.checklist = String(checklist.id);
  form.onsubmit = (e) => { e.preventDefault(); submitAnswers(openVisit() ?? visit, checklist, form); };
  form.replaceChildren(
    el('h3', {}, `${t('checklist')}: ${checklist.name} v${checklist.version}`), picker,
    ...(checklist.items ?? []).map(field),
    el('button', { type: 'submit', class: 'primary', 'data-testid': 'save-answers' }, t('save_answers')),
    el('p', { class: 'form-status muted', role: 'status' }),
  );
}

/** Shows the evidence panel for the open check-in, if there is one. */
export function renderEvidence() {
  const box = $('evidence');
  const visit = state.plan ? openVisit() : null;
  box.hidden = !visit;
  if (!visit) { drawn = null; return; }
  $('evidence-outlet').textContent = visit.outlet_name;
  $('photo-note').placeholder = t('photo_note');
  const input = $('photo-input');
  input.onchange = async () => {
    const files = [...input.files];
    input.value = '';
    for (const f of files) await addPhoto(openVisit() ?? visit, f);
  };
  const photos = visit.photos ?? [];
  const count = (s) => photos.filter((p) => p.status === s).length;
  $('photo-status').textContent = photos.length
    ? `${t('photos_taken')}: ${photos.length} (${t('waiting')} ${count('waiting')}, ${t('sent')} ${count('sent')}, ${t('refused')} ${count('refused')})`
    : t('no_photos_yet');
  drawForm(visit);
}
