// The beat plans view's pure helpers (no page, no API): what a plan being edited asks of each
// outlet against its tier's frequency, whether each day fits the working hours, the order of a
// day's stops, and where the server's item errors belong. Unit tests: tests/unit/planrules.test.mjs.

/** Minutes since midnight of `HH:MM` (or `HH:MM:SS`); null when it is no time. */
export function minutesOf(hhmm) {
  const m = /^(\d{1,2}):(\d{2})(?::\d{2})?$/.exec(String(hhmm ?? '').trim());
  if (!m || Number(m[1]) > 24 || Number(m[2]) > 59) return null;
  return Number(m[1]) * 60 + Number(m[2]);
}

/** `HH:MM` of a server time (`09:00:00` → `09:00`); '' for none. */
export function shortTime(hhmm) {
  return hhmm ? String(hhmm).slice(0, 5) : '';
}

/**
 * Visits a tier policy asks for in a cycle of `cycleWeeks`: `required_visits` per `cycle_days`
 * scaled to the cycle, rounded up (as the beat generator counts them: A at 4 per 28 days is 4 in
 * 4 weeks, 1 in 1 week).
 */
export function requiredInCycle(policy, cycleWeeks) {
  if (!policy || !(policy.cycle_days > 0)) return 0;
  return Math.ceil((policy.required_visits * cycleWeeks * 7) / policy.cycle_days - 1e-9);
}

/**
 * Visits one item plans in a cycle: a recurring item with a week of the cycle once, without one
 * every week; a dated item once.
 */
export function visitsPerCycle(item, cycleWeeks) {
  if (item.visit_date) return 1;
  return item.week_of_cycle ? 1 : cycleWeeks;
}

/**
 * Each outlet's planned visits per cycle against its tier: `[{outlet_id, tier, required, planned,
 * ok}]` for every outlet of `outlets` (those the plan should cover) and every outlet the items
 * name, least covered first. An outlet of no known tier requires nothing.
 */
export function frequencyCheck(items, outlets, policies, cycleWeeks) {
  const byTier = new Map(policies.map((p) => [p.tier, p]));
  const planned = new Map();
  for (const it of items) planned.set(it.outlet_id, (planned.get(it.outlet_id) ?? 0) + visitsPerCycle(it, cycleWeeks));
  const tierOf = new Map(outlets.map((o) => [o.id, o.tier]));
  const ids = new Set([...outlets.map((o) => o.id), ...planned.keys()]);
  return [...ids].map((id) => {
    const tier = tierOf.get(id) ?? null;
    const required = requiredInCycle(byTier.get(tier), cycleWeeks);
    const n = planned.get(id) ?? 0;
    return { outlet_id: id, tier, required, planned: n, ok: n >= required };
  }).sort((a, b) => (a.planned - a.required) - (b.planned - b.required) || a.outlet_id - b.outlet_id);
}

/** The day an item falls on: `w<week>-d<weekday>` (`w0` every week) or `date-<YYYY-MM-DD>`. */
export function dayKey(item) {
  if (item.visit_date) return `date-${item.visit_date}`;
  return `w${Number(item.week_of_cycle) || 0}-d${Number(item.weekday)}`;
}

/**
 * Whether each day of the cycle fits the working hours: `[{key, week, weekday, date, stops,
 * seconds, available, ok}]`, one per planned day, in calendar order. An item planned every week
 * counts on each week's day. `hours` is `{start, end}` (`HH:MM`); `durationOf(item)` the
 * seconds a stop takes when the item names none.
 */
export function dayLoads(items, cycleWeeks, hours, durationOf = () => 0) {
  const available = Math.max(0, ((minutesOf(hours.end) ?? 0) - (minutesOf(hours.start) ?? 0)) * 60);
  const days = new Map();
  const add = (key, week, weekday, date, item) => {
    const d = days.get(key) ?? { key, week, weekday, date, stops: 0, seconds: 0, available };
    d.stops += 1;
    d.seconds += Number(item.expected_duration_s) || durationOf(item);
    days.set(key, d);
  };
  for (const it of items) {
    if (it.visit_date) add(`date-${it.visit_date}`, null, null, it.visit_date, it);
    else if (it.week_of_cycle) add(dayKey(it), Number(it.week_of_cycle), Number(it.weekday), null, it);
    else for (let w = 1; w <= cycleWeeks; w += 1) add(`w${w}-d${Number(it.weekday)}`, w, Number(it.weekday), null, it);
  }
  return [...days.values()]
    .map((d) => ({ ...d, ok: d.seconds <= d.available }))
    .sort((a, b) => (a.date ?? '') .localeCompare(b.date ?? '') || (a.week ?? 0) - (b.week ?? 0) || (a.weekday ?? 0) - (b.weekday ?? 0));
}

/** Each item's `seq`: its place among the items of its day, in list order (1, 2, ...). */
export function renumber(items) {
  const seen = new Map();
  return items.map((it) => {
    const k = dayKey(it);
    const n = (seen.get(k) ?? 0) + 1;
    seen.set(k, n);
    return { ...it, seq: n };
  });
}

/**
 * The items with item `index` moved one stop earlier (`step` -1) or later (+1) within its day
 * (past the neighbouring stop of the same day), renumbered; unchanged at the day's end.
 */
export function moveStop(items, index, step) {
  const k = dayKey(items[index]);
  let j = index + step;
  while (j >= 0 && j < items.length && dayKey(items[j]) !== k) j += step;
  if (j < 0 || j >= items.length) return renumber(items);
  const out = [...items];
  [out[index], out[j]] = [out[j], out[index]];
  return renumber(out);
}

/** Great-circle metres between two `{lat, lon}`. */
export function metresBetween(a, b) {
  const r = Math.PI / 180;
  const dLat = (b.lat - a.lat) * r, dLon = (b.lon - a.lon) * r;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * r) * Math.cos(b.lat * r) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/**
 * The items with each day's stops ordered as a nearest-neighbour route from the day's first stop
 * (`positions` outlet id → `{lat, lon}`; a stop of unknown position keeps its place at the end),
 * days in their first appearance's order, renumbered.
 */
export function orderByNearest(items, positions) {
  const days = new Map();
  for (const it of items) (days.get(dayKey(it)) ?? days.set(dayKey(it), []).get(dayKey(it))).push(it);
  const out = [];
  for (const stops of days.values()) {
    const known = stops.filter((s) => positions.has(s.outlet_id));
    const unknown = stops.filter((s) => !positions.has(s.outlet_id));
    const route = known.length ? [known.shift()] : [];
    while (known.length) {
      const here = positions.get(route[route.length - 1].outlet_id);
      let best = 0;
      for (let i = 1; i < known.length; i += 1) {
        if (metresBetween(here, positions.get(known[i].outlet_id)) < metresBetween(here, positions.get(known[best].outlet_id))) best = i;
      }
      route.push(known.splice(best, 1)[0]);
    }
    out.push(...route, ...unknown);
  }
  return renumber(out);
}

/** Where a server error belongs: `items[3].weekday` → `{index: 3, key: 'weekday'}`; else `{index: null, key: field}`. */
export function itemField(field) {
  const m = /^items\[(\d+)\](?:\.(\w+))?$/.exec(String(field ?? ''));
  return m ? { index: Number(m[1]), key: m[2] ?? '' } : { index: null, key: field ?? '' };
}

/** How much shorter `travel` is than `baseline`, in percent (null without a baseline). */
export function percentShorter(travel, baseline) {
  if (!(baseline > 0)) return null;
  return (100 * (baseline - travel)) / baseline;
}

/** The day before `iso` (`YYYY-MM-DD`). */
export function dayBefore(iso) {
  return new Date(Date.parse(`${iso}T00:00:00Z`) - 86400000).toISOString().slice(0, 10);
}

/**
 * The rep's plans in force on or after `from` that a new plan from `from` to `to` (null =
 * open-ended) would overlap: active, starting by `to` and not ended before `from`.
 */
export function overlapping(plans, from, to = null) {
  return plans.filter((p) => p.active && (p.valid_to == null || p.valid_to >= from) && (to == null || p.valid_from <= to));
}

/** An item of the editor as `POST /plans` wants it: empty fields left out, numbers as numbers. */
export function itemBody(it) {
  const body = { outlet_id: Number(it.outlet_id) };
  if (it.visit_date) body.visit_date = it.visit_date;
  else {
    body.weekday = Number(it.weekday);
    if (it.week_of_cycle) body.week_of_cycle = Number(it.week_of_cycle);
  }
  if (it.window_start) body.window_start = shortTime(it.window_start);
  if (it.window_end) body.window_end = shortTime(it.window_end);
  if (it.expected_duration_s) body.expected_duration_s = Number(it.expected_duration_s);
  if (it.seq != null) body.seq = Number(it.seq);
  return body;
}
