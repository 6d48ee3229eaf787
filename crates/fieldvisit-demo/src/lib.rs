//! Deterministic demo data (`fieldvisit-demo`): two orgs built from the real traces in `fixtures/`.
//!
//! * `demo-beijing` ("Demo Telecom Beijing", Asia/Shanghai), from the Microsoft Research `GeoLife`
//!   sample: a city / district / grid territory tree over the area the trajectories cover, about 2,000
//!   generated outlets (most of them along the real tracks), a manager, a district manager, a
//!   supervisor, an auditor, an admin and one rep per trajectory whose phone recorded it, with a
//!   dated beat plan of the outlets nearest to the rep's track.
//! * `demo-limerick` ("Demo Limerick", Europe/Dublin), from bus route 304: the 36 stops are the
//!   outlets and the recorded bus ride is the driver's day, planned stop by stop in route order.
//!
//! Each track (one rep's day) is shifted by a whole number of days so that its last recorded day (UTC)
//! is the day before the anchor date; relative timing within a track is kept exactly.
//! Everything else comes from the files and fixed seeds, so the same anchor date gives the same data.
//! The secrets are not: every user's and device's token, OsmAnd id and OwnTracks password is drawn at
//! random when the org is created, and only its hash is stored, so each install has its own and
//! nobody can derive them from public strings.
//!
//! Each org is loaded in one transaction. An org whose slug already exists is left untouched: its
//! live secrets are kept (printed as `(kept)`: they were printed once, at the first load), a demo user
//! or active device left with no token at all gets a new random one (printed), and a revoked one
//! stays revoked (`(revoked)`).

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeDelta, Utc};
use fieldvisit::admin::{new_device_secrets, register_device};
use fieldvisit::db;
use fieldvisit::db::outlets::OutletFields;
use fieldvisit::db::tokens::Issued;
use fieldvisit::domain::access::Role;
use fieldvisit::domain::audit::AuditAction;
use fieldvisit::domain::credentials::{hash_secret, new_token};
use fieldvisit::domain::outlet::{ChannelType, OutletStatus, default_tier_policies};
use fieldvisit::domain::territory::TerritoryLevel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashMap;
use std::f64::consts::TAU;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

mod photo;
pub mod sim;
pub mod team;

/// Errors of the demo loader (file, parse and database errors, with the file named).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Options of `fieldvisit-demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Folder with the demo fixtures (`geolife/geolife_sample.csv`, `limerick-304/...`).
    #[arg(long, env = "FV_DEMO_DATA_DIR", default_value = "fixtures")]
    pub data_dir: PathBuf,
    /// Day the demo is staged for (YYYY-MM-DD): each org's latest recorded day becomes the day before.
    /// Default: today (UTC).
    #[arg(long, env = "FV_DEMO_ANCHOR_DATE")]
    pub anchor_date: Option<NaiveDate>,
    /// Reps of the simulated Beijing district team (a smaller team for tests; same generator).
    #[arg(long, env = "FV_DEMO_REPS", default_value_t = 20)]
    pub reps: usize,
    /// Weeks of working days the team is simulated over, ending the day before the anchor date.
    #[arg(long, env = "FV_DEMO_WEEKS", default_value_t = 5)]
    pub weeks: u32,
}

/// Slug of the Beijing demo org.
pub const BEIJING_SLUG: &str = "demo-beijing";
/// Slug of the Limerick demo org.
pub const LIMERICK_SLUG: &str = "demo-limerick";

/// `GeoLife` sample, relative to the data folder.
pub const GEOLIFE_FILE: &str = "geolife/geolife_sample.csv";
/// Limerick bus 304 ride, relative to the data folder.
pub const LIMERICK_GPX_FILE: &str = "limerick-304/bus_304_2019-02-18.gpx";
/// Limerick bus 304 stops, relative to the data folder.
pub const LIMERICK_STOPS_FILE: &str = "limerick-304/stops_304.csv";

/// Printed instead of a token the demo cannot hand out (revoked since, or its owner deactivated).
pub const NOT_LIVE: &str = "(revoked)";

/// Printed instead of a token stored at an earlier load and still live: only its hash is stored, so
/// it cannot be shown again (`fieldvisit admin issue-token` makes a new one).
pub const KEPT: &str = "(kept)";

/// Days the outlets' recorded history is moved back, so that they stood there before the tracks.
const HISTORY_BACKDATE_DAYS: i32 = 400;

/// Loads the demo orgs (idempotent) and returns one line per demo user and device:
/// `<org slug>  <role>  <login>  <token>` in aligned columns (devices have the role `device`). The
/// tokens are random and printed once: on a later run a live one prints as `(kept)`, a revoked one
/// as `(revoked)` (not issued again), and only a missing one is issued anew and printed.
///
/// Beijing is the district team: the classic org's territories, outlets and staff, and a team of
/// `args.reps` reps over the last `args.weeks` weeks simulated over it ([`sim::simulate`]), loaded
/// through the server's paths ([`team`]).
pub async fn load(pool: &PgPool, args: &DemoArgs) -> Result<Vec<String>, Error> {
    let anchor = args.anchor_date.unwrap_or_else(|| Utc::now().date_naive());
    let mut rows = Vec::new();
    let (classic, world) = team::beijing_parts(&args.data_dir, anchor)?;
    let params = sim::Params { reps: args.reps, weeks: args.weeks, ..sim::Params::full(anchor) };
    rows.extend(team::install_team(pool, classic, &sim::simulate(&world, &params)).await?);
    rows.extend(install(pool, &limerick(&args.data_dir, anchor)?).await?);
    Ok(format_rows(&rows))
}

// ---------------------------------------------------------------------------------------------------
// What an org consists of (built in memory, then written in one transaction)
// ---------------------------------------------------------------------------------------------------

/// One position fix of a source track.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fix {
    t: DateTime<Utc>,
    lat: f64,
    lon: f64,
    altitude_m: Option<f64>,
}

/// A lon/lat rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
struct BBox {
    min_lon: f64,
    min_lat: f64,
    max_lon: f64,
    max_lat: f64,
}

struct TerritorySpec {
    code: String,
    name: String,
    level: TerritoryLevel,
    parent: Option<String>,
    bbox: BBox,
}

struct OutletSpec {
    /// `territory_id` is filled in when the territories exist.
    fields: OutletFields,
    territory: String,
}

struct UserSpec {
    login: String,
    name: String,
    role: Role,
    /// Territory code the user's scope starts at; `None` = whole org.
    scope: Option<String>,
}

struct DeviceSpec {
    name: String,
    rep: String,
    fixes: Vec<Fix>,
}

struct PlanSpec {
    rep: String,
    /// First fix of the rep's day; the plan is for its org-local date.
    day_of: DateTime<Utc>,
    /// Indexes into the org's outlets, in route order.
    outlets: Vec<usize>,
    window: (NaiveTime, NaiveTime),
    expected_duration_s: i32,
}

struct OrgSpec {
    slug: &'static str,
    name: &'static str,
    timezone: &'static str,
    territories: Vec<TerritorySpec>,
    outlets: Vec<OutletSpec>,
    users: Vec<UserSpec>,
    devices: Vec<DeviceSpec>,
    plans: Vec<PlanSpec>,
}

// ---------------------------------------------------------------------------------------------------
// Geometry helpers (small areas: an equirectangular approximation is plenty)
// ---------------------------------------------------------------------------------------------------

/// Metres per degree of latitude (mean Earth radius 6,371,008.8 m).
const M_PER_DEG: f64 = 111_195.08;

fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let x = (lon2 - lon1) * f64::midpoint(lat1, lat2).to_radians().cos();
    let y = lat2 - lat1;
    M_PER_DEG * x.hypot(y)
}

/// The point `d` metres from (lat, lon) in direction `bearing` (radians from north).
fn offset(lat: f64, lon: f64, d: f64, bearing: f64) -> (f64, f64) {
    let dlat = d * bearing.cos() / M_PER_DEG;
    let dlon = d * bearing.sin() / (M_PER_DEG * lat.to_radians().cos());
    (lat + dlat, lon + dlon)
}

/// Rounds a coordinate to 7 decimals (about 1 cm), so stored values are stable and readable.
fn round7(x: f64) -> f64 {
    (x * 1e7).round() / 1e7
}

impl BBox {
    fn of(points: impl IntoIterator<Item = (f64, f64)>) -> Option<BBox> {
        points.into_iter().fold(None, |acc, (lat, lon)| {
            Some(match acc {
                None => BBox { min_lon: lon, min_lat: lat, max_lon: lon, max_lat: lat },
                Some(b) => BBox {
                    min_lon: b.min_lon.min(lon),
                    min_lat: b.min_lat.min(lat),
                    max_lon: b.max_lon.max(lon),
                    max_lat: b.max_lat.max(lat),
                },
            })
        })
    }

    /// Grown by about `m` metres on every side, rounded outwards to 1e-4 degrees.
    fn padded(self, m: f64) -> BBox {
        let mid_lat = f64::midpoint(self.min_lat, self.max_lat);
        let pad_lat = m / M_PER_DEG;
        let pad_lon = m / (M_PER_DEG * mid_lat.to_radians().cos());
        BBox {
            min_lon: ((self.min_lon - pad_lon) * 1e4).floor() / 1e4,
            min_lat: ((self.min_lat - pad_lat) * 1e4).floor() / 1e4,
            max_lon: ((self.max_lon + pad_lon) * 1e4).ceil() / 1e4,
            max_lat: ((self.max_lat + pad_lat) * 1e4).ceil() / 1e4,
        }
    }

    fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }

    /// A `GeoJSON` `Polygon` (counter-clockwise exterior ring).
    fn geojson(&self) -> String {
        let (w, s, e, n) = (self.min_lon, self.min_lat, self.max_lon, self.max_lat);
        json!({"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}).to_string()
    }
}

/// A 4 x 4 split of a rectangle: 2 x 2 districts of 2 x 2 grids each. Rows run north to south and
/// columns west to east; districts and the grids inside a district are numbered 1..=4 in reading
/// order (1 = north-west, 2 = north-east, 3 = south-west, 4 = south-east).
struct CityGrid {
    /// Column edges, west to east.
    xs: [f64; 5],
    /// Row edges, north to south.
    ys: [f64; 5],
}

impl CityGrid {
    /// Edges are rounded to 7 decimals (shared exactly by neighbouring cells and their parents).
    fn new(b: BBox) -> Self {
        let edge = |from: f64, to: f64, k: usize| if k == 4 { to } else { round7(from + (to - from) * k as f64 / 4.0) };
        let xs = std::array::from_fn(|k| edge(b.min_lon, b.max_lon, k));
        let ys = std::array::from_fn(|k| edge(b.max_lat, b.min_lat, k));
        CityGrid { xs, ys }
    }

    /// (row, column) of the cell holding the point (clamped to the city).
    fn cell(&self, lat: f64, lon: f64) -> (usize, usize) {
        let col = (1..4).filter(|&k| lon >= self.xs[k]).count();
        let row = (1..4).filter(|&k| lat <= self.ys[k]).count();
        (row, col)
    }

    fn cell_bbox(&self, row: usize, col: usize, span: usize) -> BBox {
        BBox {
            min_lon: self.xs[col],
            max_lon: self.xs[col + span],
            max_lat: self.ys[row],
            min_lat: self.ys[row + span],
        }
    }

    /// District number (1..=4) of a cell.
    fn district(row: usize, col: usize) -> usize {
        (row / 2) * 2 + col / 2 + 1
    }

    /// Grid number inside its district (1..=4) of a cell.
    fn grid(row: usize, col: usize) -> usize {
        (row % 2) * 2 + col % 2 + 1
    }

    /// The top-left cell of a district.
    fn district_origin(d: usize) -> (usize, usize) {
        ((d - 1) / 2 * 2, (d - 1) % 2 * 2)
    }
}

fn district_code(prefix: &str, d: usize) -> String {
    format!("{prefix}-D{d}")
}

fn grid_code(prefix: &str, d: usize, g: usize) -> String {
    format!("{prefix}-D{d}-G{g}")
}

// ---------------------------------------------------------------------------------------------------
// Source files
// ---------------------------------------------------------------------------------------------------

fn open(path: &Path) -> Result<File, Error> {
    File::open(path)
        .map_err(|e| format!("cannot open {}: {e} (set --data-dir or FV_DEMO_DATA_DIR)", path.display()).into())
}

/// Parses a fix time: RFC 3339, or `YYYY-MM-DD hh:mm:ss[.f]` with an offset such as `+00`.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[derive(Deserialize)]
struct GeolifeRow {
    #[serde(rename = "X")]
    x: f64,
    #[serde(rename = "Y")]
    y: f64,
    trajectory_id: String,
    t: String,
}

/// The trajectories of the `GeoLife` sample, in order of first appearance, fixes in time order.
fn read_geolife(path: &Path) -> Result<Vec<(String, Vec<Fix>)>, Error> {
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_reader(BufReader::new(open(path)?));
    let mut trajectories: Vec<(String, Vec<Fix>)> = Vec::new();
    for (i, row) in reader.deserialize::<GeolifeRow>().enumerate() {
        let row = row.map_err(|e| format!("{}: {e}", path.display()))?;
        let t = parse_time(&row.t).ok_or_else(|| format!("{}: row {}: bad time `{}`", path.display(), i + 2, row.t))?;
        let fix = Fix { t, lat: row.y, lon: row.x, altitude_m: None };
        match trajectories.iter_mut().find(|(id, _)| *id == row.trajectory_id) {
            Some((_, fixes)) => fixes.push(fix),
            None => trajectories.push((row.trajectory_id, vec![fix])),
        }
    }
    for (_, fixes) in &mut trajectories {
        fixes.sort_by_key(|f| f.t);
    }
    if trajectories.is_empty() {
        return Err(format!("{}: no fixes", path.display()).into());
    }
    Ok(trajectories)
}

/// Every timed track point of a GPX file, in time order.
fn read_gpx(path: &Path) -> Result<Vec<Fix>, Error> {
    let gpx = gpx::read(BufReader::new(open(path)?)).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut fixes = Vec::new();
    for p in gpx.tracks.iter().flat_map(|t| &t.segments).flat_map(|s| &s.points) {
        let Some(time) = &p.time else { continue };
        let text = time.format().map_err(|e| format!("{}: {e}", path.display()))?;
        let t = parse_time(&text).ok_or_else(|| format!("{}: bad time `{text}`", path.display()))?;
        let pt = p.point();
        fixes.push(Fix { t, lat: pt.y(), lon: pt.x(), altitude_m: p.elevation });
    }
    fixes.sort_by_key(|f| f.t);
    if fixes.is_empty() {
        return Err(format!("{}: no timed track points", path.display()).into());
    }
    Ok(fixes)
}

#[derive(Deserialize)]
struct StopRow {
    stop_id: String,
    stop_no: Option<String>,
    name: String,
    lat: f64,
    lon: f64,
}

fn read_stops(path: &Path) -> Result<Vec<StopRow>, Error> {
    let mut reader = csv::Reader::from_reader(BufReader::new(open(path)?));
    let stops = reader
        .deserialize::<StopRow>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if stops.is_empty() {
        return Err(format!("{}: no stops", path.display()).into());
    }
    Ok(stops)
}

/// The whole number of days that moves the latest fix day `latest` (UTC) to `anchor - 1`.
fn anchor_shift(latest: Option<NaiveDate>, anchor: NaiveDate) -> Result<TimeDelta, Error> {
    let Some(latest) = latest else { return Ok(TimeDelta::zero()) };
    let target = anchor.checked_sub_days(Days::new(1)).ok_or("anchor date out of range")?;
    Ok(TimeDelta::days(target.signed_duration_since(latest).num_days()))
}

/// Moves every fix by `by`.
fn shift<'a>(fixes: impl Iterator<Item = &'a mut Fix>, by: TimeDelta) -> Result<(), Error> {
    for f in fixes {
        f.t = f.t.checked_add_signed(by).ok_or("anchor date out of range")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Random choices (seeded: same seed, same demo)
// ---------------------------------------------------------------------------------------------------

/// Channel mix of the generated outlets, in `ChannelType::ALL` order (percent).
const CHANNEL_WEIGHTS: [u32; ChannelType::ALL.len()] = [5, 10, 8, 18, 25, 8, 8, 5, 5, 8];
/// Tier mix of ordinary outlets (percent).
const TIER_WEIGHTS: [(&str, u32); 4] = [("VIP", 5), ("A", 15), ("B", 30), ("C", 50)];
/// Business halls are the flagship stores: mostly VIP and A.
const HALL_TIER_WEIGHTS: [(&str, u32); 4] = [("VIP", 30), ("A", 40), ("B", 20), ("C", 10)];
/// Radii of the outlets that set their own geofence, metres.
const OWN_RADII: [f64; 5] = [30.0, 50.0, 80.0, 150.0, 200.0];

fn pick_weighted<T: Copy>(rng: &mut StdRng, options: &[(T, u32)]) -> T {
    let total: u32 = options.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for &(item, w) in options {
        if roll < w {
            return item;
        }
        roll -= w;
    }
    options[options.len() - 1].0
}

/// A business hall's premises: a 40 m x 30 m rectangle around its point, as a GeoJSON Polygon.
fn premises(lat: f64, lon: f64) -> serde_json::Value {
    let (dlat, dlon) = (15.0 / 111_195.0, 20.0 / (111_195.0 * lat.to_radians().cos()));
    let round7 = |x: f64| (x * 1e7).round() / 1e7;
    let (west, east) = (round7(lon - dlon), round7(lon + dlon));
    let (south, north) = (round7(lat - dlat), round7(lat + dlat));
    json!({"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]})
}

/// A readable outlet name for a channel type and number.
fn outlet_name(channel_type: ChannelType, n: usize) -> String {
    let label = match channel_type {
        ChannelType::BusinessHall => "China Mobile Business Hall",
        ChannelType::CooperativeHall => "Cooperative Business Hall",
        ChannelType::PhoneMall => "Phone Mall Counter",
        ChannelType::FranchiseStore => "Franchise Store",
        ChannelType::AgentPoint => "Agent Point",
        ChannelType::CollectionPoint => "Bill Payment Point",
        ChannelType::DirectSeller => "Direct Seller",
        ChannelType::CampusPoint => "Campus Service Point",
        ChannelType::TemporaryPoint => "Temporary Sales Point",
        ChannelType::Other => "Retail Outlet",
    };
    format!("{label} {n:04}")
}

// ---------------------------------------------------------------------------------------------------
// Plans: the outlets nearest to a track, in track order
// ---------------------------------------------------------------------------------------------------

/// Within this distance an outlet counts as "at" the track; time spent that close ranks candidates.
const NEAR_M: f64 = 50.0;

/// Picks up to `count` distinct eligible outlets near the track, one per consecutive slice (by fix) of
/// the track, and returns them in track order. In each slice the outlet the rep spent the most time
/// within [`NEAR_M`] of wins (ties and slices without such an outlet: the nearest outlet), so plans
/// name outlets the rep actually passed or stopped at.
fn pick_plan(track: &[Fix], outlets: &[(f64, f64)], eligible: &[bool], count: usize) -> Vec<usize> {
    let mut chosen: Vec<(usize, usize)> = Vec::new(); // (fix index, outlet index)
    for part in 0..count {
        let (start, end) = (track.len() * part / count, track.len() * (part + 1) / count);
        let slice = &track[start..end];
        let Some(near) = BBox::of(slice.iter().map(|f| (f.lat, f.lon))).map(|b| b.padded(300.0)) else { continue };
        let mut best: Option<((bool, i64, f64), usize, usize)> = None;
        let candidates = (0..outlets.len()).filter(|&o| eligible[o] && !chosen.iter().any(|&(_, c)| c == o));
        let local: Vec<usize> = candidates.clone().filter(|&o| near.contains(outlets[o].0, outlets[o].1)).collect();
        let pool: Vec<usize> = if local.is_empty() { candidates.collect() } else { local };
        for o in pool {
            let (lat, lon) = outlets[o];
            let dists: Vec<f64> = slice.iter().map(|f| distance_m(f.lat, f.lon, lat, lon)).collect();
            let (min_i, min_d) = dists
                .iter()
                .copied()
                .enumerate()
                .fold((0, f64::INFINITY), |a, (i, d)| if d < a.1 { (i, d) } else { a });
            let dwell: i64 = slice
                .windows(2)
                .zip(dists.windows(2))
                .filter(|(_, d)| d[0] <= NEAR_M && d[1] <= NEAR_M)
                .map(|(f, _)| (f[1].t - f[0].t).num_seconds())
                .sum();
            // Lower is better: near before far, then longer dwell, then shorter distance.
            let key = (min_d > NEAR_M, -dwell, min_d);
            let better = best.as_ref().is_none_or(|(k, _, _)| {
                key.0.cmp(&k.0).then(key.1.cmp(&k.1)).then(key.2.total_cmp(&k.2)) == std::cmp::Ordering::Less
            });
            if better {
                best = Some((key, o, start + min_i));
            }
        }
        if let Some((_, o, fix)) = best {
            chosen.push((fix, o));
        }
    }
    chosen.sort_unstable();
    chosen.into_iter().map(|(_, o)| o).collect()
}

/// Indexes of the outlets in the order the track passes closest to them.
fn route_order(track: &[Fix], outlets: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<(usize, usize)> = outlets
        .iter()
        .enumerate()
        .map(|(o, &(lat, lon))| {
            let closest = track
                .iter()
                .enumerate()
                .map(|(i, f)| (i, distance_m(f.lat, f.lon, lat, lon)))
                .fold((0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
            (closest.0, o)
        })
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, o)| o).collect()
}

// ---------------------------------------------------------------------------------------------------
// demo-beijing
// ---------------------------------------------------------------------------------------------------

/// Outlets generated for Beijing.
const BEIJING_OUTLETS: usize = 2000;
/// Share of them placed along the real tracks.
const BEIJING_TRACK_SHARE: f64 = 0.6;
const BEIJING_SEED: u64 = 20_081_211;

fn beijing(data_dir: &Path, anchor: NaiveDate) -> Result<OrgSpec, Error> {
    let mut trajectories = read_geolife(&data_dir.join(GEOLIFE_FILE))?;
    // Each trajectory is one rep's day: every rep worked "yesterday" (relative to the anchor).
    for (_, fixes) in &mut trajectories {
        let latest = fixes.iter().map(|f| f.t.date_naive()).max();
        let by = anchor_shift(latest, anchor)?;
        shift(fixes.iter_mut(), by)?;
    }
    let all_fixes = || trajectories.iter().flat_map(|(_, f)| f.iter());
    let city = BBox::of(all_fixes().map(|f| (f.lat, f.lon))).ok_or("no fixes")?.padded(2000.0);
    let grid = CityGrid::new(city);

    let mut territories = vec![TerritorySpec {
        code: "BJ".into(),
        name: "Beijing".into(),
        level: TerritoryLevel::City,
        parent: None,
        bbox: city,
    }];
    let quarter = ["north-west", "north-east", "south-west", "south-east"];
    for d in 1..=4 {
        let (r, c) = CityGrid::district_origin(d);
        territories.push(TerritorySpec {
            code: district_code("BJ", d),
            name: format!("Beijing district {d} ({})", quarter[d - 1]),
            level: TerritoryLevel::District,
            parent: Some("BJ".into()),
            bbox: grid.cell_bbox(r, c, 2),
        });
    }
    for d in 1..=4 {
        let (r0, c0) = CityGrid::district_origin(d);
        for g in 1..=4 {
            let (r, c) = (r0 + (g - 1) / 2, c0 + (g - 1) % 2);
            territories.push(TerritorySpec {
                code: grid_code("BJ", d, g),
                name: format!("Beijing district {d} grid {g}"),
                level: TerritoryLevel::Grid,
                parent: Some(district_code("BJ", d)),
                bbox: grid.cell_bbox(r, c, 1),
            });
        }
    }

    // Outlet locations: every Nth fix of each track, 5-150 m off it; the rest anywhere in the city.
    let mut rng = StdRng::seed_from_u64(BEIJING_SEED);
    let total_fixes = all_fixes().count();
    let step = ((total_fixes as f64) / (BEIJING_OUTLETS as f64 * BEIJING_TRACK_SHARE)).round().max(1.0) as usize;
    let mut places: Vec<(f64, f64, &str)> = Vec::with_capacity(BEIJING_OUTLETS);
    for (_, fixes) in &trajectories {
        for f in fixes.iter().step_by(step) {
            let (lat, lon) = offset(f.lat, f.lon, rng.random_range(5.0..=150.0), rng.random_range(0.0..TAU));
            places.push((round7(lat), round7(lon), "track"));
        }
    }
    places.truncate(BEIJING_OUTLETS);
    while places.len() < BEIJING_OUTLETS {
        let lat = rng.random_range(city.min_lat..city.max_lat);
        let lon = rng.random_range(city.min_lon..city.max_lon);
        places.push((round7(lat), round7(lon), "scatter"));
    }
    let channels: Vec<(ChannelType, u32)> = ChannelType::ALL.into_iter().zip(CHANNEL_WEIGHTS).collect();
    let outlets: Vec<OutletSpec> = places
        .iter()
        .enumerate()
        .map(|(i, &(lat, lon, origin))| {
            let n = i + 1;
            let channel_type = pick_weighted(&mut rng, &channels);
            let tiers = if channel_type == ChannelType::BusinessHall { &HALL_TIER_WEIGHTS } else { &TIER_WEIGHTS };
            let tier = pick_weighted(&mut rng, tiers);
            let status = match rng.random_range(0..1000) {
                0..20 => OutletStatus::Closed,
                20..35 => OutletStatus::Suspended,
                _ => OutletStatus::Active,
            };
            let radius_m = rng.random_bool(0.12).then(|| OWN_RADII[rng.random_range(0..OWN_RADII.len())]);
            let (row, col) = grid.cell(lat, lon);
            OutletSpec {
                fields: OutletFields {
                    code: format!("BJ-{n:06}"),
                    name: outlet_name(channel_type, n),
                    channel_type,
                    tier: tier.to_owned(),
                    lat,
                    lon,
                    radius_m,
                    status,
                    territory_id: None,
                    address: None,
                    attributes: json!({"demo": true, "origin": origin}),
                    // Business halls are big enough to have their premises outlined.
                    footprint: (channel_type == ChannelType::BusinessHall).then(|| premises(lat, lon)),
                },
                territory: grid_code("BJ", CityGrid::district(row, col), CityGrid::grid(row, col)),
            }
        })
        .collect();

    let mut users = vec![
        user("admin", "Demo Admin", Role::Admin, None),
        user("manager", "Beijing City Manager", Role::Manager, Some("BJ")),
        user("manager-d1", "Beijing District 1 Manager", Role::Manager, Some("BJ-D1")),
        user("supervisor", "Beijing Supervisor", Role::Supervisor, Some("BJ")),
        user("auditor", "Demo Auditor", Role::Auditor, None),
    ];
    let mut devices = Vec::new();
    let mut plans = Vec::new();
    let points: Vec<(f64, f64)> = outlets.iter().map(|o| (o.fields.lat, o.fields.lon)).collect();
    let active: Vec<bool> = outlets.iter().map(|o| o.fields.status == OutletStatus::Active).collect();
    let mut plan_rng = StdRng::seed_from_u64(BEIJING_SEED + 1);
    for (i, (trajectory, fixes)) in trajectories.into_iter().enumerate() {
        let login = format!("rep{}", i + 1);
        let mut per_district = [0usize; 4];
        for f in &fixes {
            let (row, col) = grid.cell(f.lat, f.lon);
            per_district[CityGrid::district(row, col) - 1] += 1;
        }
        let home = (0..4).max_by_key(|&d| (per_district[d], std::cmp::Reverse(d))).unwrap_or(0) + 1;
        users.push(user(
            &login,
            &format!("Rep {} (GeoLife trajectory {trajectory})", i + 1),
            Role::Rep,
            Some(&district_code("BJ", home)),
        ));
        let count = plan_rng.random_range(6..=10);
        plans.push(PlanSpec {
            rep: login.clone(),
            day_of: fixes[0].t,
            outlets: pick_plan(&fixes, &points, &active, count),
            window: (hm(8, 0), hm(20, 0)),
            expected_duration_s: 600,
        });
        devices.push(DeviceSpec { name: format!("{login}-phone"), rep: login, fixes });
    }

    Ok(OrgSpec {
        slug: BEIJING_SLUG,
        name: "Demo Telecom Beijing",
        timezone: "Asia/Shanghai",
        territories,
        outlets,
        users,
        devices,
        plans,
    })
}

fn user(login: &str, name: &str, role: Role, scope: Option<&str>) -> UserSpec {
    UserSpec { login: login.to_owned(), name: name.to_owned(), role, scope: scope.map(str::to_owned) }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

// ---------------------------------------------------------------------------------------------------
// demo-limerick
// ---------------------------------------------------------------------------------------------------

const LIMERICK_SEED: u64 = 20_190_218;

fn limerick(data_dir: &Path, anchor: NaiveDate) -> Result<OrgSpec, Error> {
    let stops = read_stops(&data_dir.join(LIMERICK_STOPS_FILE))?;
    let mut ride = read_gpx(&data_dir.join(LIMERICK_GPX_FILE))?;
    let latest = ride.iter().map(|f| f.t.date_naive()).max();
    shift(ride.iter_mut(), anchor_shift(latest, anchor)?)?;
    let city = BBox::of(stops.iter().map(|s| (s.lat, s.lon))).ok_or("no stops")?.padded(1000.0);
    let mut rng = StdRng::seed_from_u64(LIMERICK_SEED);
    let outlets: Vec<OutletSpec> = stops
        .iter()
        .map(|s| {
            let number = s.stop_no.as_deref().map(str::trim).filter(|n| !n.is_empty()).unwrap_or(&s.stop_id);
            OutletSpec {
                fields: OutletFields {
                    code: format!("STOP-{number}"),
                    name: s.name.clone(),
                    channel_type: ChannelType::AgentPoint,
                    tier: pick_weighted(&mut rng, &TIER_WEIGHTS).to_owned(),
                    lat: s.lat,
                    lon: s.lon,
                    radius_m: Some(30.0),
                    status: OutletStatus::Active,
                    territory_id: None,
                    address: None,
                    attributes: json!({"demo": true, "gtfs_stop_id": s.stop_id}),
                    footprint: None,
                },
                territory: "LIM".into(),
            }
        })
        .collect();
    let points: Vec<(f64, f64)> = outlets.iter().map(|o| (o.fields.lat, o.fields.lon)).collect();
    let plan = PlanSpec {
        rep: "driver".into(),
        day_of: ride[0].t,
        outlets: route_order(&ride, &points),
        window: (hm(7, 0), hm(20, 0)),
        expected_duration_s: 60,
    };
    Ok(OrgSpec {
        slug: LIMERICK_SLUG,
        name: "Demo Limerick",
        timezone: "Europe/Dublin",
        territories: vec![TerritorySpec {
            code: "LIM".into(),
            name: "Limerick".into(),
            level: TerritoryLevel::City,
            parent: None,
            bbox: city,
        }],
        outlets,
        users: vec![
            user("admin", "Demo Admin", Role::Admin, None),
            user("driver", "Route 304 Driver", Role::Rep, Some("LIM")),
        ],
        devices: vec![DeviceSpec { name: "driver-phone".into(), rep: "driver".into(), fixes: ride }],
        plans: vec![plan],
    })
}

// ---------------------------------------------------------------------------------------------------
// Writing an org
// ---------------------------------------------------------------------------------------------------

/// One printed line.
struct Row {
    slug: &'static str,
    role: String,
    login: String,
    token: String,
}

fn format_rows(rows: &[Row]) -> Vec<String> {
    let width = |f: fn(&Row) -> &str| rows.iter().map(|r| f(r).len()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(|r| r.slug), width(|r| &r.role), width(|r| &r.login));
    rows.iter().map(|r| format!("{:<w0$}  {:<w1$}  {:<w2$}  {}", r.slug, r.role, r.login, r.token)).collect()
}

fn violates(e: &sqlx::Error, constraint: &str) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.constraint() == Some(constraint))
}

/// Creates the org with all its data, or (when it exists) only ensures its demo tokens.
async fn install(pool: &PgPool, spec: &OrgSpec) -> Result<Vec<Row>, Error> {
    if db::orgs::by_slug(pool, spec.slug).await?.is_none() {
        match create(pool, spec).await {
            Ok(rows) => return Ok(rows),
            // Created concurrently by another loader: fall through to the existing-org path.
            Err(e) if violates(&e, "orgs_slug_key") => {}
            Err(e) => return Err(format!("loading {}: {e}", spec.slug).into()),
        }
    }
    ensure_tokens(pool, spec).await
}

/// The org of `spec` with its tier policies, territories and outlets, in `tx`: the org, the
/// territory ids by code and the outlet ids in `spec.outlets` order.
async fn create_places<'s>(
    tx: &mut sqlx::PgConnection,
    spec: &'s OrgSpec,
) -> Result<(db::orgs::Org, HashMap<&'s str, i64>, Vec<i64>), sqlx::Error> {
    let org = db::orgs::create(&mut *tx, spec.slug, spec.name, spec.timezone).await?;
    for p in default_tier_policies() {
        db::tiers::upsert(&mut *tx, org.id, &p).await?;
    }
    let mut territory_ids: HashMap<&str, i64> = HashMap::new();
    for t in &spec.territories {
        let boundary = t.bbox.geojson();
        let new = db::territories::NewTerritory {
            parent_id: t.parent.as_deref().and_then(|p| territory_ids.get(p).copied()),
            code: &t.code,
            name: &t.name,
            level: t.level,
            boundary_geojson: Some(&boundary),
        };
        let created = db::territories::create(&mut *tx, org.id, &new).await?;
        territory_ids.insert(&t.code, created.id);
    }
    let mut outlet_ids = Vec::with_capacity(spec.outlets.len());
    for o in &spec.outlets {
        let territory_id = territory_ids.get(o.territory.as_str()).copied();
        let fields = OutletFields { territory_id, ..o.fields.clone() };
        outlet_ids.push(db::outlets::create(&mut *tx, org.id, &fields).await?);
    }
    Ok((org, territory_ids, outlet_ids))
}

async fn create(pool: &PgPool, spec: &OrgSpec) -> Result<Vec<Row>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let (org, territory_ids, outlet_ids) = create_places(&mut tx, spec).await?;

    let mut rows = Vec::new();
    let mut user_ids: HashMap<&str, i64> = HashMap::new();
    for u in &spec.users {
        let scope = u.scope.as_deref().map(|c| territory_ids[c]);
        let created = db::users::create(&mut *tx, org.id, &u.login, &u.name, u.role, scope).await?;
        let token = new_token(&mut rand::rng());
        db::tokens::issue_for_user(&mut tx, org.id, created.id, &hash_secret(&token)).await?;
        user_ids.insert(&u.login, created.id);
        rows.push(Row { slug: spec.slug, role: u.role.to_string(), login: u.login.clone(), token });
    }

    let mut pings_stored = 0;
    for d in &spec.devices {
        let secrets = new_device_secrets();
        let device_id = register_device(&mut *tx, org.id, user_ids[d.rep.as_str()], &d.name, &secrets).await?;
        db::tokens::issue_for_device(&mut tx, org.id, device_id, &hash_secret(&secrets.token)).await?;
        let pings: Vec<db::pings::Ping> = d
            .fixes
            .iter()
            .map(|f| db::pings::Ping {
                device_id,
                fix_time: f.t,
                lat: f.lat,
                lon: f.lon,
                accuracy_m: None,
                speed_mps: None,
                heading_deg: None,
                altitude_m: f.altitude_m.map(|a| a as f32),
                battery_pct: None,
                mock: false,
                source: "demo".into(),
            })
            .collect();
        for chunk in pings.chunks(5000) {
            pings_stored += db::pings::insert(&mut tx, org.id, chunk).await?;
        }
        rows.push(Row { slug: spec.slug, role: "device".into(), login: d.name.clone(), token: secrets.token });
    }

    // The demo's rep-days wait for visit derivation like ingested ones.
    let first = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let last = NaiveDate::from_ymd_opt(2200, 1, 1).unwrap_or_default();
    db::visits::mark_period(&mut *tx, org.id, first, last, "demo").await?;

    let mut planned = 0;
    for p in &spec.plans {
        let rep_id = user_ids[p.rep.as_str()];
        let day = db::plans::local_date(&mut *tx, org.id, p.day_of).await?;
        let name = format!("{} {day}", p.rep);
        let plan = db::plans::NewPlan { rep_id, name: &name, cycle_weeks: 1, valid_from: day, valid_to: Some(day) };
        let plan_id = db::plans::create(&mut *tx, org.id, &plan).await?;
        for (seq, &o) in p.outlets.iter().enumerate() {
            let item = db::plans::NewPlanItem {
                outlet_id: outlet_ids[o],
                weekday: None,
                week_of_cycle: None,
                visit_date: Some(day),
                window_start: Some(p.window.0),
                window_end: Some(p.window.1),
                expected_duration_s: Some(p.expected_duration_s),
                seq: seq as i32 + 1,
                planned_from: None,
            };
            db::plans::add_item(&mut *tx, org.id, plan_id, &item).await?;
        }
        planned += db::plans::materialize_dated(&mut *tx, org.id, plan_id).await?;
    }

    let entry = demo_load_entry(
        org.id,
        json!({
            "territories": spec.territories.len(),
            "outlets": spec.outlets.len(),
            "users": spec.users.len(),
            "devices": spec.devices.len(),
            "pings": pings_stored,
            "planned_visits": planned,
        }),
    );
    db::audit::record(&mut *tx, org.id, entry).await?;
    // The outlets stood there before the recorded days: their history starts over a year earlier,
    // so the demo's periods count them as active at their start (coverage, frequency compliance).
    db::outlets::backdate_history(&mut tx, org.id, HISTORY_BACKDATE_DAYS).await?;
    tx.commit().await?;
    Ok(rows)
}

/// The `demo.load` audit entry of org `org_id` (written by the loader itself: no actor).
fn demo_load_entry(org_id: i64, detail: serde_json::Value) -> db::audit::NewEntry<'static> {
    db::audit::NewEntry {
        actor_user_id: None,
        actor_device_id: None,
        action: AuditAction::DemoLoad,
        object_type: "org",
        object_id: Some(org_id.to_string()),
        request_id: None,
        detail,
    }
}

/// What a later load prints for a demo user's or device's token, and whether that is a new token to
/// store: a live one is kept, a missing one (of an active owner) is issued anew, else `(revoked)`.
fn printed(issued: Issued, active: bool) -> (String, bool) {
    match issued {
        Issued::Live if active => (KEPT.to_owned(), false),
        Issued::Never if active => (new_token(&mut rand::rng()), true),
        _ => (NOT_LIVE.to_owned(), false),
    }
}

/// For an existing org: keeps its demo users' and devices' live tokens (printed as `(kept)`),
/// touching nothing else. A user or active device with no token at all gets a new random one
/// (printed); revoked tokens stay revoked. Users or devices that are missing are skipped.
async fn ensure_tokens(pool: &PgPool, spec: &OrgSpec) -> Result<Vec<Row>, Error> {
    let mut tx = pool.begin().await?;
    let org = db::orgs::by_slug(&mut *tx, spec.slug).await?.ok_or_else(|| format!("org {} vanished", spec.slug))?;
    let rows = tokens_in(&mut tx, org.id, spec).await?;
    tx.commit().await?;
    Ok(rows)
}

/// [`ensure_tokens`] of org `org_id` within the transaction `tx`: the printed line of each demo
/// user and device of `spec`, a token issued to those that have none.
async fn tokens_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    org_id: i64,
    spec: &OrgSpec,
) -> Result<Vec<Row>, sqlx::Error> {
    let mut rows = Vec::new();
    for u in &spec.users {
        let Some(found) = db::users::by_login(&mut **tx, org_id, &u.login).await? else { continue };
        let issued = db::tokens::issued_for_user(&mut **tx, org_id, found.id).await?;
        let (token, issue) = printed(issued, found.active);
        if issue {
            db::tokens::issue_for_user(tx, org_id, found.id, &hash_secret(&token)).await?;
        }
        rows.push(Row { slug: spec.slug, role: found.role.to_string(), login: found.login, token });
    }
    let devices = db::devices::list(&mut **tx, org_id, None, 0, 10_000).await?;
    for d in &spec.devices {
        let Some(found) = devices.iter().find(|x| x.name == d.name) else { continue };
        let issued = db::tokens::issued_for_device(&mut **tx, org_id, found.id).await?;
        let (token, issue) = printed(issued, found.active);
        if issue {
            db::tokens::issue_for_device(tx, org_id, found.id, &hash_secret(&token)).await?;
        }
        rows.push(Row { slug: spec.slug, role: "device".into(), login: found.name.clone(), token });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    #[test]
    fn geolife_times_parse_as_utc() {
        let t = parse_time("2008-12-11 04:42:14+00").expect("parses");
        assert_eq!(t.to_rfc3339(), "2008-12-11T04:42:14+00:00");
        assert_eq!(parse_time("2019-02-18T07:45:50.000000000Z").map(|t| t.timestamp()), Some(1_550_475_950));
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn city_grid_numbers_cells_in_reading_order() {
        let g = CityGrid::new(BBox { min_lon: 0.0, min_lat: 0.0, max_lon: 4.0, max_lat: 4.0 });
        let at = |lat, lon| {
            let (r, c) = g.cell(lat, lon);
            (CityGrid::district(r, c), CityGrid::grid(r, c))
        };
        assert_eq!(at(3.5, 0.5), (1, 1)); // north-west corner
        assert_eq!(at(3.5, 3.5), (2, 2)); // north-east corner
        assert_eq!(at(0.5, 0.5), (3, 3)); // south-west corner
        assert_eq!(at(0.5, 3.5), (4, 4)); // south-east corner
        assert_eq!(at(2.5, 1.5), (1, 4));
        for d in 1..=4 {
            let (r, c) = CityGrid::district_origin(d);
            assert_eq!(CityGrid::district(r, c), d);
            assert_eq!(CityGrid::grid(r, c), 1);
        }
        let b = g.cell_bbox(0, 2, 2);
        assert_eq!((b.min_lon, b.max_lon, b.min_lat, b.max_lat), (2.0, 4.0, 2.0, 4.0));
    }

    #[test]
    fn beijing_is_deterministic_and_shifted_to_the_anchor() {
        let a = beijing(&fixtures(), day(2026, 11, 20)).expect("builds");
        let b = beijing(&fixtures(), day(2026, 11, 20)).expect("builds");
        let fingerprint = |s: &OrgSpec| {
            let outlets: Vec<String> = s.outlets.iter().map(|o| format!("{:?} {}", o.fields, o.territory)).collect();
            let plans: Vec<_> = s.plans.iter().map(|p| (p.rep.clone(), p.day_of, p.outlets.clone())).collect();
            (outlets, plans)
        };
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(a.outlets.len(), BEIJING_OUTLETS);
        let latest = a.devices.iter().flat_map(|d| &d.fixes).map(|f| f.t.date_naive()).max();
        assert_eq!(latest, Some(day(2026, 11, 19)));
        // Another anchor moves the tracks only.
        let c = beijing(&fixtures(), day(2027, 1, 5)).expect("builds");
        assert_eq!(fingerprint(&a).0, fingerprint(&c).0);
        let delta = c.devices[0].fixes[0].t - a.devices[0].fixes[0].t;
        assert_eq!(delta, TimeDelta::days(46));
        for p in &a.plans {
            assert!((6..=10).contains(&p.outlets.len()), "{} has {} items", p.rep, p.outlets.len());
        }
    }

    #[test]
    fn limerick_plan_visits_every_stop_in_route_order() {
        let s = limerick(&fixtures(), day(2026, 11, 20)).expect("builds");
        assert_eq!(s.outlets.len(), 36);
        let plan = &s.plans[0];
        assert_eq!(plan.outlets.len(), 36);
        assert_eq!(s.outlets[plan.outlets[0]].fields.name, "St Nessan's Road");
        assert_eq!(s.outlets[plan.outlets[35]].fields.name, "UL Student Centre");
    }
}
