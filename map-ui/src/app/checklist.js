// The org's visit checklists in the app (pure: no DOM, the unit tests run it under node): the
// latest version of each, the answer a form field gives, and the check of the answers before they
// are sent, the same rules as the server's (crates/fieldvisit-domain/src/checklist.rs,
// `check_answers`): required items, yes/no, numbers (whole, min, max), choices (one or several),
// text length (1000 characters unless the item says). The server checks them again.

/** Longest text answer when an item does not say (the domain's DEFAULT_TEXT_MAX). */
export const DEFAULT_TEXT_MAX = 1000;

/** The latest version of each checklist name in `list` (GET /checklists), by name. */
export function latestChecklists(list = []) {
  const latest = new Map();
  for (const c of list) {
    const had = latest.get(c.name);
    if (!had || c.version > had.version) latest.set(c.name, c);
  }
  return [...latest.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The answer of a form field for `item`: `raw` is the field's value (a string; a list of the
 * ticked choices for a multiple choice). An empty field is null (not answered); a number field
 * that is not a number stays text (the check names it).
 */
export function answerOf(item, raw) {
  if (item.type === 'choice' && item.multiple) return Array.isArray(raw) && raw.length ? raw : null;
  if (raw == null || (typeof raw === 'string' && raw.trim() === '')) return null;
  switch (item.type) {
    case 'yes_no': return raw === 'true' ? true : raw === 'false' ? false : raw;
    case 'number': { const n = Number(String(raw).trim()); return Number.isFinite(n) ? n : raw; }
    default: return raw;
  }
}

/**
 * What is wrong with `answers` (an object by item key) for `items`, in the server's order: each
 * `{ field: 'answers.<key>', key, code, params }` with `code` one of `unknown`, `required`,
 * `not_bool`, `not_number`, `not_whole`, `range` (`{min, max}`), `not_choice` (`{value, choices}`),
 * `not_list`, `not_text`, `too_long` (`{max}`). Empty when the server would take them.
 */
export function checkAnswers(items, answers) {
  const errors = [];
  const known = new Set(items.map((i) => i.key));
  for (const key of Object.keys(answers)) if (!known.has(key)) errors.push({ field: `answers.${key}`, key, code: 'unknown', params: {} });
  for (const item of items) {
    const v = answers[item.key];
    const at = (code, params = {}) => errors.push({ field: `answers.${item.key}`, key: item.key, code, params });
    if (v == null) { if (item.required) at('required'); continue; }
    const problem = checkOne(item, v);
    if (problem) at(problem.code, problem.params);
  }
  return errors;
}

function checkOne(item, v) {
  switch (item.type) {
    case 'yes_no': return typeof v === 'boolean' ? null : { code: 'not_bool' };
    case 'number': {
      if (typeof v !== 'number' || !Number.isFinite(v)) return { code: 'not_number' };
      if (item.integer && !Number.isInteger(v)) return { code: 'not_whole' };
      if ((item.min != null && v < item.min) || (item.max != null && v > item.max)) {
        return { code: 'range', params: { min: item.min ?? '-∞', max: item.max ?? '∞' } };
      }
      return null;
    }
    case 'choice': {
      const choices = item.choices ?? [];
      let picked;
      if (item.multiple) {
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) return { code: 'not_list' };
        picked = v;
      } else {
        if (typeof v !== 'string') return { code: 'not_choice', params: { value: String(v), choices: choices.join(', ') } };
        picked = [v];
      }
      const bad = picked.find((p) => !choices.includes(p));
      return bad == null ? null : { code: 'not_choice', params: { value: bad, choices: choices.join(', ') } };
    }
    case 'text': {
      if (typeof v !== 'string') return { code: 'not_text' };
      const max = item.max_length ?? DEFAULT_TEXT_MAX;
      return [...v].length > max ? { code: 'too_long', params: { max } } : null;
    }
    default: return null;
  }
}
