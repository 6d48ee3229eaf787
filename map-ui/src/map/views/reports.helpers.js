// The reports view's pure helpers: the default export period, the bulletin's months, its
// month-over-month changes and ranks, and an export's progress as text. No DOM, no API: unit
// tested in tests/unit/reports.test.mjs.

/** Most days an export may span (docs/api.md "Exports and verify"). */
export const MAX_EXPORT_DAYS = 366;

const DAY_MS = 86400000;
const parseDay = (s) => {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(s ?? ''));
  if (!m) return null;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCDate() === Number(m[3]) ? d : null;
};
const dayText = (d) => d.toISOString().slice(0, 10);

/** The local calendar day of `now` (a Date) as YYYY-MM-DD. */
export function localDay(now = new Date()) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

/** The default export period: the `days` days ending on `today` (YYYY-MM-DD), both included. */
export function defaultPeriod(today, days = 7) {
  const to = parseDay(today);
  if (!to) throw new RangeError(`not a day: ${today}`);
  return { from: dayText(new Date(to.getTime() - (days - 1) * DAY_MS)), to: dayText(to) };
}

/** Days from `from` to `to`, both included (0 when `to` is before `from`); null for a bad day. */
export function periodDays(from, to) {
  const a = parseDay(from);
  const b = parseDay(to);
  if (!a || !b) return null;
  return Math.max(0, Math.round((b - a) / DAY_MS) + 1);
}

/** What is wrong with an export period, as a string key (`rpt_bad_day`, `rpt_to_before_from`, `rpt_too_long`), or null. */
export function periodProblem(from, to) {
  const n = periodDays(from, to);
  if (n == null) return 'rpt_bad_day';
  if (n === 0) return 'rpt_to_before_from';
  if (n > MAX_EXPORT_DAYS) return 'rpt_too_long';
  return null;
}

/** The month (YYYY-MM) holding `day` (YYYY-MM-DD). */
export function monthOf(day) { return String(day).slice(0, 7); }

/** The month before `month` (YYYY-MM). */
export function previousMonth(month) {
  const [y, m] = month.split('-').map(Number);
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
}

/**
 * A month-over-month change in percentage points as shown: `{arrow, text, trend}` with trend
 * `up`, `down`, `flat` (under 0.05 points either way) or `none` (no figure last month or now).
 */
export function change(pp) {
  if (pp == null || !Number.isFinite(pp)) return { arrow: '', text: '–', trend: 'none' };
  const r = Math.round(pp * 10) / 10;
  if (r === 0) return { arrow: '→', text: '0.0', trend: 'flat' };
  return r > 0 ? { arrow: '▲', text: `+${r.toFixed(1)}`, trend: 'up' } : { arrow: '▼', text: r.toFixed(1), trend: 'down' };
}

/** A percentage figure of the bulletin (`–` without one). */
export function figure(v) { return v == null || !Number.isFinite(v) ? '–' : `${v.toFixed(1)}%`; }

/**
 * Ranks as shown: `1`, `2`, and `=2` where several share a rank (competition ranking: 1, =2, =2,
 * 4), `–` for the unranked. `ranks` are all the ranks of the table.
 */
export function rankText(rank, ranks) {
  if (rank == null) return '–';
  return ranks.filter((r) => r === rank).length > 1 ? `=${rank}` : String(rank);
}

/**
 * The rows of a bulletin table ordered by the standing `key` (`plan_compliance`, ...): best rank
 * first, the unranked last, then by `tie` (a row's name or code). A copy; the input is kept.
 */
export function ranked(rows, key, tie = (r) => r.login ?? r.code ?? '') {
  const rank = (r) => r[key]?.rank ?? Infinity;
  return [...rows].sort((a, b) => rank(a) - rank(b) || String(tie(a)).localeCompare(String(tie(b))));
}

/** An export job's state as `{pct, done, failed}` (pct 0–100, whole). */
export function progressOf(job) {
  const done = job?.status === 'done';
  const failed = job?.status === 'failed';
  const pct = done ? 100 : Math.max(0, Math.min(100, Math.floor(Number(job?.progress_pct) || 0)));
  return { pct, done, failed };
}

/** A file size in bytes as text (B, KiB, MiB). */
export function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
