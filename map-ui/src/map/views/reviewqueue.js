// The review queue's pure helpers (no DOM, no API): the filter as a query string, the kinds and
// their labels, the bulk decision's body, and what a bulk answer says item by item.

/** The queue's kinds in the order the filter lists them (GET /reviews/queue `kind`). */
export const KINDS = ['suspect', 'unverified', 'disputed', 'claim'];

/** Most items one bulk decision takes (POST /reviews/bulk). */
export const MAX_BULK = 500;

/** The string key of a kind's label (`suspect` → `kind_suspect`). */
export function kindLabel(kind) {
  return KINDS.includes(kind) ? `kind_${kind}` : 'kind_other';
}

/**
 * The filter `{kinds: [...], rep_id, territory_id, from, to}` as the queue's query parameters, in a
 * fixed order, leaving out what is unset (all kinds is no `kind`: the server's default).
 */
export function filterParams(f = {}) {
  const p = [];
  const kinds = KINDS.filter((k) => (f.kinds ?? []).includes(k));
  if (kinds.length && kinds.length < KINDS.length) p.push(['kind', kinds.join(',')]);
  for (const k of ['rep_id', 'territory_id', 'from', 'to']) {
    const v = f[k];
    if (v !== undefined && v !== null && String(v).trim() !== '') p.push([k, String(v).trim()]);
  }
  return p;
}

/** The queue's path for one page of the filter: `/reviews/queue?kind=..&limit=..&after=..`. */
export function queuePath(f, { limit = 50, after = null } = {}) {
  const p = [...filterParams(f), ['limit', String(limit)]];
  if (after != null) p.push(['after', String(after)]);
  return `/reviews/queue?${p.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`;
}

/** The filter as the bulk decision's `filter` object (numbers for the ids, absent when unset). */
export function bulkFilter(f = {}) {
  const out = {};
  for (const [k, v] of filterParams(f)) out[k] = k.endsWith('_id') ? Number(v) : v;
  return out;
}

/** An item's key in a selection: `visit:12` style, by the queue's own kind and id. */
export function itemKey(item) {
  return `${item.kind}:${item.id}`;
}

/**
 * The body of POST /reviews/bulk: the decision and reason for the listed `items` (queue items or
 * `{kind, id}`), or for the `filter` when `items` is null.
 */
export function bulkBody(decision, reason, { items = null, filter = {} } = {}) {
  const body = { decision, reason: String(reason ?? '').trim() };
  if (items) body.items = items.map(({ kind, id }) => ({ kind, id }));
  else body.filter = bulkFilter(filter);
  return body;
}

/**
 * How many items a bulk decision will decide: the selection's size, or the filter's matches
 * capped at what one request takes; `remaining` what a filter leaves for another request.
 */
export function bulkCount({ selected = 0, total = 0, byFilter = false } = {}) {
  if (!byFilter) return { count: selected, remaining: 0 };
  const count = Math.min(total, MAX_BULK);
  return { count, remaining: total - count };
}

/** The reason, trimmed, or null when there is none (a decision needs one). */
export function reasonOf(text) {
  const r = String(text ?? '').trim();
  return r ? r : null;
}

/**
 * A bulk answer item by item: `{decided: n, refused: [{key, kind, id, refusal, detail}], remaining}`,
 * the refusals in the order the server gave them.
 */
export function bulkOutcome(answer = {}) {
  return {
    decided: (answer.decided ?? []).length,
    refused: (answer.refused ?? []).map((r) => ({ key: itemKey(r), kind: r.kind, id: r.id, refusal: r.refusal, detail: r.detail ?? '' })),
    remaining: answer.remaining ?? 0,
  };
}

/** An API link of a queue item (`/api/v1/visits/3/reviews`) as a path for the API client. */
export function apiPath(link) {
  return String(link ?? '').replace(/^\/api\/v1(?=\/)/, '');
}

/** A template's `{name}` places filled from `vars` (`{n} items` with `{n: 3}` → `3 items`). */
export function fill(template, vars = {}) {
  return String(template).replace(/\{(\w+)\}/g, (all, k) => (k in vars ? String(vars[k]) : all));
}
