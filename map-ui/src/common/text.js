// Pure text helpers: HTML escaping for what the views write into the page, and CSV for downloads.

const ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** `v` as text safe inside HTML content and quoted attributes (null and undefined are empty). */
export function esc(v) { return String(v ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c]); }

/**
 * One CSV cell: quoted, quotes doubled, and a leading = + - @ defused with an apostrophe so that a
 * spreadsheet does not run it as a formula.
 */
export function csvCell(v) { return `"${String(v).replace(/^([=+\-@])/, "'$1").replace(/"/g, '""')}"`; }

/** A CSV document of `lines` (arrays of cells): a BOM (spreadsheets then read UTF-8), CRLF lines. */
export function csvText(lines) { return `\ufeff${lines.map((l) => l.map(csvCell).join(',')).join('\r\n')}\r\n`; }
