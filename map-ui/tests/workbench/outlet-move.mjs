// A district manager moves an outlet of their own (created here through the API) by dragging its
// pin on the outlet's map at phone width, saves, and the history shows both places with their
// periods; the API agrees. A supervisor sees the outlets read-only (no forms, a pin that cannot move).
import assert from 'node:assert/strict';

export const name = 'outlet-move: drag the pin, save, both places in the history';

export default async function (t) {
  const token = t.tokens.managerD1;
  // An outlet of our own in the middle of the manager's district, so that a drag stays inside it.
  const me = (await t.api(token, 'GET', '/me')).body.user;
  const district = await t.api(token, 'GET', `/territories/${me.territory_id}`);
  assert.equal(district.status, 200, JSON.stringify(district.body));
  const corners = district.body.boundary.coordinates.flat(2);
  const mid = (i) => (Math.min(...corners.map((c) => c[i])) + Math.max(...corners.map((c) => c[i]))) / 2;
  const tier = (await t.api(token, 'GET', '/tier-policies')).body[0].tier;
  const code = `WB-MOVE-${Date.now()}`;
  const created = await t.api(token, 'POST', '/outlets', {
    code, name: '拖动测试网点', channel_type: 'other', tier, lat: mid(1), lon: mid(0),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const start = created.body;

  const page = await t.open(token, { hash: '#outlets', viewport: { width: 390, height: 844 } });
  await page.waitForSelector('[data-testid=outlets] tbody tr');
  await page.fill('#ol-filter [name=q]', code);
  await page.waitForFunction((c) => {
    const rows = document.querySelectorAll('[data-testid=outlets] tbody tr');
    return rows.length === 1 && rows[0].dataset.testid === `outlet-${c}`;
  }, code);
  await page.click(`[data-testid="outlet-${code}"] [data-open]`);
  await page.waitForFunction((id) => globalThis.fieldvisitOutlets.outlet?.id === id && globalThis.fieldvisitOutlets.mapLoaded, start.id);
  assert.equal(await page.locator('[data-testid=outlet-history] tr[data-kind=location]').count(), 1);

  // Drag the pin down and to the right: south-east of where it stood.
  // The map in the middle of the screen, so that the whole drag happens over it.
  await page.locator('[data-testid=outlet-map]').evaluate((el) => el.scrollIntoView({ block: 'center' }));
  const pin = page.locator('[data-testid=outlet-pin]');
  const box = await pin.boundingBox();
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move(x + 60, y + 40, { steps: 12 });
  await page.mouse.up();
  await page.waitForSelector('[data-testid=outlet-moved]:not([hidden])');
  const dropped = await page.evaluate(() => {
    const f = document.querySelector('#ol-edit');
    return { lat: Number(f.elements.lat.value), lon: Number(f.elements.lon.value), crs: f.elements.crs.value };
  });
  assert.equal(dropped.crs, 'wgs84');
  assert.ok(dropped.lat < start.lat && dropped.lon > start.lon, `dragged south-east: ${JSON.stringify(dropped)} from ${start.lat},${start.lon}`);
  await page.screenshot({ path: `${t.shots}/workbench-outlet-move.png`, fullPage: true });
  await page.click('#ol-edit button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=outlet-history] tr[data-kind=location]').length === 2,
    null, { timeout: 15000 });

  // The stored history: the old place until the move, the new one since, as the page shows them.
  const history = await t.api(token, 'GET', `/outlets/${start.id}/history`);
  const [before, after] = history.body.locations;
  assert.equal(history.body.locations.length, 2, JSON.stringify(history.body));
  assert.deepEqual([before.lat, before.lon], [start.lat, start.lon]);
  assert.ok(Math.abs(after.lat - dropped.lat) < 1e-6 && Math.abs(after.lon - dropped.lon) < 1e-6, JSON.stringify(after));
  assert.equal(before.valid_to, after.valid_from);
  assert.equal(after.valid_to, null);
  const shown = await page.$$eval('[data-testid=outlet-history] tr[data-kind=location]', (rows) => rows.map((r) => [r.textContent, r.dataset.current]));
  assert.ok(shown[0][0].includes(start.lat.toFixed(6)) && shown[0][1] === 'false', JSON.stringify(shown));
  assert.ok(shown[1][0].includes(after.lat.toFixed(6)) && shown[1][1] === 'true', JSON.stringify(shown));

  // A supervisor reads the outlets but has nothing to change them with.
  const sup = await t.open(t.tokens.supervisor, { hash: '#outlets' });
  await sup.waitForSelector('[data-testid=outlets] tbody tr [data-open]');
  assert.equal(await sup.locator('#ol-new-form, #ol-import-form').count(), 0);
  await sup.click('[data-testid=outlets] tbody tr [data-open]');
  await sup.waitForFunction(() => globalThis.fieldvisitOutlets.mapLoaded && document.querySelector('[data-testid=outlet-history] tr'));
  assert.equal(await sup.locator('#ol-edit, #ol-status').count(), 0);
  assert.equal(await sup.evaluate(() => globalThis.fieldvisitOutlets.marker.isDraggable()), false);
}
