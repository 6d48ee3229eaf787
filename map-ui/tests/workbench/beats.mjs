// A district manager generates a 4-week beat for a rep of their district in #plans and accepts it;
// the rep's earlier plan overlapping it is ended first (after the manager confirms). Then, through
// the API: the rep's planned visits for the 4 weeks exist, every outlet of the rep's territory is
// planned at least as often as its tier asks, every planned visit lies within its outlet's time
// window (two outlets have one) and within the working hours, and each day's stops fit them.
// Standing alone: the workflow makes its own territory (north of the demo city, where no demo
// outlet is), rep and outlets.
import assert from 'node:assert/strict';
import { ok, ownGrid } from './_team.mjs';

export const name = 'beats: generate a 4-week beat and accept it';

const TIERS = ['A', 'B', 'C', 'VIP', 'A', 'B', 'C', 'B'];
const WINDOWS = { 1: ['10:00', '12:00'], 4: ['14:00', '16:30'] };

const minutesOf = (hhmm) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
const addDay = (iso, n) => new Date(Date.parse(`${iso}T00:00:00Z`) + n * 86400000).toISOString().slice(0, 10);

export default async function (t) {
  const mgr = t.tokens.managerD1;
  const stamp = `${Date.now()}`;
  // A small grid of the manager's district, north of the demo outlets (they end at 40.10°N).
  const lat0 = 40.13 + Math.random() * 0.06, lon0 = 116.29 + Math.random() * 0.12, d = 0.006;
  const { me, territory, rep } = await ownGrid(t, { key: 'beats', label: 'Beats', lat: lat0, lon: lon0, half: d, stamp });
  const timeZone = me.org.timezone;
  const outlets = [];
  for (const [i, tier] of TIERS.entries()) {
    const o = ok(await t.api(mgr, 'POST', '/outlets', {
      code: `WBB-${stamp}-${i}`, name: `Beats outlet ${i}`, channel_type: 'franchise_store', tier, territory_id: territory.id,
      lat: lat0 - d * 0.8 + (i % 4) * d * 0.5, lon: lon0 - d * 0.8 + Math.floor(i / 4) * d * 1.2,
    }), `outlet ${i}`);
    assert.equal(o.territory_id, territory.id, 'the outlet is in the workflow\'s territory');
    outlets.push(o);
  }
  for (const [i, [start, end]] of Object.entries(WINDOWS)) {
    ok(await t.api(mgr, 'PATCH', `/outlets/${outlets[i].id}`, { attributes: { window_start: start, window_end: end } }), 'window');
  }
  // An earlier plan from today, open-ended, with a stop before working hours: were it left in
  // force, its visits would break the checks below.
  const today = new Intl.DateTimeFormat('en-CA', { timeZone }).format(new Date());
  const old = ok(await t.api(mgr, 'POST', '/plans', {
    rep_id: rep.id, name: 'old plan', cycle_weeks: 1, valid_from: today,
    items: [1, 2, 3, 4, 5, 6, 7].map((weekday) => ({ outlet_id: outlets[2].id, weekday, window_start: '07:00', window_end: '07:30', expected_duration_s: 600 })),
  }), 'old plan');

  const page = await t.open(mgr, { hash: '#plans', viewport: { width: 390, height: 844 } });
  await page.waitForSelector(`#plans-rep option[value="${rep.id}"]`, { state: 'attached', timeout: 30000 });
  await page.selectOption('#plans-rep', String(rep.id));
  await page.waitForFunction((n) => globalThis.fieldvisitPlans.features.length === n, outlets.length, { timeout: 30000 });
  const shownOnMap = await page.evaluate(() => globalThis.fieldvisitPlans.features.map((f) => [Number(f.id), f.properties.tier]));
  assert.deepEqual(shownOnMap.sort((a, b) => a[0] - b[0]), outlets.map((o) => [o.id, o.tier]), "the map shows the rep's outlets by tier");
  await page.waitForSelector(`[data-testid=plan-${old.id}]`);

  await page.fill('#generate-form [name=max_seconds]', '3');
  assert.equal(await page.inputValue('#generate-form [name=cycle_weeks]'), '4', 'the cycle is 4 weeks by default');
  await page.click('#generate-form button[type=submit]');
  await page.waitForSelector('[data-testid=proposal-summary]', { timeout: 60000 });
  const proposal = await page.evaluate(() => globalThis.fieldvisitPlans.proposal);
  assert.equal(proposal.cycle_weeks, 4);
  assert.deepEqual(proposal.reps.map((r) => r.rep_id), [rep.id]);
  const proposed = proposal.reps[0];
  assert.equal(proposal.unplaced.length, 0, `every visit is placed: ${JSON.stringify(proposal.unplaced)}`);
  // What the page shows: placed / required, each stop with its reason, the travel saved.
  assert.equal(await page.textContent(`[data-testid=proposal-rep-${rep.id}] [data-testid=placed]`), `${proposed.placed_visits} / ${proposed.required_visits}`);
  assert.equal(await page.locator(`[data-testid=proposal-rep-${rep.id}] .why`).count(), proposed.items.length);
  assert.ok((await page.textContent(`[data-testid=proposal-rep-${rep.id}] .why >> nth=0`)).includes('tier'), 'each stop says why');
  assert.equal((await t.api(mgr, 'GET', `/plans?rep_id=${rep.id}`)).body.length, 1, 'nothing is saved before Accept');
  await page.screenshot({ path: `${t.shots}/workbench-beats.png`, fullPage: true });

  await page.click('[data-testid=proposal-accept]');
  await page.waitForSelector('[data-testid=proposal-confirm]:not([hidden]) [data-testid=proposal-confirm-yes]');
  assert.ok((await page.textContent('[data-testid=proposal-confirm]')).includes('old plan'), 'the overlapping plan is named');
  await page.click('[data-testid=proposal-confirm-yes]');
  await page.waitForFunction(() => document.querySelector('[data-testid=proposal-accepted]').textContent.length > 0, null, { timeout: 30000 });

  const plans = ok(await t.api(mgr, 'GET', `/plans?rep_id=${rep.id}`), 'plans');
  const ended = plans.find((p) => p.id === old.id);
  assert.equal(ended.valid_to, addDay(proposal.valid_from, -1), 'the old plan ends the day before the beat starts');
  const beat = plans.find((p) => p.id !== old.id);
  assert.equal(beat.valid_from, proposal.valid_from);
  assert.equal(beat.cycle_weeks, 4);
  assert.equal(beat.items.length, proposed.items.length);

  // The planned visits of the 4 weeks, day by day, in the org's local time.
  const policies = ok(await t.api(mgr, 'GET', '/tier-policies'), 'tier policies');
  const local = (instant) => new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(instant));
  const [dayStart, dayEnd] = [minutesOf(proposal.day_start), minutesOf(proposal.day_end)];
  const counts = new Map();
  let planned = 0;
  for (let k = 0; k < 28; k += 1) {
    const date = addDay(proposal.valid_from, k);
    const day = ok(await t.api(mgr, 'GET', `/reps/${rep.id}/plan?date=${date}`), `plan of ${date}`);
    let busy = 0;
    for (const v of day.visits) {
      planned += 1;
      counts.set(v.outlet_id, (counts.get(v.outlet_id) ?? 0) + 1);
      const [from, to] = [minutesOf(local(v.window_start)), minutesOf(local(v.window_end))];
      assert.ok(from >= dayStart && to <= dayEnd, `${date} ${v.outlet_code}: ${local(v.window_start)}-${local(v.window_end)} within working hours`);
      const index = outlets.findIndex((o) => o.id === v.outlet_id);
      assert.ok(index >= 0, `${date}: ${v.outlet_code} is an outlet of the rep's territory`);
      if (WINDOWS[index]) {
        const [ws, we] = WINDOWS[index].map(minutesOf);
        assert.ok(from >= ws && to <= we, `${date} ${v.outlet_code}: ${local(v.window_start)}-${local(v.window_end)} within its window ${WINDOWS[index].join('-')}`);
      }
      busy += v.expected_duration_s;
    }
    assert.ok(busy <= (dayEnd - dayStart) * 60, `${date}: ${busy} s of stops fit the working hours`);
  }
  assert.equal(planned, proposed.placed_visits, 'every accepted visit is planned in the 4 weeks');
  for (const o of outlets) {
    const policy = policies.find((p) => p.tier === o.tier);
    const required = Math.ceil((policy.required_visits * 28) / policy.cycle_days);
    assert.ok((counts.get(o.id) ?? 0) >= required, `${o.code} (tier ${o.tier}): ${counts.get(o.id) ?? 0} planned, ${required} required`);
  }
  // The accepted plan is listed in the view, with its stops.
  await page.waitForSelector(`[data-testid=plan-${beat.id}]`);

  // The editor: one outlet from the searchable list, one clicked on the map, both on Monday.
  await page.click('#plans-new');
  await page.fill('#plan-form [name=valid_from]', addDay(proposal.valid_from, 35));
  await page.dispatchEvent('#plan-form [name=valid_from]', 'change');
  await page.fill('#plans-filter', outlets[3].code);
  await page.click(`[data-testid=plans-found] [data-add="${outlets[3].id}"]`);
  await page.waitForSelector('[data-testid=plan-stops] [data-row="0"]');
  await page.locator('#plans-map').scrollIntoViewIfNeeded();
  const target = outlets[6];
  const point = await page.evaluate(([lon, lat]) => {
    const map = globalThis.fieldvisitPlansMap;
    map.jumpTo({ center: [lon, lat], zoom: 15 });
    const p = map.project([lon, lat]);
    const box = map.getCanvas().getBoundingClientRect();
    return { x: box.left + p.x, y: box.top + p.y };
  }, [target.lon, target.lat]);
  await page.waitForFunction(() => globalThis.fieldvisitPlansMap.loaded());
  await page.mouse.click(point.x, point.y);
  await page.waitForSelector('[data-testid=plan-stops] [data-row="1"]');
  const editorOutlets = async () => page.evaluate(() => globalThis.fieldvisitPlans.editor.items.map((i) => [i.outlet_id, i.seq]));
  assert.deepEqual(await editorOutlets(), [[outlets[3].id, 1], [target.id, 2]], 'added from the list, then from the map');
  // At once: every week is 4 visits in 4 weeks, short of VIP's 8, enough for C's 1; the 6 outlets
  // not in the plan are short too. A 10-hour stop overruns its day (Monday, every week).
  assert.equal(await page.getAttribute('[data-testid=frequency-summary]', 'data-short'), String(outlets.length - 1));
  assert.equal(await page.locator(`[data-testid=frequency-short] [data-outlet="${outlets[3].id}"]`).count(), 1, 'VIP is short');
  assert.equal(await page.locator(`[data-testid=frequency-short] [data-outlet="${target.id}"]`).count(), 0, 'C is not');
  await page.fill('[data-row="0"] [data-k=minutes]', '600');
  await page.dispatchEvent('[data-row="0"] [data-k=minutes]', 'change');
  await page.waitForSelector('[data-testid=days-summary][data-over="4"]'); // each week's Monday
  await page.fill('[data-row="0"] [data-k=minutes]', '30');
  await page.dispatchEvent('[data-row="0"] [data-k=minutes]', 'change');
  await page.waitForSelector('[data-testid=days-summary][data-over="0"]');
  // Order: the map's outlet moves up.
  await page.click('[data-row="1"] [data-move="-1"]');
  assert.deepEqual(await editorOutlets(), [[target.id, 1], [outlets[3].id, 2]]);
  // The server's 422 shows beside the row's field: a window ending before it starts.
  await page.fill('[data-row="1"] [data-k=window_start]', '12:00');
  await page.fill('[data-row="1"] [data-k=window_end]', '11:00');
  await page.dispatchEvent('[data-row="1"] [data-k=window_end]', 'change');
  await page.click('#plan-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('[data-error-for="items[1].window_end"]')?.textContent.length > 0, null, { timeout: 15000 });
  assert.equal(await page.textContent('[data-error-for="items[0].window_end"]'), '', 'only the offending row is marked');
  await page.fill('[data-row="1"] [data-k=window_end]', '13:00');
  await page.dispatchEvent('[data-row="1"] [data-k=window_end]', 'change');
  await page.click('#plan-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('[data-testid=plan-saved]').textContent.length > 0, null, { timeout: 15000 });
  const made = ok(await t.api(mgr, 'GET', `/plans?rep_id=${rep.id}`), 'plans').find((p) => p.valid_from === addDay(proposal.valid_from, 35));
  assert.ok(made, 'the edited plan is saved');
  assert.deepEqual(made.items.sort((a, b) => a.seq - b.seq).map((i) => [i.outlet_id, i.seq, i.weekday, i.window_start?.slice(0, 5) ?? null]),
    [[target.id, 1, 1, null], [outlets[3].id, 2, 1, '12:00']]);

  // Revise it from its first day: one stop less (PUT /plans/{id}?from=).
  await page.click(`[data-testid=plan-${made.id}] summary`);
  await page.click(`[data-revise="${made.id}"]`);
  await page.waitForSelector('#plan-form [name=from]');
  assert.equal(await page.inputValue('#plan-form [name=from]'), made.valid_from);
  await page.click('[data-row="1"] [data-remove]');
  await page.waitForFunction(() => !document.querySelector('[data-testid=plan-stops] [data-row="1"]'));
  await page.click('#plan-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('[data-testid=plan-saved]').textContent.length > 0, null, { timeout: 15000 });
  const revised = ok(await t.api(mgr, 'GET', `/plans/${made.id}`), 'revised plan');
  assert.deepEqual(revised.items.filter((i) => i.retired_from == null).map((i) => i.outlet_id), [target.id], 'the revision is in force');

  // The view follows the language switch.
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('#view-plans h1').textContent === '拜访计划');
  assert.equal(await page.textContent('[data-testid=days-summary]'), '每天都在工作时间内。');
}
