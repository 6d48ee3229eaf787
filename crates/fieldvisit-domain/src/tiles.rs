//! Mapbox Vector Tiles (MVT 2.1) for the zoom levels where GeoJSON would be too large: tile
//! bounds in Web Mercator (EPSG:3857, the XYZ scheme of web maps), positions to tile coordinates,
//! and layers of points with their properties, encoded as protobuf.

use crate::coverage::CellFigures;
use geozero::mvt::tile::{Feature, GeomType, Layer};
use geozero::mvt::{Message, TagsBuilder, Tile, TileValue};

/// Tile coordinate space of a tile (MVT's usual extent).
pub const EXTENT: u32 = 4096;
/// Highest zoom served.
pub const MAX_ZOOM: u8 = 22;
/// Latitude limit of Web Mercator.
const MAX_LAT: f64 = 85.051_128_779_806_59;

/// Whether `z/x/y` names a tile.
pub fn valid(z: u8, x: u32, y: u32) -> bool {
    z <= MAX_ZOOM && u64::from(x) < (1u64 << z) && u64::from(y) < (1u64 << z)
}

/// World position of a (lat, lon) in [0, 1] x [0, 1] (x east, y south).
fn world(lat: f64, lon: f64) -> (f64, f64) {
    let lat = lat.clamp(-MAX_LAT, MAX_LAT).to_radians();
    let x = (lon + 180.0) / 360.0;
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0;
    (x, y)
}

/// Latitude of world y.
fn lat_of(y: f64) -> f64 {
    (std::f64::consts::PI * (1.0 - 2.0 * y)).sinh().atan().to_degrees()
}

/// The tile's bounds `[west, south, east, north]` in degrees.
pub fn bounds(z: u8, x: u32, y: u32) -> [f64; 4] {
    let n = f64::from(1u32 << z.min(31));
    let (x, y) = (f64::from(x), f64::from(y));
    [x / n * 360.0 - 180.0, lat_of((y + 1.0) / n), (x + 1.0) / n * 360.0 - 180.0, lat_of(y / n)]
}

/// The position in tile `z/x/y` coordinates, y down, also outside the tile (rounded).
pub fn to_tile_unclipped(lat: f64, lon: f64, z: u8, x: u32, y: u32) -> (i32, i32) {
    let n = f64::from(1u32 << z.min(31));
    let (wx, wy) = world(lat, lon);
    let (tx, ty) = ((wx * n - f64::from(x)) * f64::from(EXTENT), (wy * n - f64::from(y)) * f64::from(EXTENT));
    (tx.round() as i32, ty.round() as i32)
}

/// The position in tile `z/x/y` coordinates (0..[`EXTENT`], y down); `None` outside the tile.
pub fn to_tile(lat: f64, lon: f64, z: u8, x: u32, y: u32) -> Option<(i32, i32)> {
    let n = f64::from(1u32 << z.min(31));
    let (wx, wy) = world(lat, lon);
    let (tx, ty) = ((wx * n - f64::from(x)) * f64::from(EXTENT), (wy * n - f64::from(y)) * f64::from(EXTENT));
    let inside = (0.0..f64::from(EXTENT)).contains(&tx) && (0.0..f64::from(EXTENT)).contains(&ty);
    inside.then(|| (tx.floor() as i32, ty.floor() as i32))
}

fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// A point feature of a tile layer.
#[derive(Debug, Clone)]
pub struct TilePoint {
    pub id: u64,
    /// Position in tile coordinates ([`to_tile`]).
    pub at: (i32, i32),
    pub properties: Vec<(&'static str, TileValue)>,
}

/// A tile of one layer of points, as MVT protobuf bytes.
pub fn encode_points(layer: &str, points: Vec<TilePoint>) -> Vec<u8> {
    encode(
        layer,
        points.into_iter().map(|p| {
            // MoveTo, one point (MVT 4.3).
            (p.id, GeomType::Point, vec![command(1, 1), zigzag(p.at.0), zigzag(p.at.1)], p.properties)
        }),
    )
}

/// A polygon feature of a tile layer: one exterior ring in tile coordinates (unclipped: a ring may
/// reach beyond the tile, clients clip), not repeating its first vertex.
#[derive(Debug, Clone)]
pub struct TilePolygon {
    pub id: u64,
    pub ring: Vec<(i32, i32)>,
    pub properties: Vec<(&'static str, TileValue)>,
}

/// A tile of one layer of polygons, as MVT protobuf bytes: each ring wound as MVT 4.3.4.4 wants an
/// exterior ring (positive surveyor's area in tile coordinates, clockwise on screen).
pub fn encode_polygons(layer: &str, polygons: Vec<TilePolygon>) -> Vec<u8> {
    encode(
        layer,
        polygons.into_iter().filter_map(|p| {
            let mut ring = p.ring;
            ring.dedup();
            while ring.len() > 1 && ring.first() == ring.last() {
                ring.pop();
            }
            if ring.len() < 3 {
                return None;
            }
            let twice_area: i64 = (0..ring.len())
                .map(|i| {
                    let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
                    i64::from(a.0) * i64::from(b.1) - i64::from(b.0) * i64::from(a.1)
                })
                .sum();
            if twice_area == 0 {
                return None;
            }
            if twice_area < 0 {
                ring.reverse();
            }
            let mut geometry = vec![command(1, 1), zigzag(ring[0].0), zigzag(ring[0].1)];
            geometry.push(command(2, ring.len() as u32 - 1));
            for w in ring.windows(2) {
                geometry.extend([zigzag(w[1].0 - w[0].0), zigzag(w[1].1 - w[0].1)]);
            }
            geometry.push(command(7, 1));
            Some((p.id, GeomType::Polygon, geometry, p.properties))
        }),
    )
}

/// An MVT command integer (4.3.1).
fn command(id: u32, count: u32) -> u32 {
    (count << 3) | id
}

fn encode(
    layer: &str,
    features: impl Iterator<Item = (u64, GeomType, Vec<u32>, Vec<(&'static str, TileValue)>)>,
) -> Vec<u8> {
    let mut tags = TagsBuilder::new();
    let features = features
        .map(|(id, kind, geometry, properties)| {
            let mut feature_tags = Vec::new();
            for (k, v) in properties {
                let (ki, vi) = tags.insert_ref(k, v);
                feature_tags.extend([ki, vi]);
            }
            Feature { id: Some(id), tags: feature_tags, r#type: Some(kind as i32), geometry }
        })
        .collect();
    let (keys, values) = tags.into_tags();
    let tile = Tile {
        layers: vec![Layer {
            version: 2,
            name: layer.to_owned(),
            features,
            keys,
            values: values.into_iter().map(Into::into).collect(),
            extent: Some(EXTENT),
        }],
    };
    tile.encode_to_vec()
}

/// The polygon of an H3 coverage cell on tile `z/x/y` with the cell's figures as properties, or
/// `None` when it does not meet the tile. A cell across the antimeridian is drawn on the tile's
/// side of it; a cell under two tile units across (coarse zooms) as a square of two units.
pub fn cell_polygon(c: &CellFigures, z: u8, x: u32, y: u32) -> Option<TilePolygon> {
    let cell: h3o::CellIndex = c.cell.parse().ok()?;
    let boundary = cell.boundary();
    // A cell across the antimeridian is drawn on the tile's side of it.
    let crosses = boundary.iter().any(|v| v.lng() > 90.0) && boundary.iter().any(|v| v.lng() < -90.0);
    let eastern = 2 * u64::from(x) + 1 >= 1u64 << z;
    let ring: Vec<(i32, i32)> = boundary
        .iter()
        .map(|v| {
            let lon = match (crosses, eastern) {
                (true, true) if v.lng() < 0.0 => v.lng() + 360.0,
                (true, false) if v.lng() > 0.0 => v.lng() - 360.0,
                _ => v.lng(),
            };
            to_tile_unclipped(v.lat(), lon, z, x, y)
        })
        .collect();
    let extent = EXTENT as i32;
    let (x0, x1) = (ring.iter().map(|p| p.0).min()?, ring.iter().map(|p| p.0).max()?);
    let (y0, y1) = (ring.iter().map(|p| p.1).min()?, ring.iter().map(|p| p.1).max()?);
    // A cell under two tile units across (coarse zooms) is drawn as a square of two units.
    let ring = if x1 - x0 < 2 && y1 - y0 < 2 {
        let (cx, cy) = (x0 / 2 + x1 / 2, y0 / 2 + y1 / 2);
        vec![(cx - 1, cy - 1), (cx + 1, cy - 1), (cx + 1, cy + 1), (cx - 1, cy + 1)]
    } else {
        ring
    };
    let meets = ring.iter().map(|p| p.0).min()? < extent
        && ring.iter().map(|p| p.0).max()? >= 0
        && ring.iter().map(|p| p.1).min()? < extent
        && ring.iter().map(|p| p.1).max()? >= 0;
    if !meets {
        return None;
    }
    let figures = &c.figures;
    let mut properties = vec![
        ("cell", TileValue::Str(c.cell.clone())),
        ("active_outlets", TileValue::Uint(figures.active_outlets as u64)),
        ("visited_outlets", TileValue::Uint(figures.visited_outlets as u64)),
        ("white_space", TileValue::Bool(c.white_space)),
    ];
    for (k, v) in [
        ("coverage_pct", figures.coverage_pct),
        ("frequency_compliance_pct", figures.frequency_compliance_pct),
        ("dwell_compliance_pct", figures.dwell_compliance_pct),
    ] {
        if let Some(v) = v {
            properties.push((k, TileValue::Double(v)));
        }
    }
    Some(TilePolygon { id: u64::from(cell), ring, properties })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_web_mercator_world() {
        assert!(valid(0, 0, 0) && valid(3, 7, 7) && !valid(3, 8, 0) && !valid(23, 0, 0));
        let b = bounds(0, 0, 0);
        assert!((b[0] + 180.0).abs() < 1e-9 && (b[2] - 180.0).abs() < 1e-9);
        assert!((b[3] - MAX_LAT).abs() < 1e-6 && (b[1] + MAX_LAT).abs() < 1e-6);
        // Beijing at zoom 10 is in tile 843/388.
        let (lat, lon) = (39.9, 116.4);
        assert!(to_tile(lat, lon, 10, 843, 388).is_some());
        assert!(to_tile(lat, lon, 10, 844, 388).is_none());
        let b = bounds(10, 843, 388);
        assert!(b[0] <= lon && lon < b[2] && b[1] < lat && lat <= b[3], "{b:?}");
        assert_eq!(to_tile(0.0, 0.0, 1, 1, 1), Some((0, 0)));
    }

    #[test]
    fn a_points_tile_decodes_to_its_features() {
        let bytes = encode_points(
            "outlets",
            vec![
                TilePoint { id: 7, at: (10, 20), properties: vec![("code", TileValue::Str("O7".into()))] },
                TilePoint { id: 8, at: (4095, 0), properties: vec![("code", TileValue::Str("O8".into()))] },
            ],
        );
        let tile = Tile::decode(bytes.as_slice()).expect("decodes");
        let layer = &tile.layers[0];
        assert_eq!((layer.name.as_str(), layer.extent, layer.version), ("outlets", Some(EXTENT), 2));
        assert_eq!(layer.features.len(), 2);
        assert_eq!(layer.features[0].geometry, vec![9, 20, 40]);
        assert_eq!(layer.keys, vec!["code".to_owned()]);
        assert_eq!(layer.values[layer.features[1].tags[1] as usize].string_value.as_deref(), Some("O8"));
    }

    #[test]
    fn polygon_rings_are_wound_as_exterior_rings_and_closed() {
        // Counter-clockwise on screen (negative area with y down): reversed to clockwise.
        let ccw = vec![(0, 0), (0, 10), (10, 10), (10, 0), (0, 0)];
        let bytes = encode_polygons(
            "cells",
            vec![
                TilePolygon { id: 1, ring: ccw, properties: vec![] },
                TilePolygon { id: 2, ring: vec![(5, 5), (5, 5), (6, 6)], properties: vec![] },
            ],
        );
        let tile = Tile::decode(bytes.as_slice()).expect("decodes");
        let features = &tile.layers[0].features;
        assert_eq!(features.len(), 1, "a degenerate ring is left out");
        assert_eq!(features[0].r#type, Some(GeomType::Polygon as i32));
        // The reversed ring (10,0) (10,10) (0,10) (0,0): MoveTo, LineTo x3 (deltas), ClosePath.
        assert_eq!(features[0].geometry, vec![9, 20, 0, 26, 0, 20, 19, 0, 0, 19, 15]);
    }
}
