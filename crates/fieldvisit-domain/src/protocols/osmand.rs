//! OsmAnd / Traccar Client protocol: the query-string (or form) request of the legacy Android client and
//! OsmAnd, and the JSON body of the current Flutter Traccar Client. Mirrors Traccar's
//! `OsmAndProtocolDecoder`, but rejects what Traccar would silently misread (`lat=abc`, half a position).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub use super::parse_time;
use super::{
    KMH_TO_MPS, KNOTS_TO_MPS, MAX_CLIENT_ID_CHARS, MAX_DEVICE_KEY_CHARS, accuracy, altitude, battery_pct,
    check_attributes, check_position, echo, finite, heading, keep, parse_error, speed,
};
use crate::ping::Fix;
use crate::validation::FieldError;

/// Unit of the `speed` query parameter. Traccar reads it as knots (what the legacy Android client sends);
/// OsmAnd itself and some scripts send m/s or km/h, configurable per device or org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpeedUnit {
    #[default]
    Knots,
    Kmh,
    Mps,
}

impl SpeedUnit {
    /// Metres per second for one of this unit.
    pub fn to_mps(self) -> f64 {
        match self {
            SpeedUnit::Knots => KNOTS_TO_MPS,
            SpeedUnit::Kmh => KMH_TO_MPS,
            SpeedUnit::Mps => 1.0,
        }
    }
}

/// One decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The device identifier the phone sent (`id`/`deviceid`, or `device_id` in JSON), as sent.
    pub device_key: String,
    /// `None`: the request carried no position (only cell/Wi-Fi data or a heartbeat): accepted, nothing to store.
    pub fix: Option<Fix>,
    /// The request had no timestamp, so `fix.fix_time` is the caller's `now` (server receive time).
    pub time_missing: bool,
}

/// Decodes the query-string or form parameters (already percent-decoded, repeated keys allowed).
/// `now` is used as the fix time when the request has no `timestamp`.
pub fn decode_query(
    params: &[(String, String)],
    speed_unit: SpeedUnit,
    now: DateTime<Utc>,
) -> Result<Message, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut device_keys: Vec<&str> = Vec::new();
    let mut known = Known::default();
    let mut attributes = Map::new();

    for (key, value) in params {
        let slot = match key.as_str() {
            "id" | "deviceid" => {
                // Two different keys are already the error; keeping every one would make a request
                // of many `id`s cost quadratic time before the device is even looked up.
                if device_keys.len() < 2 && !device_keys.contains(&value.as_str()) {
                    device_keys.push(value);
                }
                continue;
            }
            "timestamp" => &mut known.timestamp,
            "lat" => &mut known.lat,
            "lon" => &mut known.lon,
            "location" => &mut known.location,
            "speed" => &mut known.speed,
            "bearing" => &mut known.bearing,
            "heading" => &mut known.heading,
            "altitude" => &mut known.altitude,
            "accuracy" => &mut known.accuracy,
            "hacc" => &mut known.hacc,
            "batt" => &mut known.batt,
            "mock" => &mut known.mock,
            _ => {
                add_attribute(&mut attributes, key, param_value(value));
                continue;
            }
        };
        match slot {
            None => *slot = Some((key.as_str(), value.as_str())),
            Some((_, first)) if *first == value.as_str() => {}
            Some(_) => errors.push(FieldError::new(key, "sent more than once with different values; send it once")),
        }
    }

    let device_key = device_key(&device_keys, "id", &mut errors);

    let num = |slot: Option<(&str, &str)>, errors: &mut Vec<FieldError>| -> Option<f64> {
        let (field, raw) = slot?;
        match parse_number(field, raw) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    };

    let position = query_position(&known, &mut errors);
    let (fix_time, time_missing) = match known.timestamp {
        None => (now, true),
        Some((_, raw)) => {
            if let Some(t) = parse_time(raw) {
                (t, false)
            } else {
                errors.push(FieldError::new("timestamp", time_reason(raw)));
                (now, false)
            }
        }
    };
    let speed_mps =
        num(known.speed, &mut errors).and_then(|v| keep(speed("speed", v * speed_unit.to_mps()), &mut errors));
    let (course_field, course) = match (known.bearing, known.heading) {
        (Some(b), _) => ("bearing", Some(b)),
        (None, h) => ("heading", h),
    };
    let heading_deg = num(course, &mut errors).and_then(|v| keep(heading(course_field, v), &mut errors));
    let altitude_m = num(known.altitude, &mut errors).and_then(|v| keep(altitude("altitude", v), &mut errors));
    let (acc_field, acc) = match (known.accuracy, known.hacc) {
        (Some(a), _) => ("accuracy", Some(a)),
        (None, h) => ("hacc", h),
    };
    let accuracy_m = num(acc, &mut errors).and_then(|v| keep(accuracy(acc_field, v), &mut errors));
    let battery = num(known.batt, &mut errors).and_then(|v| keep(battery_pct("batt", v), &mut errors));
    let mock = match known.mock {
        None => false,
        Some((_, raw)) => parse_bool(raw).unwrap_or_else(|| {
            errors.push(FieldError::new("mock", format!("must be true or false (or 1 or 0), got `{}`", echo(raw))));
            false
        }),
    };
    // Keep a course or accuracy that lost to its alias, so nothing the phone sent is dropped silently.
    for (slot, used) in [(known.heading, course_field == "heading"), (known.hacc, acc_field == "hacc")] {
        if let (Some((k, v)), false) = (slot, used) {
            add_attribute(&mut attributes, k, param_value(v));
        }
    }
    check_attributes(&attributes, &mut errors);

    if !errors.is_empty() {
        return Err(errors);
    }
    let fix = position.map(|(lat, lon)| Fix {
        fix_time,
        lat,
        lon,
        accuracy_m,
        speed_mps,
        heading_deg,
        altitude_m,
        battery_pct: battery,
        mock,
        client_ping_id: None,
        attributes,
    });
    Ok(Message { device_key, fix, time_missing })
}

/// The first value of each known parameter (`(key, value)`), so that repeats can be compared.
#[derive(Default)]
struct Known<'a> {
    timestamp: Option<(&'a str, &'a str)>,
    lat: Option<(&'a str, &'a str)>,
    lon: Option<(&'a str, &'a str)>,
    location: Option<(&'a str, &'a str)>,
    speed: Option<(&'a str, &'a str)>,
    bearing: Option<(&'a str, &'a str)>,
    heading: Option<(&'a str, &'a str)>,
    altitude: Option<(&'a str, &'a str)>,
    accuracy: Option<(&'a str, &'a str)>,
    hacc: Option<(&'a str, &'a str)>,
    batt: Option<(&'a str, &'a str)>,
    mock: Option<(&'a str, &'a str)>,
}

/// The position from `lat`+`lon` or `location=lat,lon`; `None` when neither is given.
fn query_position(known: &Known, errors: &mut Vec<FieldError>) -> Option<(f64, f64)> {
    let before = errors.len();
    let from_pair = match (known.lat, known.lon) {
        (None, None) => None,
        (Some(_), None) => {
            errors.push(FieldError::new("lon", "missing: lat was sent without lon; send both (or location=lat,lon)"));
            None
        }
        (None, Some(_)) => {
            errors.push(FieldError::new("lat", "missing: lon was sent without lat; send both (or location=lat,lon)"));
            None
        }
        (Some((_, lat)), Some((_, lon))) => {
            let lat = parse_number("lat", lat).map_err(|e| errors.push(e)).ok();
            let lon = parse_number("lon", lon).map_err(|e| errors.push(e)).ok();
            lat.zip(lon)
        }
    };
    let from_location = known.location.and_then(|(_, raw)| {
        let parts: Vec<&str> = raw.split(',').collect();
        let parsed = match parts.as_slice() {
            [lat, lon] => lat.trim().parse::<f64>().ok().zip(lon.trim().parse::<f64>().ok()),
            _ => None,
        };
        if parsed.is_none() {
            errors.push(FieldError::new(
                "location",
                format!("must be `lat,lon` in decimal degrees, e.g. 60.0,30.0; got `{}`", echo(raw)),
            ));
        }
        parsed
    });
    let position = match (from_pair, from_location) {
        (Some(a), Some(b)) if a != b => {
            errors.push(FieldError::new("location", "disagrees with lat/lon; send one of them"));
            None
        }
        (a, b) => a.or(b),
    };
    if let Some((lat, lon)) = position {
        let field = if from_pair.is_some() { ("lat", "lon") } else { ("location", "location") };
        check_position(lat, lon, field.0, field.1, errors);
    }
    if errors.len() > before { None } else { position }
}

/// Decodes the JSON body of the current Traccar Client (`flutter_background_geolocation`'s HTTP layout):
/// `{"device_id": .., "location": {"timestamp", "coords": {..}, "battery": {..}, "mock", "extras", ..}}`.
/// `now` is used as the fix time when the location has no `timestamp`.
pub fn decode_json(body: &[u8], now: DateTime<Utc>) -> Result<Message, Vec<FieldError>> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| vec![FieldError::new("body", format!("must be a JSON object: {}", parse_error(&e)))])?;
    let Value::Object(root) = root else {
        return Err(vec![FieldError::new("body", "must be a JSON object with device_id and location")]);
    };
    let mut errors = Vec::new();
    let device_key = match root.get("device_id") {
        Some(Value::String(s)) => device_key(&[s.as_str()], "device_id", &mut errors),
        Some(Value::Number(n)) => n.to_string(),
        None | Some(Value::Null) => {
            errors.push(FieldError::new("device_id", "missing: send the device identifier as device_id"));
            String::new()
        }
        Some(_) => {
            errors.push(FieldError::new("device_id", "must be a string"));
            String::new()
        }
    };
    let mut attributes = Map::new();
    for (k, v) in &root {
        if !matches!(k.as_str(), "device_id" | "location" | "mock") && !v.is_null() {
            attributes.insert(k.clone(), v.clone());
        }
    }
    let root_mock = root.get("mock");
    let (fix, time_missing) = match root.get("location") {
        None | Some(Value::Null) => (None, false),
        Some(Value::Object(location)) => json_location(location, root_mock, now, attributes, &mut errors),
        Some(_) => {
            errors.push(FieldError::new(
                "location",
                "must be one location object (batched uploads are not supported: turn batch sync off)",
            ));
            (None, false)
        }
    };
    if errors.is_empty() { Ok(Message { device_key, fix, time_missing }) } else { Err(errors) }
}

/// Keys of `location` and `location.coords` that become columns (the rest become attributes).
const LOCATION_KEYS: [&str; 7] = ["timestamp", "coords", "battery", "mock", "extras", "uuid", "_"];
const COORDS_KEYS: [&str; 6] = ["latitude", "longitude", "accuracy", "speed", "heading", "altitude"];

fn json_location(
    location: &Map<String, Value>,
    root_mock: Option<&Value>,
    now: DateTime<Utc>,
    mut attributes: Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> (Option<Fix>, bool) {
    let before = errors.len();
    let empty = Map::new();
    let coords = match location.get("coords") {
        Some(Value::Object(c)) => c,
        None | Some(Value::Null) => &empty,
        Some(_) => {
            errors.push(FieldError::new("location.coords", "must be an object"));
            &empty
        }
    };
    let lat = json_number(coords, "latitude", "location.coords.latitude", errors);
    let lon = json_number(coords, "longitude", "location.coords.longitude", errors);
    let position = match (lat, lon) {
        (Some(lat), Some(lon)) => {
            check_position(lat, lon, "location.coords.latitude", "location.coords.longitude", errors);
            Some((lat, lon))
        }
        (Some(_), None) if !coords.contains_key("longitude") => {
            errors.push(FieldError::new("location.coords.longitude", "missing: latitude was sent without longitude"));
            None
        }
        (None, Some(_)) if !coords.contains_key("latitude") => {
            errors.push(FieldError::new("location.coords.latitude", "missing: longitude was sent without latitude"));
            None
        }
        _ => None,
    };

    let (fix_time, time_missing) = match location.get("timestamp") {
        None | Some(Value::Null) => (now, true),
        Some(Value::String(s)) => {
            if let Some(t) = parse_time(s) {
                (t, false)
            } else {
                errors.push(FieldError::new("location.timestamp", time_reason(s)));
                (now, false)
            }
        }
        Some(Value::Number(n)) => {
            let t = n.as_i64().map_or_else(|| n.as_f64().and_then(super::time_from_epoch), super::time_from_epoch_int);
            if let Some(t) = t {
                (t, false)
            } else {
                errors.push(FieldError::new("location.timestamp", time_reason(&n.to_string())));
                (now, false)
            }
        }
        Some(_) => {
            errors.push(FieldError::new("location.timestamp", "must be an ISO-8601 string"));
            (now, false)
        }
    };

    let f = "location.coords.accuracy";
    let accuracy_m = json_number(coords, "accuracy", f, errors).and_then(|v| keep(accuracy(f, v), errors));
    let f = "location.coords.speed";
    let speed_mps = json_number(coords, "speed", f, errors).and_then(|v| keep(speed(f, v), errors));
    let f = "location.coords.heading";
    let heading_deg = json_number(coords, "heading", f, errors).and_then(|v| keep(heading(f, v), errors));
    let f = "location.coords.altitude";
    let altitude_m = json_number(coords, "altitude", f, errors).and_then(|v| keep(altitude(f, v), errors));

    let mut battery = None;
    match location.get("battery") {
        Some(Value::Object(b)) => {
            let f = "location.battery.level";
            battery = json_number(b, "level", f, errors).and_then(|level| {
                if level > 1.0 {
                    errors.push(FieldError::new(f, format!("must be between 0 and 1 (-1 = unknown), got {level}")));
                    None
                } else {
                    keep(battery_pct(f, level * 100.0), errors)
                }
            });
            if let Some(charging) = b.get("is_charging").filter(|v| !v.is_null()) {
                attributes.insert("is_charging".to_owned(), charging.clone());
            }
        }
        None | Some(Value::Null) => {}
        Some(_) => errors.push(FieldError::new("location.battery", "must be an object")),
    }

    let mock = match location.get("mock").filter(|v| !v.is_null()).or(root_mock) {
        None => false,
        Some(v) => json_bool(v).unwrap_or_else(|| {
            errors.push(FieldError::new("mock", "must be true or false"));
            false
        }),
    };
    let client_ping_id = match location.get("uuid") {
        Some(Value::String(s)) if s.chars().count() <= MAX_CLIENT_ID_CHARS && !s.trim().is_empty() => Some(s.clone()),
        None | Some(Value::Null) => None,
        Some(_) => {
            errors.push(FieldError::new(
                "location.uuid",
                format!("must be a non-blank string of at most {MAX_CLIENT_ID_CHARS} characters"),
            ));
            None
        }
    };

    // Everything else the app sent (is_moving, odometer, event, activity, age, *_accuracy, ...) is kept.
    for (k, v) in location {
        if !LOCATION_KEYS.contains(&k.as_str()) && !v.is_null() {
            attributes.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in coords {
        if !COORDS_KEYS.contains(&k.as_str()) && !v.is_null() {
            attributes.insert(k.clone(), v.clone());
        }
    }
    // Extras are the app user's own key/values (e.g. {"heartbeat": true}); Traccar stores them as attributes.
    match location.get("extras") {
        Some(Value::Object(extras)) => {
            for (k, v) in extras {
                attributes.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        None | Some(Value::Null) => {}
        Some(_) => errors.push(FieldError::new("location.extras", "must be an object")),
    }
    check_attributes(&attributes, errors);

    if errors.len() > before {
        return (None, time_missing);
    }
    let fix = position.map(|(lat, lon)| Fix {
        fix_time,
        lat,
        lon,
        accuracy_m,
        speed_mps,
        heading_deg,
        altitude_m,
        battery_pct: battery,
        mock,
        client_ping_id,
        attributes,
    });
    (fix, time_missing)
}

/// The one device key of a request; several different ones or a blank one is an error.
fn device_key(keys: &[&str], field: &str, errors: &mut Vec<FieldError>) -> String {
    match keys {
        [] => {
            errors.push(FieldError::new(field, "missing: send the device identifier as id (or deviceid)"));
            String::new()
        }
        [key] if key.trim().is_empty() => {
            errors.push(FieldError::new(field, "must not be blank"));
            String::new()
        }
        [key] if key.chars().count() > MAX_DEVICE_KEY_CHARS => {
            errors.push(FieldError::new(field, format!("must be at most {MAX_DEVICE_KEY_CHARS} characters")));
            String::new()
        }
        [key] => (*key).to_owned(),
        _ => {
            errors.push(FieldError::new(field, "id and deviceid name different devices; send one device identifier"));
            String::new()
        }
    }
}

/// A decimal number parameter (`60.0`, `-122.084`, `1e-3`); `abc`, `NaN` and infinities are errors.
fn parse_number(field: &str, raw: &str) -> Result<f64, FieldError> {
    match raw.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => finite(field, v),
        _ => Err(FieldError::new(field, format!("must be a decimal number, got `{}`", echo(raw)))),
    }
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn json_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => parse_bool(s),
        _ => None,
    }
}

/// A number member of a JSON object; `null` or absent -> `None`; any other type is an error.
fn json_number(obj: &Map<String, Value>, key: &str, field: &str, errors: &mut Vec<FieldError>) -> Option<f64> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64().map(|v| finite(field, v)) {
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                errors.push(e);
                None
            }
            None => {
                errors.push(FieldError::new(field, "must be a finite number"));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(field, "must be a number"));
            None
        }
    }
}

fn time_reason(raw: &str) -> String {
    format!(
        "must be epoch seconds, epoch milliseconds, ISO-8601 (2024-05-01T08:30:00Z) or `yyyy-MM-dd HH:mm:ss` UTC \
         between 1970 and 9999; got `{}`",
        echo(raw)
    )
}

/// A parameter value as a JSON value: `true`/`false` -> booleans, integers and decimals -> numbers
/// (except zero-padded ones such as `02`, which stay strings), anything else -> the string.
fn param_value(raw: &str) -> Value {
    match raw {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let zero_padded = digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0.");
    let numeric = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && digits.as_bytes()[0].is_ascii_digit();
    if numeric && !zero_padded {
        if let Ok(i) = raw.parse::<i64>() {
            return Value::from(i);
        }
        if let Some(n) = raw.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(raw.to_owned())
}

/// Adds a parameter; a repeated key becomes an array of its values in request order.
fn add_attribute(attributes: &mut Map<String, Value>, key: &str, value: Value) {
    match attributes.get_mut(key) {
        None => {
            attributes.insert(key.to_owned(), value);
        }
        Some(Value::Array(values)) => values.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    const SAMPLES: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/protocol-samples/osmand-traccar-client.txt");

    /// One `CASE` block of the samples file.
    struct Case {
        method: String,
        expectation: String,
        payload: String,
    }

    fn cases() -> Vec<Case> {
        let text = std::fs::read_to_string(SAMPLES).expect("should succeed");
        let mut out = Vec::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let Some(rest) = line.strip_prefix("CASE ") else { continue };
            let cols: Vec<&str> = rest.split(" | ").map(str::trim).collect();
            let n: usize = cols[0].parse().expect("should succeed");
            assert_eq!(n, out.len() + 1, "cases are numbered in order");
            let payload = lines.next().expect("should succeed").to_owned();
            assert!(lines.next().expect("should succeed").starts_with("JAVA: "));
            out.push(Case { method: cols[1].to_owned(), expectation: cols[3].to_owned(), payload });
        }
        out
    }

    fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("should succeed"));
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).expect("should succeed")
    }

    fn query_pairs(target: &str) -> Vec<(String, String)> {
        let query = target.split_once('?').map_or("", |(_, q)| q);
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 7, 1, 12, 0, 0).single().expect("valid time")
    }

    fn decode_case(n: usize) -> (Case, Result<Message, Vec<FieldError>>) {
        let case = cases().into_iter().nth(n - 1).expect("should succeed");
        let result = if case.method.starts_with("POST") {
            decode_json(case.payload.as_bytes(), now())
        } else {
            decode_query(&query_pairs(&case.payload), SpeedUnit::default(), now())
        };
        (case, result)
    }

    /// `verifyPosition` (or `verifyAttribute`, which also needs a position): valid lat/lon/time.
    fn position_case(n: usize) -> (Message, Fix) {
        let (case, result) = decode_case(n);
        assert!(
            case.expectation == "verifyPosition" || case.expectation.starts_with("verifyAttribute"),
            "CASE {n}: {}",
            case.expectation
        );
        let message = result.unwrap_or_else(|e| panic!("CASE {n}: {e:?}"));
        let fix = message.fix.clone().unwrap_or_else(|| panic!("CASE {n}: no fix"));
        assert!((-90.0..=90.0).contains(&fix.lat) && (-180.0..=180.0).contains(&fix.lon));
        assert!(!(fix.lat == 0.0 && fix.lon == 0.0));
        assert!(!message.device_key.is_empty());
        (message, fix)
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().expect("valid time")
    }

    #[test]
    fn samples_file_has_fifteen_cases() {
        assert_eq!(cases().len(), 15);
    }

    #[test]
    fn case_01_flutter_json() {
        let (m, f) = position_case(1);
        assert_eq!(m.device_key, "48241179");
        assert!(!m.time_missing);
        assert_eq!(f.fix_time.timestamp_millis(), 1_749_995_112_862);
        assert_eq!((f.lat, f.lon), (37.421_998_3, -122.084));
        assert_eq!(f.accuracy_m, Some(5.0));
        assert_eq!(f.speed_mps, Some(0.0));
        assert_eq!(f.heading_deg, None, "heading -1 is unknown");
        assert_eq!(f.altitude_m, Some(5.0));
        assert_eq!(f.battery_pct, Some(100.0));
        assert!(!f.mock);
        assert_eq!(f.attributes["is_moving"], json!(false));
        assert_eq!(f.attributes["odometer"], json!(0));
        assert_eq!(f.attributes["event"], json!("motionchange"));
        assert_eq!(f.attributes["activity"], json!({"type": "still"}));
        assert_eq!(f.attributes["is_charging"], json!(false));
        assert!(!f.attributes.contains_key("_"), "the query-string echo is redundant");
    }

    #[test]
    fn case_02_flutter_json_extras_become_attributes() {
        let (case, _) = decode_case(2);
        assert!(case.expectation.contains("device_integer_twelve_test == 12L"), "{}", case.expectation);
        let (_, f) = position_case(2);
        assert_eq!(f.attributes["device_integer_twelve_test"], json!(12));
        assert_eq!(f.attributes["device_integer_twelve_test"].as_i64(), Some(12));
        assert_eq!(f.attributes["device_string_test"], json!("long_device_id"));
        assert_eq!(f.attributes["device_bool_test"], json!(true));
        assert_eq!(f.attributes["device_bool_false_test"], json!(false));
        assert_eq!(f.attributes["device_double_test"], json!(1.345));
        assert_eq!(f.attributes["device_very_long_double_test"], json!(1_763_636.344_2));
    }

    #[test]
    fn case_03_flutter_json_ios_mock_and_unknowns() {
        let (m, f) = position_case(3);
        assert_eq!(m.device_key, "658765");
        assert!(f.mock, "location.mock");
        assert_eq!(f.speed_mps, None, "speed -1 is unknown");
        assert_eq!(f.heading_deg, None);
        assert_eq!(f.battery_pct, None, "battery.level -1 is unknown");
        assert_eq!(f.altitude_m, Some(0.0));
        assert_eq!(f.client_ping_id.as_deref(), Some("2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8"));
        assert_eq!(f.fix_time, at(2025, 5, 9, 4, 11, 30) + chrono::Duration::milliseconds(579));
        assert_eq!(f.attributes["age"], json!(188));
        assert_eq!(f.attributes["speed_accuracy"], json!(-1));
        assert!(!f.attributes.contains_key("floor"), "nulls are not kept");
        assert!((f.lat - 37.785_834).abs() < 1e-9);
    }

    #[test]
    fn case_04_flutter_json_moving() {
        let (m, f) = position_case(4);
        assert_eq!(m.device_key, "8737767034");
        assert_eq!((f.lat, f.lon), (-6.114_809_6, 106.683_701_5));
        assert_eq!(f.speed_mps, Some(18.67), "JSON speed is already m/s");
        assert_eq!(f.heading_deg, Some(63.0));
        assert_eq!(f.accuracy_m, Some(3.8));
        assert_eq!(f.altitude_m, Some(35.7));
        assert!((f.battery_pct.expect("should succeed") - 79.0).abs() < 1e-4);
        assert_eq!(f.fix_time, at(2021, 7, 21, 8, 6, 34) + chrono::Duration::milliseconds(444));
    }

    #[test]
    fn case_05_cell_and_wifi_only_is_accepted_without_position() {
        let (case, result) = decode_case(5);
        assert_eq!(case.expectation, "verifyNotNull");
        let m = result.expect("should succeed");
        assert_eq!(m.device_key, "123456");
        assert_eq!(m.fix, None);
        assert!(!m.time_missing);
    }

    #[test]
    fn case_06_no_device_id_is_rejected() {
        let (case, result) = decode_case(6);
        assert_eq!(case.expectation, "verifyNull");
        let errors = result.expect_err("should fail");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "id");
    }

    #[test]
    fn case_07_iso_timestamp_and_hdop() {
        let (m, f) = position_case(7);
        assert_eq!(m.device_key, "902064");
        assert_eq!(f.fix_time, at(2016, 1, 27, 18, 55, 47));
        assert_eq!(f.altitude_m, Some(224.0));
        assert_eq!(f.speed_mps, Some(0.0));
        assert_eq!(f.attributes["hdop"], json!(6.0));
    }

    #[test]
    fn case_08_millisecond_timestamp() {
        let (_, f) = position_case(8);
        assert_eq!(f.fix_time.timestamp_millis(), 1_442_068_686_579);
    }

    #[test]
    fn case_09_space_separated_timestamp_and_id_last() {
        let (m, f) = position_case(9);
        assert_eq!(m.device_key, "353861053849681");
        assert_eq!(f.fix_time, at(2014, 6, 4, 9, 10, 11));
        assert_eq!(f.altitude_m, Some(384.7));
    }

    #[test]
    fn case_10_zero_bearing_and_hdop() {
        let (_, f) = position_case(10);
        assert_eq!(f.fix_time, at(2013, 8, 22, 13, 14, 27));
        assert_eq!((f.lat, f.lon), (60.0, 30.0));
        assert_eq!(f.heading_deg, Some(0.0));
        assert_eq!(f.altitude_m, Some(0.0));
        assert_eq!(f.attributes["hdop"], json!(0.0));
    }

    #[test]
    fn case_11_minimal() {
        let (m, f) = position_case(11);
        assert!(!m.time_missing);
        assert_eq!(f.accuracy_m, None);
        assert_eq!(f.speed_mps, None);
        assert!(f.attributes.is_empty());
    }

    #[test]
    fn case_12_deviceid_heading_hacc_without_timestamp() {
        let (m, f) = position_case(12);
        assert_eq!(m.device_key, "123456");
        assert!(m.time_missing, "no timestamp: server time");
        assert_eq!(f.fix_time, now());
        assert_eq!(f.heading_deg, Some(0.0));
        assert_eq!(f.accuracy_m, None, "hacc=0 is unknown");
        assert_eq!(f.attributes["vacc"], json!(0));
    }

    #[test]
    fn case_13_battery_without_timestamp() {
        let (m, f) = position_case(13);
        assert!(m.time_missing);
        assert_eq!(f.battery_pct, Some(87.0));
        assert_eq!(f.altitude_m, Some(350.059_48));
    }

    #[test]
    fn case_14_location_parameter() {
        let (_, f) = position_case(14);
        assert_eq!((f.lat, f.lon), (60.0, 30.0));
    }

    #[test]
    fn case_15_knots_and_vehicle_attributes() {
        let (m, f) = position_case(15);
        assert_eq!(m.device_key, "123456789012345");
        assert!((f64::from(f.speed_mps.expect("should succeed")) - 40.0 * KNOTS_TO_MPS).abs() < 1e-4);
        assert!((f.heading_deg.expect("should succeed") - 7.198_898).abs() < 1e-4);
        assert_eq!(f.attributes["ignition"], json!(true));
        assert_eq!(f.attributes["rpm"], json!(933));
        assert_eq!(f.attributes["fuel"], json!(24));
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn fields(r: Result<Message, Vec<FieldError>>) -> Vec<String> {
        r.expect_err("should fail").into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn legacy_android_client_request() {
        let m = decode_query(
            &q(&[
                ("id", "123456"),
                ("timestamp", "1700000000"),
                ("lat", "60.0"),
                ("lon", "30.0"),
                ("speed", "0.0"),
                ("bearing", "0.0"),
                ("altitude", "0.0"),
                ("accuracy", "0.0"),
                ("batt", "87.0"),
                ("mock", "true"),
                ("alarm", "sos"),
            ]),
            SpeedUnit::Knots,
            now(),
        )
        .expect("should succeed");
        let f = m.fix.expect("should succeed");
        assert_eq!(f.accuracy_m, None, "the legacy client sends 0 for GPS fixes");
        assert!(f.mock);
        assert_eq!(f.battery_pct, Some(87.0));
        assert_eq!(f.attributes["alarm"], json!("sos"));
    }

    #[test]
    fn speed_units() {
        let speed = |unit| {
            let p = q(&[("id", "1"), ("lat", "1"), ("lon", "1"), ("speed", "36")]);
            f64::from(
                decode_query(&p, unit, now())
                    .expect("should succeed")
                    .fix
                    .expect("should succeed")
                    .speed_mps
                    .expect("should succeed"),
            )
        };
        assert!((speed(SpeedUnit::Knots) - 18.52).abs() < 1e-4);
        assert!((speed(SpeedUnit::Kmh) - 10.0).abs() < 1e-4);
        assert!((speed(SpeedUnit::Mps) - 36.0).abs() < 1e-4);
        assert_eq!(SpeedUnit::default(), SpeedUnit::Knots);
    }

    #[test]
    fn bad_numbers_name_the_field() {
        let r = decode_query(&q(&[("id", "1"), ("lat", "abc"), ("lon", "30")]), SpeedUnit::Knots, now());
        let e = r.expect_err("should fail");
        assert_eq!(e[0].field, "lat");
        assert!(e[0].reason.contains("abc"), "{}", e[0].reason);
        assert_eq!(
            fields(decode_query(&q(&[("id", "1"), ("lat", "NaN"), ("lon", "30")]), SpeedUnit::Knots, now())),
            ["lat"]
        );
        assert_eq!(
            fields(decode_query(&q(&[("id", "1"), ("lat", "91"), ("lon", "30")]), SpeedUnit::Knots, now())),
            ["lat"]
        );
        assert_eq!(
            fields(decode_query(&q(&[("id", "1"), ("lat", "1"), ("lon", "-181")]), SpeedUnit::Knots, now())),
            ["lon"]
        );
        let r = decode_query(
            &q(&[("id", "1"), ("lat", "1"), ("lon", "1"), ("speed", "fast"), ("batt", "150"), ("bearing", "400")]),
            SpeedUnit::Knots,
            now(),
        );
        assert_eq!(fields(r), ["speed", "bearing", "batt"]);
        let r = decode_query(
            &q(&[("id", "1"), ("lat", "1"), ("lon", "1"), ("timestamp", "yesterday")]),
            SpeedUnit::Knots,
            now(),
        );
        assert_eq!(fields(r), ["timestamp"]);
        let r =
            decode_query(&q(&[("id", "1"), ("lat", "1"), ("lon", "1"), ("timestamp", "-5")]), SpeedUnit::Knots, now());
        assert_eq!(fields(r), ["timestamp"]);
        let r =
            decode_query(&q(&[("id", "1"), ("lat", "1"), ("lon", "1"), ("mock", "maybe")]), SpeedUnit::Knots, now());
        assert_eq!(fields(r), ["mock"]);
        let long = "9".repeat(100_000);
        let r = decode_query(&q(&[("id", "1"), ("lat", &long), ("lon", "1")]), SpeedUnit::Knots, now());
        assert!(r.expect_err("should fail")[0].reason.len() < 200, "long values are not echoed whole");
    }

    #[test]
    fn half_a_position_is_rejected() {
        assert_eq!(fields(decode_query(&q(&[("id", "1"), ("lat", "60")]), SpeedUnit::Knots, now())), ["lon"]);
        assert_eq!(fields(decode_query(&q(&[("id", "1"), ("lon", "60")]), SpeedUnit::Knots, now())), ["lat"]);
        assert_eq!(fields(decode_query(&q(&[("id", "1"), ("location", "60")]), SpeedUnit::Knots, now())), ["location"]);
        assert_eq!(
            fields(decode_query(&q(&[("id", "1"), ("location", "60,30,5")]), SpeedUnit::Knots, now())),
            ["location"]
        );
        assert_eq!(
            fields(decode_query(
                &q(&[("id", "1"), ("lat", "1"), ("lon", "2"), ("location", "3,4")]),
                SpeedUnit::Knots,
                now()
            )),
            ["location"]
        );
        let agree =
            decode_query(&q(&[("id", "1"), ("lat", "3"), ("lon", "4"), ("location", "3,4")]), SpeedUnit::Knots, now());
        assert!(agree.expect("should succeed").fix.is_some());
    }

    #[test]
    fn device_id_rules() {
        assert_eq!(
            fields(decode_query(&q(&[("id", " "), ("lat", "1"), ("lon", "1")]), SpeedUnit::Knots, now())),
            ["id"]
        );
        assert_eq!(fields(decode_query(&q(&[("id", "a"), ("deviceid", "b")]), SpeedUnit::Knots, now())), ["id"]);
        let same =
            decode_query(&q(&[("id", "a"), ("deviceid", "a")]), SpeedUnit::Knots, now()).expect("should succeed");
        assert_eq!(same.device_key, "a");
        let long = "x".repeat(MAX_DEVICE_KEY_CHARS + 1);
        assert_eq!(fields(decode_query(&q(&[("id", &long)]), SpeedUnit::Knots, now())), ["id"]);
    }

    #[test]
    fn repeated_parameters() {
        let m = decode_query(
            &q(&[("id", "1"), ("lat", "1"), ("lat", "1"), ("lon", "2"), ("cell", "a"), ("cell", "b"), ("cell", "c")]),
            SpeedUnit::Knots,
            now(),
        )
        .expect("should succeed");
        assert_eq!(m.fix.expect("should succeed").attributes["cell"], json!(["a", "b", "c"]));
        let r = decode_query(&q(&[("id", "1"), ("lat", "1"), ("lat", "2"), ("lon", "2")]), SpeedUnit::Knots, now());
        assert_eq!(fields(r), ["lat"]);
    }

    #[test]
    fn attribute_values_are_typed() {
        assert_eq!(param_value("933"), json!(933));
        assert_eq!(param_value("-5"), json!(-5));
        assert_eq!(param_value("6.0"), json!(6.0));
        assert_eq!(param_value("0.5"), json!(0.5));
        assert_eq!(param_value("1e3"), json!(1000.0));
        assert_eq!(param_value("true"), json!(true));
        assert_eq!(param_value("false"), json!(false));
        assert_eq!(param_value("02"), json!("02"));
        assert_eq!(param_value("257,02,16,2224"), json!("257,02,16,2224"));
        assert_eq!(param_value("NaN"), json!("NaN"));
        assert_eq!(param_value("inf"), json!("inf"));
        assert_eq!(param_value(""), json!(""));
        assert_eq!(param_value("-"), json!("-"));
        assert_eq!(param_value("1-2"), json!("1-2"));
    }

    #[test]
    fn heading_alias_and_unknowns() {
        let m = decode_query(
            &q(&[("id", "1"), ("lat", "1"), ("lon", "1"), ("heading", "360"), ("accuracy", "-1"), ("speed", "-1")]),
            SpeedUnit::Knots,
            now(),
        )
        .expect("should succeed");
        let f = m.fix.expect("should succeed");
        assert_eq!(f.heading_deg, Some(0.0));
        assert_eq!(f.accuracy_m, None);
        assert_eq!(f.speed_mps, None);
        let m = decode_query(
            &q(&[("id", "1"), ("lat", "1"), ("lon", "1"), ("heading", "-1"), ("hacc", "12.5")]),
            SpeedUnit::Knots,
            now(),
        )
        .expect("should succeed");
        let f = m.fix.expect("should succeed");
        assert_eq!(f.heading_deg, None);
        assert_eq!(f.accuracy_m, Some(12.5));
    }

    #[test]
    fn null_island_decodes_for_the_filter_to_drop() {
        let m = decode_query(&q(&[("id", "1"), ("lat", "0"), ("lon", "0")]), SpeedUnit::Knots, now())
            .expect("should succeed");
        assert_eq!(m.fix.map(|f| (f.lat, f.lon)), Some((0.0, 0.0)));
    }

    #[test]
    fn json_errors_and_edge_cases() {
        let e = decode_json(b"not json", now()).expect_err("should fail");
        assert_eq!(e[0].field, "body");
        assert_eq!(decode_json(b"[1]", now()).expect_err("should fail")[0].field, "body");
        let e =
            decode_json(br#"{"location":{"coords":{"latitude":1,"longitude":2}}}"#, now()).expect_err("should fail");
        assert_eq!(e[0].field, "device_id");
        let m = decode_json(br#"{"device_id":42}"#, now()).expect("should succeed");
        assert_eq!((m.device_key.as_str(), m.fix), ("42", None));
        let m = decode_json(br#"{"device_id":"a","location":{"coords":{"latitude":1,"longitude":2}}}"#, now())
            .expect("should succeed");
        assert!(m.time_missing);
        assert_eq!(m.fix.expect("should succeed").fix_time, now());
        let e =
            decode_json(br#"{"device_id":"a","location":{"coords":{"latitude":1}}}"#, now()).expect_err("should fail");
        assert_eq!(e[0].field, "location.coords.longitude");
        let e = decode_json(br#"{"device_id":"a","location":{"coords":{"latitude":"1","longitude":2}}}"#, now())
            .expect_err("should fail");
        assert_eq!(e[0].field, "location.coords.latitude");
        let e = decode_json(
            br#"{"device_id":"a","location":{"timestamp":"soon","coords":{"latitude":1,"longitude":2}}}"#,
            now(),
        )
        .expect_err("should fail");
        assert_eq!(e[0].field, "location.timestamp");
        let e = decode_json(
            br#"{"device_id":"a","location":{"coords":{"latitude":1,"longitude":2},"battery":{"level":87}}}"#,
            now(),
        )
        .expect_err("should fail");
        assert_eq!(e[0].field, "location.battery.level");
        let e = decode_json(br#"{"device_id":"a","location":[]}"#, now()).expect_err("should fail");
        assert_eq!(e[0].field, "location");
        let m = decode_json(
            br#"{"device_id":"a","mock":true,"location":{"timestamp":1700000000,"coords":{"latitude":1,"longitude":2},"extras":{"heartbeat":true}}}"#,
            now(),
        )
        .expect("should succeed");
        let f = m.fix.expect("should succeed");
        assert!(f.mock, "root mock");
        assert_eq!(f.fix_time.timestamp(), 1_700_000_000);
        assert_eq!(f.attributes["heartbeat"], json!(true));
    }

    fn arb_params() -> impl Strategy<Value = Vec<(String, String)>> {
        let key = prop::sample::select(vec![
            "id",
            "deviceid",
            "timestamp",
            "lat",
            "lon",
            "location",
            "speed",
            "bearing",
            "heading",
            "altitude",
            "accuracy",
            "hacc",
            "batt",
            "mock",
            "cell",
            "x",
        ]);
        let value = prop_oneof![".{0,24}", "-?[0-9]{1,14}(\\.[0-9]{1,6})?", Just("1e999".to_owned())];
        prop::collection::vec((key.prop_map(str::to_owned), value), 0..12)
    }

    proptest! {
        #[test]
        fn never_panics(params in arb_params(), body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_query(&params, SpeedUnit::Kmh, now());
            let _ = decode_json(&body, now());
        }

        #[test]
        fn parse_time_never_panics(s in ".{0,40}", n in any::<i64>(), f in any::<f64>()) {
            let _ = parse_time(&s);
            let _ = parse_time(&n.to_string());
            let _ = parse_time(&f.to_string());
        }

        #[test]
        fn decoded_fixes_are_in_range(params in arb_params()) {
            if let Ok(Message { fix: Some(f), .. }) = decode_query(&params, SpeedUnit::Knots, now()) {
                prop_assert!((-90.0..=90.0).contains(&f.lat) && (-180.0..=180.0).contains(&f.lon));
                prop_assert!(f.heading_deg.is_none_or(|h| (0.0..360.0).contains(&h)));
                prop_assert!(f.accuracy_m.is_none_or(|a| a > 0.0));
                prop_assert!(f.battery_pct.is_none_or(|b| (0.0..=100.0).contains(&b)));
                prop_assert!(f.speed_mps.is_none_or(|s| s >= 0.0 && s.is_finite()));
            }
        }
    }
}
