// Each role sees the workbench views it may use, and the address opens a view directly.
import assert from 'node:assert/strict';

export const name = 'navigation shows each role its views';

export default async function (t) {
  const views = async (page) => page.$$eval('#views a', (as) => as.map((a) => a.dataset.view));
  const admin = await t.open(t.tokens.admin);
  const adminViews = await views(admin);
  assert.equal(adminViews[0], 'map');
  const rep = await t.open(t.tokens.rep);
  const repViews = await views(rep);
  assert.ok(repViews.includes('map'));
  for (const v of repViews) assert.ok(adminViews.includes(v), `${v}: a rep sees nothing an admin does not`);
  for (const v of ['plans', 'outlets', 'people', 'reviews', 'settings']) assert.ok(!repViews.includes(v), `a rep has no ${v} view`);
  // A view named in the address the caller may not open shows the map.
  const direct = await t.open(t.tokens.rep, { hash: '#settings' });
  assert.equal(await direct.evaluate(() => document.getElementById('app').hidden), false);
}
