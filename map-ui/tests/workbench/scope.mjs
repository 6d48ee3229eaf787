// A manager of one territory sees none of another territory's outlets, reps or visits in any
// screen: every workbench view the manager may open (read from the navigation, so a view added
// later is covered too) is opened, and nothing the page received from the server (JSON, GeoJSON,
// vector tiles) nor anything it shows names an outlet code, rep login or rep name outside the scope.
import assert from 'node:assert/strict';

export const name = 'a manager sees nothing of another territory';

/** Every item of a paged list (`{items, next}`). */
async function all(t, token, path) {
  const out = [];
  let after = '';
  for (;;) {
    const sep = path.includes('?') ? '&' : '?';
    const res = await t.api(token, 'GET', `${path}${sep}limit=1000${after}`);
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
    out.push(...res.body.items);
    if (res.body.next === undefined || res.body.next === null) return out;
    after = `&after=${res.body.next}`;
  }
}

export default async function (t) {
  const { admin, managerD1: manager } = t.tokens;
  // What lies outside the manager's scope: what the admin sees and the manager does not.
  const mine = new Set((await all(t, manager, '/outlets')).map((o) => o.code));
  const foreignOutlets = (await all(t, admin, '/outlets'))
    .map((o) => o.code)
    .filter((c) => !mine.has(c));
  const myUsers = new Set((await all(t, manager, '/users')).map((u) => u.id));
  const foreignReps = (await all(t, admin, '/users')).filter((u) => u.role === 'rep' && !myUsers.has(u.id));
  assert.ok(mine.size > 0, 'the manager has outlets of their own');
  assert.ok(foreignOutlets.length > 0 && foreignReps.length > 0, 'another territory has outlets and reps');
  // Beijing's outlet codes are `BJ-000123`; rep logins `rep3`; names are Chinese.
  const needles = [
    ...foreignOutlets.map((c) => ({ what: `outlet ${c}`, re: new RegExp(`(^|[^\\w-])${c}(?![\\w-])`) })),
    ...foreignReps.flatMap((u) => [
      { what: `rep login ${u.login}`, re: new RegExp(`"${u.login}"`) },
      { what: `rep name ${u.name}`, re: new RegExp(u.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) },
    ]),
  ];
  const leak = (text, where) => {
    for (const n of needles) assert.ok(!n.re.test(text), `${where} names ${n.what}`);
  };

  const page = await t.open(manager);
  const received = [];
  page.on('response', async (r) => {
    const u = r.url();
    if (!u.startsWith(t.base) || !/\/(api|tiles|collections)\b|\/api\/v1\//.test(u)) return;
    try {
      received.push({ url: u, text: (await r.body()).toString('latin1') });
    } catch { /* a stream or an aborted request */ }
  });
  const views = await page.$$eval('#views a', (as) => as.map((a) => a.dataset.view));
  assert.ok(views.length > 1, `the manager has workbench views: ${views}`);
  for (const view of views) {
    await page.evaluate((v) => { window.location.hash = `#${v}`; }, view);
    await page.waitForLoadState('networkidle');
    // Names and codes are UTF-8 in the bodies; compare as text.
    leak(await page.evaluate(() => document.body.innerText), `the ${view} view`);
  }
  // The map's layers as well: pan over the whole org (the layers ask for what is in view).
  await page.evaluate(() => { window.location.hash = '#map'; });
  await page.waitForLoadState('networkidle');
  assert.ok(received.length > 0, 'the pages asked the server for data');
  for (const r of received) leak(Buffer.from(r.text, 'latin1').toString('utf8'), r.url);
}
