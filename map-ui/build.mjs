// Builds the managers' map into dist/: the bundled app, MapLibre's stylesheet, the page, and the
// offline basemap (Natural Earth land and countries from the world-atlas package, as GeoJSON).
import * as esbuild from 'esbuild';
import { mkdirSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { feature, mesh } from 'topojson-client';

const dist = new URL('./dist/', import.meta.url);
mkdirSync(new URL('basemap/', dist), { recursive: true });

await esbuild.build({
  entryPoints: ['src/main.js'],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: 'es2020',
  outfile: 'dist/app.js',
  logLevel: 'warning',
});

copyFileSync('node_modules/maplibre-gl/dist/maplibre-gl.css', new URL('maplibre-gl.css', dist));
copyFileSync('src/index.html', new URL('index.html', dist));
copyFileSync('src/style.css', new URL('style.css', dist));

const world = JSON.parse(readFileSync('node_modules/world-atlas/countries-50m.json', 'utf8'));
writeFileSync(new URL('basemap/countries.geojson', dist), JSON.stringify(feature(world, world.objects.countries)));
writeFileSync(
  new URL('basemap/borders.geojson', dist),
  JSON.stringify(mesh(world, world.objects.countries, (a, b) => a !== b)),
);
// Written last: scripts/map-ui.sh rebuilds when this stamp is missing or older than a source.
writeFileSync(new URL('.built', dist), new Date().toISOString());
console.log('map-ui built into dist/');
