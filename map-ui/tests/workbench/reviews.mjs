// A supervisor opens the review queue on a phone-sized page, finds a suspect visit (a new rep's
// phone sent mock-location fixes at an outlet no one visited in the period), reads its evidence (the mock
// flag, its fixes on the map, no history yet), and accepts it with a reason: the visit leaves the
// queue, its history names the supervisor, and the territory's coverage goes up. Then a bulk
// rejection of the selected items shows how many it will decide and the item refused because it
// was decided meanwhile; in Chinese the opened visit and its map stay; a manager has no such view.
// Everything it needs it makes itself through the API (a rep and phone, an
// outlet, the visits and a claim), so it stands alone.
import assert from 'node:assert/strict';

export const name = 'reviews: accept a suspect visit from the queue';

/** Polls `probe` until it answers something truthy (the derivation worker runs in the background). */
async function until(probe, what, timeoutMs = 240000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    assert.ok(Date.now() < end, `timed out waiting for ${what}`);
    await new Promise((r) => { setTimeout(r, 1000); });
  }
}

const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

/** A point `dx`, `dy` metres east and north of `[lat, lon]`. */
const moved = ([lat, lon], dx, dy) => [lat + dy / 111320, lon + dx / (111320 * Math.cos((lat * Math.PI) / 180))];

export default async function (t) {
  const as = (token) => (method, path, body) => t.api(token, method, path, body);
  const admin = as(t.tokens.admin);
  const sup = as(t.tokens.supervisor);
  const ok = (res, what) => { assert.ok(res.status < 300, `${what}: ${res.status} ${JSON.stringify(res.body)}`); return res.body; };
  const stamp = Date.now().toString(36);
  const supervisor = ok(await sup('GET', '/me'), 'supervisor').user;

  const start = Date.now() - 20 * 3600 * 1000;
  const [from, to] = [isoDay(start - 2 * 86400000), isoDay(Date.now() + 86400000)];

  // Outlet A: an active outlet of the supervisor's scope with no valid visit in the period (never
  // visited) and no other outlet on its spot, so that accepting a visit there changes coverage
  // (coverage counts the outlets active at the period's start: a new outlet would not count).
  const model = ok(await sup('GET', '/outlets?limit=200'), 'outlets').items.find((o) => o.territory_id != null);
  assert.ok(model, 'the demo has an outlet in a territory');
  const unvisited = ok(await sup('GET', `/territories/${model.territory_id}/outlet-status?from=${from}&to=${to}&status=never_visited&limit=1000`), 'outlet status')
    .outlets.filter((o) => o.valid_visits === 0);
  let outletA = null;
  for (let i = 0; i < unvisited.length && !outletA; i += 1) {
    const o = unvisited[(Date.now() + i * 7919) % unvisited.length];
    const near = ok(await sup('GET', `/outlets/nearest?lat=${o.lat}&lon=${o.lon}&k=2`), 'nearest').items;
    if (near.find((n) => n.id !== o.outlet_id)?.distance_m > 20) outletA = { ...o, id: o.outlet_id, territory_id: model.territory_id };
  }
  assert.ok(outletA, 'an outlet never visited in the period');

  // Outlet B: a new outlet of its own in a spot with no outlet within 250 m.
  let spot = null;
  for (let ring = 1; ring <= 12 && !spot; ring += 1) {
    for (let k = 0; k < 8 && !spot; k += 1) {
      const at = moved([model.lat, model.lon], ring * 300 * Math.cos((k * Math.PI) / 4), ring * 300 * Math.sin((k * Math.PI) / 4));
      const near = ok(await sup('GET', `/outlets/nearest?lat=${at[0]}&lon=${at[1]}&k=1`), 'nearest').items;
      if (!near.length || near[0].distance_m > 250) spot = at;
    }
  }
  assert.ok(spot, 'a free spot near the model outlet');
  const code = `wb-rev-${stamp}`;
  const outletB = ok(await admin('POST', '/outlets', {
    code, name: `Review ${code}`, tier: model.tier, channel_type: model.channel_type, lat: spot[0], lon: spot[1],
  }), 'outlet B');

  // A new rep of that territory with a phone that posts mock fixes: 15 minutes at each outlet,
  // yesterday morning (within any working hours of the org's day).
  const rep = ok(await admin('POST', '/users', { login: `wb-rev-${stamp}`, name: `审核测试 ${stamp}`, role: 'rep', territory_id: outletA.territory_id }), 'rep').user;
  const device = ok(await admin('POST', '/devices', { rep_id: rep.id, name: `wb-rev-${stamp}-phone` }), 'device');
  const phone = device.token ?? device.credentials?.token;
  assert.ok(phone, `the device's token: ${JSON.stringify(Object.keys(device))}`);
  const stay = (outlet, from) => Array.from({ length: 15 }, (_, i) => ({
    fix_time: new Date(from + i * 60000).toISOString(), lat: outlet.lat, lon: outlet.lon, accuracy_m: 5, mock: true,
    ping_id: `wb-rev-${stamp}-${outlet.id}-${i}`,
  }));
  const posted = await t.api(phone, 'POST', '/pings', [...stay(outletA, start), ...stay(outletB, start + 40 * 60000)]);
  assert.equal(ok(posted, 'pings').stored, 30, JSON.stringify(posted.body));

  // A check-in at outlet B three hours later, with no fixes then: a claim no visit confirms.
  const claimAt = new Date(start + 3 * 3600 * 1000).toISOString();
  const checkin = ok(await t.api(phone, 'PUT', `/checkins/wb-rev-${stamp}`, {
    outlet_id: outletB.id, checked_in_at: claimAt, lat: outletB.lat, lon: outletB.lon, accuracy_m: 8,
  }), 'check-in');

  const visits = await until(async () => {
    const v = (await sup('GET', `/reps/${rep.id}/visits?from=${from}&to=${to}`)).body.visits ?? [];
    return v.length === 2 ? v : null;
  }, 'the two derived visits');
  await until(async () => {
    const c = (await sup('GET', `/reps/${rep.id}/checkins?from=${from}&to=${to}`)).body;
    return Array.isArray(c) && c.find((x) => x.id === checkin.id)?.status === 'unconfirmed';
  }, 'the check-in to stand unconfirmed (a claim)');
  const visitA = visits.find((v) => v.outlet_id === outletA.id);
  const visitB = visits.find((v) => v.outlet_id === outletB.id);
  assert.ok(visitA && visitB, 'a visit at each outlet');
  assert.equal(visitA.verdict, 'suspect', 'mock fixes make the visit suspect');
  const coverage = async () => ok(await sup('GET', `/territories/${outletA.territory_id}/coverage?from=${from}&to=${to}`), 'coverage').outlets;
  const before = await coverage();

  // The queue of the supervisor's scope, filtered to the new rep, on a phone.
  const page = await t.open(t.tokens.supervisor, { hash: '#reviews', viewport: { width: 390, height: 844 } });
  await page.waitForSelector('[data-testid=queue-total]:not(:empty)');
  await page.selectOption('#queue-filter [name=rep_id]', String(rep.id));
  await page.fill('#queue-filter [name=from]', from);
  await page.fill('#queue-filter [name=to]', isoDay(Date.now()));
  await page.click('#queue-filter button[type=submit]');
  const rowA = `[data-testid=queue-item-suspect-${visitA.id}]`;
  await page.waitForSelector(rowA);
  await page.waitForSelector(`[data-testid=queue-item-claim-${checkin.id}]`);
  const shown = await page.$$eval('[data-testid=queue] tbody tr', (rows) => rows.map((r) => r.dataset.key));
  assert.deepEqual(shown, [`suspect:${visitA.id}`, `suspect:${visitB.id}`, `claim:${checkin.id}`], 'the rep\'s suspect visits and claim, oldest first');
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'nothing overflows 390 px');

  // Its evidence beside it: the outlet, the mock flag, its 15 fixes on the map, no review yet.
  await page.click(`${rowA} [data-open]`);
  await page.waitForSelector(`#review-item[data-loaded="suspect:${visitA.id}"]`);
  const evidence = await page.$$eval('[data-testid=item-evidence] dd', (dds) => Object.fromEntries(dds.map((d) => [d.dataset.key, d.textContent])));
  assert.match(evidence.outlet, new RegExp(outletA.code));
  assert.match(evidence.flags, /mock fixes/);
  assert.equal(evidence.verdict, 'suspect');
  await page.waitForSelector('[data-testid=review-map]:not([hidden]) canvas');
  assert.equal(await page.evaluate(() => globalThis.fieldvisitReviews.fixes.features.length), 15, 'the visit\'s fixes on the map');
  assert.match(await page.textContent('[data-testid=item-history]'), /No review yet/);
  await page.waitForSelector('[data-testid=item-photos] h3');

  // A decision needs a reason: none is refused in the page and nothing is sent.
  await page.click('#decide [data-decision=accepted]');
  await page.waitForFunction(() => document.querySelector('#decide [data-error-for=reason]').textContent.length > 0);
  assert.deepEqual(ok(await sup('GET', `/visits/${visitA.id}/reviews`), 'history'), []);
  const reason = `seen at the counter ${stamp}`;
  await page.fill('#decide [name=reason]', reason);
  await page.click('#decide [data-decision=accepted]');
  await page.waitForSelector('[data-testid=item-history] li[data-decision=accepted]');
  assert.match(await page.textContent('[data-testid=item-history] li[data-decision=accepted]'), new RegExp(supervisor.name));
  await page.waitForSelector(rowA, { state: 'detached' });
  assert.match(await page.textContent('[data-testid=queue-total]'), /Waiting: 2\b/);
  await page.screenshot({ path: `${t.shots}/workbench-reviews.png`, fullPage: true });

  const history = ok(await sup('GET', `/visits/${visitA.id}/reviews`), 'history');
  assert.equal(history.length, 1);
  assert.deepEqual([history[0].decision, history[0].reason, history[0].reviewer_id, history[0].reviewer_name],
    ['accepted', reason, supervisor.id, supervisor.name]);
  const after = await coverage();
  assert.equal(after.visited_outlets, before.visited_outlets + 1, 'the accepted visit covers its outlet');
  assert.ok(after.coverage_pct > before.coverage_pct, `coverage goes up: ${before.coverage_pct} → ${after.coverage_pct}`);

  // Bulk: the other visit and the claim selected; the claim is decided meanwhile (another
  // reviewer), then the selection is rejected: the confirmation counts two items, the answer
  // decides the visit and shows the claim refused, and the queue empties.
  const claimRow = `[data-testid=queue-item-claim-${checkin.id}]`;
  await page.check(`[data-testid=queue-item-suspect-${visitB.id}] [data-select]`);
  await page.check(`${claimRow} [data-select]`);
  ok(await sup('POST', `/checkins/${checkin.id}/decision`, { decision: 'rejected', reason: `another reviewer ${stamp}` }), 'claim decided');
  await page.selectOption('#bulk [name=decision]', 'rejected');
  await page.click('#bulk button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#bulk [data-error-for=reason]').textContent.length > 0);
  assert.equal(await page.isHidden('[data-testid=bulk-confirm]'), true, 'no confirmation without a reason');
  await page.fill('#bulk [name=reason]', `not at the outlet ${stamp}`);
  await page.click('#bulk button[type=submit]');
  await page.waitForSelector('[data-testid=bulk-confirm]:not([hidden])');
  assert.match(await page.textContent('[data-testid=bulk-confirm] p'), /“rejected” to 2 items/);
  await page.click('[data-testid=bulk-confirm] [data-confirm]');
  await page.waitForSelector('[data-testid=bulk-outcome] [data-decided="1"]');
  assert.match(await page.textContent(`[data-testid=bulk-refused] li[data-key="claim:${checkin.id}"]`), /already decided/);
  await page.waitForSelector('[data-testid=queue] tbody tr', { state: 'detached' });
  assert.match(await page.textContent('[data-testid=queue-total]'), /Nothing waits/);
  const b = ok(await sup('GET', `/visits/${visitB.id}/reviews`), 'history B');
  assert.deepEqual(b.map((r) => [r.decision, r.reviewer_id]), [['rejected', supervisor.id]]);

  // In Chinese the view is redrawn with the opened visit and its map still there.
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('#view-reviews h1')?.textContent === '待审核队列');
  await page.waitForSelector(`#review-item[data-loaded="suspect:${visitA.id}"] [data-testid=review-map]:not([hidden]) canvas`);
  assert.match(await page.textContent('[data-testid=item-history]'), /已认可/);

  // A manager may not review: no such view for them, and the address shows the map.
  const manager = await t.open(t.tokens.managerD1, { hash: '#reviews' });
  assert.equal(await manager.$('#views a[data-view=reviews]'), null);
  assert.equal(await manager.evaluate(() => document.getElementById('app').hidden), false);
}
