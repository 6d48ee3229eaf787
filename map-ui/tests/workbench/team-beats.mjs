// The BJ-D1 district manager generates a beat for their whole team (the D1 territory) in #plans
// and accepts it in the browser, confirming that the reps' overlapping plans end. Then, through
// the API: every rep of the proposal has a plan from its `valid_from` whose items are exactly the
// proposal's items for that rep, no other plan of theirs is in force then, the first day's
// planned visits are the proposal's, and no outlet is planned for two reps. Standing alone: the
// demo's D1 reps and outlets (with whatever other workflows added under D1) are the team; what
// it saves starts next Monday, after anything another workflow asserts on.
import assert from 'node:assert/strict';
import { ok } from './_team.mjs';

export const name = 'team-beats: generate a beat for a team and accept it';

/** A plan item as compared: what the API keeps of it, times as `HH:MM`. */
const itemKey = (i) => JSON.stringify([i.outlet_id, i.visit_date ?? null, i.weekday ?? null, i.week_of_cycle ?? null, i.seq,
  i.window_start?.slice(0, 5) ?? null, i.window_end?.slice(0, 5) ?? null, i.expected_duration_s ?? null]);

export default async function (t) {
  const mgr = t.tokens.managerD1;
  const me = ok(await t.api(mgr, 'GET', '/me'), 'me');
  const district = me.user.territory_id;

  const page = await t.open(mgr, { hash: '#plans', viewport: { width: 1280, height: 900 } });
  await page.waitForFunction(() => globalThis.fieldvisitPlans.reps.length > 0, null, { timeout: 30000 });
  const firstRep = await page.evaluate(() => globalThis.fieldvisitPlans.reps[0].id);
  await page.selectOption('#plans-rep', String(firstRep));
  await page.waitForSelector('#generate-form');
  await page.waitForFunction(() => globalThis.fieldvisitPlans.editor != null, null, { timeout: 30000 }); // the rep's data is in
  await page.selectOption('#generate-form [name=scope]', 'team');
  await page.selectOption('#generate-form [name=territory_id]', String(district));
  await page.fill('#generate-form [name=max_seconds]', '3');
  await page.click('#generate-form button[type=submit]');
  await page.waitForSelector('[data-testid=proposal-summary]', { timeout: 120000 });
  const proposal = await page.evaluate(() => globalThis.fieldvisitPlans.proposal);
  const team = proposal.reps.filter((r) => r.plan.items.length);
  assert.ok(team.length >= 2, `the beat is spread over the team's reps: ${proposal.reps.map((r) => `${r.name}: ${r.plan.items.length}`).join(', ')}`);
  for (const r of proposal.reps) {
    assert.equal(await page.locator(`[data-testid=proposal-rep-${r.rep_id}]`).count(), 1, `${r.name} is shown`);
  }
  const planned = new Map();
  for (const r of team) for (const i of r.plan.items) planned.set(i.outlet_id, new Set([...(planned.get(i.outlet_id) ?? []), r.rep_id]));
  assert.deepEqual([...planned].filter(([, reps]) => reps.size > 1), [], 'the proposal gives each outlet to one rep');

  await page.click('[data-testid=proposal-accept]');
  // The reps' plans in force on the day (the demo's open-ended beat plans) are named, then ended.
  await page.waitForSelector('[data-testid=proposal-confirm]:not([hidden]) [data-testid=proposal-confirm-yes]', { timeout: 30000 });
  const named = await page.textContent('[data-testid=proposal-confirm]');
  const demoRep = team.find((r) => named.includes(r.name));
  assert.ok(demoRep, `an overlapping plan of a rep of the team is named: ${named}`);
  await page.click('[data-testid=proposal-confirm-yes]');
  await page.waitForFunction(() => document.querySelector('[data-testid=proposal-accepted]').textContent.length > 0, null, { timeout: 60000 });
  const accepted = await page.evaluate(() => globalThis.fieldvisitPlans.proposal.accepted);

  const outletRep = new Map();
  for (const r of team) {
    const plans = ok(await t.api(mgr, 'GET', `/plans?rep_id=${r.rep_id}`), `plans of ${r.name}`);
    const beat = plans.find((p) => p.id === accepted[r.rep_id]);
    assert.ok(beat, `${r.name} has the accepted plan #${accepted[r.rep_id]}`);
    assert.equal(beat.valid_from, proposal.valid_from, `${r.name}'s plan starts on the proposal's day`);
    assert.ok(beat.active);
    const items = beat.items.filter((i) => i.retired_from == null);
    assert.deepEqual(items.map(itemKey).sort(), r.plan.items.map(itemKey).sort(), `${r.name}'s plan has exactly the proposal's items`);
    const others = plans.filter((p) => p.id !== beat.id && p.active && p.valid_from <= proposal.valid_from
      && (p.valid_to == null || p.valid_to >= proposal.valid_from));
    assert.deepEqual(others.map((p) => p.id), [], `no other plan of ${r.name} is in force on ${proposal.valid_from}`);
    for (const i of items) {
      assert.ok(!outletRep.has(i.outlet_id) || outletRep.get(i.outlet_id) === r.rep_id,
        `outlet ${i.outlet_id} is planned for reps ${outletRep.get(i.outlet_id)} and ${r.rep_id}`);
      outletRep.set(i.outlet_id, r.rep_id);
    }
    // The first day as the rep's plan for that date gives it: the proposal's stops of that day.
    const day = ok(await t.api(mgr, 'GET', `/reps/${r.rep_id}/plan?date=${proposal.valid_from}`), `${r.name}'s first day`);
    assert.deepEqual(day.visits.map((v) => v.outlet_id).sort((a, b) => a - b),
      r.items.filter((i) => i.day === proposal.valid_from).map((i) => i.outlet_id).sort((a, b) => a - b),
      `${r.name}'s planned visits on ${proposal.valid_from} are the proposal's`);
  }
  // The view lists the rep's new plan.
  await page.waitForSelector(`[data-testid=plan-${accepted[firstRep]}]`);
}
