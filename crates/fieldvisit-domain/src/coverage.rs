//! Coverage of outlets over a period: each outlet's status, the coverage figures by H3 cell with
//! the white space, and how much of a planned route the rep's actual track came near.
//!
//! Definitions (U, V and the figures as in [`crate::compliance`]):
//! - An outlet's *status* at the period's last day E, from its tier's interval I = cycle days /
//!   required visits per cycle and the local day of its last valid visit up to E (by any rep):
//!   `closed` when it is not active at the end of E (closed or suspended); else `never_visited`
//!   when it has no valid visit; else `visited` when E - last < I (or its tier requires none);
//!   `due` when I <= E - last < [`OVERDUE_AFTER_INTERVALS`] x I; `overdue` beyond.
//! - H3 figures: the outlet figures (coverage, frequency and dwell compliance) of the outlets of U
//!   whose location lies in each cell of the resolution; a cell is *white space* when it holds
//!   outlets of U and none of them has a valid visit in the period.
//! - Route corridor coverage: the share of the planned route's line (the planned outlets of a
//!   rep-day in route order, joined by great-circle segments) that lies within X m of the rep's
//!   track that day (the line through its usable fixes, gaps not bridged, as the distance figure
//!   reads it), measured on points every [`CORRIDOR_STEP_M`] along the line.

use crate::compliance::{FiguresSum, OutletFigures, OutletVisit, ScopeOutlet, Tally, tallies};
use crate::geo::haversine_m;
use chrono::NaiveDate;
use h3o::{CellIndex, LatLng, Resolution};
use serde::Serialize;
use std::collections::HashMap;

/// An outlet past its interval by this many intervals is `overdue` (before that, `due`).
pub const OVERDUE_AFTER_INTERVALS: f64 = 1.5;

/// H3 resolutions the coverage API serves (cells of ~250 km² down to ~0.015 km²).
pub const H3_RESOLUTIONS: std::ops::RangeInclusive<u8> = 5..=10;

/// Where an outlet stands at the end of a period: its period status, computed from its visits (its
/// lifecycle status, active, closed or suspended, is `OutletStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeriodStatus {
    Visited,
    Due,
    Overdue,
    NeverVisited,
    Closed,
}

// Declared in legend order: `ALL` lists them in it.
named!(PeriodStatus, "status", {
    Visited => "visited",
    Due => "due",
    Overdue => "overdue",
    NeverVisited => "never_visited",
    Closed => "closed",
});

/// The status of outlet `o` on day `end` (module documentation): `active_at_end` is whether its
/// status at the end of that day is `active`, `last_valid` the local day of its last valid visit
/// up to `end`.
pub fn outlet_status(
    o: &ScopeOutlet,
    active_at_end: bool,
    last_valid: Option<NaiveDate>,
    end: NaiveDate,
) -> PeriodStatus {
    status_of(o.required_visits, o.cycle_days, active_at_end, last_valid, end)
}

/// [`outlet_status`] from the tier's required visits per cycle of `cycle_days`.
pub fn status_of(
    required_visits: i32,
    cycle_days: i32,
    active_at_end: bool,
    last_valid: Option<NaiveDate>,
    end: NaiveDate,
) -> PeriodStatus {
    if !active_at_end {
        return PeriodStatus::Closed;
    }
    let Some(last) = last_valid else { return PeriodStatus::NeverVisited };
    if required_visits <= 0 {
        return PeriodStatus::Visited;
    }
    let interval = f64::from(cycle_days.max(1)) / f64::from(required_visits);
    let age = (end - last).num_days() as f64;
    if age < interval {
        PeriodStatus::Visited
    } else if age < OVERDUE_AFTER_INTERVALS * interval {
        PeriodStatus::Due
    } else {
        PeriodStatus::Overdue
    }
}

/// The local day of each outlet's last valid visit among `visits` up to `end`.
pub fn last_valid_visits(visits: &[OutletVisit], end: NaiveDate) -> HashMap<i64, NaiveDate> {
    let mut last: HashMap<i64, NaiveDate> = HashMap::new();
    for v in visits.iter().filter(|v| v.visit.is_valid() && v.rep_day <= end) {
        last.entry(v.outlet_id).and_modify(|d| *d = (*d).max(v.rep_day)).or_insert(v.rep_day);
    }
    last
}

/// The H3 cell (at `res`) of a position; `None` for a position H3 cannot index.
pub fn cell_of(lat: f64, lon: f64, res: Resolution) -> Option<CellIndex> {
    LatLng::new(lat, lon).ok().map(|p| p.to_cell(res))
}

/// The box `[west, south, east, north]` grown by three mean cell edges of `res` on every side
/// (a cell is about two edges across, its largest a fifth more; wrapping the antimeridian, whole
/// longitudes when it would go round): it holds every outlet of each cell that meets the box or
/// has its centre in it.
pub fn grown_by_cells(b: [f64; 4], res: Resolution) -> [f64; 4] {
    let [west, south, east, north] = b;
    let margin_lat = 3.0 * res.edge_length_km() / 111.195;
    let widest = (south - margin_lat).abs().max((north + margin_lat).abs()).min(85.0).to_radians().cos();
    let margin_lon = (margin_lat / widest).min(180.0);
    let (south, north) = ((south - margin_lat).max(-89.999), (north + margin_lat).min(89.999));
    let span = if west <= east { east - west } else { east + 360.0 - west };
    if span + 2.0 * margin_lon >= 360.0 {
        return [-180.0, south, 180.0, north];
    }
    let wrap = |lon: f64| {
        if lon < -180.0 {
            lon + 360.0
        } else if lon > 180.0 {
            lon - 360.0
        } else {
            lon
        }
    };
    [wrap(west - margin_lon), south, wrap(east + margin_lon), north]
}

/// The figures of one H3 cell.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CellFigures {
    /// The H3 cell index (hexadecimal string, as `h3-js` and `DuckDB` print it).
    pub cell: String,
    #[serde(flatten)]
    #[schema(inline)]
    pub figures: OutletFigures,
    /// The cell holds outlets of U and none has a valid visit in the period.
    pub white_space: bool,
}

/// The figures per H3 cell of resolution `res` of `outlets` (each with its position) and their
/// `visits` in a period of `period_days`: only cells holding outlets of U, in cell order.
pub fn h3_figures<'a>(
    outlets: impl IntoIterator<Item = (&'a ScopeOutlet, f64, f64)>,
    visits: &[OutletVisit],
    period_days: i64,
    res: Resolution,
) -> Vec<CellFigures> {
    let mut positions: HashMap<i64, (f64, f64)> = HashMap::new();
    let outlets: Vec<ScopeOutlet> = outlets
        .into_iter()
        .map(|(o, lat, lon)| {
            positions.insert(o.id, (lat, lon));
            o.clone()
        })
        .collect();
    let tallied: Vec<(CellIndex, Tally)> = tallies(&outlets, visits, period_days)
        .filter_map(|(o, t)| {
            let (lat, lon) = positions[&o.id];
            Some((cell_of(lat, lon, res)?, t))
        })
        .collect();
    h3_cells(tallied.iter().map(|(c, t)| (*c, t)))
}

/// The figures per H3 cell of the outlets of U, each given by its cell and its tally: cells in
/// cell order. Each cell sums its outlets in the order given.
pub fn h3_cells<'a>(outlets: impl IntoIterator<Item = (CellIndex, &'a Tally)>) -> Vec<CellFigures> {
    let mut cells: foldhash::HashMap<CellIndex, FiguresSum> = foldhash::HashMap::default();
    for (c, t) in outlets {
        cells.entry(c).or_default().add(t);
    }
    let mut cells: Vec<(CellIndex, FiguresSum)> = cells.into_iter().collect();
    cells.sort_unstable_by_key(|(c, _)| *c);
    cells
        .into_iter()
        .map(|(c, sum)| {
            let figures = sum.figures();
            let white_space = figures.active_outlets > 0 && figures.visited_outlets == 0;
            CellFigures { cell: c.to_string(), figures, white_space }
        })
        .collect()
}

/// Points along a route are measured this far apart (metres).
pub const CORRIDOR_STEP_M: f64 = 10.0;

/// How much of a planned route the track came near.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CorridorCoverage {
    /// Length of the planned route (metres, great circle between consecutive outlets).
    pub route_m: f64,
    /// Length of it within the corridor of the track.
    pub covered_m: f64,
    /// covered / route x 100; `None` for a route of fewer than two distinct stops.
    pub covered_pct: Option<f64>,
}

/// Metres per degree of latitude (mean sphere).
const M_PER_DEG: f64 = 111_195.0;

/// Longitude difference `b - a` in (-180, 180].
fn dlon(a: f64, b: f64) -> f64 {
    let d = (b - a).rem_euclid(360.0);
    if d > 180.0 { d - 360.0 } else { d }
}

/// Metres from `p` to the segment `a`-`b` (all lat, lon), on the plane tangent at `p` (exact
/// enough for the few hundred metres a corridor spans).
fn to_segment_m(point: (f64, f64), from: (f64, f64), to: (f64, f64)) -> f64 {
    let scale = point.0.to_radians().cos() * M_PER_DEG;
    let (ax, ay) = (dlon(point.1, from.1) * scale, (from.0 - point.0) * M_PER_DEG);
    let (bx, by) = (dlon(point.1, to.1) * scale, (to.0 - point.0) * M_PER_DEG);
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = dx * dx + dy * dy;
    let along = if len2 > 0.0 { (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    (ax + along * dx).hypot(ay + along * dy)
}

/// The share of the line through `route` (lat, lon in route order) that lies within `within_m`
/// of the track, given as pieces of (lat, lon) positions (the usable fixes, a gap between pieces
/// not bridged: [`crate::compliance::track_pieces`]), measured every [`CORRIDOR_STEP_M`]
/// (module documentation). The distance is to the track's line, not only to its fixes.
pub fn corridor_coverage(route: &[(f64, f64)], track: &[Vec<(f64, f64)>], within_m: f64) -> CorridorCoverage {
    let finite = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
    // The track's segments (a lone fix is a segment of length 0), in a grid of cells two
    // corridors wide: each segment is filed in the cells around points every half a cell along
    // it, so a point within the corridor finds it in its own cell.
    let segments: Vec<((f64, f64), (f64, f64))> = track
        .iter()
        .flat_map(|piece| {
            let piece: Vec<(f64, f64)> = piece.iter().copied().filter(finite).collect();
            let lone = (piece.len() == 1).then(|| (piece[0], piece[0]));
            piece.windows(2).map(|w| (w[0], w[1])).chain(lone).collect::<Vec<_>>()
        })
        .collect();
    let max_lat = route.iter().chain(segments.iter().flat_map(|s| [&s.0, &s.1])).map(|p| p.0.abs()).fold(0.0, f64::max);
    let cell_lat = 2.0 * within_m.max(1.0) / M_PER_DEG;
    let cell_lon = (cell_lat / max_lat.min(89.0).to_radians().cos().max(0.01)).min(360.0);
    let columns = (360.0 / cell_lon).ceil() as i64;
    let key = |(lat, lon): (f64, f64)| {
        ((lat / cell_lat).floor() as i64, (((lon + 180.0) / cell_lon).floor() as i64).rem_euclid(columns))
    };
    let mut grid: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    for (n, &(a, b)) in segments.iter().enumerate() {
        let steps = (haversine_m(a.0, a.1, b.0, b.1) / within_m.max(1.0)).ceil().clamp(0.0, 1e6) as usize;
        for k in 0..=steps {
            let f = if steps == 0 { 0.0 } else { k as f64 / steps as f64 };
            let (y, x) = key((a.0 + (b.0 - a.0) * f, a.1 + dlon(a.1, b.1) * f));
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let cell = grid.entry((y + dy, (x + dx).rem_euclid(columns))).or_default();
                    if cell.last() != Some(&n) {
                        cell.push(n);
                    }
                }
            }
        }
    }
    let near = |p: (f64, f64)| {
        grid.get(&key(p))
            .is_some_and(|ids| ids.iter().any(|&n| to_segment_m(p, segments[n].0, segments[n].1) <= within_m))
    };
    let (mut route_m, mut covered_m) = (0.0, 0.0);
    for leg in route.windows(2) {
        let ((lat0, lon0), (lat1, lon1)) = (leg[0], leg[1]);
        let length = haversine_m(lat0, lon0, lat1, lon1);
        if !length.is_finite() || length == 0.0 {
            continue;
        }
        route_m += length;
        // Points at the middle of each step of the leg (interpolated in degrees: legs between
        // outlets of one rep-day are short), each standing for its step's length.
        let steps = (length / CORRIDOR_STEP_M).ceil().max(1.0);
        let step_m = length / steps;
        let d = dlon(lon0, lon1);
        for k in 0..steps as usize {
            let f = (k as f64 + 0.5) / steps;
            let lon = (lon0 + d * f + 180.0).rem_euclid(360.0) - 180.0;
            if near((lat0 + (lat1 - lat0) * f, lon)) {
                covered_m += step_m;
            }
        }
    }
    CorridorCoverage { route_m, covered_m, covered_pct: (route_m > 0.0).then(|| covered_m / route_m * 100.0) }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use crate::compliance::DayVisit;
    use chrono::{Duration, TimeZone, Utc};

    fn outlet(id: i64, required_visits: i32, cycle_days: i32) -> ScopeOutlet {
        ScopeOutlet {
            id,
            tier: "A".into(),
            channel_type: crate::outlet::ChannelType::AgentPoint,
            status_at_start: Some(crate::outlet::OutletStatus::Active),
            required_visits,
            cycle_days,
            min_dwell_s: 300,
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).expect("day")
    }

    fn visit(outlet_id: i64, d: u32, verdict: &str, dwell_s: i64) -> OutletVisit {
        let arrival = Utc.with_ymd_and_hms(2026, 11, d, 2, 0, 0).single().expect("time");
        OutletVisit {
            outlet_id,
            rep_day: day(d),
            visit: DayVisit {
                id: i64::from(d) * 100 + outlet_id,
                outlet_id,
                arrival,
                departure: arrival + Duration::seconds(dwell_s),
                dwell_s,
                verdict: verdict.parse().expect("a verdict"),
                review: None,
            },
        }
    }

    #[test]
    fn status_follows_the_tiers_interval() {
        // 4 visits per 28 days: interval 7 days, overdue from 10.5 days.
        let a = outlet(1, 4, 28);
        let end = day(30);
        assert_eq!(outlet_status(&a, false, Some(day(29)), end), PeriodStatus::Closed);
        assert_eq!(outlet_status(&a, true, None, end), PeriodStatus::NeverVisited);
        assert_eq!(outlet_status(&a, true, Some(day(24)), end), PeriodStatus::Visited); // 6 days
        assert_eq!(outlet_status(&a, true, Some(day(23)), end), PeriodStatus::Due); // 7 days
        assert_eq!(outlet_status(&a, true, Some(day(20)), end), PeriodStatus::Due); // 10 days
        assert_eq!(outlet_status(&a, true, Some(day(19)), end), PeriodStatus::Overdue); // 11 days
        assert_eq!(outlet_status(&outlet(2, 0, 28), true, Some(day(1)), end), PeriodStatus::Visited);
    }

    #[test]
    fn last_valid_visits_ignore_invalid_and_later_ones() {
        let visits = [visit(1, 10, "verified", 600), visit(1, 20, "short", 60), visit(1, 29, "verified", 600)];
        let last = last_valid_visits(&visits, day(25));
        assert_eq!(last.get(&1), Some(&day(10)));
    }

    #[test]
    fn h3_cells_hold_their_outlets_figures_and_white_space() {
        let res = Resolution::Eight;
        let (a, b, c) = (outlet(1, 4, 28), outlet(2, 4, 28), outlet(3, 4, 28));
        let mut closed = outlet(4, 4, 28);
        closed.status_at_start = Some(crate::outlet::OutletStatus::Closed);
        // 1 and 2 a few metres apart (one cell); 3 and the closed 4 some 20 km away.
        let outlets = [(&a, 39.9, 116.4), (&b, 39.90001, 116.4), (&c, 40.1, 116.6), (&closed, 40.1, 116.6)];
        let visits = [visit(1, 10, "verified", 600), visit(1, 12, "verified", 100), visit(4, 12, "verified", 600)];
        let cells = h3_figures(outlets, &visits, 28, res);
        assert_eq!(cells.len(), 2, "{cells:?}");
        let first =
            cells.iter().find(|c| c.cell == cell_of(39.9, 116.4, res).expect("cell").to_string()).expect("cell");
        assert_eq!((first.figures.active_outlets, first.figures.visited_outlets), (2, 1));
        assert_eq!(first.figures.coverage_pct, Some(50.0));
        // Outlet 1: 2 of 4 required (50%), outlet 2: 0%.
        assert_eq!(first.figures.frequency_compliance_pct, Some(25.0));
        assert_eq!(first.figures.dwell_compliance_pct, Some(50.0));
        assert!(!first.white_space);
        let other = cells.iter().find(|c| c.cell != first.cell).expect("other cell");
        assert_eq!((other.figures.active_outlets, other.figures.visited_outlets), (1, 0));
        assert!(other.white_space, "the closed outlet's visit does not count");
    }

    #[test]
    fn a_grown_box_holds_the_cells_meeting_it_and_wraps_the_antimeridian() {
        let res = Resolution::Eight;
        let b = grown_by_cells([116.0, 39.0, 116.1, 39.1], res);
        assert!(b[0] < 116.0 && b[1] < 39.0 && b[2] > 116.1 && b[3] > 39.1, "{b:?}");
        // Every vertex of a cell whose centre is on the corner lies inside.
        let cell = cell_of(39.0, 116.0, res).expect("cell");
        for v in cell.boundary().iter() {
            assert!(v.lng() > b[0] && v.lat() > b[1], "{v:?} {b:?}");
        }
        let across = grown_by_cells([179.999, -1.0, 180.0, 1.0], res);
        assert!(across[0] > across[2], "crosses the antimeridian: {across:?}");
        assert_eq!(grown_by_cells([-180.0, -80.0, 180.0, 80.0], res)[0], -180.0);
    }

    #[test]
    fn corridor_coverage_measures_the_route_near_the_track() {
        let m = 1.0 / 111_195.0;
        // A 1,000 m route north; the track followed its first 600 m, 20 m to the east.
        let route = [(39.9, 116.4), (39.9 + 1000.0 * m, 116.4)];
        let east = 20.0 * m / 39.9_f64.to_radians().cos();
        let track: Vec<(f64, f64)> = (0..=60).map(|k| (39.9 + f64::from(k) * 10.0 * m, 116.4 + east)).collect();
        let c = corridor_coverage(&route, std::slice::from_ref(&track), 50.0);
        assert!((c.route_m - 1000.0).abs() < 1.0, "{c:?}");
        // Covered up to ~600 m + the corridor's 46 m beyond the last fix.
        let pct = c.covered_pct.expect("pct");
        assert!((63.0..=66.0).contains(&pct), "{c:?}");
        assert_eq!(corridor_coverage(&route, std::slice::from_ref(&track), 10.0).covered_m, 0.0);
        assert_eq!(corridor_coverage(&route[..1], &[track], 50.0).covered_pct, None);
        // Sparse fixes (every 450 m, as a car's) right on the route: the line between them counts.
        let sparse: Vec<(f64, f64)> = (0..=3).map(|k| (39.9 + f64::from(k) * 450.0 * m, 116.4)).collect();
        let c = corridor_coverage(&route, std::slice::from_ref(&sparse), 30.0);
        assert!(c.covered_pct.is_some_and(|p| p > 99.0), "{c:?}");
        // The same fixes as pieces split by gaps: nothing between them is bridged (30 + 60 + 60 m).
        let pieces: Vec<Vec<(f64, f64)>> = sparse.iter().map(|p| vec![*p]).collect();
        let c = corridor_coverage(&route, &pieces, 30.0);
        assert!(c.covered_pct.is_some_and(|p| (13.0..17.0).contains(&p)), "{c:?}");
        // Across the antimeridian the route is the short way.
        let wrap = corridor_coverage(&[(0.0, 179.999), (0.0, -179.999)], &[vec![(0.0, 180.0)]], 50.0);
        assert!(wrap.route_m < 300.0 && wrap.covered_pct.is_some_and(|p| p > 20.0), "{wrap:?}");
    }
}
