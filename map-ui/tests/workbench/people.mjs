// An admin creates a rep, adds a phone and gets its enrolment link as QR codes; the link signs a
// phone in; deactivating the phone in the view refuses its token at once; deactivating the rep
// refuses theirs. A manager of one district sees only that district's people.
import assert from 'node:assert/strict';

export const name = 'people: enrol a phone and deactivate it';

export default async function (t) {
  const page = await t.open(t.tokens.admin, { hash: '#people', viewport: { width: 390, height: 844 } });
  await page.waitForSelector('[data-testid=users] tbody tr');
  const login = `wb-people-${Date.now()}`;
  await page.click('#new-user summary');
  await page.fill('#new-user-form [name=login]', login);
  await page.fill('#new-user-form [name=name]', '王测试');
  await page.selectOption('#new-user-form [name=role]', 'rep');
  await page.click('#new-user-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('[data-testid=new-user-token]')?.textContent.includes(':'), null, { timeout: 15000 });
  const tokenText = await page.textContent('[data-testid=new-user-token]');
  const repToken = tokenText.split(': ').pop().trim();
  const meAnswer = await t.api(repToken, 'GET', '/me');
  assert.equal(meAnswer.status, 200, `the shown token is the new rep's: ${tokenText} ${JSON.stringify(meAnswer.body)}`);
  await page.waitForSelector('[data-testid=person]:not([hidden]) [data-testid=new-phone]');
  // A bad form answer is shown beside the form: an empty phone name is refused by the browser,
  // a blank one by the server.
  await page.fill('#new-phone [name=name]', '   ');
  await page.click('#new-phone button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#new-phone [data-error-for=""]').textContent.length > 0);
  await page.fill('#new-phone [name=name]', `${login}-phone`);
  await page.click('#new-phone button[type=submit]');
  await page.waitForSelector('[data-testid=enrolment] img', { timeout: 15000 });
  const enrolment = await page.evaluate(() => globalThis.fieldvisitPeople.enrolment);
  assert.match(enrolment.app.text, /\/app\/#enrol=/);
  assert.ok(enrolment.owntracks && enrolment.traccar, 'the tracker apps\' settings come with it');
  const code = enrolment.app.text.split('#enrol=')[1];
  const redeemed = await fetch(`${t.base}/api/v1/enrolments/redeem`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }),
  }).then((r) => r.json());
  assert.ok(redeemed.token, 'the link redeems');
  assert.equal((await t.api(redeemed.token, 'GET', '/me')).status, 200);
  await page.screenshot({ path: `${t.shots}/workbench-people.png`, fullPage: true });

  await page.click('[data-testid=phones] [data-active-to=false]');
  await page.waitForSelector('[data-testid=phones] tr[data-active=false]');
  assert.equal((await t.api(redeemed.token, 'GET', '/me')).status, 401, 'a deactivated phone is refused');

  await page.uncheck('#edit-user [name=active]');
  await page.click('#edit-user button[type=submit]');
  await page.waitForSelector(`[data-testid="user-${login}"].inactive`);
  assert.equal((await t.api(repToken, 'GET', '/me')).status, 401, 'a deactivated rep is refused');

  // Scope: the district manager lists only users of their district (and no admin of the org).
  const manager = await t.open(t.tokens.managerD1, { hash: '#people' });
  await manager.waitForSelector('[data-testid=users] tbody tr');
  const shown = await manager.evaluate(() => globalThis.fieldvisitPeople.users.map((u) => u.login));
  const all = (await t.api(t.tokens.admin, 'GET', '/users?limit=1000')).body.items;
  const me = (await t.api(t.tokens.managerD1, 'GET', '/me')).body.user;
  const territories = (await t.api(t.tokens.admin, 'GET', '/territories?limit=1000')).body.items;
  const within = (id) => id != null && territories.find((x) => x.id === id)?.path?.includes(me.territory_id);
  const expected = all.filter((u) => within(u.territory_id)).map((u) => u.login).sort();
  assert.deepEqual([...shown].sort(), expected);
  assert.ok(!shown.includes(login) && !shown.includes('admin'));
}
