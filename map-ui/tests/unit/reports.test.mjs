// The reports view's helpers: the default export period, the bulletin's months, month-over-month
// changes and ranks, and an export's progress.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  change, defaultPeriod, figure, localDay, MAX_EXPORT_DAYS, monthOf, periodDays, periodProblem, previousMonth, progressOf,
  ranked, rankText, size,
} from '../../src/map/views/reports.helpers.js';

test('the default period is the week ending today, across month and year ends', () => {
  assert.deepEqual(defaultPeriod('2026-03-10'), { from: '2026-03-04', to: '2026-03-10' });
  assert.deepEqual(defaultPeriod('2026-03-03'), { from: '2026-02-25', to: '2026-03-03' });
  assert.deepEqual(defaultPeriod('2025-01-02', 3), { from: '2024-12-31', to: '2025-01-02' });
  assert.deepEqual(defaultPeriod('2024-03-01', 2), { from: '2024-02-29', to: '2024-03-01' }, 'leap day');
  assert.throws(() => defaultPeriod('2026-02-30'), RangeError);
  assert.equal(localDay(new Date(2026, 0, 5, 23, 59)), '2026-01-05', 'the local calendar day, not UTC\'s');
});

test('a period is checked as the server does: both days, in order, at most 366 days', () => {
  assert.equal(periodDays('2026-01-01', '2026-01-01'), 1);
  assert.equal(periodDays('2026-01-01', '2026-12-31'), 365);
  assert.equal(periodProblem('2026-01-01', '2026-01-07'), null);
  assert.equal(periodProblem('', '2026-01-07'), 'rpt_bad_day');
  assert.equal(periodProblem('2026-01-08', '2026-01-07'), 'rpt_to_before_from');
  assert.equal(periodProblem('2024-01-01', '2024-12-31'), null, `${MAX_EXPORT_DAYS} days in a leap year`);
  assert.equal(periodProblem('2024-01-01', '2025-01-01'), 'rpt_too_long');
});

test('months: the one holding a day and the one before', () => {
  assert.equal(monthOf('2026-12-06'), '2026-12');
  assert.equal(previousMonth('2026-12'), '2026-11');
  assert.equal(previousMonth('2026-01'), '2025-12');
});

test('a month-over-month change shows an arrow, the signed points and its trend', () => {
  assert.deepEqual(change(3.24), { arrow: '▲', text: '+3.2', trend: 'up' });
  assert.deepEqual(change(-12.06), { arrow: '▼', text: '-12.1', trend: 'down' });
  assert.deepEqual(change(0.04), { arrow: '→', text: '0.0', trend: 'flat' });
  assert.deepEqual(change(-0.04), { arrow: '→', text: '0.0', trend: 'flat' });
  assert.deepEqual(change(null), { arrow: '', text: '–', trend: 'none' });
  assert.equal(figure(87.25), '87.3%');
  assert.equal(figure(null), '–');
});

test('ranks: shared ones are marked, the unranked come last, ties by name', () => {
  const rows = [
    { login: 'c', plan_compliance: { rank: 2 } },
    { login: 'd', plan_compliance: { rank: null } },
    { login: 'b', plan_compliance: { rank: 2 } },
    { login: 'a', plan_compliance: { rank: 1 } },
  ];
  const order = ranked(rows, 'plan_compliance');
  assert.deepEqual(order.map((r) => r.login), ['a', 'b', 'c', 'd']);
  assert.deepEqual(rows.map((r) => r.login), ['c', 'd', 'b', 'a'], 'the input is kept');
  const ranks = rows.map((r) => r.plan_compliance.rank);
  assert.deepEqual(order.map((r) => rankText(r.plan_compliance.rank, ranks)), ['1', '=2', '=2', '–']);
  assert.deepEqual(ranked([{ code: 'Z', coverage: { rank: 1 } }, { code: 'A', coverage: { rank: 1 } }], 'coverage').map((r) => r.code), ['A', 'Z']);
});

test('an export\'s progress: whole percent, 100 once done, failures told apart', () => {
  assert.deepEqual(progressOf({ status: 'running', progress_pct: 42.7 }), { pct: 42, done: false, failed: false });
  assert.deepEqual(progressOf({ status: 'queued', progress_pct: 0 }), { pct: 0, done: false, failed: false });
  assert.deepEqual(progressOf({ status: 'done', progress_pct: 99 }), { pct: 100, done: true, failed: false });
  assert.deepEqual(progressOf({ status: 'failed', progress_pct: 30 }), { pct: 30, done: false, failed: true });
  assert.equal(size(512), '512 B');
  assert.equal(size(2048), '2.0 KiB');
  assert.equal(size(3 * 1024 * 1024), '3.0 MiB');
});
