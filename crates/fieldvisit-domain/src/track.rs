//! Track shaping: splitting a device's fixes into segments at time gaps (gaps are never bridged) and
//! Douglas–Peucker simplification with a tolerance in metres.

use super::geo::EARTH_RADIUS_M;
use chrono::{DateTime, Utc};
use geo::{Coord, Distance, Euclidean, Line, LineString, SimplifyIdx};
use std::ops::Range;

/// Largest simplification tolerance a caller may ask for, metres.
pub const MAX_SIMPLIFY_M: f64 = 1000.0;

/// Default longest time between consecutive fixes of one segment, seconds.
pub const DEFAULT_MAX_GAP_S: i64 = 600;

/// Longest run of points handed to `geo`'s recursive Douglas–Peucker at once. Longer runs are split by
/// this module at the same points the recursion would choose, so the result is identical while the
/// recursion depth stays bounded (an adversarial zig-zag of 20,000 points overflows a 2 MiB stack).
const RECURSION_LIMIT: usize = 512;

/// Index ranges of consecutive fixes (`times` ascending) no more than `max_gap` apart. Every index
/// belongs to exactly one range; empty input gives no range.
pub fn split_at_gaps(times: &[DateTime<Utc>], max_gap: chrono::Duration) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..times.len() {
        if times[i] - times[i - 1] > max_gap {
            out.push(start..i);
            start = i;
        }
    }
    if !times.is_empty() {
        out.push(start..times.len());
    }
    out
}

/// `p` (lat, lon degrees) on a local equirectangular plane around `origin`, metres (x east, y north).
/// Longitude differences are taken across the antimeridian when shorter.
pub fn project(origin: (f64, f64), p: (f64, f64)) -> (f64, f64) {
    let mut dlon = p.1 - origin.1;
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    let x = EARTH_RADIUS_M * dlon.to_radians() * origin.0.to_radians().cos();
    let y = EARTH_RADIUS_M * (p.0 - origin.0).to_radians();
    (x, y)
}

/// Indices (ascending) of the points (lat, lon) that Douglas–Peucker keeps with `tolerance_m` metres,
/// measured on the local plane of the first point. The first and last point are always kept; a
/// tolerance that is not positive keeps every point.
pub fn simplify(points: &[(f64, f64)], tolerance_m: f64) -> Vec<usize> {
    let n = points.len();
    if n <= 2 || tolerance_m.is_nan() || tolerance_m <= 0.0 {
        return (0..n).collect();
    }
    let origin = points[0];
    let coords: Vec<Coord<f64>> = points
        .iter()
        .map(|&p| {
            let (x, y) = project(origin, p);
            Coord { x, y }
        })
        .collect();
    let mut keep = vec![false; n];
    keep[0] = true;
    keep[n - 1] = true;
    // Inclusive index ranges still to simplify; long ones are split here, short ones go to `geo`.
    let mut todo = vec![(0, n - 1)];
    while let Some((a, b)) = todo.pop() {
        if b - a < 2 {
            continue;
        }
        if b - a < RECURSION_LIMIT {
            let line = LineString::new(coords[a..=b].to_vec());
            for i in line.simplify_idx(tolerance_m) {
                keep[a + i] = true;
            }
            continue;
        }
        // The same choice as `geo`: the last of the farthest interior points from the chord.
        let chord = Line::new(coords[a], coords[b]);
        let (mut far, mut far_d) = (a, 0.0);
        for (i, c) in coords.iter().enumerate().take(b).skip(a + 1) {
            let d = Euclidean.distance(*c, &chord);
            if d >= far_d {
                (far, far_d) = (i, d);
            }
        }
        if far_d > tolerance_m {
            keep[far] = true;
            todo.push((a, far));
            todo.push((far, b));
        }
    }
    keep.iter().enumerate().filter_map(|(i, k)| k.then_some(i)).collect()
}

/// One device's track as drawn: per gap-separated segment, the indices of the fixes kept (all of
/// them without `tolerance_m`). `times` ascending, `points` (lat, lon) of the same length.
pub fn shape(
    times: &[DateTime<Utc>],
    points: &[(f64, f64)],
    max_gap: chrono::Duration,
    tolerance_m: Option<f64>,
) -> Vec<Vec<usize>> {
    split_at_gaps(times, max_gap)
        .into_iter()
        .map(|range| match tolerance_m {
            Some(t) => simplify(&points[range.clone()], t).into_iter().map(|i| range.start + i).collect(),
            None => range.collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_714_550_400 + s, 0).single().expect("valid time")
    }

    /// Distance from `p` to the segment `a`-`b` on the plane.
    fn to_segment((px, py): (f64, f64), (ax, ay): (f64, f64), (bx, by): (f64, f64)) -> f64 {
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = dx * dx + dy * dy;
        let t = if len2 == 0.0 { 0.0 } else { (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0) };
        (px - (ax + t * dx)).hypot(py - (ay + t * dy))
    }

    /// Asserts the Douglas–Peucker guarantees of `kept` for `points` and `tolerance_m`.
    fn check(points: &[(f64, f64)], tolerance_m: f64, kept: &[usize]) {
        assert_eq!(kept.first(), Some(&0));
        assert_eq!(kept.last(), Some(&(points.len() - 1)));
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "ascending and unique: {kept:?}");
        let plane: Vec<(f64, f64)> = points.iter().map(|&p| project(points[0], p)).collect();
        for w in kept.windows(2) {
            for i in w[0] + 1..w[1] {
                let d = to_segment(plane[i], plane[w[0]], plane[w[1]]);
                assert!(d <= tolerance_m + 1e-6, "point {i} is {d} m from the kept segment {w:?}");
            }
        }
    }

    #[test]
    fn gaps_longer_than_the_threshold_split_segments() {
        let times = [at(0), at(60), at(660), at(1261), at(1300)];
        let segments = split_at_gaps(&times, chrono::Duration::seconds(600));
        // 60 -> 660 is exactly the threshold (kept together); 660 -> 1261 is longer (split).
        assert_eq!(segments, vec![0..3, 3..5]);
        assert!(split_at_gaps(&[], chrono::Duration::seconds(600)).is_empty());
        assert_eq!(split_at_gaps(&[at(0)], chrono::Duration::seconds(1)), vec![0..1]);
    }

    #[test]
    fn a_straight_dense_line_keeps_its_endpoints() {
        let points: Vec<(f64, f64)> = (0..200).map(|i| (39.95, 116.05 + f64::from(i) * 1e-4)).collect();
        assert_eq!(simplify(&points, 1.0), vec![0, 199]);
    }

    #[test]
    fn a_corner_is_kept_and_small_wiggles_are_not() {
        // East 1 km, then north 1 km, with ~1 m of noise.
        let mut points = Vec::new();
        for i in 0..=100 {
            let wiggle = if i % 2 == 0 { 1e-5 } else { -1e-5 };
            points.push((39.95 + wiggle, 116.05 + f64::from(i) * 1.17e-4));
        }
        for i in 1..=100 {
            points.push((39.95 + f64::from(i) * 0.9e-4, 116.05 + 100.0 * 1.17e-4));
        }
        let kept = simplify(&points, 5.0);
        assert_eq!(kept, vec![0, 100, 200]);
        check(&points, 5.0, &kept);
        // A tolerance below the noise keeps the wiggles.
        assert!(simplify(&points, 0.5).len() > 100);
    }

    #[test]
    fn no_tolerance_keeps_everything() {
        let points = [(1.0, 1.0), (1.1, 1.0), (1.2, 1.0)];
        assert_eq!(simplify(&points, 0.0), vec![0, 1, 2]);
        assert_eq!(simplify(&points, f64::NAN), vec![0, 1, 2]);
        assert_eq!(simplify(&points[..1], 10.0), vec![0]);
        assert!(simplify(&[], 10.0).is_empty());
    }

    #[test]
    fn projection_crosses_the_antimeridian_the_short_way() {
        let (x, y) = project((0.0, 179.9), (0.0, -179.9));
        assert!((x - 22_239.0).abs() < 5.0, "{x}");
        assert!(y.abs() < 1e-9);
    }

    #[test]
    fn shape_simplifies_each_segment_separately() {
        let times: Vec<_> = (0..6).map(|i| at(if i < 3 { i * 10 } else { 10_000 + i * 10 })).collect();
        let points: Vec<(f64, f64)> = (0..6).map(|i| (39.95, 116.05 + f64::from(i) * 1e-4)).collect();
        let max_gap = chrono::Duration::seconds(600);
        assert_eq!(shape(&times, &points, max_gap, None), vec![vec![0, 1, 2], vec![3, 4, 5]]);
        assert_eq!(shape(&times, &points, max_gap, Some(1.0)), vec![vec![0, 2], vec![3, 5]]);
    }

    /// A zig-zag of growing amplitude makes plain recursive Douglas–Peucker recurse once per point.
    fn zig_zag(n: usize) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| {
                let x = i as f64;
                let amplitude = x * x * 1e-12;
                (39.95 + if i % 2 == 0 { amplitude } else { -amplitude }, 116.05 + x * 1e-6)
            })
            .collect()
    }

    #[test]
    fn long_adversarial_segments_do_not_exhaust_the_stack() {
        let points = zig_zag(10_000);
        let kept = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || simplify(&points, 0.01).len())
            .expect("thread")
            .join()
            .expect("no stack overflow");
        assert!(kept > 1_000, "{kept}");
    }

    #[test]
    fn long_segments_give_what_plain_douglas_peucker_gives() {
        // Compare with one unsplit call of `geo` (on a thread with room for its recursion).
        for (points, tolerance) in [(zig_zag(3_000), 0.01), (zig_zag(3_000), 20.0)] {
            let ours = simplify(&points, tolerance);
            let origin = points[0];
            let line: LineString<f64> = points
                .iter()
                .map(|&p| {
                    let (x, y) = project(origin, p);
                    Coord { x, y }
                })
                .collect();
            let plain = std::thread::Builder::new()
                .stack_size(256 << 20)
                .spawn(move || line.simplify_idx(tolerance))
                .expect("thread")
                .join()
                .expect("plain Douglas-Peucker");
            assert_eq!(ours, plain, "tolerance {tolerance}");
        }
    }

    /// Random walks: steps of up to ~200 m around a random place (not too near the poles).
    fn walk() -> impl Strategy<Value = Vec<(f64, f64)>> {
        (-70.0..70.0f64, -179.0..179.0f64, prop::collection::vec((-200.0..200.0f64, -200.0..200.0f64), 1..1_500))
            .prop_map(|(lat, lon, steps)| {
                let mut p = (lat, lon);
                let mut out = vec![p];
                for (dn, de) in steps {
                    p.0 += dn / 111_195.0;
                    p.1 += de / (111_195.0 * p.0.to_radians().cos());
                    if p.1 > 180.0 {
                        p.1 -= 360.0;
                    } else if p.1 < -180.0 {
                        p.1 += 360.0;
                    }
                    out.push(p);
                }
                out
            })
    }

    proptest! {
        #[test]
        fn simplification_stays_within_tolerance_and_is_idempotent(points in walk(), tolerance in 0.5..1000.0f64) {
            let kept = simplify(&points, tolerance);
            check(&points, tolerance, &kept);
            let again: Vec<(f64, f64)> = kept.iter().map(|&i| points[i]).collect();
            prop_assert_eq!(simplify(&again, tolerance), (0..again.len()).collect::<Vec<_>>());
        }

        #[test]
        fn segments_cover_every_fix_and_split_only_at_gaps(
            steps in prop::collection::vec(0i64..2_000, 0..300),
            max_gap in 1i64..1_500,
        ) {
            let mut t = 0;
            let times: Vec<_> = steps.iter().map(|s| { t += s; at(t) }).collect();
            let max_gap = chrono::Duration::seconds(max_gap);
            let segments = split_at_gaps(&times, max_gap);
            let flat: Vec<usize> = segments.iter().flat_map(Clone::clone).collect();
            prop_assert_eq!(flat, (0..times.len()).collect::<Vec<_>>());
            for s in &segments {
                prop_assert!(!s.is_empty());
                prop_assert!(times[s.clone()].windows(2).all(|w| w[1] - w[0] <= max_gap));
            }
            for w in segments.windows(2) {
                prop_assert!(times[w[1].start] - times[w[0].end - 1] > max_gap);
            }
        }
    }
}
