// The monthly bulletin in the reports view: a supervisor reads the team's ranking with last month's
// figures and the change in points as the API gives them, and picks another month; a rep, on a
// phone-sized screen, sees the leaderboard of their territory with their own row marked, and
// their own outlets that need a visit.
import assert from 'node:assert/strict';

export const name = 'bulletin: ranked tables, month over month, a rep\'s own row';

/** The rows of a bulletin table as shown: [rep id, rank text, trend]. */
const rowsOf = (page, key) => page.$$eval(`[data-testid=bulletin-${key}] tbody tr[data-rep]`,
  (trs) => trs.map((tr) => [Number(tr.dataset.rep), tr.cells[0].textContent.trim(), tr.querySelector('[data-trend]').dataset.trend]));

const trendOf = (pp) => (pp == null ? 'none' : Math.abs(pp) < 0.05 ? 'flat' : pp > 0 ? 'up' : 'down');

export default async function (t) {
  const sup = (await t.api(t.tokens.supervisor, 'GET', '/me')).body.user;
  const page = await t.open(t.tokens.supervisor, { hash: '#reports' });
  await page.waitForSelector('[data-testid=bulletin-plan_compliance] tbody tr');
  const month = await page.inputValue('[data-testid=report-month]');
  const team = Number(await page.inputValue('[data-testid=report-team]'));
  assert.equal(team, sup.territory_id ?? team, 'the team is the supervisor\'s territory');
  const api = (await t.api(t.tokens.supervisor, 'GET', `/territories/${team}/assessment?month=${month}`)).body;
  assert.ok(api.reps.length > 0, 'the demo team has reps');
  for (const key of ['plan_compliance', 'verified_rate']) {
    const shown = await rowsOf(page, key);
    assert.equal(shown.length, api.reps.length);
    const ranks = shown.map(([, r]) => Number(r.replace('=', '')) || Infinity);
    assert.deepEqual(ranks, [...ranks].sort((a, b) => a - b), `${key}: best first`);
    for (const [rep, rank, trend] of shown) {
      const s = api.reps.find((r) => r.rep_id === rep)[key];
      assert.equal(rank.replace('=', ''), s.rank == null ? '–' : String(s.rank), `${key} rank of rep ${rep}`);
      assert.equal(trend, trendOf(s.change_pp), `${key} change of rep ${rep}`);
    }
  }

  // Another month: the tables are of that month.
  const [y, m] = month.split('-').map(Number);
  const previous = m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
  await page.fill('[data-testid=report-month]', previous);
  await page.dispatchEvent('[data-testid=report-month]', 'change');
  await page.waitForFunction((p) => globalThis.fieldvisitReports.bulletin?.month === p, previous);
  assert.match(await page.textContent('[data-testid=bulletin]'), new RegExp(`${previous}-01`));

  // A rep: their own territory's leaderboard, their row marked; their reminders.
  const rep = (await t.api(t.tokens.rep, 'GET', '/me')).body.user;
  const phone = await t.open(t.tokens.rep, { hash: '#reports', viewport: { width: 390, height: 844 } });
  await phone.waitForSelector('[data-testid=bulletin-plan_compliance] tbody tr');
  const mine = await phone.$$eval('[data-testid=bulletin-plan_compliance] tr.me', (trs) => trs.map((tr) => Number(tr.dataset.rep)));
  assert.deepEqual(mine, [rep.id], 'exactly the rep\'s own row is marked');
  const others = await phone.$$eval('[data-testid=bulletin-plan_compliance] tbody tr[data-rep]', (trs) => trs.length);
  assert.ok(others > 1, 'the rep sees the team, not only themselves');
  await phone.waitForSelector('[data-testid=reminders], [data-testid=reminders-empty]');
  const theirs = (await t.api(t.tokens.rep, 'GET', `/reps/${rep.id}/reminders?horizon_days=7&limit=50`)).body;
  const listed = await phone.$$eval('[data-testid=reminders] li', (lis) => lis.map((li) => Number(li.dataset.outlet)));
  assert.deepEqual(listed, theirs.outlets.map((o) => o.outlet_id));
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `nothing is wider than the phone: ${width}px`);
  await phone.screenshot({ path: `${t.shots}/workbench-bulletin-rep.png`, fullPage: true });
}
