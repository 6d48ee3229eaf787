// The workbench's navigation: which views a role sees, and which view an address names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { viewOfHash, viewsFor } from '../../src/map/views.js';

const views = [
  { id: 'plans', roles: ['admin', 'manager'] },
  { id: 'reviews', roles: ['admin', 'supervisor', 'auditor'] },
  { id: 'reports' },
];

test('a role sees only the views that name it, in order', () => {
  assert.deepEqual(viewsFor('manager', views).map((v) => v.id), ['plans', 'reports']);
  assert.deepEqual(viewsFor('rep', views).map((v) => v.id), ['reports']);
  assert.deepEqual(viewsFor('admin', views).map((v) => v.id), ['plans', 'reviews', 'reports']);
});

test('the hash names a view the caller may open, else the map', () => {
  const ids = ['plans', 'reports'];
  assert.equal(viewOfHash('#plans', ids), 'plans');
  assert.equal(viewOfHash('#/plans?rep=3', ids), 'plans');
  assert.equal(viewOfHash('#reviews', ids), 'map');
  assert.equal(viewOfHash('', ids), 'map');
  assert.equal(viewOfHash('#enrol=abc', ids), 'map');
});
