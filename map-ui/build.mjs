// Builds the web apps into dist/: each app's bundle, page and stylesheet, MapLibre's stylesheet, and
// the offline basemap (Natural Earth land and countries from the world-atlas package, as GeoJSON).
// The sources are ES modules: src/shared/ (used by every app) and one folder per app.
import * as esbuild from 'esbuild';
import { basename } from 'node:path';
import { mkdirSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { feature, mesh } from 'topojson-client';

const dist = new URL('./dist/', import.meta.url);
mkdirSync(new URL('basemap/', dist), { recursive: true });

// Each app: `out` its folder in dist/ (served at that path), `entry` bundled to `out`app.js, and
// its page and stylesheet copied beside it. The managers' map is served at /.
const APPS = [
  { out: '', entry: 'src/map/main.js', files: ['src/map/index.html', 'src/map/style.css'] },
];

for (const app of APPS) {
  mkdirSync(new URL(app.out || '.', dist), { recursive: true });
  await esbuild.build({
    entryPoints: [app.entry],
    bundle: true,
    minify: true,
    sourcemap: true,
    format: 'esm',
    target: 'es2020',
    outfile: `dist/${app.out}app.js`,
    logLevel: 'warning',
  });
  for (const file of app.files) copyFileSync(file, new URL(`${app.out}${basename(file)}`, dist));
}

copyFileSync('node_modules/maplibre-gl/dist/maplibre-gl.css', new URL('maplibre-gl.css', dist));

const world = JSON.parse(readFileSync('node_modules/world-atlas/countries-50m.json', 'utf8'));
writeFileSync(new URL('basemap/countries.geojson', dist), JSON.stringify(feature(world, world.objects.countries)));
writeFileSync(
  new URL('basemap/borders.geojson', dist),
  JSON.stringify(mesh(world, world.objects.countries, (a, b) => a !== b)),
);
// Written last: scripts/map-ui.sh rebuilds when this stamp is missing or older than a source.
writeFileSync(new URL('.built', dist), new Date().toISOString());
console.log('map-ui built into dist/');
