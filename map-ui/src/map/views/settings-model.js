// The settings view's pure helpers: a checklist item between the API's shape and the editor's
// fields, and a change of the org's ping settings as the keys the admin changed.

/** The checklist item types the API knows, and the fields each adds to an item. */
export const ITEM_TYPES = {
  yes_no: ['expect'],
  number: ['integer', 'min', 'max', 'expect_min', 'expect_max'],
  choice: ['choices', 'multiple', 'expect_in'],
  text: ['max_length'],
};

/** The editor's checkboxes: absent from a form's entries when unchecked. */
export const ITEM_CHECKBOXES = ['required', 'integer', 'multiple'];

/** `a, b; c` or one per line → `['a', 'b', 'c']`. */
export function parseList(text) {
  return String(text ?? '').split(/[,;，；\n]/).map((s) => s.trim()).filter(Boolean);
}

/** Text typed for a number: the number, or the text itself when it is none (the server names it). */
function numberOf(text) {
  const s = String(text).trim();
  return s !== '' && Number.isFinite(Number(s)) ? Number(s) : s;
}

/** An API item as the editor's fields (texts and checkbox booleans). */
export function itemFields(item = {}) {
  const text = (v) => (v == null ? '' : String(v));
  return {
    key: text(item.key), label: text(item.label), type: item.type ?? 'yes_no', required: Boolean(item.required),
    outlet_attribute: text(item.outlet_attribute),
    expect: item.expect == null ? '' : String(item.expect),
    integer: Boolean(item.integer), min: text(item.min), max: text(item.max),
    expect_min: text(item.expect_min), expect_max: text(item.expect_max),
    choices: (item.choices ?? []).join(', '), multiple: Boolean(item.multiple), expect_in: (item.expect_in ?? []).join(', '),
    max_length: text(item.max_length),
  };
}

/** The editor's fields as the item the API takes: only the fields of its type, empty ones left out. */
export function itemOf(fields) {
  const item = { key: String(fields.key ?? '').trim(), label: String(fields.label ?? '').trim(), type: fields.type, required: Boolean(fields.required) };
  const attribute = String(fields.outlet_attribute ?? '').trim();
  if (attribute) item.outlet_attribute = attribute;
  const given = (k) => String(fields[k] ?? '').trim() !== '';
  if (fields.type === 'yes_no') {
    if (given('expect')) item.expect = fields.expect === 'true';
  } else if (fields.type === 'number') {
    item.integer = Boolean(fields.integer);
    for (const k of ['min', 'max', 'expect_min', 'expect_max']) if (given(k)) item[k] = numberOf(fields[k]);
  } else if (fields.type === 'choice') {
    item.choices = parseList(fields.choices);
    item.multiple = Boolean(fields.multiple);
    if (given('expect_in')) item.expect_in = parseList(fields.expect_in);
  } else if (fields.type === 'text') {
    if (given('max_length')) item.max_length = numberOf(fields.max_length);
  }
  return item;
}

/**
 * The items' fields from a form's entries named `items[i].field` (`[name, value]` pairs, as
 * `FormData` gives them): `count` items, checkboxes absent from the entries unchecked.
 */
export function itemsFromEntries(entries, count) {
  const items = Array.from({ length: count }, () => Object.fromEntries(ITEM_CHECKBOXES.map((k) => [k, false])));
  for (const [name, value] of entries) {
    const m = /^items\[(\d+)\]\.(\w+)$/.exec(name);
    if (!m || Number(m[1]) >= count) continue;
    items[Number(m[1])][m[2]] = ITEM_CHECKBOXES.includes(m[2]) ? true : value;
  }
  return items;
}

/** The ping settings the form edits: numbers as text, as the form shows them. */
export const PING_NUMBERS = ['retention_days', 'utc_offset_minutes', 'home_radius_m'];
export const PING_FLAGS = ['working_hours_only', 'blur_home'];

/**
 * What the form shows of `GET /settings/pings`'s answer: the values in force where the answer
 * gives them, the stored ones for the rest (`utc_offset_minutes`, `working_hours`).
 */
export function pingsShown(answer) {
  const stored = answer.settings ?? {};
  const text = (v) => (v == null ? '' : String(v));
  return {
    retention_days: text(answer.retention_days),
    utc_offset_minutes: text(stored.utc_offset_minutes),
    home_radius_m: text(answer.home_radius_m),
    working_hours_only: Boolean(answer.working_hours_only),
    blur_home: Boolean(answer.blur_home),
    working_hours: stored.working_hours ?? null,
  };
}

/**
 * The body of `PUT /settings/pings`: the keys whose value in `now` differs from `before` (both as
 * `pingsShown` gives them); an emptied number is `null` (back to its default).
 */
export function pingsChange(before, now) {
  const body = {};
  for (const k of PING_NUMBERS) {
    const a = String(before[k] ?? '').trim();
    const b = String(now[k] ?? '').trim();
    if (a !== b) body[k] = b === '' ? null : numberOf(b);
  }
  for (const k of PING_FLAGS) if (Boolean(before[k]) !== Boolean(now[k])) body[k] = Boolean(now[k]);
  const hours = (h) => (h && Object.keys(h).length ? h : null);
  // The server may keep the days in another order: compared day by day.
  const same = (a, b) => JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b ?? {}).sort());
  if (!same(hours(before.working_hours), hours(now.working_hours))) body.working_hours = hours(now.working_hours);
  return body;
}
