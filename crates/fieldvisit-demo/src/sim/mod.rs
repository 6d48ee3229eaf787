//! The district team's simulator (issue 26): from the org's outlets and territories, the real
//! `GeoLife` days and a seed, a team of reps with territories and beat plans, and five weeks of
//! their working days as their phones would report them — with the ground truth of what each rep
//! really did, so tests can hold the visit pipeline to it.
//!
//! Pure: no I/O, no database, no clock (the anchor date is given). The same [`World`] and
//! [`Params`] give the same [`Simulation`], byte for byte. The loader (`crate::team`) sends it
//! through the server's real paths (ingest, derivation, check-ins, photos, answers, reviews).
//!
//! Indexes: `outlet` fields index [`World::outlets`], `rep` fields index [`Simulation::reps`],
//! `plan` fields index [`Simulation::plans`].

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

pub mod day;
pub mod events;
pub mod run;
pub mod team;

pub use run::simulate;

/// What the simulator starts from: the org as the loader builds it.
#[derive(Debug, Clone)]
pub struct World {
    /// IANA zone of the org (`Asia/Shanghai`).
    pub timezone: String,
    /// Its UTC offset, seconds (working days and hours are org-local; the demo's zone has no DST).
    pub utc_offset_s: i32,
    pub territories: Vec<SimTerritory>,
    pub outlets: Vec<SimOutlet>,
    /// Tier -> visits required per 28 days (the org's tier policies).
    pub tier_visits: Vec<(String, u32)>,
    /// The real recorded days (`GeoLife`), each becoming one day of one rep; already shifted to
    /// lie within the simulated weeks.
    pub real_days: Vec<RealDay>,
}

#[derive(Debug, Clone)]
pub struct SimTerritory {
    pub code: String,
    /// `grid` territories are the ones reps are given.
    pub level: fieldvisit::domain::territory::TerritoryLevel,
    pub parent: Option<String>,
    /// `(min_lon, min_lat, max_lon, max_lat)`
    pub bbox: (f64, f64, f64, f64),
}

#[derive(Debug, Clone)]
pub struct SimOutlet {
    pub lat: f64,
    pub lon: f64,
    pub tier: String,
    /// Only active outlets are planned; closed ones stay closed, suspended ones suspended.
    pub active: bool,
    /// The territory code the outlet lies in (a grid).
    pub territory: String,
    /// Its visit radius, metres (the outlet's own, else its tier's default).
    pub radius_m: f64,
}

/// One real recorded day (a `GeoLife` trajectory) and the fixes of it.
#[derive(Debug, Clone)]
pub struct RealDay {
    pub name: String,
    pub fixes: Vec<SimFix>,
}

/// Size and seed of a run. [`Params::full`] is the demo `make run` loads; tests may use a smaller
/// run of the same generator that still holds every kind of [`Truth`] event.
#[derive(Debug, Clone)]
pub struct Params {
    pub seed: u64,
    /// The day after the last simulated day (org-local): the demo ends "yesterday".
    pub anchor: NaiveDate,
    pub reps: usize,
    pub weeks: u32,
}

impl Params {
    /// The demo: about 20 reps over the last five weeks of working days.
    pub fn full(anchor: NaiveDate) -> Params {
        Params { seed: 20_081_211, anchor, reps: 20, weeks: 5 }
    }
}

/// The whole simulated team and its weeks.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub reps: Vec<SimRep>,
    pub plans: Vec<SimPlan>,
    pub days: Vec<SimDay>,
}

/// A rep of the team, with one phone.
#[derive(Debug, Clone)]
pub struct SimRep {
    /// `rep1`, `rep2`, ..: the login (tests and docs name `rep1` and its phone `rep1-phone`).
    pub login: String,
    /// A Chinese name (outlets have Chinese names too).
    pub name: String,
    /// The grid territory the rep's scope starts at.
    pub territory: String,
    /// Org-local working hours.
    pub working_hours: (NaiveTime, NaiveTime),
    /// Whether this rep's phone reports mock locations (the spoofer).
    pub spoofer: bool,
}

/// A rep's beat plan: a cycle of weeks in which each item recurs.
#[derive(Debug, Clone)]
pub struct SimPlan {
    pub rep: usize,
    pub name: String,
    /// 1..=12 weeks.
    pub cycle_weeks: u32,
    /// The plan's first day (a Monday at or before the first simulated day).
    pub valid_from: NaiveDate,
    pub items: Vec<SimPlanItem>,
}

#[derive(Debug, Clone)]
pub struct SimPlanItem {
    pub outlet: usize,
    /// ISO weekday 1 = Monday.
    pub weekday: u32,
    /// 1-based week of the cycle; `None` = every week.
    pub week_of_cycle: Option<u32>,
    pub window: (NaiveTime, NaiveTime),
    pub expected_duration_s: u32,
    /// Route order within the day.
    pub seq: u32,
}

/// One rep's working day as the phone and the reps' app report it.
#[derive(Debug, Clone)]
pub struct SimDay {
    pub rep: usize,
    /// Org-local date.
    pub date: NaiveDate,
    /// Whether this day is one of the real `GeoLife` days (its fixes are the recording's).
    pub real: bool,
    /// The phone's uploads, in the order they reach the server: each a batch of fixes with the
    /// device's own fix times; some arrive late (after a gap without signal) and out of order.
    pub batches: Vec<Batch>,
    /// Check-ins the reps' app sends (one per stop the rep checks in at, not every stop).
    pub checkins: Vec<SimCheckin>,
    /// Reviews and disputes of the day's visits, taken after derivation.
    pub reviews: Vec<SimReview>,
    /// What really happened, for the tests.
    pub truth: Vec<Truth>,
}

/// One upload of the phone.
#[derive(Debug, Clone)]
pub struct Batch {
    /// When the upload reaches the server (after the last fix it carries).
    pub sent_at: DateTime<Utc>,
    pub fixes: Vec<SimFix>,
}

/// One position fix as the phone reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimFix {
    pub t: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    /// Reported horizontal accuracy, metres (like the real traces': mostly 3-30 m, some worse).
    pub accuracy_m: Option<f32>,
    pub speed_mps: Option<f32>,
    pub altitude_m: Option<f32>,
    pub battery_pct: Option<f32>,
    /// The phone says the fix comes from a mock-location provider.
    pub mock: bool,
}

/// A check-in (and check-out) from the reps' app at an outlet.
#[derive(Debug, Clone)]
pub struct SimCheckin {
    /// The app's client id (unique per rep).
    pub client_id: String,
    pub outlet: usize,
    pub checked_in_at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: f32,
    pub checked_out_at: Option<DateTime<Utc>>,
    /// Photos taken at the check-in (generated JPEGs with EXIF time and position).
    pub photos: Vec<SimPhoto>,
    /// Checklist answers given at the check-in, if any.
    pub answers: Option<SimAnswers>,
}

#[derive(Debug, Clone)]
pub struct SimPhoto {
    pub client_id: String,
    /// Same `picture` value = the same image bytes (a reused storefront photo).
    pub picture: u64,
    /// EXIF capture time and position written into the JPEG.
    pub taken_at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone)]
pub struct SimAnswers {
    pub client_id: String,
    /// Whether the checklist found a problem (e.g. stock out, poster missing).
    pub problem: bool,
}

/// A review of one of the day's visits, found by outlet and arrival after derivation.
#[derive(Debug, Clone)]
pub struct SimReview {
    pub outlet: usize,
    /// Around when the visit began (the loader finds the derived visit nearest to it).
    pub around: DateTime<Utc>,
    pub decision: ReviewDecision,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewDecision {
    /// A supervisor accepts a suspect or unverified visit.
    Accepted,
    /// A supervisor rejects one.
    Rejected,
    /// The rep disputes their visit's verdict (through their device).
    Disputed,
}

/// What really happened during a simulated day (never sent to the server).
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    /// The rep stayed at the outlet from `arrive` to `depart` (planned or not).
    Stop { outlet: usize, arrive: DateTime<Utc>, depart: DateTime<Utc>, planned: bool },
    /// A stop shorter than the tier's minimum dwell.
    ShortStop { outlet: usize, arrive: DateTime<Utc>, depart: DateTime<Utc> },
    /// A planned stop the rep did not make.
    Skipped { outlet: usize },
    /// The rep passed within the outlet's radius without stopping.
    DriveBy { outlet: usize, at: DateTime<Utc> },
    /// The rep's fixes during this span came from a mock-location app.
    Spoofed { from: DateTime<Utc>, to: DateTime<Utc> },
    /// The same storefront picture was uploaded for two outlets.
    PhotoReused { picture: u64, outlets: [usize; 2] },
    /// A check-in for which the rep was not at the outlet: no visit can confirm it.
    UnconfirmedClaim { outlet: usize, client_id: String },
}
