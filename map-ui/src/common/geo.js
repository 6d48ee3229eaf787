// Pure GeoJSON helpers.

/** A FeatureCollection of `features` (none by default). */
export function featureCollection(features = []) { return { type: 'FeatureCollection', features }; }

export function emptyCollection() { return featureCollection(); }

/** A Point feature at `[lon, lat]`. */
export function pointFeature(lon, lat, properties = {}, id) {
  return { type: 'Feature', ...(id === undefined ? {} : { id }), geometry: { type: 'Point', coordinates: [lon, lat] }, properties };
}

/** `[west, south, east, north]` around every coordinate of the collection, or null when it has none. */
export function boundsOf(fc) {
  let b = null;
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      b = b ? [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])] : [c[0], c[1], c[0], c[1]];
    } else c.forEach(walk);
  };
  fc.features.forEach((f) => f.geometry && walk(f.geometry.coordinates));
  return b;
}

/** The `west,south,east,north` query parameter of bounds, clamped to the world, 5 decimals. */
export function bboxParam([west, south, east, north]) {
  return [west, south, east, north].map((v, i) => Math.max(i % 2 ? -90 : -180, Math.min(i % 2 ? 90 : 180, v)).toFixed(5)).join(',');
}
