// An admin at 390 px adds a tier and changes its policy; enters a retention of 0 days and sees it
// refused beside the field with nothing stored, then saves a good retention that the API returns;
// edits a checklist (a bad key refused beside it, then a new item) and the API has a new version.
// A manager sees the tier policies and checklists read-only, without the ping settings.
// Harmless to other workflows: the tier and the checklist are this workflow's own (new names),
// and the retention it changes is restored in `finally`.
import assert from 'node:assert/strict';

export const name = 'settings: tier policies, checklist versions, retention';

export default async function (t) {
  const admin = t.tokens.admin;
  const stamp = Date.now().toString(36);
  const tier = `wb${stamp}`;
  const checklistName = `wb-settings ${stamp}`;
  const original = await t.api(admin, 'GET', '/settings/pings');
  assert.equal(original.status, 200, JSON.stringify(original.body));
  const created = await t.api(admin, 'POST', '/checklists', {
    name: checklistName, items: [{ key: 'shelf_ok', label: 'Shelf in order', type: 'yes_no', required: true, expect: true }],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.version, 1);
  const errorOf = (page, sel) => page.waitForFunction((s) => document.querySelector(s)?.textContent.trim().length > 0, sel, { timeout: 15000 });

  const page = await t.open(admin, { hash: '#settings', viewport: { width: 390, height: 844 } });
  try {
    await page.waitForSelector('[data-testid=pings-form]', { timeout: 30000 });

    // A tier of its own: added, then its policy changed (a bad value refused beside its field).
    await page.click('#new-tier summary');
    await page.fill('#new-tier-form [name=tier]', tier);
    await page.fill('#new-tier-form [name=required_visits]', '3');
    await page.fill('#new-tier-form [name=min_dwell_s]', '240');
    await page.click('#new-tier-form button[type=submit]');
    const tierForm = `[data-testid="tier-${tier}"]`;
    await page.waitForSelector(tierForm, { timeout: 15000 });
    const policy = async () => (await t.api(admin, 'GET', '/tier-policies')).body.find((p) => p.tier === tier);
    assert.deepEqual(await policy(), { tier, required_visits: 3, cycle_days: 28, min_dwell_s: 240, default_radius_m: 100 });
    await page.fill(`${tierForm} [name=min_dwell_s]`, '');
    await page.click(`${tierForm} button[type=submit]`);
    await errorOf(page, `${tierForm} [data-error-for=min_dwell_s]`);
    await page.fill(`${tierForm} [name=min_dwell_s]`, '240');
    await page.fill(`${tierForm} [name=required_visits]`, '0');
    await page.click(`${tierForm} button[type=submit]`);
    await errorOf(page, `${tierForm} [data-error-for=required_visits]`);
    assert.equal((await policy()).required_visits, 3, 'a refused policy stores nothing');
    await page.fill(`${tierForm} [name=required_visits]`, '4');
    await page.fill(`${tierForm} [name=default_radius_m]`, '80');
    await page.click(`${tierForm} button[type=submit]`);
    await page.waitForFunction((s) => document.querySelector(`${s} [data-testid=tier-saved]`)?.textContent.trim(), tierForm, { timeout: 15000 });
    assert.deepEqual(await policy(), { tier, required_visits: 4, cycle_days: 28, min_dwell_s: 240, default_radius_m: 80 });

    // Retention: 0 days is refused beside the field and nothing is stored; a good value is kept.
    const retention = '[name="pings.retention_days"]';
    await page.fill(retention, '0');
    await page.click('#pings-form button[type=submit]');
    await errorOf(page, '#pings-form [data-error-for="pings.retention_days"]');
    const afterBad = await t.api(admin, 'GET', '/settings/pings');
    assert.deepEqual(afterBad.body.settings, original.body.settings, 'a refused change stores nothing');
    const wanted = original.body.retention_days + 1;
    await page.fill(retention, String(wanted));
    await page.click('#pings-form button[type=submit]');
    await page.waitForFunction((v) => document.querySelector('[data-testid=in-force-retention_days]')?.textContent === v, String(wanted), { timeout: 15000 });
    const afterGood = await t.api(admin, 'GET', '/settings/pings');
    assert.equal(afterGood.body.retention_days, wanted);
    assert.equal(afterGood.body.settings.retention_days, wanted);
    for (const k of Object.keys(original.body.settings)) {
      if (k !== 'retention_days') assert.deepEqual(afterGood.body.settings[k], original.body.settings[k], `${k} is left as it was`);
    }

    // The checklist: a bad key refused beside it (no new version), then a changed label and a new
    // number item saved as version 2.
    await page.click(`[data-testid="checklist-${checklistName}"] [data-checklist-open]`);
    await page.waitForSelector('[data-testid=checklist-form]');
    await page.fill('[name="items[0].key"]', 'Shelf OK');
    await page.click('#checklist-form button[type=submit]');
    await errorOf(page, '#checklist-form [data-error-for="items[0].key"]');
    const latest = async () => (await t.api(admin, 'GET', '/checklists')).body.find((c) => c.name === checklistName);
    assert.equal((await latest()).version, 1, 'a refused checklist adds no version');
    await page.fill('[name="items[0].key"]', 'shelf_ok');
    await page.fill('[name="items[0].label"]', 'Shelf tidy and stocked');
    await page.click('#add-item');
    await page.waitForSelector('[name="items[1].key"]');
    await page.selectOption('[name="items[1].type"]', 'number');
    await page.waitForSelector('[name="items[1].min"]');
    await page.fill('[name="items[1].key"]', 'facings');
    await page.fill('[name="items[1].label"]', 'Facings');
    await page.check('[name="items[1].integer"]');
    await page.fill('[name="items[1].min"]', '0');
    await page.click('#checklist-form button[type=submit]');
    await page.waitForFunction((n) => document.querySelector(`[data-testid="checklist-${n}"] [data-testid=checklist-version]`)?.textContent === '2', checklistName, { timeout: 15000 });
    const v2 = await latest();
    assert.equal(v2.version, 2);
    assert.notEqual(v2.id, created.body.id, 'a new version is a new checklist id');
    assert.deepEqual(v2.items, [
      { key: 'shelf_ok', label: 'Shelf tidy and stocked', type: 'yes_no', required: true, expect: true },
      { key: 'facings', label: 'Facings', type: 'number', required: false, integer: true, min: 0 },
    ]);
    assert.equal((await t.api(admin, 'GET', `/checklists/${created.body.id}`)).body.version, 1, 'version 1 is kept');

    // Usable at 390 px: nothing wider than the screen.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth
      && document.getElementById('view-settings').scrollWidth <= document.getElementById('view-settings').clientWidth), 'no horizontal scrolling');
    await page.screenshot({ path: `${t.shots}/workbench-settings.png`, fullPage: true });
  } finally {
    const restore = await t.api(admin, 'PUT', '/settings/pings', { retention_days: original.body.settings.retention_days ?? null });
    assert.equal(restore.status, 200, `retention restored: ${JSON.stringify(restore.body)}`);
  }

  // A manager reads the tier policies and checklists, changes nothing, and has no ping settings.
  const manager = await t.open(t.tokens.managerD1, { hash: '#settings' });
  await manager.waitForSelector(`[data-testid=tier-table] tr[data-tier="${tier}"]`, { timeout: 30000 });
  await manager.waitForSelector('[data-testid=settings-read-only]');
  assert.equal(await manager.locator('#view-settings form').count(), 0, 'no form for a manager');
  assert.equal(await manager.locator('[data-testid=pings]').count(), 0, 'no ping settings for a manager');
  await manager.click(`[data-testid="checklist-${checklistName}"] [data-checklist-open]`);
  await manager.waitForSelector('[data-testid=checklist-items] tbody tr:nth-child(2)');
}
