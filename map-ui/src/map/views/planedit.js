// The plan editor's pure helpers for ordering and picking (no page, no API): which outlets a lasso
// drawn on the map takes into the day being edited, a day's stops in the order they were dragged
// to, and the day order of the solver (`POST /beats/day-order`): the body sent, its answer applied
// to the day's stops (what does not fit the day kept at its end with the reason) and its field
// errors moved onto the editor's rows. Unit tests: tests/unit/planedit.test.mjs.
import { booleanPointInPolygon } from '@turf/boolean-point-in-polygon';
import { dayKey, renumber, shortTime } from './planrules.js';

/**
 * A freehand path (`[[lon, lat], ...]`, as drawn) as a closed GeoJSON polygon, or null when it
 * encloses nothing (fewer than 3 distinct points).
 */
export function lassoPolygon(path) {
  const points = (path ?? []).filter((p) => Array.isArray(p) && Number.isFinite(p[0]) && Number.isFinite(p[1]));
  if (new Set(points.map((p) => `${p[0]},${p[1]}`)).size < 3) return null;
  const [first] = points;
  const last = points[points.length - 1];
  const ring = first[0] === last[0] && first[1] === last[1] ? points : [...points, first];
  return { type: 'Polygon', coordinates: [ring] };
}

/**
 * The ids of `outlets` (`{id, lat, lon}`) inside the lasso `path` that the day `day`
 * (`{weekday, week_of_cycle, visit_date}`, as an item names its day) does not plan yet among
 * `items`, in the order of `outlets`. An outlet planned on another day is taken.
 */
export function lassoPick(outlets, path, items, day) {
  const polygon = lassoPolygon(path);
  if (!polygon) return [];
  const key = dayKey(day);
  const planned = new Set(items.filter((i) => dayKey(i) === key).map((i) => Number(i.outlet_id)));
  const taken = new Set();
  return outlets.filter((o) => {
    if (!Number.isFinite(o.lat) || !Number.isFinite(o.lon) || planned.has(o.id) || taken.has(o.id)) return false;
    if (!booleanPointInPolygon([o.lon, o.lat], polygon)) return false;
    taken.add(o.id);
    return true;
  }).map((o) => o.id);
}

/**
 * The items with one day's stops in a new order: `rows` are the indexes (into `items`) of that
 * day's stops as they now stand; the day keeps its places in the list. Renumbered. Unchanged
 * (renumbered) when `rows` are not exactly one day's stops.
 */
export function reorderDay(items, rows) {
  const slots = [...rows].sort((a, b) => a - b);
  const key = items[rows[0]] ? dayKey(items[rows[0]]) : null;
  const dayRows = items.map((it, i) => (dayKey(it) === key ? i : -1)).filter((i) => i >= 0);
  if (key == null || slots.length !== dayRows.length || slots.some((s, k) => s !== dayRows[k])) return renumber(items);
  const out = [...items];
  slots.forEach((slot, k) => { out[slot] = items[rows[k]]; });
  return renumber(out);
}

/** Each day's rows (indexes into `items`) in list order: `[{key, rows}]`, days in their first appearance's order. */
export function dayGroups(items) {
  const days = new Map();
  items.forEach((it, i) => {
    const k = dayKey(it);
    if (!days.has(k)) days.set(k, []);
    days.get(k).push(i);
  });
  return [...days.entries()].map(([key, rows]) => ({ key, rows }));
}

/**
 * The body of `POST /beats/day-order` for one day's stops (`dayItems`, in their order): each stop's
 * outlet, window and expected seconds (`durationOf(item)` when the item names none), the working
 * hours `{start, end}` (`HH:MM`, left out when empty) and the solver's seconds.
 */
export function dayOrderBody(repId, dayItems, hours, maxSeconds, durationOf = () => null) {
  const stops = dayItems.map((it) => {
    const s = { outlet_id: Number(it.outlet_id) };
    if (it.window_start) s.window_start = shortTime(it.window_start);
    if (it.window_end) s.window_end = shortTime(it.window_end);
    const secs = Number(it.expected_duration_s) || durationOf(it);
    if (secs) s.expected_duration_s = Math.round(secs);
    return s;
  });
  return {
    rep_id: repId, stops, ...(hours?.start ? { day_start: shortTime(hours.start) } : {}),
    ...(hours?.end ? { day_end: shortTime(hours.end) } : {}), ...(maxSeconds ? { max_seconds: maxSeconds } : {}),
  };
}

/**
 * The items with the stops of the day `key` in the solver's order (`answer.stops`, each given its
 * `arrival`), then those it could not place (`answer.unplaced`, each given its `unplaced`
 * reason), then any stop the answer does not name; the day keeps its places in the list; other
 * days are as they were. Renumbered.
 */
export function applyDayOrder(items, key, answer) {
  const rows = items.map((it, i) => (dayKey(it) === key ? i : -1)).filter((i) => i >= 0);
  const left = rows.map((i) => items[i]);
  const take = (outletId) => {
    const k = left.findIndex((it) => Number(it.outlet_id) === Number(outletId));
    return k < 0 ? null : left.splice(k, 1)[0];
  };
  const ordered = [];
  for (const s of [...(answer.stops ?? [])].sort((a, b) => a.seq - b.seq)) {
    const it = take(s.outlet_id);
    if (it) ordered.push({ ...it, arrival: s.arrival ?? '', unplaced: '' });
  }
  for (const u of answer.unplaced ?? []) {
    const it = take(u.outlet_id);
    if (it) ordered.push({ ...it, arrival: '', unplaced: u.reason ?? '' });
  }
  ordered.push(...left.map((it) => ({ ...it, arrival: '', unplaced: '' })));
  const out = [...items];
  rows.forEach((slot, k) => { out[slot] = ordered[k]; });
  return renumber(out);
}

/**
 * A refusal of `POST /beats/day-order` with its fields named as the editor's rows:
 * `stops[2].window_end` → `items[<rows[2]>].window_end` (`rows` the day's indexes into the items);
 * other fields as they are.
 */
export function dayOrderErrors(err, rows) {
  const errors = (err?.errors ?? []).map((e) => {
    const m = /^stops\[(\d+)\](.*)$/.exec(String(e.field ?? ''));
    if (!m || rows[Number(m[1])] == null) return e;
    return { ...e, field: `items[${rows[Number(m[1])]}]${m[2] || '.outlet_id'}` };
  });
  return Object.assign(Object.create(Object.getPrototypeOf(err ?? {})), err, { errors });
}
