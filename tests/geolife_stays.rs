//! Our stay detection on real GeoLife tracks, compared with trackintel's at the same thresholds.
//!
//! Input: `../shared/data/geolife/geolife_sample.csv` (5,908 fixes, 5 trajectories of 3 people;
//! also `fixtures/geolife/`), one fix list per person (`tracker`), run through
//! [`fieldvisit::domain::visit::stays`] with [`VisitRules::default`] (D = 100 m, T = 300 s).
//!
//! Reference: `fixtures/geolife-trackintel-stays.csv`, trackintel 1.4.2's staypoints of the same
//! input (pandas 3.1.1, geopandas 1.2.0, shapely 2.2.0, numpy 2.4.6; see `scripts/peers/README.md`):
//!
//! ```text
//! PY=$(scripts/peers/setup.sh)
//! $PY scripts/peers/stays.py --input ../shared/data/geolife/geolife_sample.csv --d 100 --t 300 \
//!     --out-trackintel fixtures/geolife-trackintel-stays.csv
//! ```
//!
//! i.e. `generate_staypoints(method="sliding", distance_metric="haversine", dist_threshold=100,
//! time_threshold=5, gap_threshold=10^7 min, include_last=True)`, one user per tracker. No gap
//! threshold, as ours has none (trackintel's default of 15 min, or any threshold, only makes it
//! worse: a gap longer than it drops the run before the gap, so the 5.5 h and 2.6 h stays that
//! have a data gap inside go; `--gap-minutes 15` leaves 4 staypoints, 2 of them matching ours).
//! `include_last`: ours reports a stay that lasts to the end of the data, so True; it changes nothing
//! here (no tracker's data ends inside a stay).
//!
//! **Agreement.** A stay agrees when a stay of the same tracker on the other side overlaps it by at
//! least half of their union (intersection / union of the closed time intervals >= 0.5): stricter
//! than "any overlap", so a 21-day trackintel staypoint cannot be matched by a 5-minute stay inside
//! it, and loose enough for the few seconds to a minute the two rules disagree on at the ends of the
//! same stop. On this data "any overlap" gives the same figures (asserted): matched stays overlap by
//! 87-99.9 % of their union, the others not at all.
//!
//! **Figures (D = 100 m, T = 300 s).** Ours: 8 stays; trackintel: 13. Ours matched by trackintel:
//! 6 / 8 = 75.0 %; trackintel matched by ours: 6 / 13 = 46.2 %. The target of 95 % both ways is NOT
//! met; [`agreement_with_trackintel_is_at_least_95_percent`] states it and is ignored until the lead
//! decides. (movingpandas 0.23.0, `TrajectoryStopDetector.get_stop_segments(max_diameter=100,
//! min_duration=300 s)` per trajectory, finds 4 stops, all matching ours: 4 / 8 and 4 / 4.)
//!
//! **Every difference, explained.** trackintel's loop (`_generate_staypoints_sliding_user` in
//! `trackintel/preprocessing/positionfixes.py`) differs from ours in exactly two rules, and
//! [`trackintel_is_our_loop_with_two_rules_changed`] proves it: our loop with both changes gives the
//! 13 staypoints of the fixture to the second (and with neither, our 8 stays).
//! 1. *Duration to the leaving fix.* trackintel measures a stay from the anchor to the first fix
//!    at least D away (`finished_at = tracked_at[curr]`), as Li et al.'s algorithm does
//!    (`ΔT = pj.T − pi.T`, pj the first point beyond D); ours to the last fix within D. When the
//!    fixes within D end in a data gap, trackintel counts the gap as staying. That makes 7 staypoints
//!    ours has no stay for (tracker 2): 35-94 s of fixes near the anchor, then a gap of 5 min to
//!    21 days, then a fix 1.2-13 km away, i.e. the phone lost its fixes while the person travelled
//!    (two of them bridge whole days between trajectories: 02-04 11:19 -> 02-25 09:47 and
//!    02-25 14:29 -> 03-10 10:36). See [`UNMATCHED_TRACKINTEL`].
//! 2. *Anchor restart.* When the run from an anchor is too short, trackintel restarts at the fix
//!    that left it (`start = curr`); ours, as Li et al.'s algorithm (`i := i + 1`), tries the next fix. trackintel thereby
//!    skips anchors: tracker 19's anchors go 05:00:13 (left at 05:00:36), 05:00:36 (left at 05:02:03,
//!    87 s), 05:02:03 (left at 05:06:43, 280 s), skipping 05:00:15, from which the fixes stay within
//!    100 m until 05:06:06 (351 s); tracker 2 on 03-10: 11:41:13 (left at 11:44:02, 169 s) skips
//!    11:41:20, within 100 m until 11:46:57 (337 s). See [`UNMATCHED_OURS`].
//!
//! The 6 stays both find differ at their ends by at most 71 s (the different anchors and rule 1:
//! trackintel ends at the leaving fix, ours at the last fix within D) and in position by at most
//! 19 m. trackintel's `>= D` (leaves) against our `<= D` (stays) and its earth radius of 6,371,000 m
//! against our 6,371,008.8 m change nothing here (the two-rule reproduction is exact).
//!
//! What change in `stays` would meet the target: only adopting both rules (then 13 / 13 both ways);
//! rule 1 alone (i.e. Li et al.'s algorithm as published) gives 15 stays (13 / 15 = 86.7 % and
//! 13 / 13), rule 2 alone 5 stays (5 / 5 and 5 / 13). Both rules trade correctness for parity:
//! rule 1 turns fix losses while travelling into stays (false "stay" evidence for visits), rule 2
//! loses real 5-6 minute stops.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use fieldvisit::domain::geo::haversine_m;
use fieldvisit::domain::visit::{VisitFix, VisitRules, stays};

const GEOLIFE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/geolife/geolife_sample.csv");
const TRACKINTEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/geolife-trackintel-stays.csv");

/// Trackintel staypoints (tracker, start, end) that no stay of ours agrees with: all rule 1.
const UNMATCHED_TRACKINTEL: [(i64, &str, &str); 7] = [
    (2, "2009-02-04T11:19:37Z", "2009-02-25T09:47:03Z"),
    (2, "2009-02-25T09:59:46Z", "2009-02-25T10:19:50Z"),
    (2, "2009-02-25T10:19:50Z", "2009-02-25T10:43:52Z"),
    (2, "2009-02-25T13:35:37Z", "2009-02-25T13:59:55Z"),
    (2, "2009-02-25T13:59:55Z", "2009-02-25T14:13:05Z"),
    (2, "2009-02-25T14:29:50Z", "2009-03-10T10:36:45Z"),
    (2, "2009-03-10T10:43:41Z", "2009-03-10T10:49:17Z"),
];

/// Our stays (tracker, arrival, departure) that no trackintel staypoint agrees with: all rule 2.
const UNMATCHED_OURS: [(i64, &str, &str); 2] =
    [(2, "2009-03-10T11:41:20Z", "2009-03-10T11:46:57Z"), (19, "2008-12-11T05:00:15Z", "2008-12-11T05:06:06Z")];

/// A stay of either side.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    lat: f64,
    lon: f64,
}

type ByTracker = BTreeMap<i64, Vec<Span>>;

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).with_timezone(&Utc)
}

/// The GeoLife fixes of each tracker, as the server would store them, in time order.
fn geolife() -> BTreeMap<i64, Vec<VisitFix>> {
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_path(GEOLIFE).expect("GeoLife sample");
    let headers = reader.headers().expect("header").clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        ["X", "Y", "fid", "id", "sequence", "trajectory_id", "tracker", "t"]
    );
    let mut out: BTreeMap<i64, Vec<VisitFix>> = BTreeMap::new();
    for record in reader.records() {
        let r = record.expect("GeoLife record");
        // "2008-12-11 04:42:14+00": UTC.
        let t = r[7].strip_suffix("+00").unwrap_or_else(|| panic!("not UTC: {}", &r[7]));
        let fix_time = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").expect("fix time").and_utc();
        out.entry(r[6].parse().expect("tracker")).or_default().push(VisitFix {
            fix_time,
            received_at: fix_time,
            lat: r[1].parse().expect("Y"),
            lon: r[0].parse().expect("X"),
            accuracy_m: None,
            mock: false,
            flags: 0,
        });
    }
    assert_eq!(out.values().map(Vec::len).sum::<usize>(), 5908);
    // In time order (the file lists tracker 2's trajectories out of order); no fix time repeats.
    for f in out.values_mut() {
        f.sort_by_key(|x| x.fix_time);
        assert!(f.windows(2).all(|w| w[0].fix_time < w[1].fix_time));
    }
    out
}

fn ours(fixes: &BTreeMap<i64, Vec<VisitFix>>) -> ByTracker {
    let rules = VisitRules::default();
    assert_eq!((rules.stay_distance_m, rules.stay_time_s), (100.0, 300), "the fixture's thresholds");
    fixes
        .iter()
        .map(|(&tracker, f)| {
            let spans = stays(f, &rules)
                .into_iter()
                .map(|s| Span { start: s.arrival, end: s.departure, lat: s.lat, lon: s.lon })
                .collect();
            (tracker, spans)
        })
        .collect()
}

fn trackintel() -> ByTracker {
    let mut reader = csv::Reader::from_path(TRACKINTEL).expect("trackintel fixture");
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        ["user", "started_at", "finished_at", "lat", "lon"]
    );
    let mut out = ByTracker::new();
    for record in reader.records() {
        let r = record.expect("fixture record");
        out.entry(r[0].parse().expect("user")).or_default().push(Span {
            start: time(&r[1]),
            end: time(&r[2]),
            lat: r[3].parse().expect("lat"),
            lon: r[4].parse().expect("lon"),
        });
    }
    out
}

/// Intersection over union of the two closed time intervals (seconds); 1 for two equal instants.
fn overlap_ratio(a: &Span, b: &Span) -> f64 {
    let inter = (a.end.min(b.end) - a.start.max(b.start)).num_seconds().max(0);
    let union = (a.end.max(b.end) - a.start.min(b.start)).num_seconds();
    if union == 0 { 1.0 } else { inter as f64 / union as f64 }
}

fn agrees(a: &Span, other: &[Span]) -> bool {
    other.iter().any(|b| overlap_ratio(a, b) >= 0.5)
}

fn overlaps_at_all(a: &Span, other: &[Span]) -> bool {
    other.iter().any(|b| a.start <= b.end && b.start <= a.end)
}

/// The stays of `a` that no stay of the same tracker in `b` agrees with, as (tracker, start, end).
fn unmatched(a: &ByTracker, b: &ByTracker, agree: fn(&Span, &[Span]) -> bool) -> Vec<(i64, String, String)> {
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    a.iter()
        .flat_map(|(tracker, spans)| {
            let other = b.get(tracker).map_or(&[][..], Vec::as_slice);
            spans.iter().filter(move |s| !agree(s, other)).map(move |s| (*tracker, fmt(s.start), fmt(s.end)))
        })
        .collect()
}

fn count(s: &ByTracker) -> usize {
    s.values().map(Vec::len).sum()
}

fn per_tracker(s: &ByTracker) -> Vec<(i64, usize)> {
    s.iter().filter(|(_, v)| !v.is_empty()).map(|(t, v)| (*t, v.len())).collect()
}

fn owned(list: &[(i64, &str, &str)]) -> Vec<(i64, String, String)> {
    list.iter().map(|(t, s, e)| (*t, (*s).to_owned(), (*e).to_owned())).collect()
}

#[test]
fn geolife_stays_compared_with_trackintel_at_the_same_thresholds() {
    let fixes = geolife();
    let (ours, theirs) = (ours(&fixes), trackintel());
    assert_eq!(per_tracker(&ours), [(0, 3), (2, 4), (19, 1)], "{ours:#?}");
    assert_eq!(per_tracker(&theirs), [(0, 3), (2, 10)]);
    assert_eq!((count(&ours), count(&theirs)), (8, 13));

    let ours_unmatched = unmatched(&ours, &theirs, agrees);
    let theirs_unmatched = unmatched(&theirs, &ours, agrees);
    assert_eq!(ours_unmatched, owned(&UNMATCHED_OURS), "ours not matched by trackintel");
    assert_eq!(theirs_unmatched, owned(&UNMATCHED_TRACKINTEL), "trackintel not matched by ours");
    // 6 / 8 and 6 / 13, whether "agrees" means half the union or any overlap at all.
    assert_eq!(unmatched(&ours, &theirs, overlaps_at_all), ours_unmatched);
    assert_eq!(unmatched(&theirs, &ours, overlaps_at_all), theirs_unmatched);

    // The 6 stays both find: one-to-one, nearly the same interval, nearly the same place.
    let mut pairs = 0;
    for (tracker, spans) in &ours {
        for a in spans {
            let matches: Vec<&Span> =
                theirs.get(tracker).into_iter().flatten().filter(|b| overlap_ratio(a, b) >= 0.5).collect();
            let [b] = matches.as_slice() else {
                assert!(matches.is_empty(), "{a:?} matches {matches:?}");
                continue;
            };
            pairs += 1;
            assert!(overlap_ratio(a, b) > 0.85, "{a:?} {b:?}");
            let ends = (a.start - b.start).num_seconds().abs().max((a.end - b.end).num_seconds().abs());
            assert!(ends <= 71, "{a:?} {b:?}: ends {ends} s apart");
            let d = haversine_m(a.lat, a.lon, b.lat, b.lon);
            assert!(d < 19.0, "{a:?} {b:?}: {d} m apart");
        }
    }
    assert_eq!(pairs, 6);
}

/// Our loop (`stays`: from each anchor the run of following fixes within D of it; a stay if it
/// lasts at least T, and the next anchor is the fix after the run; else the next fix) with either
/// of trackintel's two rules: `to_leaving_fix` measures the duration (and ends the stay) at the
/// first fix beyond D instead of the last within; `restart_at_leaving_fix` makes that fix the next
/// anchor when the run was too short. A run lasting to the end of the data counts, measured to the
/// last fix (trackintel's `include_last`). `f` is in time order.
fn li_loop(f: &[VisitFix], rules: &VisitRules, to_leaving_fix: bool, restart_at_leaving_fix: bool) -> Spans {
    let mut out = Vec::new();
    let mut i = 0;
    while i < f.len() {
        let mut j = i + 1;
        while j < f.len() && haversine_m(f[i].lat, f[i].lon, f[j].lat, f[j].lon) <= rules.stay_distance_m {
            j += 1;
        }
        let end = if to_leaving_fix && j < f.len() { f[j].fix_time } else { f[j - 1].fix_time };
        if (end - f[i].fix_time).num_seconds() >= rules.stay_time_s {
            out.push((f[i].fix_time, end));
            i = j;
        } else if restart_at_leaving_fix && j < f.len() {
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

type Spans = Vec<(DateTime<Utc>, DateTime<Utc>)>;

fn spans(s: &[Span]) -> Spans {
    s.iter().map(|x| (x.start, x.end)).collect()
}

fn by_tracker(fixes: &BTreeMap<i64, Vec<VisitFix>>, rule1: bool, rule2: bool) -> ByTracker {
    let rules = VisitRules::default();
    fixes
        .iter()
        .map(|(&t, f)| {
            let s = li_loop(f, &rules, rule1, rule2);
            (t, s.into_iter().map(|(start, end)| Span { start, end, lat: 0.0, lon: 0.0 }).collect())
        })
        .collect()
}

#[test]
fn trackintel_is_our_loop_with_two_rules_changed() {
    let fixes = geolife();
    let (ours, theirs) = (ours(&fixes), trackintel());
    let rules = VisitRules::default();
    for (tracker, f) in &fixes {
        let none: &[Span] = &[];
        // Neither rule: exactly our `stays`. Both: exactly trackintel's staypoints, to the second
        // (so its `>= D` to leave against our `<= D` to stay, and its earth radius of 6,371,000 m
        // against our 6,371,008.8 m, change nothing here).
        assert_eq!(li_loop(f, &rules, false, false), spans(&ours[tracker]), "tracker {tracker}");
        assert_eq!(li_loop(f, &rules, true, true), spans(theirs.get(tracker).map_or(none, Vec::as_slice)));
    }
    // One rule alone is not enough for 95 % both ways: (stays, matched by trackintel, trackintel
    // matched by them).
    let figures = |s: &ByTracker| {
        (count(s), count(s) - unmatched(s, &theirs, agrees).len(), count(&theirs) - unmatched(&theirs, s, agrees).len())
    };
    assert_eq!(figures(&ours), (8, 6, 6));
    assert_eq!(figures(&by_tracker(&fixes, true, false)), (15, 13, 13), "rule 1 alone");
    assert_eq!(figures(&by_tracker(&fixes, false, true)), (5, 5, 5), "rule 2 alone");
    assert_eq!(figures(&by_tracker(&fixes, true, true)), (13, 13, 13), "both rules");

    // Rule 1 in the data: each unmatched trackintel staypoint has under T of fixes within D of its
    // anchor, then a data gap, then the fix that ends it, far away.
    for (tracker, start, end) in UNMATCHED_TRACKINTEL {
        let f = &fixes[&tracker];
        let (start, end) = (time(start), time(end));
        let anchor = f.iter().find(|x| x.fix_time == start).expect("anchor fix");
        let leaving = f.iter().find(|x| x.fix_time == end).expect("leaving fix");
        let last_within = f.iter().rfind(|x| x.fix_time < end).expect("fix before the leaving one");
        assert!(
            f.iter()
                .filter(|x| x.fix_time >= start && x.fix_time < end)
                .all(|x| haversine_m(anchor.lat, anchor.lon, x.lat, x.lon) < rules.stay_distance_m)
        );
        let within_s = (last_within.fix_time - start).num_seconds();
        let gap_s = (end - last_within.fix_time).num_seconds();
        let away_m = haversine_m(anchor.lat, anchor.lon, leaving.lat, leaving.lon);
        assert!((35..=94).contains(&within_s), "{start}: {within_s} s within D");
        assert!(gap_s >= 295, "{start}: gap {gap_s} s");
        assert!(away_m > 1200.0, "{start}: leaving fix {away_m} m away");
    }

    // Rule 2 in the data: trackintel's anchors never include the arrival fix of our unmatched stays.
    for (tracker, arrival, _) in UNMATCHED_OURS {
        let f = &fixes[&tracker];
        let mut anchors = vec![f[0].fix_time];
        let mut start = 0;
        for curr in 1..f.len() {
            if haversine_m(f[start].lat, f[start].lon, f[curr].lat, f[curr].lon) >= rules.stay_distance_m {
                start = curr;
                anchors.push(f[curr].fix_time);
            }
        }
        assert!(!anchors.contains(&time(arrival)), "{tracker} {arrival}");
    }
}

/// The requirement: GeoLife stays agree with trackintel's at the same thresholds for at least 95 %
/// of stays by time overlap, both ways. Not met (75.0 % and 46.2 %; see the module documentation for
/// the causes); ignored until the lead decides on the rules.
#[test]
#[ignore = "not met: 6/8 = 75.0 % ours matched, 6/13 = 46.2 % trackintel matched; see module docs"]
fn agreement_with_trackintel_is_at_least_95_percent() {
    let (ours, theirs) = (ours(&geolife()), trackintel());
    let ours_ok = 1.0 - unmatched(&ours, &theirs, agrees).len() as f64 / count(&ours) as f64;
    let theirs_ok = 1.0 - unmatched(&theirs, &ours, agrees).len() as f64 / count(&theirs) as f64;
    assert!(ours_ok >= 0.95 && theirs_ok >= 0.95, "ours matched {ours_ok:.3}, trackintel matched {theirs_ok:.3}");
}
