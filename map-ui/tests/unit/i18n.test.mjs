// The strings (src/common/strings.js, src/map/strings.js, src/app/strings.js) and the language mechanism (src/common/i18n.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { SHARED_STRINGS } from '../../src/common/strings.js';
import { MAP_STRINGS } from '../../src/map/strings.js';
import { APP_STRINGS } from '../../src/app/strings.js';
import { detectLanguage, locale, register, setLanguage, t } from '../../src/common/i18n.js';
import { STATUSES, VERDICT_COLOR } from '../../src/map/symbols.js';

const src = new URL('../../src/', import.meta.url);
/** Every .js file under src/, recursively, as [path, text]. */
function sources(dir = src) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const u = new URL(e.name + (e.isDirectory() ? '/' : ''), dir);
    if (e.isDirectory()) return sources(u);
    return e.name.endsWith('.js') ? [[u.pathname.slice(src.pathname.length), readFileSync(u, 'utf8')]] : [];
  });
}
// The workbench's views keep their strings beside them: src/map/views/<view>.strings.js, each
// exporting one `<VIEW>_STRINGS` table registered when the view is imported.
const viewsDir = new URL('map/views/', src);
const VIEW_TABLES = [];
for (const f of readdirSync(viewsDir).filter((n) => n.endsWith('.strings.js')).sort()) {
  const mod = await import(new URL(f, viewsDir));
  for (const [name, table] of Object.entries(mod)) VIEW_TABLES.push([`${f}:${name}`, table]);
}
const both = (key) => key in SHARED_STRINGS.en || key in MAP_STRINGS.en || key in APP_STRINGS.en
  || VIEW_TABLES.some(([, table]) => key in table.en);

test('the workbench views\' tables agree where they share a key, and hide no map or shared string', () => {
  const seen = {};
  for (const [name, table] of VIEW_TABLES) {
    for (const l of ['en', 'zh']) {
      for (const [k, v] of Object.entries(table[l])) {
        assert.ok(!(k in SHARED_STRINGS[l]), `${name}: ${k} hides a shared string`);
        assert.ok(!(k in MAP_STRINGS[l]) || MAP_STRINGS[l][k] === v, `${name}: ${k} differs from the map's`);
        const other = seen[`${l}.${k}`];
        assert.ok(!other || other[1] === v, `${name}: ${l}.${k} differs from ${other?.[0]}`);
        seen[`${l}.${k}`] = [name, v];
      }
    }
  }
});

for (const [name, table] of [['shared', SHARED_STRINGS], ['map', MAP_STRINGS], ['app', APP_STRINGS], ...VIEW_TABLES]) {
  test(`every ${name} string is in both English and Chinese, and none is empty`, () => {
    const en = Object.keys(table.en).sort();
    const zh = Object.keys(table.zh).sort();
    assert.deepEqual(en.filter((k) => !zh.includes(k)), [], 'in English only');
    assert.deepEqual(zh.filter((k) => !en.includes(k)), [], 'in Chinese only');
    for (const l of ['en', 'zh']) {
      for (const [k, v] of Object.entries(table[l])) assert.ok(typeof v === 'string' && v.trim() !== '', `${l}.${k} is empty`);
    }
  });
}

test('no key is in both the shared and an app table (one would hide the other)', () => {
  assert.deepEqual(Object.keys(MAP_STRINGS.en).filter((k) => k in SHARED_STRINGS.en), []);
  assert.deepEqual(Object.keys(APP_STRINGS.en).filter((k) => k in SHARED_STRINGS.en), []);
});

test("the reps' app's composed keys have strings: stop states, outbox kinds, check-in statuses", () => {
  const keys = ['done', 'pending', 'late', 'missed'].map((s) => `state_${s}`)
    .concat(['ping', 'checkin', 'checkout'].map((k) => `kind_${k}`))
    .concat(['pending', 'confirmed', 'unconfirmed', 'rejected'].map((s) => `status_${s}`));
  assert.deepEqual(keys.filter((k) => !(k in APP_STRINGS.en)), []);
});

test("every key the sources pass to t('...') has a string", () => {
  const used = new Set();
  for (const [, text] of sources()) for (const m of text.matchAll(/\bt\('([A-Za-z0-9_]+)'\)/g)) used.add(m[1]);
  assert.ok(used.size > 50, `found only ${used.size} keys: is the pattern still right?`);
  assert.deepEqual([...used].filter((k) => !both(k)), []);
});

test('every data-i18n key of the pages has a string', () => {
  const pages = readdirSync(src, { recursive: true }).filter((f) => String(f).endsWith('.html'));
  assert.ok(pages.length > 0);
  for (const page of pages) {
    const keys = [...readFileSync(new URL(String(page), src), 'utf8').matchAll(/data-i18n="([^"]+)"/g)].map((m) => m[1]);
    assert.ok(keys.length > 5, `${page}: only ${keys.length} data-i18n keys`);
    assert.deepEqual(keys.filter((k) => !both(k)), [], page);
  }
});

test('the values the API names and the map shows through t() have strings', () => {
  // Outlet statuses and visit verdicts (symbols.js), plan outcomes, photo verdicts, spoofing
  // signals (fieldvisit-domain's Signals) and review decisions.
  const keys = [...STATUSES, ...Object.keys(VERDICT_COLOR), 'done', 'late', 'short', 'missed', 'unplanned',
    'confirms', 'contradicts', 'unverifiable', 'mock_fixes', 'speed_jumps', 'teleport', 'constant_position',
    'constant_accuracy', 'clock_ahead_fixes', 'accepted', 'rejected'];
  assert.deepEqual(keys.filter((k) => !both(k)), []);
});

test('t() reads the current language and falls back to the key', () => {
  register(MAP_STRINGS);
  setLanguage('zh');
  assert.equal(t('sign_in'), '登录');
  assert.equal(t('overdue'), '逾期');
  assert.equal(t('no_such_key'), 'no_such_key');
  assert.equal(locale(), 'zh-CN');
  setLanguage('en');
  assert.equal(t('overdue'), 'Overdue');
  assert.equal(locale(), 'en-GB');
  setLanguage('fr');
  assert.equal(t('sign_out'), 'Sign out', 'an unknown language is English');
  register({ en: { extra_key: 'Extra' }, zh: { extra_key: '额外' } });
  assert.equal(t('extra_key'), 'Extra');
});

test('the language is the stored choice, else Chinese for a Chinese browser, else English', () => {
  assert.equal(detectLanguage(null, 'zh-CN'), 'zh');
  assert.equal(detectLanguage(null, 'zh-TW'), 'zh');
  assert.equal(detectLanguage(null, 'en-US'), 'en');
  assert.equal(detectLanguage(null, 'de'), 'en');
  assert.equal(detectLanguage(null, undefined), 'en');
  assert.equal(detectLanguage('en', 'zh-CN'), 'en');
  assert.equal(detectLanguage('zh', 'en-US'), 'zh');
  assert.equal(detectLanguage('xx', 'zh-CN'), 'zh', 'a stored value that is no language is ignored');
});
