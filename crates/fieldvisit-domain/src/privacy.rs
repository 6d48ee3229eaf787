//! Home blurring: the first and last fixes of a rep's day near their declared home are withheld
//! from everyone but the rep, so that a manager reading a track does not learn where the rep lives.

use super::geo::haversine_m;
use super::validation::FieldError;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The org setting keys (under `pings`) that [`HomeBlurPolicy::from_settings`] reads.
pub const SETTING_KEYS: [&str; 2] = ["blur_home", "home_radius_m"];

/// Default radius of the home zone when the rep declared none of their own.
pub const DEFAULT_HOME_RADIUS_M: f64 = 300.0;
/// Smallest and largest home radius accepted (org default or a rep's own).
pub const HOME_RADIUS_RANGE_M: (f64, f64) = (50.0, 5000.0);

/// Whether the org blurs homes, and the radius used when a rep declared none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HomeBlurPolicy {
    /// `pings.blur_home`; default false.
    pub enabled: bool,
    /// `pings.home_radius_m`; default [`DEFAULT_HOME_RADIUS_M`].
    pub radius_m: f64,
}

impl Default for HomeBlurPolicy {
    fn default() -> Self {
        HomeBlurPolicy { enabled: false, radius_m: DEFAULT_HOME_RADIUS_M }
    }
}

impl HomeBlurPolicy {
    /// Reads `blur_home` (bool) and `home_radius_m` (50..=5000) from the org's `pings` settings
    /// object; absent or null keys keep their defaults.
    pub fn from_settings(pings: &Value) -> Result<Self, Vec<FieldError>> {
        let mut policy = HomeBlurPolicy::default();
        let Some(pings) = pings.as_object() else { return Ok(policy) };
        let mut errors = Vec::new();
        match pings.get("blur_home") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => policy.enabled = *b,
            Some(_) => errors.push(FieldError::new("pings.blur_home", "must be true or false")),
        }
        if let Some(r) = radius(pings, "home_radius_m", &mut errors) {
            policy.radius_m = r;
        }
        if errors.is_empty() { Ok(policy) } else { Err(errors) }
    }

    /// The policy of settings as stored (validated when put): should they not read, homes are
    /// blurred with the default radius rather than shown.
    pub fn from_stored(pings: &Value) -> Self {
        HomeBlurPolicy::from_settings(pings).unwrap_or(HomeBlurPolicy { enabled: true, ..HomeBlurPolicy::default() })
    }

    /// The zone to blur for a rep with this declared home (`None`: blurring off or no home); the
    /// rep's own radius, when declared, replaces the org's.
    pub fn zone(&self, home: Option<(f64, f64)>, rep_radius_m: Option<f64>) -> Option<HomeZone> {
        let (lat, lon) = home.filter(|_| self.enabled)?;
        Some(HomeZone { lat, lon, radius_m: rep_radius_m.unwrap_or(self.radius_m) })
    }
}

/// A home radius within [`HOME_RADIUS_RANGE_M`]; absent or null -> `None`.
fn radius(obj: &Map<String, Value>, key: &str, errors: &mut Vec<FieldError>) -> Option<f64> {
    let v = obj.get(key).filter(|v| !v.is_null())?;
    let (min, max) = HOME_RADIUS_RANGE_M;
    let r = v.as_f64().filter(|r| (min..=max).contains(r));
    if r.is_none() {
        errors
            .push(FieldError::new(format!("pings.{key}"), format!("must be a distance in metres from {min} to {max}")));
    }
    r
}

/// Checks a home radius a rep declares (field `home_radius_m`).
pub fn check_home_radius(r: f64, errors: &mut Vec<FieldError>) {
    let (min, max) = HOME_RADIUS_RANGE_M;
    if !(min..=max).contains(&r) {
        errors.push(FieldError::new("home_radius_m", format!("must be a distance in metres from {min} to {max}")));
    }
}

/// A circle around a rep's declared home.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HomeZone {
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
}

impl HomeZone {
    /// Whether a position lies in the zone (on its edge counts as in).
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        haversine_m(self.lat, self.lon, lat, lon) <= self.radius_m
    }
}

/// Accuracy beyond which a fix outside the home zone does not show that the rep left it.
pub const RELIABLE_ACCURACY_M: f32 = 100.0;

/// A fix as home blurring reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlurFix {
    pub at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    /// Whether the fix can show that the rep left home: not a mock fix, not an implied-speed
    /// jump, accuracy known to be within [`RELIABLE_ACCURACY_M`] or unknown.
    pub reliable: bool,
}

impl BlurFix {
    pub fn new(at: DateTime<Utc>, lat: f64, lon: f64, accuracy_m: Option<f32>, mock: bool, flags: i32) -> Self {
        let reliable =
            !mock && flags & super::ping::flags::SPEED_JUMP == 0 && accuracy_m.is_none_or(|a| a <= RELIABLE_ACCURACY_M);
        BlurFix { at, lat, lon, reliable }
    }
}

/// Which of a rep's fixes to withhold: within each local day (days start at the instants of
/// `day_starts`, sorted ascending; fixes before the first start form a day of their own), the
/// fixes from the day's first one up to the first reliable one outside `zone`, and those after
/// the day's last reliable fix outside it (a GPS glitch away from home does not end the run). A
/// day without a reliable fix outside the zone is withheld entirely. Fixes may come in any order
/// (e.g. grouped by device); the answer is by input index.
pub fn withheld(fixes: &[BlurFix], zone: &HomeZone, day_starts: &[DateTime<Utc>]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..fixes.len()).collect();
    order.sort_by_key(|&i| fixes[i].at);
    let day_of = |t: DateTime<Utc>| day_starts.partition_point(|s| *s <= t);
    let mut out = vec![false; fixes.len()];
    for day in order.chunk_by(|&a, &b| day_of(fixes[a].at) == day_of(fixes[b].at)) {
        let inside = |i: usize| !fixes[i].reliable || zone.contains(fixes[i].lat, fixes[i].lon);
        let lead = day.iter().take_while(|&&i| inside(i)).count();
        if lead == day.len() {
            for &i in day {
                out[i] = true;
            }
            continue;
        }
        let trail = day.iter().rev().take_while(|&&i| inside(i)).count();
        for &i in day[..lead].iter().chain(&day[day.len() - trail..]) {
            out[i] = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const HOME: HomeZone = HomeZone { lat: 39.9, lon: 116.4, radius_m: 300.0 };

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).single().expect("valid time")
    }

    /// ~1.1 km north of home per 0.01 degree.
    fn fix(h: u32, m: u32, north: f64) -> BlurFix {
        BlurFix::new(at(h, m), HOME.lat + north, HOME.lon, Some(10.0), false, 0)
    }

    #[test]
    fn first_and_last_fixes_at_home_are_withheld_not_the_middle() {
        let fixes = [
            fix(7, 0, 0.0),
            fix(7, 5, 0.001), // ~110 m: still home
            fix(8, 0, 0.02),
            fix(12, 0, 0.0005), // lunch at home: not the day's first or last
            fix(13, 0, 0.03),
            fix(18, 0, 0.0),
            fix(18, 30, 0.0),
        ];
        assert_eq!(withheld(&fixes, &HOME, &[at(0, 0)]), [true, true, false, false, false, true, true]);
    }

    #[test]
    fn a_glitch_away_from_home_does_not_end_the_hidden_run() {
        let jump =
            BlurFix::new(at(7, 5), HOME.lat + 0.02, HOME.lon, Some(10.0), false, super::super::ping::flags::SPEED_JUMP);
        let rough = BlurFix::new(at(7, 6), HOME.lat + 0.02, HOME.lon, Some(500.0), false, 0);
        let mock = BlurFix::new(at(7, 7), HOME.lat + 0.02, HOME.lon, Some(5.0), true, 0);
        let fixes = [fix(7, 0, 0.0), jump, rough, mock, fix(7, 10, 0.0), fix(9, 0, 0.02), fix(18, 0, 0.0)];
        assert_eq!(withheld(&fixes, &HOME, &[]), [true, true, true, true, true, false, true]);
        // Only glitches away all day: the whole day stays hidden.
        assert_eq!(withheld(&[fix(7, 0, 0.0), jump, fix(8, 0, 0.0)], &HOME, &[]), [true, true, true]);
    }

    #[test]
    fn each_local_day_is_judged_on_its_own_and_input_order_does_not_matter() {
        // Day boundary at 16:00 UTC (a UTC+8 org's midnight).
        let starts = [at(16, 0)];
        let fixes = [fix(17, 0, 0.0), fix(9, 0, 0.02), fix(15, 0, 0.0), fix(18, 0, 0.02), fix(8, 0, 0.0)];
        assert_eq!(withheld(&fixes, &HOME, &starts), [true, false, true, false, true]);
    }

    #[test]
    fn a_day_at_home_is_withheld_whole_and_a_day_away_not_at_all() {
        let home_day = [fix(9, 0, 0.0), fix(10, 0, 0.001)];
        assert_eq!(withheld(&home_day, &HOME, &[]), [true, true]);
        let away_day = [fix(9, 0, 0.02), fix(10, 0, 0.03)];
        assert_eq!(withheld(&away_day, &HOME, &[]), [false, false]);
        assert!(withheld(&[], &HOME, &[]).is_empty());
    }

    #[test]
    fn policy_reads_settings_and_reps_radius_wins() {
        let p = HomeBlurPolicy::from_settings(&json!({"blur_home": true, "home_radius_m": 500})).expect("valid");
        assert_eq!(p, HomeBlurPolicy { enabled: true, radius_m: 500.0 });
        assert_eq!(p.zone(Some((1.0, 2.0)), None), Some(HomeZone { lat: 1.0, lon: 2.0, radius_m: 500.0 }));
        assert_eq!(p.zone(Some((1.0, 2.0)), Some(120.0)), Some(HomeZone { lat: 1.0, lon: 2.0, radius_m: 120.0 }));
        assert_eq!(p.zone(None, Some(120.0)), None);
        assert_eq!(HomeBlurPolicy::default().zone(Some((1.0, 2.0)), None), None);
        let errors =
            HomeBlurPolicy::from_settings(&json!({"blur_home": "yes", "home_radius_m": 10})).expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["pings.blur_home", "pings.home_radius_m"]);
    }
}
