// The outlets view's pure helpers: the list's query, what an edit changes, the import's request
// and its preview's bad rows, and an outlet's history as rows. No DOM, no fetch: unit-tested in
// tests/unit/outlets.test.mjs.

export const STATUSES = ['active', 'suspended', 'closed'];
export const CRS = ['wgs84', 'gcj02', 'bd09'];
export const CHANNEL_TYPES = ['business_hall', 'cooperative_hall', 'phone_mall', 'franchise_store', 'agent_point',
  'collection_point', 'direct_seller', 'campus_point', 'temporary_point', 'other'];

/** The `/outlets` path of a filter `{q, tier, status, territory}` (blank ones left out), one page of `limit`. */
export function listPath(filter = {}, limit = 200) {
  const p = new URLSearchParams();
  for (const k of ['q', 'tier', 'status', 'territory']) {
    const v = String(filter[k] ?? '').trim();
    if (v) p.set(k, v);
  }
  p.set('limit', String(limit));
  return `/outlets?${p}`;
}

/** A path with `?crs=` when the system is not WGS-84 (the server's default). */
export function withCrs(path, crs) {
  return crs && crs !== 'wgs84' ? `${path}${path.includes('?') ? '&' : '?'}crs=${encodeURIComponent(crs)}` : path;
}

/** A number typed in a form (`39,95` reads as 39.95), or null for blank or not a number. */
export function numberOf(text) {
  const s = String(text ?? '').trim().replace(',', '.');
  if (!s) return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

/**
 * The PATCH body of an edit: the fields of `values` (the form, as text) that differ from `outlet`.
 * Blank `address` or `radius_m` clear them (`null`); `lat`/`lon` go together when either moved (a
 * point given in another system always counts as moved).
 */
export function changes(outlet, values, crs = 'wgs84') {
  const body = {};
  for (const k of ['name', 'channel_type', 'tier']) {
    const v = String(values[k] ?? '').trim();
    if (v && v !== String(outlet[k] ?? '')) body[k] = v;
  }
  const address = String(values.address ?? '').trim();
  if (address !== String(outlet.address ?? '')) body.address = address || null;
  const radius = numberOf(values.radius_m);
  if (radius !== (outlet.radius_m ?? null)) body.radius_m = radius;
  const lat = numberOf(values.lat);
  const lon = numberOf(values.lon);
  if (lat != null && lon != null && (crs !== 'wgs84' || lat !== outlet.lat || lon !== outlet.lon)) {
    body.lat = lat;
    body.lon = lon;
  }
  return body;
}

/** The format of an import: the one chosen, else from the file name, else null (the server sniffs). */
export function formatOf(fileName, chosen) {
  if (chosen === 'csv' || chosen === 'geojson') return chosen;
  const n = String(fileName ?? '').toLowerCase();
  if (n.endsWith('.csv') || n.endsWith('.txt')) return 'csv';
  if (n.endsWith('.geojson') || n.endsWith('.json')) return 'geojson';
  return null;
}

/** The import request's path: mode, format, crs and, for the preview, `dry_run=true`. */
export function importPath({ mode = 'atomic', format = null, crs = 'wgs84', dryRun = false } = {}) {
  const p = new URLSearchParams({ mode });
  if (format) p.set('format', format);
  if (crs && crs !== 'wgs84') p.set('crs', crs);
  if (dryRun) p.set('dry_run', 'true');
  return `/outlets/import?${p}`;
}

/** The content type a file of `format` is sent as. */
export function contentTypeOf(format) {
  if (format === 'csv') return 'text/csv';
  if (format === 'geojson') return 'application/geo+json';
  return 'application/octet-stream';
}

/**
 * The bad rows of an import report (or a refused import's problem) as table rows: `{row, field,
 * reason}`, `row` null for the file as a whole; in row order as the server sent them.
 */
export function badRows(report) {
  return (report?.errors ?? []).map((e) => ({ row: e.index ?? null, field: e.field ?? '', reason: e.reason ?? '' }));
}

/**
 * Whether the previewed import may go ahead: something to write, and in atomic mode no bad row
 * (the server would refuse the whole file).
 */
export function canConfirm(report) {
  if (!report) return false;
  const writes = (report.inserted ?? 0) + (report.updated ?? 0);
  if (report.mode === 'atomic' && (report.rejected ?? 0) > 0) return false;
  return writes > 0;
}

/**
 * An outlet's history (`GET /outlets/{id}/history`) as rows, oldest first: each place with its
 * validity period (`to` null: current), and each status change.
 */
export function historyRows(history) {
  const places = (history?.locations ?? []).map((l) => ({
    kind: 'location', from: l.valid_from, to: l.valid_to ?? null, lat: l.lat, lon: l.lon,
  }));
  const statuses = (history?.statuses ?? []).map((s) => ({
    kind: 'status', from: s.changed_at, status: s.status,
  }));
  return [...places, ...statuses].sort((a, b) => String(a.from).localeCompare(String(b.from)));
}

/** A position as text with 6 decimals (about 0.1 m). */
export function positionText(lat, lon) {
  return `${Number(lat).toFixed(6)}, ${Number(lon).toFixed(6)}`;
}
