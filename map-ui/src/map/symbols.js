// How the map draws statuses, verdicts and coverage: colours (Okabe-Ito), a shape per outlet status
// so that it reads without colour too, and the canvas-drawn symbols (no sprite, no glyphs: the map
// works offline).

export const STATUSES = ['visited', 'due', 'overdue', 'never_visited', 'closed'];
export const STATUS_STYLE = {
  visited: { color: '#009E73', shape: 'circle' },
  due: { color: '#E69F00', shape: 'triangle' },
  overdue: { color: '#D55E00', shape: 'square' },
  never_visited: { color: '#CC79A7', shape: 'diamond' },
  closed: { color: '#666666', shape: 'cross' },
};
export const VERDICT_COLOR = { verified: '#009E73', short: '#E69F00', unverified: '#56B4E9', suspect: '#D55E00' };
/** Cell coverage (%) to fill colour, interpolated between the stops. */
export const COVERAGE_STOPS = [[0, '#f7fbff'], [25, '#c6dbef'], [50, '#6baed6'], [75, '#2171b5'], [100, '#08306b']];

/** A status symbol on a canvas of `size` px. */
export function statusImage(status, size = 18) {
  const { color, shape } = STATUS_STYLE[status];
  const c = document.createElement('canvas');
  c.width = c.height = size;
  const g = c.getContext('2d');
  const m = size / 2, r = size / 2 - 2;
  g.fillStyle = color; g.strokeStyle = '#fff'; g.lineWidth = 2;
  g.beginPath();
  if (shape === 'circle') g.arc(m, m, r, 0, 2 * Math.PI);
  if (shape === 'square') g.rect(2, 2, size - 4, size - 4);
  if (shape === 'triangle') { g.moveTo(m, 1); g.lineTo(size - 1, size - 2); g.lineTo(1, size - 2); g.closePath(); }
  if (shape === 'diamond') { g.moveTo(m, 1); g.lineTo(size - 1, m); g.lineTo(m, size - 1); g.lineTo(1, m); g.closePath(); }
  if (shape === 'cross') { g.rect(m - 3, 1, 6, size - 2); g.rect(1, m - 3, size - 2, 6); }
  g.fill(); g.stroke();
  return c;
}

/** A numbered marker: `plan` a white square (planned stop), `visit` a bare number (actual order). */
export function numberImage(kind, n) {
  const size = kind === 'plan' ? 22 : 18;
  const c = document.createElement('canvas');
  c.width = c.height = size;
  const g = c.getContext('2d');
  if (kind === 'plan') {
    g.fillStyle = '#fff'; g.strokeStyle = '#12355b'; g.lineWidth = 2;
    g.fillRect(1, 1, size - 2, size - 2); g.strokeRect(1, 1, size - 2, size - 2);
  }
  g.fillStyle = kind === 'plan' ? '#12355b' : '#fff';
  g.font = `bold ${n > 9 ? 10 : 12}px sans-serif`;
  g.textAlign = 'center'; g.textBaseline = 'middle';
  g.fillText(String(n), size / 2, size / 2 + 1);
  return g.getImageData(0, 0, size, size);
}
