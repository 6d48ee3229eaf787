// An admin imports a CSV with two bad rows: the check (the server's dry run) names both with their
// line and field while none of the file's codes exist yet; atomic mode cannot go ahead; switched to
// partial, the check again, then the import writes the good rows only.
import assert from 'node:assert/strict';

export const name = 'outlet-import: check a CSV, see its bad rows, import the good ones';

export default async function (t) {
  const token = t.tokens.admin;
  const tiers = (await t.api(token, 'GET', '/tier-policies')).body;
  const tier = tiers[0].tier;
  const some = (await t.api(token, 'GET', '/outlets?limit=1')).body.items[0];
  const stamp = Date.now();
  const code = (n) => `WB-IMP-${stamp}-${n}`;
  const { lat, lon } = some;
  const csv = [
    'code,name,channel_type,tier,lat,lon',
    `${code(1)},导入网点一,business_hall,${tier},${lat + 0.001},${lon}`,
    `${code(2)},导入网点二,kiosk,${tier},${lat + 0.002},${lon}`,
    `${code(3)},导入网点三,other,${tier},95,${lon}`,
    `${code(4)},导入网点四,agent_point,${tier},${lat + 0.003},${lon}`,
  ].join('\n');
  const existing = async () => {
    const found = await t.api(token, 'GET', `/outlets?q=WB-IMP-${stamp}&limit=100`);
    assert.equal(found.status, 200);
    return found.body.items.map((o) => o.code).sort();
  };

  const page = await t.open(token, { hash: '#outlets', viewport: { width: 390, height: 844 } });
  await page.waitForSelector('[data-testid=outlets] tbody tr');
  await page.click('#ol-import summary');
  await page.setInputFiles('#ol-file', { name: 'outlets.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.click('[data-testid=import-check]');
  await page.waitForSelector('[data-testid=import-preview]:not([hidden]) [data-testid=import-errors]');
  const bad = await page.$$eval('[data-testid=import-errors] tbody tr', (rows) => rows.map((r) => [r.dataset.row, r.dataset.field, r.cells[0].textContent.trim()]));
  assert.deepEqual(bad, [['3', 'channel_type', '3'], ['4', 'lat', '4']], 'both bad rows, by line and field');
  const counts = await page.$$eval('[data-count]', (bs) => Object.fromEntries(bs.map((b) => [b.dataset.count, Number(b.textContent)])));
  assert.deepEqual(counts, { rows: 4, inserted: 2, updated: 0, unchanged: 0, rejected: 2 });
  assert.deepEqual(await existing(), [], 'the check wrote nothing');
  assert.equal(await page.isDisabled('[data-testid=import-confirm]'), true, 'atomic mode with bad rows cannot be imported');
  await page.waitForSelector('[data-testid=import-blocked]');
  await page.screenshot({ path: `${t.shots}/workbench-outlet-import.png`, fullPage: true });

  // Partial mode: a new check (the old one no longer holds), then the import of the good rows.
  await page.selectOption('#ol-import-form [name=mode]', 'partial');
  await page.waitForSelector('[data-testid=import-preview]', { state: 'hidden' });
  assert.equal(await page.isDisabled('[data-testid=import-confirm]'), true, 'a changed request needs a new check');
  await page.click('[data-testid=import-check]');
  await page.waitForSelector('[data-testid=import-confirm]:not([disabled])');
  assert.deepEqual(await existing(), []);
  await page.click('[data-testid=import-confirm]');
  await page.waitForFunction(() => document.querySelector('[data-testid=import-result]').textContent.length > 0, null, { timeout: 15000 });
  assert.deepEqual(await page.evaluate(() => {
    const r = globalThis.fieldvisitOutlets.imported;
    return [r.dry_run, r.inserted, r.rejected];
  }), [false, 2, 2]);
  assert.deepEqual(await existing(), [code(1), code(4)]);
  const four = (await t.api(token, 'GET', `/outlets?q=${code(4)}`)).body.items[0];
  assert.equal(four.channel_type, 'agent_point');
  assert.ok(Math.abs(four.lat - (lat + 0.003)) < 1e-9);
}
