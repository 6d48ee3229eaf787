//! Real data: the Limerick bus ride (route 304 on 18 February 2019, `fixtures/limerick-304/`, a
//! copy of the shared data set), loaded by `fieldvisit-demo` with its 36 stops as outlets
//! and the ride as the driver's day, yields visits at the stops where the bus dwelt and none where
//! it went past without dwelling.
//!
//! The ground truth is computed here from the GPX file and the stops CSV alone, never from the
//! server's rules or code:
//! - a *passage* of a stop is a maximal run of consecutive fixes within [`GEOFENCE_M`] of it (the
//!   radius the demo gives every stop; the demo's fixes carry no accuracy, so nothing is added);
//! - a *stationary stretch* of a passage is a maximal run of its consecutive fixes in which every
//!   step between two fixes is slower than [`STILL_MPS`] (3.6 km/h, below walking pace: a bus that
//!   slow is standing, its GPS scattering by a few metres; the phone records every 1-2 s while the
//!   bus moves and pauses while it stands, so a long slow step is a halt);
//! - the bus *dwelt* at a stop when a stationary stretch there lasts at least [`MIN_DWELL_S`]
//!   (the one minute of presence a visit needs), it *halted* there when it stood still only for
//!   less, it *drove through* when it never stood still within the geofence (no step slower than
//!   [`STILL_MPS`]), and the stop was *not passed* when no fix came within the geofence;
//! - a stop is *borderline* when whether the bus dwelt there depends on the threshold: it dwelt
//!   with steps slower than [`STILL_LENIENT_MPS`] but not with [`STILL_MPS`] (a bus coming to a
//!   halt crawls at 1-1.5 m/s for a second or two; where that second decides the minute, either
//!   answer is right). Borderline stops may or may not have a visit; every other stop is asserted.
//!
//! The visits are derived as the server does it and read over HTTP with the Limerick admin's
//! token; their times are compared with the GPX times after taking off the whole-day shift the demo
//! applies (read from the first stored ping).

use crate::common;

use chrono::{DateTime, Days, TimeDelta, Utc};
use common::TestApp;
use fieldvisit::domain::visit::VisitRules;
use fieldvisit_demo::DemoArgs;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Geofence of a stop (metres): the demo's radius for every Limerick stop (checked below).
const GEOFENCE_M: f64 = 30.0;
/// Steps slower than this (m/s) are standing still.
const STILL_MPS: f64 = 1.0;
/// The lenient threshold of the sensitivity check (m/s).
const STILL_LENIENT_MPS: f64 = 1.5;
/// Standing still this long (seconds) at a stop is a dwell.
const MIN_DWELL_S: i64 = 60;
/// Mean Earth radius (metres).
const EARTH_RADIUS_M: f64 = 6_371_008.8;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn args() -> DemoArgs {
    DemoArgs {
        data_dir: fixtures(),
        anchor_date: Some(chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("date")),
        // The Limerick org is what these tests read; the Beijing team is kept small.
        reps: 4,
        weeks: 1,
    }
}

fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = (p2 - p1, (lon2 - lon1).to_radians());
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

#[derive(Debug, Clone, Copy)]
struct Fix {
    t: DateTime<Utc>,
    lat: f64,
    lon: f64,
}

impl Fix {
    fn distance_to(&self, other: &Fix) -> f64 {
        distance_m(self.lat, self.lon, other.lat, other.lon)
    }
}

/// The bus ride: every timed track point of the GPX file, in time order.
fn ride() -> Vec<Fix> {
    let path = fixtures().join(fieldvisit_demo::LIMERICK_GPX_FILE);
    let gpx = gpx::read(std::io::BufReader::new(std::fs::File::open(&path).expect("gpx opens"))).expect("gpx parses");
    let mut fixes: Vec<Fix> = gpx
        .tracks
        .iter()
        .flat_map(|t| &t.segments)
        .flat_map(|s| &s.points)
        .filter_map(|p| {
            let text = p.time.as_ref()?.format().expect("time formats");
            let t = DateTime::parse_from_rfc3339(&text).expect("rfc 3339").to_utc();
            Some(Fix { t, lat: p.point().y(), lon: p.point().x() })
        })
        .collect();
    fixes.sort_by_key(|f| f.t);
    assert_eq!(fixes.len(), 2_144, "the ride has 2,144 timed fixes");
    assert!(fixes.windows(2).all(|w| w[0].t < w[1].t), "fix times are distinct");
    fixes
}

#[derive(Debug, Clone)]
struct Stop {
    /// The outlet code the demo gives the stop: `STOP-<stop_no>`.
    code: String,
    name: String,
    lat: f64,
    lon: f64,
}

fn stops() -> Vec<Stop> {
    let path = fixtures().join(fieldvisit_demo::LIMERICK_STOPS_FILE);
    let mut reader = csv::Reader::from_path(&path).expect("stops csv opens");
    let headers = reader.headers().expect("header row").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect("column present");
    let (no, name, lat, lon) = (col("stop_no"), col("name"), col("lat"), col("lon"));
    let stops: Vec<Stop> = reader
        .records()
        .map(|r| {
            let r = r.expect("csv row");
            Stop {
                code: format!("STOP-{}", r[no].trim()),
                name: r[name].to_owned(),
                lat: r[lat].parse().expect("lat"),
                lon: r[lon].parse().expect("lon"),
            }
        })
        .collect();
    assert_eq!(stops.len(), 36);
    assert_eq!(stops.iter().map(|s| &s.code).collect::<BTreeSet<_>>().len(), 36, "stop numbers are unique");
    stops
}

/// One passage of a stop: GPX times of the first and last fix within the geofence, and of the
/// first and last fix of its longest stationary stretch (if it has one).
#[derive(Debug, Clone)]
struct Passage {
    entered: DateTime<Utc>,
    left: DateTime<Utc>,
    still: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Net displacement from the first to the last fix of the passage (metres), for the report.
    net_m: f64,
}

impl Passage {
    fn still_s(&self) -> i64 {
        self.still.map_or(0, |(a, b)| (b - a).num_seconds())
    }

    fn dwelt(&self) -> bool {
        self.still_s() >= MIN_DWELL_S
    }

    fn describe(&self) -> String {
        let presence = (self.left - self.entered).num_seconds();
        format!(
            "{}..{} within {GEOFENCE_M} m for {presence} s (net {:.0} m, {:.2} m/s), standing still {} s",
            self.entered.format("%H:%M:%S"),
            self.left.format("%H:%M:%S"),
            self.net_m,
            if presence > 0 { self.net_m / presence as f64 } else { 0.0 },
            self.still_s()
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Dwelt,
    Borderline,
    Halted,
    DroveThrough,
    NotPassed,
}

/// The ground truth of one stop.
#[derive(Debug, Clone)]
struct Truth {
    stop: Stop,
    passages: Vec<Passage>,
    /// Whether the bus dwelt there with the lenient threshold.
    lenient_dwelt: bool,
}

impl Truth {
    fn kind(&self) -> Kind {
        if self.passages.is_empty() {
            Kind::NotPassed
        } else if self.passages.iter().any(Passage::dwelt) {
            Kind::Dwelt
        } else if self.lenient_dwelt {
            Kind::Borderline
        } else if self.passages.iter().any(|p| p.still.is_some()) {
            Kind::Halted
        } else {
            Kind::DroveThrough
        }
    }

    fn describe(&self) -> String {
        let passages: Vec<String> = self.passages.iter().map(Passage::describe).collect();
        format!("{} ({}): {}", self.stop.name, self.stop.code, passages.join("; "))
    }
}

fn truth(ride: &[Fix], stop: &Stop) -> Truth {
    let lenient_dwelt = passages(ride, stop, STILL_LENIENT_MPS).iter().any(Passage::dwelt);
    Truth { stop: stop.clone(), passages: passages(ride, stop, STILL_MPS), lenient_dwelt }
}

/// The passages of a stop, standing still meaning steps slower than `still_mps`.
fn passages(ride: &[Fix], stop: &Stop, still_mps: f64) -> Vec<Passage> {
    let near: Vec<bool> = ride.iter().map(|f| distance_m(f.lat, f.lon, stop.lat, stop.lon) <= GEOFENCE_M).collect();
    let mut passages = Vec::new();
    let mut i = 0;
    while i < ride.len() {
        if !near[i] {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < ride.len() && near[j + 1] {
            j += 1;
        }
        // Longest stretch of steps slower than `still_mps` inside fixes i..=j.
        let mut still: Option<(usize, usize)> = None;
        let mut from = i;
        for k in i..j {
            let (a, b) = (&ride[k], &ride[k + 1]);
            let speed = a.distance_to(b) / ((b.t - a.t).num_milliseconds() as f64 / 1000.0);
            if speed < still_mps {
                let longer = still.is_none_or(|(s, e)| ride[k + 1].t - ride[from].t > ride[e].t - ride[s].t);
                if longer {
                    still = Some((from, k + 1));
                }
            } else {
                from = k + 1;
            }
        }
        passages.push(Passage {
            entered: ride[i].t,
            left: ride[j].t,
            still: still.map(|(s, e)| (ride[s].t, ride[e].t)),
            net_m: ride[i].distance_to(&ride[j]),
        });
        i = j + 1;
    }
    passages
}

/// A derived visit as served, its times moved back onto the GPX clock.
#[derive(Debug, Clone)]
struct SeenVisit {
    code: String,
    arrival: DateTime<Utc>,
    departure: DateTime<Utc>,
    verdict: String,
}

/// Loads the demo, derives every dirty rep-day as the server's worker does, and reads the
/// driver's visits over HTTP with the Limerick admin's token. Returns the ground truth of every stop
/// and the visits, on the GPX clock.
async fn ground_truth_and_visits(pool: PgPool) -> (Vec<Truth>, Vec<SeenVisit>) {
    let ride = ride();
    let truths: Vec<Truth> = stops().iter().map(|s| truth(&ride, s)).collect();

    let lines = fieldvisit_demo::load(&pool, &args()).await.expect("demo loads");
    let rules = VisitRules::default();
    loop {
        let days = fieldvisit::db::visits::claim_dirty(&pool, 100, 0, 300).await.expect("claim");
        if days.is_empty() {
            break;
        }
        for day in days {
            assert!(fieldvisit::derive::derive_day(&pool, &day, &rules).await.expect("derive"));
        }
    }
    let dirty: i64 = sqlx::query_scalar("SELECT count(*) FROM rep_day_dirty").fetch_one(&pool).await.expect("dirty");
    assert_eq!(dirty, 0, "every demo rep-day is derived");

    let org: i64 = sqlx::query_scalar("SELECT id FROM orgs WHERE slug = $1")
        .bind(fieldvisit_demo::LIMERICK_SLUG)
        .fetch_one(&pool)
        .await
        .expect("limerick org");
    // The premises of the ground truth: every stop's geofence is GEOFENCE_M (own radius, no
    // footprint) and no fix carries an accuracy that would widen it.
    let fences: Vec<(Option<f32>, bool)> =
        sqlx::query_as("SELECT radius_m, footprint IS NOT NULL FROM outlets WHERE org_id = $1")
            .bind(org)
            .fetch_all(&pool)
            .await
            .expect("outlets");
    assert_eq!(fences.len(), 36);
    assert!(fences.iter().all(|&(r, fp)| r == Some(GEOFENCE_M as f32) && !fp), "{fences:?}");
    let (count, with_accuracy, first): (i64, i64, DateTime<Utc>) = sqlx::query_as(
        "SELECT count(*), count(p.accuracy_m), min(p.fix_time) FROM pings p
           JOIN devices d ON d.org_id = p.org_id AND d.id = p.device_id
          WHERE p.org_id = $1 AND d.name = 'driver-phone'",
    )
    .bind(org)
    .fetch_one(&pool)
    .await
    .expect("pings");
    assert_eq!((count, with_accuracy), (ride.len() as i64, 0), "every fix stored, none with an accuracy");
    let shift: TimeDelta = first - ride[0].t;
    assert_eq!(shift.num_seconds() % 86_400, 0, "the demo shifts the ride by whole days: {shift}");

    let driver: i64 = sqlx::query_scalar("SELECT id FROM users WHERE org_id = $1 AND login = 'driver'")
        .bind(org)
        .fetch_one(&pool)
        .await
        .expect("driver");
    let admin_token = lines
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == 4 && f[0] == fieldvisit_demo::LIMERICK_SLUG && f[1] == "admin")
        .map(|f| f[3].to_owned())
        .expect("the demo prints the Limerick admin's token");

    let app = TestApp::spawn(pool.clone()).await;
    let day = first.date_naive();
    let (from, to) = (day - Days::new(1), day + Days::new(1));
    let res = app.get(&format!("/api/v1/reps/{driver}/visits?from={from}&to={to}"), Some(&admin_token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let time = |v: &Value, field: &str| -> DateTime<Utc> {
        let text = v[field].as_str().unwrap_or_else(|| panic!("visit {field}: {v}"));
        DateTime::parse_from_rfc3339(text).expect("rfc 3339").to_utc() - shift
    };
    let visits: Vec<SeenVisit> = res.json["visits"]
        .as_array()
        .expect("visits array")
        .iter()
        .map(|v| SeenVisit {
            code: v["outlet_code"].as_str().expect("outlet_code").to_owned(),
            arrival: time(v, "arrival"),
            departure: time(v, "departure"),
            verdict: v["verdict"].as_str().expect("verdict").to_owned(),
        })
        .collect();
    (truths, visits)
}

fn names(truths: &[Truth], kind: Kind) -> Vec<&str> {
    let mut v: Vec<&str> = truths.iter().filter(|t| t.kind() == kind).map(|t| t.stop.name.as_str()).collect();
    v.sort_unstable();
    v
}

/// The ground truth itself (stable: the files are fixed), then: every visit is at a stop where the
/// bus dwelt, covers the time it stood still there and lies within its passage of the geofence;
/// no stop it only halted at briefly or drove through has a visit.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn limerick_visits_are_only_where_the_bus_dwelt(pool: PgPool) {
    let (truths, visits) = ground_truth_and_visits(pool).await;
    let report: Vec<String> = truths.iter().map(|t| format!("{:?} {}", t.kind(), t.describe())).collect();
    let report = report.join("\n");

    assert_eq!(
        names(&truths, Kind::Dwelt),
        [
            "Cresent Shopping C",
            "Maypark",
            "Meadowvale",
            "Mulgrave Street",
            "Punches Cross",
            "St Nessan's Road",
            "The Forts",
            "William Street"
        ],
        "{report}"
    );
    assert_eq!(
        names(&truths, Kind::DroveThrough),
        [
            "Ballycummin Rd",
            "Forge Estate",
            "Greenhill Road",
            "Mount Gerard Court",
            "Mulcair Road",
            "South Circular Road",
            "St Patrick's Road",
            "UL Flagpoles",
            "UL Student Centre"
        ],
        "{report}"
    );
    assert_eq!(names(&truths, Kind::Borderline), ["The Crescent"], "{report}");
    assert_eq!(names(&truths, Kind::Halted).len(), 18, "{report}");
    assert_eq!(names(&truths, Kind::NotPassed).len(), 0, "the bus passes every stop of its route\n{report}");

    assert!(!visits.is_empty(), "the ride yields visits");
    for v in &visits {
        let t = truths.iter().find(|t| t.stop.code == v.code).unwrap_or_else(|| panic!("visit at unknown {}", v.code));
        if t.kind() == Kind::Borderline {
            continue;
        }
        assert_eq!(t.kind(), Kind::Dwelt, "a visit where the bus did not dwell: {v:?}\n{}", t.describe());
        // The passage the visit stands for: it runs from the first to the last fix within the
        // geofence and so covers the time the bus stood still there.
        let covered = t.passages.iter().filter(|p| p.dwelt()).find(|p| {
            let (still_from, still_to) = p.still.expect("a dwell stands still");
            (p.entered, p.left) == (v.arrival, v.departure) && v.arrival <= still_from && still_to <= v.departure
        });
        assert!(covered.is_some(), "visit {v:?} is not the passage of the dwell at {}", t.describe());
        assert_ne!(v.verdict, "suspect", "a real ride is not spoofed: {v:?}");
    }
    let visited: Vec<&str> = visits.iter().map(|v| v.code.as_str()).collect();
    for kind in [Kind::Halted, Kind::DroveThrough, Kind::NotPassed] {
        for t in truths.iter().filter(|t| t.kind() == kind) {
            assert!(!visited.contains(&t.stop.code.as_str()), "{kind:?} stop has a visit: {}", t.describe());
        }
    }
}

/// Every dwell at a stop is a visit: the stops with a visit are exactly the stops where the bus
/// dwelt, one visit per dwell.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn limerick_every_dwell_at_a_stop_is_a_visit(pool: PgPool) {
    let (truths, visits) = ground_truth_and_visits(pool).await;
    let dwelt: BTreeSet<&str> =
        truths.iter().filter(|t| t.kind() == Kind::Dwelt).map(|t| t.stop.code.as_str()).collect();
    let borderline: BTreeSet<&str> =
        truths.iter().filter(|t| t.kind() == Kind::Borderline).map(|t| t.stop.code.as_str()).collect();
    let visited: BTreeSet<&str> = visits.iter().map(|v| v.code.as_str()).filter(|c| !borderline.contains(c)).collect();
    let missed: Vec<String> = truths
        .iter()
        .filter(|t| dwelt.contains(t.stop.code.as_str()) && !visited.contains(t.stop.code.as_str()))
        .map(Truth::describe)
        .collect();
    assert!(missed.is_empty(), "dwells without a visit:\n{}", missed.join("\n"));
    assert_eq!(visited, dwelt);
    for t in truths.iter().filter(|t| t.kind() == Kind::Dwelt) {
        let dwells = t.passages.iter().filter(|p| p.dwelt()).count();
        let seen = visits.iter().filter(|v| v.code == t.stop.code).count();
        assert_eq!(seen, dwells, "one visit per dwell at {}", t.describe());
    }
}
