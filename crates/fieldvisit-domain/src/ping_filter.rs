//! Pure ping filters: which decoded fixes are stored (and why the others are dropped), implied-speed
//! jump flags, and in-batch de-duplication. Per-org thresholds come from the org settings (`"pings"`).
//!
//! Dropping is not rejecting: a phone that retries a fix we will never store must still get a success
//! answer, so decoders reject only malformed input and [`judge`] decides the rest with a countable reason.

use crate::protocols::osmand::SpeedUnit;
use std::cmp::Ordering;
use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde_json::{Map, Value};

use crate::geo::haversine_m;
use crate::ping::{Fix, flags};
use crate::validation::FieldError;

/// Default tolerance for device clocks ahead of the server: 5 minutes.
pub const DEFAULT_MAX_FUTURE_S: i64 = 5 * 60;
/// Default age beyond which fixes are not stored: 400 days (a year of history plus late uploads).
pub const DEFAULT_RETENTION_DAYS: i64 = 400;
/// Default implied-speed limit: 70 m/s = 252 km/h, beyond any road vehicle a rep uses.
pub const DEFAULT_MAX_SPEED_MPS: f64 = 70.0;
/// The keys of the org's `pings` settings that [`FilterPolicy::from_settings`] reads.
pub const SETTING_KEYS: [&str; 7] = [
    "max_future_s",
    "retention_days",
    "max_speed_mps",
    "working_hours_only",
    "working_hours",
    "utc_offset_minutes",
    "osmand_speed_unit",
];

/// Upper bounds accepted in org settings, so that a typo cannot disable a filter by overflow.
const MAX_FUTURE_LIMIT_S: i64 = 7 * 24 * 3600;
const MAX_RETENTION_DAYS: i64 = 100 * 366;
const MAX_SPEED_LIMIT_MPS: f64 = 1000.0;
/// Widest real UTC offsets: -12:00 .. +14:00 (kept symmetric).
const MAX_UTC_OFFSET_MINUTES: i64 = 14 * 60;

/// Per-org ping filter thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy {
    /// How far ahead of the server clock a fix time may be (device clock skew). Default 5 min.
    pub max_future: Duration,
    /// How old a fix may be when it arrives. Default 400 days.
    pub retention: Duration,
    /// Implied speed beyond which a fix is flagged [`flags::SPEED_JUMP`] (not dropped). Default 70 m/s.
    pub max_speed_mps: f64,
    /// Drop fixes outside `working_hours` (privacy: reps are not tracked off duty). Default false.
    pub working_hours_only: bool,
    pub working_hours: Option<WorkingHours>,
    /// Unit of the OsmAnd `speed` parameter (`pings.osmand_speed_unit`: `knots`, `kmh`, `mps`).
    /// Default knots, what Traccar Client sends.
    pub osmand_speed_unit: SpeedUnit,
    /// Local time of the org = UTC + this (`pings.utc_offset_minutes`), for working hours.
    pub utc_offset_minutes: i32,
}

impl Default for FilterPolicy {
    fn default() -> Self {
        FilterPolicy {
            max_future: Duration::seconds(DEFAULT_MAX_FUTURE_S),
            retention: Duration::days(DEFAULT_RETENTION_DAYS),
            max_speed_mps: DEFAULT_MAX_SPEED_MPS,
            working_hours_only: false,
            working_hours: None,
            osmand_speed_unit: SpeedUnit::Knots,
            utc_offset_minutes: 0,
        }
    }
}

impl FilterPolicy {
    /// Reads the `"pings"` object of the org settings; missing keys (or no `"pings"`) keep the defaults:
    /// `max_future_s` (0..=604800), `retention_days` (1..=36600), `max_speed_mps` (0 < v <= 1000),
    /// `working_hours_only` (bool, needs `working_hours`), `working_hours` ([`WorkingHours::parse`]) and
    /// `utc_offset_minutes` for it (-840..=840). Other keys under `"pings"` are left to their owners.
    pub fn from_settings(settings: &Value) -> Result<Self, Vec<FieldError>> {
        let mut policy = FilterPolicy::default();
        let pings = match settings.get("pings") {
            None | Some(Value::Null) => return Ok(policy),
            Some(Value::Object(p)) => p,
            Some(_) => return Err(vec![FieldError::new("pings", "must be an object")]),
        };
        let mut errors = Vec::new();
        if let Some(s) = int(pings, "max_future_s", 0, MAX_FUTURE_LIMIT_S, &mut errors) {
            policy.max_future = Duration::seconds(s);
        }
        if let Some(d) = int(pings, "retention_days", 1, MAX_RETENTION_DAYS, &mut errors) {
            policy.retention = Duration::days(d);
        }
        match pings.get("max_speed_mps") {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_f64().filter(|v| *v > 0.0 && *v <= MAX_SPEED_LIMIT_MPS) {
                Some(v) => policy.max_speed_mps = v,
                None => errors.push(FieldError::new(
                    "pings.max_speed_mps",
                    format!("must be a speed in m/s above 0 and at most {MAX_SPEED_LIMIT_MPS}"),
                )),
            },
        }
        match pings.get("working_hours_only") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => policy.working_hours_only = *b,
            Some(_) => errors.push(FieldError::new("pings.working_hours_only", "must be true or false")),
        }
        let offset = int(pings, "utc_offset_minutes", -MAX_UTC_OFFSET_MINUTES, MAX_UTC_OFFSET_MINUTES, &mut errors);
        policy.utc_offset_minutes = offset.unwrap_or(0) as i32;
        match pings.get("working_hours") {
            None | Some(Value::Null) => {}
            Some(v) => match WorkingHours::parse(v, offset.unwrap_or(0) as i32) {
                Ok(w) => policy.working_hours = Some(w),
                Err(e) => errors.extend(e.into_iter().map(|mut e| {
                    e.field = format!("pings.{}", e.field);
                    e
                })),
            },
        }
        match pings.get("osmand_speed_unit").map(|v| v.as_str()) {
            None | Some(Some("knots")) => {}
            Some(Some("kmh")) => policy.osmand_speed_unit = SpeedUnit::Kmh,
            Some(Some("mps")) => policy.osmand_speed_unit = SpeedUnit::Mps,
            Some(_) => errors.push(FieldError::new("pings.osmand_speed_unit", "must be `knots`, `kmh` or `mps`")),
        }
        if policy.working_hours_only && policy.working_hours.is_none() && errors.is_empty() {
            errors.push(FieldError::new("pings.working_hours_only", "needs pings.working_hours to say which hours"));
        }
        if errors.is_empty() { Ok(policy) } else { Err(errors) }
    }

    /// The policy for one rep: their own working hours (`users.working_hours`, same shape as the
    /// org's), when set, replace the org's. Invalid rep hours are reported and the org's kept.
    pub fn for_rep(mut self, rep_hours: Option<&Value>) -> (Self, Vec<FieldError>) {
        match rep_hours.filter(|v| !v.is_null()).map(|v| WorkingHours::parse(v, self.utc_offset_minutes)) {
            Some(Ok(hours)) => {
                self.working_hours = Some(hours);
                (self, Vec::new())
            }
            Some(Err(errors)) => (self, errors),
            None => (self, Vec::new()),
        }
    }
}

/// An integer setting within `min..=max`; absent or null -> `None`.
fn int(obj: &Map<String, Value>, key: &str, min: i64, max: i64, errors: &mut Vec<FieldError>) -> Option<i64> {
    let v = obj.get(key).filter(|v| !v.is_null())?;
    let n = v.as_i64().filter(|n| (min..=max).contains(n));
    if n.is_none() {
        errors.push(FieldError::new(format!("pings.{key}"), format!("must be an integer from {min} to {max}")));
    }
    n
}

/// Weekly working hours in a fixed local offset (no time-zone database: the caller resolves the org's
/// zone to an offset). Each weekday has a list of `[start, end)` local times; days without one are off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    /// Minutes of the day, `[start, end)`, per weekday Monday..Sunday.
    days: [Vec<(u16, u16)>; 7],
    /// Local time = UTC + this.
    pub utc_offset_minutes: i32,
}

/// Weekday keys of the working-hours JSON, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// OpenAPI schema of working hours as [`WorkingHours::parse`] reads them: weekday keys, each a
/// list of `["HH:MM", "HH:MM"]` (`24:00` as an end); that a start comes before its end is a rule
/// of the description.
pub fn working_hours_schema(nullable: bool) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{
        AdditionalProperties, ArrayBuilder, ArrayItems, ObjectBuilder, Schema, SchemaType, Type,
    };
    let time = ObjectBuilder::new().schema_type(Type::String).pattern(Some("^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"));
    let interval = ArrayBuilder::new().items(time).min_items(Some(2)).max_items(Some(2)).build();
    let ty = if nullable { SchemaType::from_iter([Type::Object, Type::Null]) } else { SchemaType::new(Type::Object) };
    let mut hours =
        ObjectBuilder::new().schema_type(ty).additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for day in WEEKDAYS {
        let items = ArrayItems::RefOrSchema(Box::new(Schema::Array(interval.clone()).into()));
        hours = hours.property(day, ArrayBuilder::new().items(items));
    }
    hours.build()
}

/// OpenAPI schema of a change of the org's `pings` settings that this module reads (each key
/// optional; `null` resets it), with the ranges [`FilterPolicy::from_settings`] accepts.
pub fn settings_change_schema() -> utoipa::openapi::schema::ObjectBuilder {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
    let nullable = |t: Type| SchemaType::from_iter([t, Type::Null]);
    let int = |min: i64, max: i64| {
        ObjectBuilder::new().schema_type(nullable(Type::Integer)).minimum(Some(min as f64)).maximum(Some(max as f64))
    };
    ObjectBuilder::new()
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .property("max_future_s", int(0, MAX_FUTURE_LIMIT_S))
        .property("retention_days", int(1, MAX_RETENTION_DAYS))
        .property(
            "max_speed_mps",
            ObjectBuilder::new()
                .schema_type(nullable(Type::Number))
                .exclusive_minimum(Some(0.0))
                .maximum(Some(MAX_SPEED_LIMIT_MPS)),
        )
        .property("working_hours_only", ObjectBuilder::new().schema_type(nullable(Type::Boolean)))
        .property("working_hours", working_hours_schema(true))
        .property("utc_offset_minutes", int(-MAX_UTC_OFFSET_MINUTES, MAX_UTC_OFFSET_MINUTES))
        .property(
            "osmand_speed_unit",
            ObjectBuilder::new().schema_type(nullable(Type::String)).pattern(Some("^(knots|kmh|mps)$")),
        )
}

impl WorkingHours {
    /// Parses `{"mon": [["08:00", "12:00"], ["13:00", "18:00"]], "tue": [...], ...}`: `HH:MM` local
    /// times, start before end, `24:00` allowed as an end. Missing days are days off.
    pub fn parse(v: &Value, utc_offset_minutes: i32) -> Result<WorkingHours, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !(-MAX_UTC_OFFSET_MINUTES..=MAX_UTC_OFFSET_MINUTES).contains(&i64::from(utc_offset_minutes)) {
            errors.push(FieldError::new("utc_offset_minutes", "must be from -840 to 840"));
        }
        let Value::Object(obj) = v else {
            errors.push(FieldError::new(
                "working_hours",
                "must be an object such as {\"mon\": [[\"08:00\", \"18:00\"]]}",
            ));
            return Err(errors);
        };
        let mut days: [Vec<(u16, u16)>; 7] = Default::default();
        for (key, value) in obj {
            let field = format!("working_hours.{}", key.chars().take(40).collect::<String>());
            let Some(day) = WEEKDAYS.iter().position(|d| d == key) else {
                errors.push(FieldError::new(field, "unknown day; use mon, tue, wed, thu, fri, sat, sun"));
                continue;
            };
            let Value::Array(intervals) = value else {
                errors.push(FieldError::new(field, "must be a list of [\"HH:MM\", \"HH:MM\"] pairs"));
                continue;
            };
            for (i, interval) in intervals.iter().enumerate() {
                match parse_interval(interval) {
                    Ok(pair) => days[day].push(pair),
                    Err(reason) => errors.push(FieldError::new(format!("{field}[{i}]"), reason)),
                }
            }
        }
        if errors.is_empty() { Ok(WorkingHours { days, utc_offset_minutes }) } else { Err(errors) }
    }

    /// The `[start, end)` minutes of the day of a weekday (0 = Monday).
    pub fn intervals(&self, weekday_from_monday: usize) -> &[(u16, u16)] {
        self.days.get(weekday_from_monday).map_or(&[], Vec::as_slice)
    }

    /// Whether the instant falls in working hours, in the configured local offset.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let Some(local) = t.checked_add_signed(Duration::minutes(i64::from(self.utc_offset_minutes))) else {
            return false;
        };
        let minute = (local.hour() * 60 + local.minute()) as u16;
        self.intervals(local.weekday().num_days_from_monday() as usize)
            .iter()
            .any(|&(start, end)| start <= minute && minute < end)
    }
}

fn parse_interval(v: &Value) -> Result<(u16, u16), String> {
    const SHAPE: &str = "must be [\"HH:MM\", \"HH:MM\"] with the start before the end (split overnight shifts)";
    let [Value::String(start), Value::String(end)] = v.as_array().map(Vec::as_slice).unwrap_or_default() else {
        return Err(SHAPE.to_owned());
    };
    match (hhmm(start, false), hhmm(end, true)) {
        (Some(s), Some(e)) if s < e => Ok((s, e)),
        _ => Err(SHAPE.to_owned()),
    }
}

/// `HH:MM` as minutes of the day; `24:00` only where an end is expected.
fn hhmm(s: &str, is_end: bool) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if is_end => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// Why a decoded fix is not stored. Labels are Prometheus label values; keep them stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    InvalidPosition,
    NullIsland,
    FromFuture,
    TooOld,
    OutsideWorkingHours,
    Duplicate,
    NoPosition,
    /// The item did not decode (wrong types, missing or unknown fields).
    Malformed,
}

impl DropReason {
    /// Every reason, for registering metric label values up front.
    pub const ALL: [DropReason; 8] = [
        DropReason::InvalidPosition,
        DropReason::NullIsland,
        DropReason::FromFuture,
        DropReason::TooOld,
        DropReason::OutsideWorkingHours,
        DropReason::Duplicate,
        DropReason::NoPosition,
        DropReason::Malformed,
    ];

    /// `snake_case` label (metrics, logs, API).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::InvalidPosition => "invalid_position",
            DropReason::NullIsland => "null_island",
            DropReason::FromFuture => "from_future",
            DropReason::TooOld => "too_old",
            DropReason::OutsideWorkingHours => "outside_working_hours",
            DropReason::Duplicate => "duplicate",
            DropReason::NoPosition => "no_position",
            DropReason::Malformed => "malformed",
        }
    }

    /// One sentence for people.
    pub fn describe(self) -> &'static str {
        match self {
            DropReason::InvalidPosition => "latitude or longitude is not a number or out of range",
            DropReason::NullIsland => "position (0, 0): the phone had no real fix",
            DropReason::FromFuture => "fix time is ahead of the server clock by more than the allowed skew",
            DropReason::TooOld => "fix time is older than the org's retention period",
            DropReason::OutsideWorkingHours => "fix time is outside the org's working hours",
            DropReason::Duplicate => "a fix with the same device and fix time is already stored",
            DropReason::NoPosition => "the message carried no position",
            DropReason::Malformed => "the item could not be decoded",
        }
    }
}

/// Whether a decoded fix is stored, or why not. Checks, in order: position valid, not (0, 0), not beyond
/// `now + max_future`, not before `now - retention`, inside working hours when the org restricts to them.
pub fn judge(fix: &Fix, now: DateTime<Utc>, policy: &FilterPolicy) -> Result<(), DropReason> {
    if !valid_position(fix) {
        return Err(DropReason::InvalidPosition);
    }
    if fix.lat == 0.0 && fix.lon == 0.0 {
        return Err(DropReason::NullIsland);
    }
    if now.checked_add_signed(policy.max_future).is_some_and(|latest| fix.fix_time > latest) {
        return Err(DropReason::FromFuture);
    }
    if now.checked_sub_signed(policy.retention).is_some_and(|oldest| fix.fix_time < oldest) {
        return Err(DropReason::TooOld);
    }
    if policy.working_hours_only && policy.working_hours.as_ref().is_some_and(|w| !w.contains(fix.fix_time)) {
        return Err(DropReason::OutsideWorkingHours);
    }
    Ok(())
}

fn valid_position(f: &Fix) -> bool {
    f.lat.is_finite() && f.lon.is_finite() && (-90.0..=90.0).contains(&f.lat) && (-180.0..=180.0).contains(&f.lon)
}

/// Flags implied-speed jumps in fix-time order. `fixes` may come in any order; `previous` is the device's
/// latest stored fix before them, if known (it is the reference for batch fixes at or after its time).
/// Returns the flags per input index. Each fix is compared with the last *unflagged* fix before it, so a
/// single outlier flags itself and not the good fix after it. Both fixes' accuracy radii are slack: the
/// speed is `(distance - accuracy_a - accuracy_b) / dt`, and at `dt = 0` any distance beyond the slack is a
/// jump. Unknown accuracy counts as 0. Ties in time are ordered by position, so flags follow the fix,
/// not its place in the input.
pub fn speed_flags(fixes: &[Fix], previous: Option<&Fix>, max_speed_mps: f64) -> Vec<i32> {
    let mut order: Vec<usize> = (0..fixes.len()).filter(|&i| valid_position(&fixes[i])).collect();
    order.sort_by(|&a, &b| time_order(&fixes[a], &fixes[b]));
    let mut out = vec![0; fixes.len()];
    let mut pending_previous = previous.filter(|p| valid_position(p));
    let mut reference: Option<&Fix> = None;
    for i in order {
        let fix = &fixes[i];
        if let Some(p) = pending_previous.filter(|p| p.fix_time <= fix.fix_time) {
            reference = Some(p);
            pending_previous = None;
        }
        if reference.is_some_and(|r| is_jump(r, fix, max_speed_mps)) {
            out[i] = flags::SPEED_JUMP;
        } else {
            reference = Some(fix);
        }
    }
    out
}

/// Fix time, then position and accuracy: a total order on everything the speed check reads.
fn time_order(a: &Fix, b: &Fix) -> Ordering {
    a.fix_time
        .cmp(&b.fix_time)
        .then(a.lat.total_cmp(&b.lat))
        .then(a.lon.total_cmp(&b.lon))
        .then(accuracy(a).total_cmp(&accuracy(b)))
}

fn accuracy(f: &Fix) -> f64 {
    f.accuracy_m.map_or(0.0, |a| f64::from(a).max(0.0))
}

/// `b` (not earlier than `a`) implies a speed beyond the limit after discounting both accuracy radii.
fn is_jump(a: &Fix, b: &Fix, max_speed_mps: f64) -> bool {
    let excess_m = haversine_m(a.lat, a.lon, b.lat, b.lon) - accuracy(a) - accuracy(b);
    if excess_m.is_nan() || excess_m <= 0.0 {
        return false;
    }
    let dt_s = (b.fix_time - a.fix_time).num_milliseconds() as f64 / 1000.0;
    dt_s <= 0.0 || excess_m / dt_s > max_speed_mps
}

/// Exact duplicates inside one batch (same device implied): the indexes to keep, ascending, i.e. the
/// first occurrence of each fix time. Phones resend whole buffers, so repeats are normal.
pub fn dedup_batch(fixes: &[Fix]) -> Vec<usize> {
    let mut seen = HashSet::with_capacity(fixes.len());
    (0..fixes.len()).filter(|&i| seen.insert(fixes[i].fix_time)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_714_550_400 + s, 0).single().expect("valid time") // 2024-05-01T08:00:00Z, a Wednesday
    }

    fn fix(s: i64, lat: f64, lon: f64) -> Fix {
        Fix::at(t(s), lat, lon)
    }

    #[test]
    fn defaults_are_documented_values() {
        let p = FilterPolicy::default();
        assert_eq!(p.max_future, Duration::minutes(5));
        assert_eq!(p.retention, Duration::days(400));
        assert!((p.max_speed_mps - 70.0).abs() < f64::EPSILON);
        assert!(!p.working_hours_only && p.working_hours.is_none());
        assert_eq!(FilterPolicy::from_settings(&json!({})).expect("should succeed"), p);
        assert_eq!(FilterPolicy::from_settings(&json!(null)).expect("should succeed"), p);
        assert_eq!(FilterPolicy::from_settings(&json!({"pings": {}})).expect("should succeed"), p);
        assert_eq!(FilterPolicy::from_settings(&json!({"pings": {"speed_unit": "kmh"}})).expect("should succeed"), p);
    }

    #[test]
    fn settings_override_defaults() {
        let p = FilterPolicy::from_settings(&json!({"pings": {
            "max_future_s": 60, "retention_days": 30, "max_speed_mps": 40.5, "working_hours_only": true,
            "utc_offset_minutes": 480, "working_hours": {"mon": [["09:00", "18:00"]]}
        }}))
        .expect("should succeed");
        assert_eq!(p.max_future, Duration::seconds(60));
        assert_eq!(p.retention, Duration::days(30));
        assert!((p.max_speed_mps - 40.5).abs() < f64::EPSILON);
        assert!(p.working_hours_only);
        assert_eq!(p.working_hours.expect("should succeed").utc_offset_minutes, 480);
    }

    #[test]
    fn bad_settings_name_the_key() {
        let fields = |v: Value| {
            FilterPolicy::from_settings(&v).expect_err("should fail").into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert_eq!(fields(json!({"pings": 5})), ["pings"]);
        assert_eq!(
            fields(json!({"pings": {"max_future_s": -1, "retention_days": 0, "max_speed_mps": "fast",
                "working_hours_only": "yes"}})),
            ["pings.max_future_s", "pings.retention_days", "pings.max_speed_mps", "pings.working_hours_only"]
        );
        assert_eq!(fields(json!({"pings": {"retention_days": 1e300}})), ["pings.retention_days"]);
        assert_eq!(fields(json!({"pings": {"max_speed_mps": 0}})), ["pings.max_speed_mps"]);
        assert_eq!(fields(json!({"pings": {"working_hours_only": true}})), ["pings.working_hours_only"]);
        assert_eq!(fields(json!({"pings": {"working_hours": {"monday": []}}})), ["pings.working_hours.monday"]);
        assert_eq!(
            fields(json!({"pings": {"utc_offset_minutes": 9999, "working_hours": {}}})),
            ["pings.utc_offset_minutes"]
        );
    }

    #[test]
    fn working_hours_parse_and_contains() {
        let w = WorkingHours::parse(
            &json!({"mon": [["08:00", "12:00"], ["13:00", "18:00"]], "wed": [["08:00", "24:00"]], "sun": []}),
            0,
        )
        .expect("should succeed");
        assert_eq!(w.intervals(0), [(480, 720), (780, 1080)]);
        assert!(w.intervals(1).is_empty());
        assert!(w.intervals(99).is_empty());
        // 2024-05-01 is a Wednesday.
        assert!(w.contains(t(0)));
        assert!(w.contains(t(16 * 3600 - 1)), "23:59:59");
        assert!(!w.contains(t(-1)), "07:59:59");
        // Monday 2024-04-29.
        let monday = |h: i64, m: i64| t(-2 * 86_400 + (h - 8) * 3600 + m * 60);
        assert!(w.contains(monday(11, 59)));
        assert!(!w.contains(monday(12, 0)), "end is exclusive");
        assert!(!w.contains(monday(12, 30)));
        assert!(w.contains(monday(13, 0)));
        assert!(!w.contains(t(86_400)), "Thursday is off");
    }

    #[test]
    fn working_hours_use_the_local_offset() {
        let w = WorkingHours::parse(&json!({"wed": [["08:00", "09:00"]]}), 480).expect("should succeed");
        // 08:30 local (UTC+8) on Wednesday = 00:30 UTC Wednesday.
        assert!(w.contains(t(-7 * 3600 - 1800)));
        assert!(!w.contains(t(1800)), "08:30 UTC is 16:30 local");
        let w = WorkingHours::parse(&json!({"tue": [["20:00", "24:00"]]}), -300).expect("should succeed");
        // 01:00 UTC Wednesday = 20:00 Tuesday at UTC-5.
        assert!(w.contains(t(-7 * 3600)));
    }

    #[test]
    fn working_hours_reject_bad_intervals() {
        for bad in [
            json!({"mon": [["18:00", "08:00"]]}),
            json!({"mon": [["08:00", "08:00"]]}),
            json!({"mon": [["24:00", "24:00"]]}),
            json!({"mon": [["8:00", "18:00"]]}),
            json!({"mon": [["08:60", "18:00"]]}),
            json!({"mon": [["08:00"]]}),
            json!({"mon": [["08:00", "18:00", "19:00"]]}),
            json!({"mon": [[8, 18]]}),
            json!({"mon": "08:00-18:00"}),
            json!({"mon": [["+8:00", "18:00"]]}),
            json!([]),
        ] {
            assert!(WorkingHours::parse(&bad, 0).is_err(), "{bad}");
        }
        let e = WorkingHours::parse(&json!({"mon": [["08:00", "18:00"], ["x", "y"]]}), 0).expect_err("should fail");
        assert_eq!(e[0].field, "working_hours.mon[1]");
    }

    #[test]
    fn drop_reason_labels_are_unique_snake_case() {
        let labels: HashSet<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), DropReason::ALL.len());
        for r in DropReason::ALL {
            assert!(r.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(!r.describe().is_empty());
        }
    }

    #[test]
    fn judge_checks_in_order() {
        let now = t(0);
        let p = FilterPolicy::default();
        assert_eq!(judge(&fix(0, 39.9, 116.4), now, &p), Ok(()));
        assert_eq!(judge(&fix(0, f64::NAN, 116.4), now, &p), Err(DropReason::InvalidPosition));
        assert_eq!(judge(&fix(0, 39.9, 180.5), now, &p), Err(DropReason::InvalidPosition));
        assert_eq!(judge(&fix(0, 91.0, 1.0), now, &p), Err(DropReason::InvalidPosition));
        assert_eq!(judge(&fix(0, 0.0, 0.0), now, &p), Err(DropReason::NullIsland));
        assert_eq!(judge(&fix(0, 0.0, 0.001), now, &p), Ok(()), "only exactly (0, 0)");
        assert_eq!(judge(&fix(300, 1.0, 1.0), now, &p), Ok(()), "5 min ahead is clock skew");
        assert_eq!(judge(&fix(301, 1.0, 1.0), now, &p), Err(DropReason::FromFuture));
        assert_eq!(judge(&fix(-400 * 86_400, 1.0, 1.0), now, &p), Ok(()));
        assert_eq!(judge(&fix(-400 * 86_400 - 1, 1.0, 1.0), now, &p), Err(DropReason::TooOld));
        assert_eq!(judge(&fix(10_000, 0.0, 0.0), now, &p), Err(DropReason::NullIsland), "position first");
    }

    #[test]
    fn judge_working_hours_only_when_enabled() {
        let w = WorkingHours::parse(&json!({"wed": [["08:00", "18:00"]]}), 0).expect("should succeed");
        let mut p = FilterPolicy { working_hours: Some(w), ..FilterPolicy::default() };
        let night = fix(-9 * 3600, 1.0, 1.0);
        assert_eq!(judge(&night, t(0), &p), Ok(()));
        p.working_hours_only = true;
        assert_eq!(judge(&night, t(0), &p), Err(DropReason::OutsideWorkingHours));
        assert_eq!(judge(&fix(0, 1.0, 1.0), t(0), &p), Ok(()));
    }

    #[test]
    fn judge_survives_extreme_policies_and_times() {
        let p = FilterPolicy { max_future: Duration::MAX, retention: Duration::MAX, ..FilterPolicy::default() };
        assert_eq!(judge(&fix(0, 1.0, 1.0), DateTime::<Utc>::MAX_UTC, &p), Ok(()));
        assert_eq!(judge(&fix(0, 1.0, 1.0), DateTime::<Utc>::MIN_UTC, &p), Ok(()));
        let w = WorkingHours::parse(&json!({"mon": [["00:00", "24:00"]]}), 840).expect("should succeed");
        assert!(!w.contains(DateTime::<Utc>::MAX_UTC));
    }

    /// About 111 m per 0.001 degree of latitude.
    const DEG_PER_111M: f64 = 0.001;

    #[test]
    fn single_outlier_flags_only_itself() {
        let fixes =
            vec![fix(0, 50.0, 8.0), fix(10, 50.5, 8.0), fix(20, 50.0 + DEG_PER_111M, 8.0), fix(30, 50.002, 8.0)];
        assert_eq!(speed_flags(&fixes, None, 70.0), [0, flags::SPEED_JUMP, 0, 0]);
    }

    #[test]
    fn flags_follow_time_order_not_input_order() {
        let fixes = vec![fix(30, 50.002, 8.0), fix(10, 50.5, 8.0), fix(0, 50.0, 8.0), fix(20, 50.001, 8.0)];
        assert_eq!(speed_flags(&fixes, None, 70.0), [0, flags::SPEED_JUMP, 0, 0]);
    }

    #[test]
    fn previous_fix_is_the_reference_from_its_time_on() {
        let previous = fix(0, 50.0, 8.0);
        // 0.1 degree (11 km) in 60 s is 185 m/s.
        assert_eq!(speed_flags(&[fix(60, 50.1, 8.0)], Some(&previous), 70.0), [flags::SPEED_JUMP]);
        assert_eq!(speed_flags(&[fix(60, 50.1, 8.0)], None, 70.0), [0]);
        // The same 11 km in an hour is 3 m/s.
        assert_eq!(speed_flags(&[fix(3600, 50.1, 8.0)], Some(&previous), 70.0), [0]);
        // A late fix from before `previous` is not compared with it.
        assert_eq!(speed_flags(&[fix(-60, 50.1, 8.0)], Some(&previous), 70.0), [0]);
        // Same time as `previous`, elsewhere: a jump.
        assert_eq!(speed_flags(&[fix(0, 50.01, 8.0)], Some(&previous), 70.0), [flags::SPEED_JUMP]);
        // An invalid previous is ignored.
        assert_eq!(speed_flags(&[fix(60, 50.1, 8.0)], Some(&fix(0, f64::NAN, 8.0)), 70.0), [0]);
    }

    #[test]
    fn equal_times_jump_only_beyond_accuracy() {
        let mut a = fix(0, 50.0, 8.0);
        let mut b = fix(0, 50.0 + DEG_PER_111M, 8.0);
        assert_eq!(speed_flags(&[a.clone(), b.clone()], None, 70.0), [0, flags::SPEED_JUMP]);
        a.accuracy_m = Some(60.0);
        b.accuracy_m = Some(60.0);
        assert_eq!(speed_flags(&[a.clone(), b.clone()], None, 70.0), [0, 0], "111 m < 60 + 60 m of slack");
        assert_eq!(speed_flags(&[a.clone(), a.clone()], None, 70.0), [0, 0], "an exact repeat is no jump");
    }

    #[test]
    fn coarse_cell_fixes_are_not_jumps() {
        // OwnTracks significant-change fixes: 3-5 km accuracy, 5 km apart, 5 minutes apart.
        let mut a = fix(0, 52.378, 10.027);
        let mut b = fix(300, 52.358, 10.125);
        a.accuracy_m = Some(3000.0);
        b.accuracy_m = Some(5000.0);
        assert_eq!(speed_flags(&[a, b], None, 10.0), [0, 0]);
    }

    #[test]
    fn invalid_positions_are_skipped() {
        let fixes = vec![fix(0, 50.0, 8.0), fix(1, f64::NAN, 8.0), fix(2, 95.0, 8.0), fix(3, 50.0, 8.0)];
        assert_eq!(speed_flags(&fixes, None, 70.0), [0, 0, 0, 0]);
        assert!(speed_flags(&[], None, 70.0).is_empty());
    }

    #[test]
    fn dedup_keeps_first_of_each_time() {
        let fixes = vec![fix(0, 1.0, 1.0), fix(1, 1.0, 1.0), fix(0, 2.0, 2.0), fix(2, 1.0, 1.0), fix(1, 1.0, 1.0)];
        assert_eq!(dedup_batch(&fixes), [0, 1, 3]);
        assert!(dedup_batch(&[]).is_empty());
    }

    fn arb_fix() -> impl Strategy<Value = Fix> {
        (0i64..40, 49.99f64..50.01, 7.99f64..8.01, prop::option::of(0.0f32..200.0)).prop_map(|(s, lat, lon, acc)| {
            let mut f = fix(s, lat, lon);
            f.accuracy_m = acc;
            f
        })
    }

    fn fixes_and_permutation() -> impl Strategy<Value = (Vec<Fix>, Vec<usize>)> {
        prop::collection::vec(arb_fix(), 0..40).prop_flat_map(|fixes| {
            let n = fixes.len();
            (Just(fixes), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        })
    }

    proptest! {
        #[test]
        fn speed_flags_follow_the_fix_under_shuffling(
            (fixes, perm) in fixes_and_permutation(),
            previous in prop::option::of(arb_fix()),
            max in 1.0f64..100.0,
        ) {
            let flags = speed_flags(&fixes, previous.as_ref(), max);
            let shuffled: Vec<Fix> = perm.iter().map(|&i| fixes[i].clone()).collect();
            let shuffled_flags = speed_flags(&shuffled, previous.as_ref(), max);
            for (j, &i) in perm.iter().enumerate() {
                prop_assert_eq!(shuffled_flags[j], flags[i]);
            }
        }

        #[test]
        fn time_sorted_first_fix_is_never_flagged_without_previous(fixes in prop::collection::vec(arb_fix(), 1..30)) {
            let flags = speed_flags(&fixes, None, 70.0);
            let first = (0..fixes.len()).min_by(|&a, &b| time_order(&fixes[a], &fixes[b])).expect("should succeed");
            prop_assert_eq!(flags[first], 0);
            prop_assert!(flags.iter().all(|&f| f == 0 || f == flags::SPEED_JUMP));
        }

        #[test]
        fn dedup_keeps_exactly_one_per_fix_time(fixes in prop::collection::vec(arb_fix(), 0..60)) {
            let keep = dedup_batch(&fixes);
            let times: HashSet<_> = fixes.iter().map(|f| f.fix_time).collect();
            let kept: HashSet<_> = keep.iter().map(|&i| fixes[i].fix_time).collect();
            prop_assert_eq!(keep.len(), times.len());
            prop_assert_eq!(kept, times);
            prop_assert!(keep.windows(2).all(|w| w[0] < w[1]));
            for &i in &keep {
                prop_assert!(fixes[..i].iter().all(|f| f.fix_time != fixes[i].fix_time));
            }
        }

        #[test]
        fn judge_never_panics(lat in any::<f64>(), lon in any::<f64>(), s in any::<i32>(), now in any::<i32>()) {
            let f = Fix::at(Utc.timestamp_opt(i64::from(s), 0).single().expect("valid time"), lat, lon);
            let now = Utc.timestamp_opt(i64::from(now), 0).single().expect("valid time");
            let _ = judge(&f, now, &FilterPolicy::default());
        }
    }
}
