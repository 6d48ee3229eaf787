// The people view's list: what a search matches and in which order it is shown.
import { test } from 'node:test';
import assert from 'node:assert/strict';

globalThis.sessionStorage ??= { getItem: () => null, setItem() {} };
const { matching } = await import('../../src/map/views/people.js');

const users = [
  { login: 'admin', name: 'Demo Admin', role: 'admin' },
  { login: 'rep2', name: '赵磊', role: 'rep' },
  { login: 'rep1', name: '王秀英', role: 'rep' },
  { login: 'manager-d1', name: 'District Manager', role: 'manager' },
];

test('reps come first, then by name; a search matches login, name or role', () => {
  assert.deepEqual(matching(users, '').map((u) => u.login).slice(0, 2).sort(), ['rep1', 'rep2']);
  assert.deepEqual(matching(users, 'MANAGER').map((u) => u.login), ['manager-d1']);
  assert.deepEqual(matching(users, '王').map((u) => u.login), ['rep1']);
  assert.deepEqual(matching(users, 'rep').map((u) => u.login).sort(), ['rep1', 'rep2']);
});
