//! Phone protocol decoders: bytes or parameters in, [`Fix`](crate::ping::Fix) values (SI units) out.
//!
//! Decoders reject input that is malformed (not a number, out of range, missing a required field) with
//! [`FieldError`]s a person can act on. They do not judge plausibility: a well-formed fix at (0, 0), from
//! the future or from last year is decoded as sent, and [`crate::ping_filter`] decides whether it is
//! stored, so that such drops are counted per reason instead of failing the request.

pub mod gpx;
pub mod native;
pub mod osmand;
pub mod owntracks;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::validation::FieldError;

/// One knot in metres per second.
pub const KNOTS_TO_MPS: f64 = 1852.0 / 3600.0;
/// One kilometre per hour in metres per second.
pub const KMH_TO_MPS: f64 = 1.0 / 3.6;
/// Longest client-side fix id kept (`Fix::client_ping_id`).
pub const MAX_CLIENT_ID_CHARS: usize = 128;
/// Longest device key accepted from a protocol (`id`, `device_id`).
pub const MAX_DEVICE_KEY_CHARS: usize = 128;
/// Most items of one batch: a native JSON array or NDJSON body, an OwnTracks array or `locations`.
pub const MAX_BATCH_ITEMS: usize = 10_000;
/// Largest `attributes` of one fix, in bytes of its JSON: room for what phones send (Traccar
/// Client's extras and activity, OwnTracks' extra fields are a few hundred bytes), not for payloads.
pub const MAX_ATTRIBUTES_BYTES: usize = 4096;

/// Epoch values at or above this are milliseconds, below it seconds (1e12 s would be the year 33658).
const MS_THRESHOLD: f64 = 1e12;
/// 9999-12-31T23:59:59Z: later instants are broken clocks or unit mix-ups, not positions.
const MAX_EPOCH_S: i64 = 253_402_300_799;
/// How much of a client's value an error message repeats.
const ECHO_CHARS: usize = 40;

/// An epoch number as sent by phones: seconds, or milliseconds when >= 1e12. Negative, non-finite or
/// beyond the year 9999 -> `None`.
pub fn time_from_epoch(value: f64) -> Option<DateTime<Utc>> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let seconds = if value >= MS_THRESHOLD { value / 1000.0 } else { value };
    if seconds > MAX_EPOCH_S as f64 {
        return None;
    }
    let whole = seconds.trunc();
    let nanos = ((seconds - whole) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
    DateTime::from_timestamp(whole as i64, nanos)
}

/// An integer epoch (seconds, or milliseconds when >= 1e12), exact for millisecond values.
pub fn time_from_epoch_int(value: i64) -> Option<DateTime<Utc>> {
    if value < 0 {
        return None;
    }
    let t = if value as f64 >= MS_THRESHOLD {
        DateTime::from_timestamp_millis(value)?
    } else {
        DateTime::from_timestamp(value, 0)?
    };
    (t.timestamp() <= MAX_EPOCH_S).then_some(t)
}

/// A fix time as phones write it: epoch seconds, epoch milliseconds (>= 1e12), ISO-8601 with or without
/// fraction and offset (no offset = UTC), or `yyyy-MM-dd HH:mm:ss` (UTC). Negative values and instants
/// outside 1970..=9999 -> `None`.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if is_decimal(s) {
        return match s.parse::<i64>() {
            Ok(i) => time_from_epoch_int(i),
            Err(_) => time_from_epoch(s.parse::<f64>().ok()?),
        };
    }
    let t = DateTime::parse_from_rfc3339(s)
        .ok()
        .or_else(|| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .or_else(|| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%z").ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .map(|n| n.and_utc())
        })?;
    (0..=MAX_EPOCH_S).contains(&t.timestamp()).then_some(t)
}

/// `-?digits(.digits)?`: the only strings read as epoch numbers (not `1e9`, `inf`, `NaN`).
fn is_decimal(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let mut parts = body.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// The whole-request error of a batch with more than [`MAX_BATCH_ITEMS`] items.
pub fn too_many_items() -> FieldError {
    FieldError::new("body", format!("has more than {MAX_BATCH_ITEMS} items; split the batch"))
}

/// Whether `e` is [`too_many_items`] (a size problem of the request, not a malformed one).
pub fn is_too_many_items(e: &FieldError) -> bool {
    *e == too_many_items()
}

/// Refuses `attributes` larger than [`MAX_ATTRIBUTES_BYTES`] as JSON (an error on `attributes`).
pub(crate) fn check_attributes(attributes: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    let len = json_len(attributes);
    if len > MAX_ATTRIBUTES_BYTES {
        errors.push(FieldError::new(
            "attributes",
            format!("must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON (custom values and extras), got {len}"),
        ));
    }
}

/// Length of the JSON of `attributes`, counted without building the text.
fn json_len(attributes: &Map<String, Value>) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a map of JSON values to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, attributes);
    count.0
}

/// Range check of a decoded position, naming the fields as the protocol calls them. (0, 0) passes: it
/// is well-formed, and the ping filter drops it as null island.
pub(crate) fn check_position(lat: f64, lon: f64, lat_field: &str, lon_field: &str, errors: &mut Vec<FieldError>) {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        errors.push(FieldError::new(lat_field, format!("must be a latitude between -90 and 90 degrees, got {lat}")));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        errors.push(FieldError::new(lon_field, format!("must be a longitude between -180 and 180 degrees, got {lon}")));
    }
}

/// At most a few dozen characters of a client's value, for error messages (never echo a whole body).
pub(crate) fn echo(s: &str) -> String {
    truncate(s, ECHO_CHARS)
}

/// A parser's error message, cut to a sane length.
pub(crate) fn parse_error(e: &impl std::fmt::Display) -> String {
    truncate(&e.to_string(), 160)
}

fn truncate(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// A finite value that fits an `f32` column.
pub(crate) fn to_f32(v: f64) -> Option<f32> {
    (v.is_finite() && v.abs() <= f64::from(f32::MAX)).then_some(v as f32)
}

/// A number-like field as phones send it: finite, and small enough for an `f32` column.
pub(crate) fn finite(field: &str, v: f64) -> Result<f64, FieldError> {
    if to_f32(v).is_some() { Ok(v) } else { Err(FieldError::new(field, format!("must be a finite number, got {v}"))) }
}

/// Horizontal accuracy in metres: 0 or negative means unknown (the legacy Android client sends 0 for GPS).
pub(crate) fn accuracy(field: &str, v: f64) -> Result<Option<f32>, FieldError> {
    let v = finite(field, v)? as f32;
    Ok((v > 0.0).then_some(v))
}

/// Speed already in m/s: negative means unknown (phones send -1).
pub(crate) fn speed(field: &str, mps: f64) -> Result<Option<f32>, FieldError> {
    let v = finite(field, mps)?;
    Ok((v >= 0.0).then_some(v as f32))
}

/// Course in degrees: negative means unknown (phones send -1), 360 is north (0); beyond 360 is an error.
pub(crate) fn heading(field: &str, v: f64) -> Result<Option<f32>, FieldError> {
    let v = finite(field, v)?;
    if v < 0.0 {
        Ok(None)
    } else if v <= 360.0 {
        // 360 is north; so is anything that rounds up to 360 as f32 (359.99999999).
        Ok(Some(Some(v as f32).filter(|h| *h < 360.0).unwrap_or(0.0)))
    } else {
        Err(FieldError::new(field, format!("must be a course between 0 and 360 degrees (-1 = unknown), got {v}")))
    }
}

/// Battery percent: negative means unknown (phones send -1); above 100 is an error.
pub(crate) fn battery_pct(field: &str, v: f64) -> Result<Option<f32>, FieldError> {
    let v = finite(field, v)?;
    if v < 0.0 {
        Ok(None)
    } else if v <= 100.0 {
        Ok(Some(v as f32))
    } else {
        Err(FieldError::new(field, format!("must be a battery percentage between 0 and 100 (-1 = unknown), got {v}")))
    }
}

/// Altitude in metres: any finite value.
pub(crate) fn altitude(field: &str, v: f64) -> Result<Option<f32>, FieldError> {
    finite(field, v).map(|v| Some(v as f32))
}

/// Collects the error of a field check and yields its value (or `None`) so that every field is checked.
pub(crate) fn keep<T>(r: Result<Option<T>, FieldError>, errors: &mut Vec<FieldError>) -> Option<T> {
    r.unwrap_or_else(|e| {
        errors.push(e);
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().expect("valid time")
    }

    #[test]
    fn parse_time_reads_every_phone_format() {
        assert_eq!(parse_time("1377177267"), Some(utc(2013, 8, 22, 13, 14, 27)));
        let ms = parse_time("1442068686579").expect("should succeed");
        assert_eq!(ms.timestamp_millis(), 1_442_068_686_579);
        assert_eq!(parse_time("1377177267.5").expect("should succeed").timestamp_millis(), 1_377_177_267_500);
        assert_eq!(parse_time("2016-01-27T18:55:47Z"), Some(utc(2016, 1, 27, 18, 55, 47)));
        assert_eq!(
            parse_time("2025-06-15T13:45:12.862Z").expect("should succeed").timestamp_millis(),
            1_749_995_112_862
        );
        assert_eq!(parse_time("2016-01-27T20:55:47+02:00"), Some(utc(2016, 1, 27, 18, 55, 47)));
        assert_eq!(parse_time("2016-01-27T20:55:47+0200"), Some(utc(2016, 1, 27, 18, 55, 47)));
        assert_eq!(parse_time("2016-01-27T18:55:47"), Some(utc(2016, 1, 27, 18, 55, 47)));
        assert_eq!(parse_time("2016-01-27T18:55:47.250").expect("should succeed").timestamp_millis() % 1000, 250);
        assert_eq!(parse_time("2014-06-04 09:10:11"), Some(utc(2014, 6, 4, 9, 10, 11)));
        assert_eq!(parse_time(" 2014-06-04 09:10:11 "), Some(utc(2014, 6, 4, 9, 10, 11)));
        assert_eq!(parse_time("0"), Some(utc(1970, 1, 1, 0, 0, 0)));
    }

    #[test]
    fn parse_time_rejects_negative_absurd_and_garbage() {
        for s in [
            "",
            "-1",
            "-1377177267",
            "abc",
            "NaN",
            "inf",
            "1e9",
            "99999999999999999999999",
            "1969-12-31T23:59:59Z",
            "10000-01-01T00:00:00Z",
            "2016-13-27T18:55:47Z",
            "2016-01-27",
            "500000000000",
            "1.",
            ".5",
        ] {
            assert_eq!(parse_time(s), None, "{s}");
        }
        assert_eq!(parse_time(&"1".repeat(10_000)), None);
    }

    #[test]
    fn epoch_numbers_pick_seconds_or_milliseconds() {
        assert_eq!(time_from_epoch(1_377_177_267.0), Some(utc(2013, 8, 22, 13, 14, 27)));
        assert_eq!(time_from_epoch(1_377_177_267_000.0), Some(utc(2013, 8, 22, 13, 14, 27)));
        assert_eq!(time_from_epoch(f64::NAN), None);
        assert_eq!(time_from_epoch(-5.0), None);
        assert_eq!(time_from_epoch(1e300), None);
        assert_eq!(time_from_epoch_int(i64::MAX), None);
        assert_eq!(time_from_epoch_int(1_377_177_267_123).expect("should succeed").timestamp_subsec_millis(), 123);
    }

    #[test]
    fn field_helpers_map_unknown_sentinels_to_none() {
        assert_eq!(accuracy("a", 0.0), Ok(None));
        assert_eq!(accuracy("a", -1.0), Ok(None));
        assert_eq!(accuracy("a", 3.8), Ok(Some(3.8)));
        assert_eq!(speed("s", -1.0), Ok(None));
        assert_eq!(heading("h", -1.0), Ok(None));
        assert_eq!(heading("h", 360.0), Ok(Some(0.0)));
        assert!(heading("h", 360.5).is_err());
        assert_eq!(heading("h", 359.999_999_99), Ok(Some(0.0)));
        assert_eq!(accuracy("a", 1e-50), Ok(None));
        assert_eq!(battery_pct("b", -1.0), Ok(None));
        assert!(battery_pct("b", 101.0).is_err());
        assert!(altitude("alt", f64::INFINITY).is_err());
        assert!(finite("x", 1e300).is_err());
        let mut e = Vec::new();
        check_position(0.0, 0.0, "lat", "lon", &mut e);
        assert!(e.is_empty(), "null island is the filter's business");
        check_position(90.1, f64::NAN, "lat", "lon", &mut e);
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn echo_truncates_long_values() {
        assert_eq!(echo("abc"), "abc");
        let long = "x".repeat(10_000);
        assert_eq!(echo(&long).chars().count(), ECHO_CHARS + 1);
    }
}
