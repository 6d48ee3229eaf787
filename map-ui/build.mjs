// Builds the web apps into dist/: each app's bundle, page and stylesheet, MapLibre's stylesheet, and
// the offline basemap (Natural Earth land and countries from the world-atlas package, as GeoJSON)
// and the street basemap's label glyphs (glyphs/).
// The sources are ES modules: src/common/ (used by every app) and one folder per app.
import * as esbuild from 'esbuild';
import { basename } from 'node:path';
import { cpSync, mkdirSync, copyFileSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { feature, mesh } from 'topojson-client';
import { brotliCompressSync, constants as zlibConstants, deflateSync, gzipSync } from 'node:zlib';

const dist = new URL('./dist/', import.meta.url);
mkdirSync(new URL('basemap/', dist), { recursive: true });

// Each app: `out` its folder in dist/ (served at that path), `entry` bundled to `out`app.js, and
// its page and stylesheet copied beside it. The managers' map is served at /, the reps' app at /app/.
// The reps' app is split (`splitting`): what `import()` loads later (the map with MapLibre) is a chunk
// of its own, `chunk-<hash>.js`, beside `app.js`; its service worker precaches every file written.
const APPS = [
  { out: '', entry: 'src/map/main.js', files: ['src/map/index.html', 'src/map/style.css'] },
  { out: 'app/', entry: 'src/app/main.js', files: ['src/app/index.html', 'src/app/style.css', 'src/app/manifest.webmanifest'], split: true },
];

const written = {};
for (const app of APPS) {
  mkdirSync(new URL(app.out || '.', dist), { recursive: true });
  const out = app.split
    ? { splitting: true, outdir: `dist/${app.out}`, entryNames: 'app', chunkNames: 'chunk-[hash]' }
    : { outfile: `dist/${app.out}app.js` };
  const result = await esbuild.build({
    entryPoints: [app.entry],
    bundle: true,
    minify: true,
    sourcemap: true,
    format: 'esm',
    target: 'es2020',
    metafile: true,
    logLevel: 'warning',
    ...out,
  });
  written[app.out] = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js')).map((f) => basename(f));
  for (const file of app.files) copyFileSync(file, new URL(`${app.out}${basename(file)}`, dist));
  if (app.split) {
    // The chunks the entry imports statically are asked for with the page (modulepreload), not
    // after app.js arrived: one round trip less on a slow network. The map's chunk (import()) is not.
    const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint === app.entry)[1];
    const direct = entry.imports.filter((i) => i.kind === 'import-statement').map((i) => basename(i.path));
    const page = new URL(`${app.out}index.html`, dist);
    const links = direct.map((f) => `  <link rel="modulepreload" href="${f}">\n`).join('');
    writeFileSync(page, readFileSync(page, 'utf8').replace('</head>', `${links}</head>`));
  }
}
// Chunks of an earlier build are left out of the precache list (and cleared here).
for (const f of readdirSync(new URL('app/', dist))) {
  if (/^chunk-.*\.js(\.map|\.gz|\.br)?$/.test(f) && !written['app/'].includes(f.replace(/\.(map|gz|br)$/, ''))) rmSync(new URL(`app/${f}`, dist));
}

// The reps' app: its service worker (stamped with the build, so that a new build replaces the cached
// shell, and given the build's scripts to precache) and its icons, drawn here as PNGs.
const version = new Date().toISOString().replace(/[^0-9]/g, '');
writeFileSync(new URL('app/sw.js', dist), readFileSync('src/app/sw.js', 'utf8')
  .replace('__VERSION__', version)
  .replace("'__SCRIPTS__'", written['app/'].map((f) => JSON.stringify(f)).join(', ')));
for (const size of [192, 512]) writeFileSync(new URL(`app/icon-${size}.png`, dist), icon(size));

copyFileSync('node_modules/maplibre-gl/dist/maplibre-gl.css', new URL('maplibre-gl.css', dist));
// The label glyphs of the street basemap (Latin ranges of DejaVu Sans, made by scripts/glyphs.sh
// and committed): served at /glyphs/<fontstack>/<range>.pbf.
cpSync('glyphs', new URL('glyphs', dist), { recursive: true });

const world = JSON.parse(readFileSync('node_modules/world-atlas/countries-50m.json', 'utf8'));
writeFileSync(new URL('basemap/countries.geojson', dist), JSON.stringify(feature(world, world.objects.countries)));
writeFileSync(
  new URL('basemap/borders.geojson', dist),
  JSON.stringify(mesh(world, world.objects.countries, (a, b) => a !== b)),
);
// Every text file also gzip- and brotli-compressed beside itself, at the best levels: the server
// sends these as they are (no compression per request), and a phone on a slow network gets the
// app in a fraction of the bytes.
for (const file of readdirSync(dist, { recursive: true })) {
  if (!/\.(js|css|html|geojson|json|webmanifest|svg|pbf)$/.test(file)) continue;
  const data = readFileSync(new URL(file, dist));
  writeFileSync(new URL(`${file}.gz`, dist), gzipSync(data, { level: 9 }));
  writeFileSync(new URL(`${file}.br`, dist), brotliCompressSync(data, {
    params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 11, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: data.length },
  }));
}

// Written last: scripts/map-ui.sh rebuilds when this stamp is missing or older than a source.
writeFileSync(new URL('.built', dist), new Date().toISOString());
console.log('map-ui built into dist/');

/** A `size`-pixel square PNG icon: a white map pin on the app's blue. */
function icon(size) {
  const px = Buffer.alloc(size * (size * 4 + 1));
  const cx = size / 2;
  const cy = size * 0.42;
  const r = size * 0.22;
  for (let y = 0; y < size; y++) {
    px[y * (size * 4 + 1)] = 0; // filter: none
    for (let x = 0; x < size; x++) {
      const dx = x + 0.5 - cx;
      const dy = y + 0.5 - cy;
      const d = Math.hypot(dx, dy);
      // The pin: a ring round the centre and a point below it.
      const tip = y > cy && y < size * 0.8 && Math.abs(dx) < (size * 0.8 - y) * 0.55;
      const white = (d < r && d > r * 0.45) || (tip && d >= r * 0.45);
      const o = y * (size * 4 + 1) + 1 + x * 4;
      [px[o], px[o + 1], px[o + 2], px[o + 3]] = white ? [255, 255, 255, 255] : [0x12, 0x35, 0x5b, 255];
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8); // 8 bits, RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(px)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
