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
  const isData = (u) => u.startsWith(t.base) && /\/(api\/v1|tiles|collections)\//.test(u);
  // The live positions stream stays open by design: it is read, but not waited for.
  const isStream = (u) => new URL(u).pathname.endsWith('/live');
  const inflight = new Set();
  page.on('request', (r) => { if (isData(r.url()) && !isStream(r.url())) inflight.add(r); });
  const done = (r) => inflight.delete(r);
  page.on('requestfailed', done);
  page.on('requestfinished', async (r) => {
    done(r);
    if (!isData(r.url()) || isStream(r.url())) return;
    try {
      const res = await r.response();
      if (res) received.push({ url: r.url(), text: (await res.body()).toString('utf8') });
    } catch { /* a body no longer available */ }
  });
  /** Until no data request has been in flight for half a second (a view loads in steps). */
  const settle = async () => {
    for (let quiet = 0, waited = 0; quiet < 5; waited += 1) {
      assert.ok(waited < 600, 'the view settles within a minute');
      await page.waitForTimeout(100);
      quiet = inflight.size === 0 ? quiet + 1 : 0;
    }
  };
  const views = await page.$$eval('#views a', (as) => as.map((a) => a.dataset.view));
  assert.ok(views.length > 1, `the manager has workbench views: ${views}`);
  for (const view of views) {
    await page.evaluate((v) => { window.location.hash = `#${v}`; }, view);
    await settle();
    leak(await page.evaluate(() => document.body.innerText), `the ${view} view`);
  }
  // Back on the map: the layers it asks for again.
  await page.evaluate(() => { window.location.hash = '#map'; });
  await settle();
  assert.ok(received.length > 0, 'the pages asked the server for data');
  for (const r of received) leak(r.text, r.url);
}
