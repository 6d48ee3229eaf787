// What waits in the outbox and what the server refused (with its reason and the fields it named).
import { locale, t } from '../common/i18n.js';
import { $ } from '../common/dom.js';
import { el, online, state } from './context.js';

export function renderOutbox() {
  const kind = (i) => t(`kind_${i.kind}`);
  const time = (iso) => new Date(iso).toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  $('outbox-count').textContent = String(state.waiting.length);
  $('outbox-items').replaceChildren(...(state.waiting.length
    ? state.waiting.slice(0, 20).map((i) => el('li', { 'data-kind': i.kind }, `${kind(i)}${i.label ? ` · ${i.label}` : ''} · ${time(i.created_at)}`))
    : [el('li', { class: 'muted' }, t('outbox_empty'))]));
  $('send-now').hidden = state.waiting.length === 0 || !online();
  $('refused-box').hidden = state.refused.length === 0;
  $('refused').replaceChildren(...state.refused.map((i) => el('li', { 'data-kind': i.kind, 'data-status': i.problem.status },
    `${kind(i)}${i.label ? ` · ${i.label}` : ''}: ${i.problem.key ? t(i.problem.key) : `${i.problem.status} ${i.problem.title} — ${i.problem.detail}`} `,
    i.problem.errors?.length ? el('ul', { class: 'fields' }, i.problem.errors.map((e) => el('li', { 'data-field': e.field }, `${e.field}: ${e.reason}`))) : null,
    el('button', { type: 'button', onclick: () => state.outbox.dismiss(i.seq) }, t('dismiss')))));
}

export async function refreshOutbox() {
  state.waiting = await state.outbox.waiting();
  state.refused = await state.outbox.refused();
  renderOutbox();
}
