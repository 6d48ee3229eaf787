//! The outlet index of one org: a packed k-d tree on unit-sphere coordinates (exact great-circle
//! nearest neighbours, radius and box queries, no antimeridian or pole special cases) with an R-tree
//! of the outlets changed since it was packed, an R-tree of footprint boxes, and an ordered H3 cell
//! map in which the descendants of every coarser cell form one contiguous key range.

use super::idmap::IdMap;
use super::knn::{self, Node, Snapshot};
use crate::domain::geo::{Footprint, chord_for_m, haversine_m, m_for_chord, unit_xyz};
use crate::domain::outlet::ChannelType;
use crate::domain::territory::multipolygon;
use geo::{BoundingRect, Intersects, MultiPolygon, Point};
use h3o::{CellIndex, LatLng, Resolution};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RStarInsertionStrategy, RTree, RTreeParams};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the index keeps of an outlet.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedOutlet {
    pub id: i64,
    pub lat: f64,
    pub lon: f64,
    /// Own geofence radius, metres (`None`: the tier default applies).
    pub radius_m: Option<f32>,
    pub active: bool,
    /// The territory the outlet belongs to (scope filtering).
    pub territory_id: Option<i64>,
    /// Outline of the premises, where known: distances are to the nearer of the point and the
    /// footprint. Which box, cell or polygon an outlet is in is decided by its point.
    pub footprint: Option<Arc<Footprint>>,
    /// What maps and lists show of it; `None` where only positions are needed.
    pub label: Option<Box<Label>>,
    /// Its H3 cell at the resolution last asked for ([`IndexedOutlet::cell_at`]).
    pub cell: LastCell,
}

/// An outlet's H3 cell at the last resolution asked for, kept beside the outlet so that
/// coverage by cell of a million outlets neither projects each one again nor looks it up in a
/// map. A cache: it is not part of the outlet's value (always equal, cloned empty).
#[derive(Debug, Default)]
pub struct LastCell(AtomicU64);

impl Clone for LastCell {
    /// Empty: a clone may be moved before it is asked.
    fn clone(&self) -> Self {
        LastCell::default()
    }
}

impl PartialEq for LastCell {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl From<crate::db::outlets::IndexRow> for IndexedOutlet {
    fn from(r: crate::db::outlets::IndexRow) -> Self {
        IndexedOutlet {
            id: r.id,
            lat: r.lat,
            lon: r.lon,
            radius_m: r.radius_m,
            active: r.active,
            territory_id: r.territory_id,
            footprint: r.footprint.as_ref().and_then(multipolygon).and_then(Footprint::new).map(Arc::new),
            label: Some(Box::new(Label {
                code: r.code.into(),
                name: r.name.into(),
                tier: r.tier.into(),
                channel_type: r.channel_type,
                status_since: r.status_since.unwrap_or(r.created_at),
            })),
            cell: LastCell::default(),
        }
    }
}

impl IndexedOutlet {
    /// Its H3 cell at `res` (`None` for an invalid position).
    pub fn cell_at(&self, res: Resolution) -> Option<CellIndex> {
        let held = CellIndex::try_from(self.cell.0.load(Ordering::Relaxed)).ok();
        if let Some(c) = held.filter(|c| c.resolution() == res) {
            return Some(c);
        }
        // Racing readers compute the same cell: whichever store lands, it is right.
        let c = LatLng::new(self.lat, self.lon).ok()?.to_cell(res);
        self.cell.0.store(u64::from(c), Ordering::Relaxed);
        Some(c)
    }
}

/// What an outlet is besides its position: shown by map layers and tiles without a database read.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub code: Box<str>,
    pub name: Box<str>,
    pub tier: Box<str>,
    pub channel_type: ChannelType,
    /// When its current status began (its last status change; its registration when none):
    /// before that, its status has to be read from the history.
    pub status_since: chrono::DateTime<chrono::Utc>,
}

/// An outlet found by a distance query, with its great-circle distance (to its point, or to its
/// footprint when that is nearer; 0 inside the footprint).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: i64,
    pub distance_m: f64,
}

/// rstar's default node sizes, without R* forced reinsertion. `RTree::bulk_load` may put leaves at
/// different depths (georust/rstar#239); reinsertion assumes one leaf depth and then corrupts the
/// tree ("This is a bug in rstar." on a later insert). Inserting with splits only is correct on such
/// a tree, so an index patched after a bulk build stays sound.
pub enum TreeParams {}

impl RTreeParams for TreeParams {
    const MIN_SIZE: usize = 3;
    const MAX_SIZE: usize = 6;
    const REINSERTION_COUNT: usize = 0;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// Finest H3 resolution the cell map supports queries at.
pub const MAX_CELL_RES: Resolution = Resolution::Ten;
/// Coarsest H3 resolution the cell map supports queries at.
pub const MIN_CELL_RES: Resolution = Resolution::Five;

/// Spatial index of one org's outlets.
#[derive(Debug)]
pub struct OutletIndex {
    by_id: IdMap<IndexedOutlet>,
    /// (cell at [`MAX_CELL_RES`], outlet id)
    cells: BTreeSet<(u64, i64)>,
    /// Packed positions as of the last rebuild; outlets changed since are marked stale there and
    /// kept in `fresh`. Every position query asks both.
    snapshot: Option<Snapshot>,
    /// Outlets added or moved since the snapshot was built.
    fresh: RTree<Node, TreeParams>,
    /// Unit-sphere boxes of the footprints of outlets that have one.
    footprints: RTree<FootprintBox, TreeParams>,
}

/// Answer order: distance, then id.
fn by_distance(a: &Hit, b: &Hit) -> std::cmp::Ordering {
    a.distance_m.total_cmp(&b.distance_m).then(a.id.cmp(&b.id))
}

/// A footprint's unit-sphere box and the outlet id.
type FootprintBox = GeomWithData<Rectangle<[f64; 3]>, i64>;

fn footprint_box(id: i64, f: &Footprint) -> FootprintBox {
    GeomWithData::new(Rectangle::from_corners(f.lo, f.hi), id)
}

/// The snapshot is rebuilt once this many of its outlets changed (at least [`MIN_REBUILD`]):
/// answering from two structures stays cheap while the fresh one is small.
const REBUILD_FRACTION: usize = 8;
const MIN_REBUILD: usize = 64;

fn node(o: &IndexedOutlet) -> Node {
    GeomWithData::new(unit_xyz(o.lat, o.lon), o.id)
}

/// The packed k-nearest snapshot of a set of outlets.
fn snapshot_of(by_id: &IdMap<IndexedOutlet>) -> Option<Snapshot> {
    Snapshot::build(by_id.values().map(|o| (unit_xyz(o.lat, o.lon), o.id, [o.lat, o.lon])).collect())
}

fn cell_of(o: &IndexedOutlet) -> Option<u64> {
    LatLng::new(o.lat, o.lon).ok().map(|ll| u64::from(ll.to_cell(MAX_CELL_RES)))
}

impl OutletIndex {
    /// Builds the index in one pass.
    pub fn build(outlets: impl IntoIterator<Item = IndexedOutlet>) -> Self {
        let by_id: IdMap<IndexedOutlet> = outlets.into_iter().map(|o| (o.id, o)).collect();
        // Two cores' worth: the packed snapshot builds while the cell map does.
        let (snapshot, cells) = std::thread::scope(|s| {
            let snapshot = s.spawn(|| snapshot_of(&by_id));
            let cells = by_id.values().filter_map(|o| cell_of(o).map(|c| (c, o.id))).collect();
            (snapshot.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), cells)
        });
        let footprints = RTree::bulk_load_with_params(
            by_id.values().filter_map(|o| o.footprint.as_ref().map(|f| footprint_box(o.id, f))).collect(),
        );
        OutletIndex { by_id, cells, snapshot, fresh: RTree::new_with_params(), footprints }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: i64) -> Option<&IndexedOutlet> {
        self.by_id.get(&id)
    }

    /// Adds or replaces an outlet.
    pub fn upsert(&mut self, o: IndexedOutlet) {
        if let Some(old) = self.by_id.get_mut(&o.id)
            && old.lat.to_bits() == o.lat.to_bits()
            && old.lon.to_bits() == o.lon.to_bits()
            && old.footprint == o.footprint
        {
            // Same place (status, radius or territory changed): the trees stay as they are.
            *old = o;
            return;
        }
        self.remove(o.id);
        self.fresh.insert(node(&o));
        if let Some(c) = cell_of(&o) {
            self.cells.insert((c, o.id));
        }
        if let Some(f) = &o.footprint {
            self.footprints.insert(footprint_box(o.id, f));
        }
        self.by_id.insert(o.id, o);
        self.maybe_rebuild_snapshot();
    }

    /// Removes an outlet; returns whether it was there.
    pub fn remove(&mut self, id: i64) -> bool {
        let Some(old) = self.by_id.remove(&id) else { return false };
        if self.fresh.remove(&node(&old)).is_none()
            && let Some(snapshot) = self.snapshot.as_mut()
        {
            snapshot.retire(id, &unit_xyz(old.lat, old.lon));
        }
        if let Some(c) = cell_of(&old) {
            self.cells.remove(&(c, id));
        }
        if let Some(f) = &old.footprint {
            self.footprints.remove(&footprint_box(id, f));
        }
        self.maybe_rebuild_snapshot();
        true
    }

    fn maybe_rebuild_snapshot(&mut self) {
        let changed = self.fresh.size() + self.snapshot.as_ref().map_or(0, Snapshot::stale_count);
        let packed = self.snapshot.as_ref().map_or(0, Snapshot::len);
        if changed > MIN_REBUILD.max(packed / REBUILD_FRACTION) {
            self.snapshot = snapshot_of(&self.by_id);
            self.fresh = RTree::new_with_params();
        }
    }

    /// Calls `visit` with every outlet (id, `[lat, lon]`) within squared chord `max_d2` of `q`.
    fn each_within(&self, q: &[f64; 3], max_d2: f64, mut visit: impl FnMut(i64, &[f64; 2])) {
        if let Some(snapshot) = &self.snapshot {
            snapshot.within(q, max_d2, &mut visit);
        }
        for n in self.fresh.locate_within_distance(*q, max_d2) {
            if let Some(o) = self.by_id.get(&n.data) {
                visit(o.id, &[o.lat, o.lon]);
            }
        }
    }

    /// Calls `visit` with every outlet (id, `[lat, lon]`) in an axis-aligned unit-sphere box.
    fn each_in_box(&self, envelope: &AABB<[f64; 3]>, mut visit: impl FnMut(i64, &[f64; 2])) {
        if let Some(snapshot) = &self.snapshot {
            snapshot.in_box(&envelope.lower(), &envelope.upper(), &mut visit);
        }
        for n in self.fresh.locate_in_envelope_intersecting(envelope) {
            if let Some(o) = self.by_id.get(&n.data) {
                visit(o.id, &[o.lat, o.lon]);
            }
        }
    }

    /// The `k` outlets nearest to a position, nearest first.
    pub fn nearest(&self, lat: f64, lon: f64, k: usize) -> Vec<Hit> {
        self.nearest_ids(lat, lon, k, |_| true)
    }

    /// The `k` nearest outlets that `keep` accepts (e.g. active ones in a caller's scope), nearest first.
    pub fn nearest_where(
        &self,
        lat: f64,
        lon: f64,
        k: usize,
        mut keep: impl FnMut(&IndexedOutlet) -> bool,
    ) -> Vec<Hit> {
        self.nearest_ids(lat, lon, k, |id| self.by_id.get(&id).is_some_and(&mut keep))
    }

    /// Ties in distance go to the smaller id.
    fn nearest_ids(&self, lat: f64, lon: f64, k: usize, mut keep: impl FnMut(i64) -> bool) -> Vec<Hit> {
        if k == 0 {
            return Vec::new();
        }
        let q = unit_xyz(lat, lon);
        let packed = self.snapshot.as_ref().map(|s| s.nearest(&q, k, &mut keep)).unwrap_or_default();
        let near = if self.fresh.size() == 0 {
            packed
        } else {
            knn::merge(packed, knn::branch_and_bound(&self.fresh, &q, k, &mut keep), k)
        };
        let mut hits: Vec<Hit> =
            near.into_iter().map(|(d2, id)| Hit { id, distance_m: m_for_chord(d2.sqrt()) }).collect();
        if self.footprints.size() > 0 {
            // A footprint is never farther than its outlet's point, so every outlet that belongs in
            // the answer is already in it or has a footprint within the k-th distance found so far;
            // with fewer than k found, every outlet `keep` accepts is in it already.
            let reach = (hits.len() == k).then(|| hits[k - 1].distance_m);
            self.footprints_within(&q, lat, lon, reach, &mut keep, &mut hits);
            hits.sort_by(by_distance);
            hits.truncate(k);
        }
        hits
    }

    /// Lowers the distance of the outlets in `hits` whose footprint is nearer than their point and,
    /// with a `reach_m`, adds the outlets `keep` accepts whose footprint lies within it (unsorted).
    fn footprints_within(
        &self,
        q: &[f64; 3],
        lat: f64,
        lon: f64,
        reach_m: Option<f64>,
        keep: &mut impl FnMut(i64) -> bool,
        hits: &mut Vec<Hit>,
    ) {
        let footprint_m =
            |id: i64| self.by_id.get(&id).and_then(|o| o.footprint.as_ref()).map(|f| f.distance_m(lat, lon));
        if let Some(reach_m) = reach_m {
            let mut at: HashMap<i64, usize> = hits.iter().enumerate().map(|(i, h)| (h.id, i)).collect();
            let chord = chord_for_m(reach_m) * (1.0 + 1e-9) + 1e-12;
            let envelope = AABB::from_corners(q.map(|x| x - chord), q.map(|x| x + chord));
            for fb in self.footprints.locate_in_envelope_intersecting(&envelope) {
                let id = fb.data;
                if let Some(&i) = at.get(&id) {
                    if let Some(d) = footprint_m(id) {
                        hits[i].distance_m = hits[i].distance_m.min(d);
                    }
                    continue;
                }
                if !keep(id) {
                    continue;
                }
                let (Some(to_footprint), Some(outlet)) = (footprint_m(id), self.by_id.get(&id)) else { continue };
                if to_footprint <= reach_m {
                    let to_point = m_for_chord(knn::dist2(q, &unit_xyz(outlet.lat, outlet.lon)).sqrt());
                    at.insert(id, hits.len());
                    hits.push(Hit { id, distance_m: to_point.min(to_footprint) });
                }
            }
        } else {
            for h in hits.iter_mut() {
                if let Some(d) = footprint_m(h.id) {
                    h.distance_m = h.distance_m.min(d);
                }
            }
        }
    }

    /// Outlets within `radius_m` metres of a position, nearest first.
    pub fn within_radius(&self, lat: f64, lon: f64, radius_m: f64) -> Vec<Hit> {
        let q = unit_xyz(lat, lon);
        // A hair of slack on the chord, then the exact haversine test decides.
        let chord = chord_for_m(radius_m) * (1.0 + 1e-9) + 1e-12;
        let mut hits: Vec<Hit> = Vec::new();
        self.each_within(&q, chord * chord, |id, at| {
            let distance_m = haversine_m(lat, lon, at[0], at[1]);
            if distance_m <= radius_m {
                hits.push(Hit { id, distance_m });
            }
        });
        if self.footprints.size() > 0 {
            self.footprints_within(&q, lat, lon, Some(radius_m), &mut |_| true, &mut hits);
        }
        hits.sort_by(by_distance);
        hits
    }

    /// Outlets inside a lon/lat box (edges included). `min_lon > max_lon` means the box crosses
    /// the antimeridian. Ids ascending.
    pub fn within_bbox(&self, min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> Vec<i64> {
        let mut ids = Vec::new();
        let spans: &[(f64, f64)] =
            if min_lon <= max_lon { &[(min_lon, max_lon)] } else { &[(min_lon, 180.0), (-180.0, max_lon)] };
        for &(lo, hi) in spans {
            let envelope = sphere_envelope(min_lat, max_lat, lo, hi);
            self.each_in_box(&envelope, |id, &[lat, lon]| {
                if lat >= min_lat && lat <= max_lat && lon >= lo && lon <= hi {
                    ids.push(id);
                }
            });
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Outlets inside (or on the boundary of) a lon/lat (multi)polygon. Ids ascending.
    pub fn within_polygon(&self, area: &MultiPolygon<f64>) -> Vec<i64> {
        let Some(rect) = area.bounding_rect() else { return Vec::new() };
        self.within_bbox(rect.min().x, rect.min().y, rect.max().x, rect.max().y)
            .into_iter()
            .filter(|id| {
                let o = &self.by_id[id];
                area.intersects(&Point::new(o.lon, o.lat))
            })
            .collect()
    }

    /// Outlets in an H3 cell of resolution 5 to 10. Ids ascending.
    pub fn in_cell(&self, cell: CellIndex) -> Vec<i64> {
        let res = cell.resolution();
        if res < MIN_CELL_RES || res > MAX_CELL_RES {
            return Vec::new();
        }
        let range_ids = |c: CellIndex| {
            let (lo, hi) = descendant_range(c, MAX_CELL_RES);
            self.cells.range((lo, i64::MIN)..=(hi, i64::MAX)).map(|&(_, id)| id)
        };
        if res == MAX_CELL_RES {
            return range_ids(cell).collect();
        }
        // H3 cells do not nest exactly: a point in `cell` may sit in a fine cell whose ancestor is a
        // neighbour of `cell`. Take the descendants of the cell and its neighbours, then decide exactly.
        let mut ids: Vec<i64> = cell
            .grid_disk::<Vec<_>>(1)
            .into_iter()
            .flat_map(range_ids)
            .filter(|id| {
                let o = &self.by_id[id];
                LatLng::new(o.lat, o.lon).is_ok_and(|ll| ll.to_cell(res) == cell)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// All indexed outlets (unordered).
    pub fn iter(&self) -> impl Iterator<Item = &IndexedOutlet> {
        self.by_id.values()
    }
}

/// The smallest and largest H3 index of `cell`'s descendants at resolution `res`: all of them,
/// and nothing else, lie in this range because the index digits are stored most significant first.
pub fn descendant_range(cell: CellIndex, res: Resolution) -> (u64, u64) {
    const RES_SHIFT: u32 = 52;
    const RES_MASK: u64 = 0xF << RES_SHIFT;
    let r = u8::from(cell.resolution());
    let target = u8::from(res);
    let mut lo = (u64::from(cell) & !RES_MASK) | (u64::from(target) << RES_SHIFT);
    let mut hi = lo;
    for digit in (r + 1)..=target {
        let shift = u32::from(15 - digit) * 3;
        lo &= !(0b111 << shift);
        hi = (hi & !(0b111 << shift)) | (0b110 << shift);
    }
    (lo, hi)
}

/// An axis-aligned box in unit-sphere coordinates that contains every point of the lon/lat box.
fn sphere_envelope(min_lat: f64, max_lat: f64, min_lon: f64, max_lon: f64) -> AABB<[f64; 3]> {
    let (c1, c2) = (min_lat.to_radians().cos(), max_lat.to_radians().cos());
    let cos_lat_max = if min_lat <= 0.0 && max_lat >= 0.0 { 1.0 } else { c1.max(c2) };
    let cos_lat_min = c1.min(c2);
    let range = |f: fn(f64) -> f64, extremes: &[(f64, f64)]| {
        let (a, b) = (f(min_lon.to_radians()), f(max_lon.to_radians()));
        let (mut lo, mut hi) = (a.min(b), a.max(b));
        for &(angle, value) in extremes {
            if min_lon <= angle && angle <= max_lon {
                lo = lo.min(value);
                hi = hi.max(value);
            }
        }
        (lo, hi)
    };
    // cos(lon) peaks at 0 and bottoms at ±180; sin(lon) peaks at 90 and bottoms at -90.
    let (cos_lo, cos_hi) = range(f64::cos, &[(0.0, 1.0), (180.0, -1.0), (-180.0, -1.0)]);
    let (sin_lo, sin_hi) = range(f64::sin, &[(90.0, 1.0), (-90.0, -1.0)]);
    let scale = |lo: f64, hi: f64| {
        let c = [lo * cos_lat_min, lo * cos_lat_max, hi * cos_lat_min, hi * cos_lat_max];
        (c.iter().copied().fold(f64::INFINITY, f64::min), c.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    };
    let (x0, x1) = scale(cos_lo, cos_hi);
    let (y0, y1) = scale(sin_lo, sin_hi);
    let eps = 1e-9;
    AABB::from_corners(
        [x0 - eps, y0 - eps, min_lat.to_radians().sin() - eps],
        [x1 + eps, y1 + eps, max_lat.to_radians().sin() + eps],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{LineString, Polygon};
    use proptest::prelude::*;

    fn outlet(id: i64, lat: f64, lon: f64) -> IndexedOutlet {
        IndexedOutlet {
            id,
            lat,
            lon,
            radius_m: None,
            active: true,
            territory_id: None,
            footprint: None,
            label: None,
            cell: LastCell::default(),
        }
    }

    /// Positions spread over the globe with clusters at the antimeridian and near the poles.
    fn position() -> impl Strategy<Value = (f64, f64)> {
        prop_oneof![
            (-89.9f64..89.9, -180.0f64..=180.0),
            (-60.0f64..60.0, prop_oneof![179.0f64..=180.0, -180.0f64..-179.0]),
            (prop_oneof![88.5f64..=89.99, -89.99f64..-88.5], -180.0f64..=180.0),
            (39.8f64..40.1, 116.2f64..116.6),
        ]
    }

    fn outlets() -> impl Strategy<Value = Vec<IndexedOutlet>> {
        prop::collection::vec(position(), 1..300)
            .prop_map(|v| v.into_iter().enumerate().map(|(i, (lat, lon))| outlet(i as i64 + 1, lat, lon)).collect())
    }

    fn brute_distances(all: &[IndexedOutlet], lat: f64, lon: f64) -> Vec<Hit> {
        let mut v: Vec<Hit> =
            all.iter().map(|o| Hit { id: o.id, distance_m: haversine_m(lat, lon, o.lat, o.lon) }).collect();
        v.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then(a.id.cmp(&b.id)));
        v
    }

    fn in_box(o: &IndexedOutlet, min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> bool {
        let lon_ok = if min_lon <= max_lon {
            o.lon >= min_lon && o.lon <= max_lon
        } else {
            o.lon >= min_lon || o.lon <= max_lon
        };
        lon_ok && o.lat >= min_lat && o.lat <= max_lat
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn nearest_equals_brute_force(all in outlets(), (lat, lon) in position(), k in 1usize..8) {
            let index = OutletIndex::build(all.clone());
            let got = index.nearest(lat, lon, k);
            let want = brute_distances(&all, lat, lon);
            prop_assert_eq!(got.len(), k.min(all.len()));
            for (g, w) in got.iter().zip(&want) {
                // Ties may come in another order; the distances must agree.
                prop_assert!((g.distance_m - w.distance_m).abs() < 1e-6, "{:?} vs {:?}", g, w);
            }
        }

        #[test]
        fn filtered_nearest_equals_brute_force(all in outlets(), (lat, lon) in position(), k in 1usize..8, m in 2i64..5) {
            let index = OutletIndex::build(all.clone());
            let keep = |o: &IndexedOutlet| o.id % m == 0;
            let got = index.nearest_where(lat, lon, k, keep);
            let want: Vec<Hit> = brute_distances(&all, lat, lon).into_iter().filter(|h| h.id % m == 0).take(k).collect();
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                prop_assert!(g.id % m == 0);
                prop_assert!((g.distance_m - w.distance_m).abs() < 1e-6, "{:?} vs {:?}", g, w);
            }
        }

        #[test]
        fn radius_equals_brute_force(all in outlets(), (lat, lon) in position(), r in prop_oneof![1.0f64..500.0, 500.0f64..200_000.0]) {
            let index = OutletIndex::build(all.clone());
            let got: Vec<i64> = index.within_radius(lat, lon, r).iter().map(|h| h.id).collect();
            let want: Vec<i64> = brute_distances(&all, lat, lon).into_iter().filter(|h| h.distance_m <= r).map(|h| h.id).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn radius_around_an_outlet_finds_it_and_its_neighbours(all in outlets(), pick in any::<prop::sample::Index>(), r in 0.0f64..2000.0) {
            let index = OutletIndex::build(all.clone());
            let o = all[pick.index(all.len())].clone();
            let got: Vec<i64> = index.within_radius(o.lat, o.lon, r).iter().map(|h| h.id).collect();
            let want: Vec<i64> = brute_distances(&all, o.lat, o.lon).into_iter().filter(|h| h.distance_m <= r).map(|h| h.id).collect();
            prop_assert!(got.contains(&o.id));
            prop_assert_eq!(got, want);
        }

        #[test]
        fn bbox_equals_brute_force(all in outlets(), (lat1, lon1) in position(), (lat2, lon2) in position()) {
            let index = OutletIndex::build(all.clone());
            // Any two longitudes make a box; min > max crosses the antimeridian.
            let (min_lat, max_lat) = (lat1.min(lat2), lat1.max(lat2));
            let got = index.within_bbox(lon1, min_lat, lon2, max_lat);
            let mut want: Vec<i64> = all.iter().filter(|o| in_box(o, lon1, min_lat, lon2, max_lat)).map(|o| o.id).collect();
            want.sort_unstable();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn polygon_equals_brute_force(all in outlets(), (lat, lon) in position(), w in 0.01f64..30.0, h in 0.01f64..20.0) {
            let index = OutletIndex::build(all.clone());
            let (x0, y0) = (lon.clamp(-180.0, 180.0 - w), lat.clamp(-89.9, 89.9 - h));
            // A concave "L" shape.
            let ring = LineString::from(vec![
                (x0, y0), (x0 + w, y0), (x0 + w, y0 + h / 2.0), (x0 + w / 2.0, y0 + h / 2.0),
                (x0 + w / 2.0, y0 + h), (x0, y0 + h), (x0, y0),
            ]);
            let area = MultiPolygon::new(vec![Polygon::new(ring, vec![])]);
            let got = index.within_polygon(&area);
            let mut want: Vec<i64> = all.iter().filter(|o| area.intersects(&Point::new(o.lon, o.lat))).map(|o| o.id).collect();
            want.sort_unstable();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn cell_equals_brute_force(all in outlets(), pick in any::<prop::sample::Index>(), res in 5u8..=10) {
            let index = OutletIndex::build(all.clone());
            let o = all[pick.index(all.len())].clone();
            let res = Resolution::try_from(res).expect("valid resolution");
            let cell = LatLng::new(o.lat, o.lon).expect("valid").to_cell(res);
            let got = index.in_cell(cell);
            let mut want: Vec<i64> = all
                .iter()
                .filter(|x| LatLng::new(x.lat, x.lon).expect("valid").to_cell(res) == cell)
                .map(|x| x.id)
                .collect();
            want.sort_unstable();
            prop_assert!(got.contains(&o.id));
            prop_assert_eq!(got, want);
        }

        #[test]
        fn updates_keep_every_query_consistent(all in outlets(), moves in prop::collection::vec((any::<prop::sample::Index>(), position()), 0..40), drops in prop::collection::vec(any::<prop::sample::Index>(), 0..20)) {
            let mut index = OutletIndex::build(all.clone());
            let mut truth: HashMap<i64, IndexedOutlet> = all.iter().map(|o| (o.id, o.clone())).collect();
            for (pick, (lat, lon)) in moves {
                let id = all[pick.index(all.len())].id;
                let moved = outlet(id, lat, lon);
                index.upsert(moved.clone());
                truth.insert(id, moved);
            }
            for pick in drops {
                let id = all[pick.index(all.len())].id;
                prop_assert_eq!(index.remove(id), truth.remove(&id).is_some());
            }
            let rebuilt = OutletIndex::build(truth.values().cloned());
            prop_assert_eq!(index.len(), rebuilt.len());
            prop_assert_eq!(index.within_bbox(-180.0, -90.0, 180.0, 90.0), rebuilt.within_bbox(-180.0, -90.0, 180.0, 90.0));
            for o in truth.values() {
                let cell = LatLng::new(o.lat, o.lon).expect("valid").to_cell(Resolution::Eight);
                prop_assert_eq!(index.in_cell(cell), rebuilt.in_cell(cell));
                let near = index.nearest(o.lat, o.lon, 1);
                prop_assert!(near[0].distance_m < 1e-6);
            }
        }
    }

    /// A square footprint of half-side `half` degrees around the outlet (away from the poles and
    /// the antimeridian, where a lon/lat square is not a small outline).
    fn with_square(mut o: IndexedOutlet, half: f64) -> IndexedOutlet {
        if o.lat.abs() < 80.0 && o.lon.abs() < 179.0 {
            let ring = LineString::from(vec![
                (o.lon - half, o.lat - half),
                (o.lon + half, o.lat - half),
                (o.lon + half, o.lat + half),
                (o.lon - half, o.lat + half),
                (o.lon - half, o.lat - half),
            ]);
            o.footprint = Footprint::new(MultiPolygon::new(vec![Polygon::new(ring, vec![])])).map(Arc::new);
        }
        o
    }

    /// Distances to outlets as the index defines them: to the point, or to the footprint if nearer.
    fn brute_effective(all: &[IndexedOutlet], lat: f64, lon: f64) -> Vec<Hit> {
        let mut v: Vec<Hit> = all
            .iter()
            .map(|o| {
                let point = haversine_m(lat, lon, o.lat, o.lon);
                let d = o.footprint.as_ref().map_or(point, |f| point.min(f.distance_m(lat, lon)));
                Hit { id: o.id, distance_m: d }
            })
            .collect();
        v.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then(a.id.cmp(&b.id)));
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Footprints on some outlets: k-nearest and within-radius measure to the nearer of point
        /// and footprint, and still equal brute force; moving or dropping a footprint is seen.
        #[test]
        fn footprints_count_in_distances(
            all in outlets(),
            every in 1usize..4,
            half in prop_oneof![0.0001f64..0.002, 0.002f64..0.01],
            near_an_outlet in any::<prop::sample::Index>(),
            offset in (-0.02f64..0.02, -0.02f64..0.02),
            k in 1usize..8,
            r in 1.0f64..3000.0,
            m in 1i64..3,
        ) {
            let all: Vec<IndexedOutlet> =
                all.into_iter().enumerate().map(|(i, o)| if i % every == 0 { with_square(o, half) } else { o }).collect();
            let mut index = OutletIndex::build(all.clone());
            // Ask next to an outlet, where footprints matter.
            let o = &all[near_an_outlet.index(all.len())];
            let (lat, lon) = ((o.lat + offset.0).clamp(-89.9, 89.9), (o.lon + offset.1).clamp(-180.0, 180.0));
            let check = |index: &OutletIndex, all: &[IndexedOutlet]| -> Result<(), TestCaseError> {
                let want = brute_effective(all, lat, lon);
                let got = index.nearest_where(lat, lon, k, |o| o.id % m == 0);
                let want_k: Vec<&Hit> = want.iter().filter(|h| h.id % m == 0).take(k).collect();
                prop_assert_eq!(got.len(), want_k.len());
                for (g, w) in got.iter().zip(&want_k) {
                    // A micrometre, or a relative 1e-12 for distances across the globe (f64 rounding).
                    let tolerance = (w.distance_m * 1e-12).max(1e-6);
                    prop_assert!((g.distance_m - w.distance_m).abs() < tolerance, "{:?} vs {:?}", g, w);
                }
                let got: Vec<i64> = index.within_radius(lat, lon, r).iter().map(|h| h.id).collect();
                // Brute force with a micrometre of slack either way; an outlet that close to the
                // edge may go either way.
                let sure: Vec<i64> = want.iter().filter(|h| h.distance_m <= r - 1e-6).map(|h| h.id).collect();
                let maybe: Vec<i64> = want.iter().filter(|h| h.distance_m <= r + 1e-6).map(|h| h.id).collect();
                prop_assert!(sure.iter().all(|id| got.contains(id)), "missing: {:?} vs {:?}", got, sure);
                prop_assert!(got.iter().all(|id| maybe.contains(id)), "extra: {:?} vs {:?}", got, maybe);
                Ok(())
            };
            check(&index, &all)?;
            // Drop the footprint of the first outlet and give the second one a large one.
            let mut changed = all.clone();
            changed[0].footprint = None;
            index.upsert(changed[0].clone());
            if changed.len() > 1 {
                changed[1] = with_square(changed[1].clone(), 0.01);
                index.upsert(changed[1].clone());
            }
            check(&index, &changed)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// k-nearest after many changes (enough to cross the snapshot's rebuild threshold, or not)
        /// equals brute force id for id; duplicates of one position make ties, which go to the
        /// smaller id.
        #[test]
        fn nearest_after_changes_equals_brute_force(
            all in outlets(),
            changes in prop::collection::vec((0i64..400, prop::option::of(position())), 0..200),
            (lat, lon) in position(),
            k in 1usize..8,
            m in 1i64..4,
        ) {
            let mut index = OutletIndex::build(all.clone());
            let mut truth: HashMap<i64, IndexedOutlet> = all.iter().map(|o| (o.id, o.clone())).collect();
            for (id, change) in changes {
                if let Some((lat, lon)) = change {
                    // Every third change lands on an existing position (ties).
                    let (lat, lon) = match truth.get(&(id / 3)) {
                        Some(o) if id % 3 == 0 => (o.lat, o.lon),
                        _ => (lat, lon),
                    };
                    index.upsert(outlet(id, lat, lon));
                    truth.insert(id, outlet(id, lat, lon));
                } else {
                    prop_assert_eq!(index.remove(id), truth.remove(&id).is_some());
                }
            }
            let keep = |o: &IndexedOutlet| o.id % m == 0;
            let truth: Vec<IndexedOutlet> = truth.into_values().collect();
            let brute = |filter: &dyn Fn(&IndexedOutlet) -> bool| -> Vec<i64> {
                let mut v: Vec<(f64, i64)> = truth
                    .iter()
                    .filter(|o| filter(o))
                    .map(|o| {
                        let (a, b) = (unit_xyz(lat, lon), unit_xyz(o.lat, o.lon));
                        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2), o.id)
                    })
                    .collect();
                v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                v.into_iter().take(k).map(|n| n.1).collect()
            };
            let got: Vec<i64> = index.nearest(lat, lon, k).iter().map(|h| h.id).collect();
            prop_assert_eq!(got, brute(&|_| true));
            let got: Vec<i64> = index.nearest_where(lat, lon, k, keep).iter().map(|h| h.id).collect();
            prop_assert_eq!(got, brute(&keep));
        }
    }

    /// Bulk-built trees of many sizes stay sound under inserts, moves and removals (with R* forced
    /// reinsertion some of these panic inside rstar: leaves of a bulk-loaded tree sit at different depths).
    #[test]
    fn bulk_built_trees_take_updates() {
        let mut state = 0x1234_5678_u64;
        let mut unit = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        for n in (20..400).step_by(7) {
            let all: Vec<IndexedOutlet> = (1..=n).map(|id| outlet(id, 39.0 + unit(), 116.0 + unit())).collect();
            let mut index = OutletIndex::build(all.clone());
            let mut truth: HashMap<i64, IndexedOutlet> = all.iter().map(|o| (o.id, o.clone())).collect();
            for step in 0..150 {
                let id = 1 + (unit() * (n + 40) as f64) as i64;
                if step % 5 == 4 {
                    assert_eq!(index.remove(id), truth.remove(&id).is_some());
                } else {
                    let o = outlet(id, 39.0 + unit(), 116.0 + unit());
                    index.upsert(o.clone());
                    truth.insert(id, o);
                }
            }
            assert_eq!(index.len(), truth.len());
            let mut want: Vec<i64> = truth.keys().copied().collect();
            want.sort_unstable();
            assert_eq!(index.within_bbox(-180.0, -90.0, 180.0, 90.0), want, "n = {n}");
            for o in truth.values() {
                assert_eq!(index.nearest(o.lat, o.lon, 1)[0].id, o.id, "n = {n}");
            }
        }
    }

    #[test]
    fn descendant_range_brackets_exactly_the_children() {
        let cell = LatLng::new(39.9, 116.4).expect("valid").to_cell(Resolution::Seven);
        let (lo, hi) = descendant_range(cell, Resolution::Nine);
        let children: Vec<u64> = cell.children(Resolution::Nine).map(u64::from).collect();
        assert_eq!(children.len(), 49);
        assert_eq!(children.iter().min(), Some(&lo));
        assert_eq!(children.iter().max(), Some(&hi));
        assert!(children.iter().all(|c| (lo..=hi).contains(c)));
    }

    #[test]
    fn cells_outside_the_supported_resolutions_answer_nothing() {
        let index = OutletIndex::build([outlet(1, 39.9, 116.4)]);
        let coarse = LatLng::new(39.9, 116.4).expect("valid").to_cell(Resolution::Four);
        assert!(index.in_cell(coarse).is_empty());
        let fine = LatLng::new(39.9, 116.4).expect("valid").to_cell(Resolution::Eleven);
        assert!(index.in_cell(fine).is_empty());
        let five = LatLng::new(39.9, 116.4).expect("valid").to_cell(Resolution::Five);
        assert_eq!(index.in_cell(five), vec![1]);
    }

    #[test]
    fn an_outlet_keeps_its_cell_at_the_resolution_asked_for() {
        let mut index = OutletIndex::build([outlet(1, 39.9, 116.4)]);
        let cell = |lat: f64, lon: f64, res: Resolution| LatLng::new(lat, lon).expect("valid").to_cell(res);
        let o = index.get(1).expect("indexed");
        for res in [Resolution::Eight, Resolution::Eight, Resolution::Five, Resolution::Ten, Resolution::Eight] {
            assert_eq!(o.cell_at(res), Some(cell(39.9, 116.4, res)), "{res:?}");
        }
        // Moved: the cell of the new place, whatever was held before.
        index.upsert(outlet(1, 22.5, 114.1));
        assert_eq!(
            index.get(1).expect("indexed").cell_at(Resolution::Eight),
            Some(cell(22.5, 114.1, Resolution::Eight))
        );
    }
}
