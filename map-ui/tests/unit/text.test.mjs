// HTML escaping and CSV (src/common/text.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvCell, csvText, esc } from '../../src/common/text.js';

test('escaping leaves no markup and no way out of a quoted attribute', () => {
  assert.equal(esc('<img src=x onerror="a(\'b\')">&'), '&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;');
  assert.equal(esc('杭州 outlet 7'), '杭州 outlet 7');
  assert.equal(esc(null), '');
  assert.equal(esc(undefined), '');
  assert.equal(esc(0), '0');
});

test('a CSV cell is quoted, quotes doubled, formulas defused', () => {
  assert.equal(csvCell('plain'), '"plain"');
  assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  assert.equal(csvCell('=HYPERLINK("x")'), '"\'=HYPERLINK(""x"")"');
  assert.equal(csvCell('+1'), '"\'+1"');
  assert.equal(csvCell('-5'), '"\'-5"');
  assert.equal(csvCell('@SUM(A1)'), '"\'@SUM(A1)"');
  assert.equal(csvCell('a=b'), '"a=b"');
  assert.equal(csvCell(12.5), '"12.5"');
});

test('a CSV document starts with a BOM and ends each line with CRLF', () => {
  assert.equal(csvText([['Metric', 'Value'], ['Outlet coverage', '50.0%']]), '\ufeff"Metric","Value"\r\n"Outlet coverage","50.0%"\r\n');
  assert.equal(csvText([]), '\ufeff\r\n');
});
