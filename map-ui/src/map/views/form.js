// What the workbench's forms share: the server's field errors shown beside their fields, and the
// weekly working hours as text a manager can type.
import { t } from '../../common/i18n.js';
import { esc } from '../../common/text.js';

/**
 * The server's field errors by field: `{field: [reason, ...]}` (an error without a field under
 * `''`), from a problem+json `errors` list.
 */
export function fieldMessages(errors = []) {
  const out = {};
  for (const e of errors) (out[e.field ?? ''] ??= []).push(e.reason ?? e.message ?? '');
  return out;
}

/**
 * Where a field's error may be shown, most specific first: the field, then each shorter path
 * (`pings.working_hours.mon[0]` → `pings.working_hours.mon`, `pings.working_hours`, `pings`).
 */
export function errorTargets(field) {
  const out = [field];
  for (let i = field.length - 1; i > 0; i -= 1) if (field[i] === '.' || field[i] === '[') out.push(field.slice(0, i));
  return out;
}

/**
 * Shows an API error in `form`: each field's reasons in its `[data-error-for=field]` element (or
 * the element of the nearest enclosing path, `items[3]` then `items` for `items[3].weekday`), the
 * rest and the detail in `[data-error-for=""]`. Clears earlier ones. `err` null clears only.
 */
export function showErrors(form, err) {
  for (const el of form.querySelectorAll('[data-error-for]')) el.textContent = '';
  if (!err) return;
  const by = fieldMessages(err.errors);
  const general = [];
  for (const [field, reasons] of Object.entries(by)) {
    const el = field ? errorTargets(field).map((f) => form.querySelector(`[data-error-for="${CSS.escape(f)}"]`)).find(Boolean) : null;
    const text = `${field ? `${field}: ` : ''}${reasons.join('; ')}`;
    if (el) el.textContent = el.textContent ? `${el.textContent}; ${text}` : text;
    else general.push(text);
  }
  const top = form.querySelector('[data-error-for=""]');
  if (top) top.textContent = [err.detail || err.message || t('failed'), ...general].filter(Boolean).join(' — ');
}

/** A labelled input with its error line: `{name, label (key), type, value, attrs}`. */
export function field({ name, label, type = 'text', value = '', attrs = '' }) {
  return `<label class="field"><span>${esc(t(label))}</span>
    <input name="${name}" type="${type}" value="${esc(String(value ?? ''))}" ${attrs}>
    <small class="field-error" data-error-for="${name}" role="alert"></small></label>`;
}

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** One day's intervals as text: `[["09:00","12:00"],["13:00","18:00"]]` → `09:00-12:00, 13:00-18:00`. */
export function intervalsText(intervals = []) {
  return intervals.map(([a, b]) => `${a}-${b}`).join(', ');
}

/**
 * A day's text back into intervals; `{intervals}` or `{error}` naming what is wrong. Empty text is
 * no working time that day.
 */
export function parseIntervals(text) {
  const parts = String(text ?? '').split(/[,;]/).map((p) => p.trim()).filter(Boolean);
  const intervals = [];
  for (const part of parts) {
    const m = /^(\d{1,2}):(\d{2})\s*[-–~至]\s*(\d{1,2}):(\d{2})$/.exec(part);
    if (!m) return { error: `“${part}”: HH:MM-HH:MM` };
    const [h1, m1, h2, m2] = m.slice(1).map(Number);
    if (h1 > 24 || h2 > 24 || m1 > 59 || m2 > 59 || (h2 === 24 && m2 > 0) || (h1 === 24 && m1 > 0)) return { error: `“${part}”: HH:MM-HH:MM` };
    const pad = (n) => String(n).padStart(2, '0');
    intervals.push([`${pad(h1)}:${pad(m1)}`, `${pad(h2)}:${pad(m2)}`]);
  }
  return { intervals };
}

/** The week's working hours from `{mon: text, ...}`: `{hours}` or `{errors: {day: reason}}`. */
export function parseWeek(texts) {
  const hours = {};
  const errors = {};
  for (const day of WEEKDAYS) {
    const { intervals, error } = parseIntervals(texts[day]);
    if (error) errors[day] = error;
    else if (intervals.length) hours[day] = intervals;
  }
  return Object.keys(errors).length ? { errors } : { hours };
}
