// The summary panel's rows and charts (src/map/summary.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barChart, summaryRows } from '../../src/map/summary.js';

test("a rep's own figures", () => {
  const rep = { totals: { plan_compliance_pct: 87.5, planned: 8, done: 6, late: 1, short: 0, missed: 1, visits: 9, unplanned_visits: 2, time_in_market_s: 6 * 3600 + 1800, suspect_visits: 0, verified_rate_pct: null } };
  assert.deepEqual(summaryRows({ rep }), [
    ['plan_pct', '87.5%'], ['planned', 8], ['done', 6], ['late', 1], ['short', 0], ['missed', 1], ['visit_count', 9],
    ['unplanned', 2], ['time_in_market', '6:30'], ['suspect_visits', 0], ['verified_rate', '–'],
  ]);
});

test("a territory's figures, with missing compliance shown as dashes", () => {
  const coverage = {
    outlets: { coverage_pct: 50, frequency_compliance_pct: 33.333, dwell_compliance_pct: null, active_outlets: 40, visited_outlets: 20 },
    h3: { white_space_cells: 3 }, status_counts: { visited: 20, overdue: 5 },
  };
  const rows = summaryRows({ coverage, compliance: null });
  assert.deepEqual(rows, [
    ['plan_pct', '–'], ['coverage_pct', '50.0%'], ['frequency_pct', '33.3%'], ['dwell_pct', '–'],
    ['time_in_market', '0:00'], ['suspect_visits', '–'], ['verified_rate', '–'],
    ['active_outlets', 40], ['visited_outlets', 20], ['white_space', 3],
    ['visited', 20], ['due', 0], ['overdue', 5], ['never_visited', 0], ['closed', 0],
  ]);
  const withPlan = summaryRows({ coverage, compliance: { plan: { plan_compliance_pct: 75, time_in_market_s: 3600, suspect_visits: 2, verified_rate_pct: 90 } } });
  assert.deepEqual(withPlan.slice(0, 7).map(([, v]) => v), ['75.0%', '50.0%', '33.3%', '–', '1:00', 2, '90.0%']);
});

test('a bar chart: one bar per row, as wide as its share of the maximum, labels escaped', () => {
  assert.equal(barChart('x', 'Empty', []), '');
  const svg = barChart('by-tier', 'Coverage <by> tier', [['A', 50, 100, '50.0%', '#111'], ['B&C', 100, 100, '100.0%', '#222'], ['D', 0, 100, '0.0%', '#333']]);
  assert.match(svg, /^<figure data-chart="by-tier"><figcaption>Coverage &lt;by&gt; tier<\/figcaption>/);
  assert.match(svg, /<svg width="260" height="54" role="img" aria-label="Coverage &lt;by&gt; tier">/);
  const widths = [...svg.matchAll(/<rect x="90" y="(\d+)" width="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
  // 120 px is the full bar (260 wide, 90 for the label, 50 for the figure); a zero is still 1 px.
  assert.deepEqual(widths, [[0, 60], [18, 120], [36, 1]]);
  assert.ok(svg.includes('>B&amp;C</text>'));
  assert.ok(!svg.includes('<image'));
  assert.ok(barChart('s', 'S', [['x', 1, 0, '1', '#000', 'data:image/png;base64,AA']]).includes('<image href="data:image/png;base64,AA"'));
  assert.match(barChart('s', 'S', [['x', 5, 0, '5', '#000']]), /width="1"/, 'a zero maximum draws 1 px bars');
});
