//! Our native ping JSON: a JSON array of items or NDJSON (one item per line), SI units, strict field
//! names. Each item is judged on its own, so one bad item does not cost the phone the rest of its batch.
//!
//! ```json
//! {"fix_time": "2024-05-01T08:30:00Z", "lat": 39.9, "lon": 116.4, "accuracy_m": 8, "speed_mps": 1.2,
//!  "heading_deg": 90, "altitude_m": 45, "battery_pct": 80, "mock": false, "ping_id": "a1",
//!  "device_id": 7, "attributes": {"any": "thing"}}
//! ```

use std::cell::Cell;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{Deserializer as _, Error as _, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{
    MAX_BATCH_ITEMS, MAX_CLIENT_ID_CHARS, check_attributes, check_position, echo, parse_error, time_from_epoch,
    time_from_epoch_int, to_f32, too_many_items,
};
use crate::ping::Fix;
use crate::validation::FieldError;

/// Most items accepted in one request.
pub const MAX_ITEMS: usize = MAX_BATCH_ITEMS;

/// Field names of an item; anything else is an error (a typo must not silently lose a value).
pub const FIELDS: [&str; 12] = [
    "fix_time",
    "lat",
    "lon",
    "accuracy_m",
    "speed_mps",
    "heading_deg",
    "altitude_m",
    "battery_pct",
    "mock",
    "ping_id",
    "device_id",
    "attributes",
];

/// Unknown fields reported one by one per item; the rest are counted in one more error.
const MAX_UNKNOWN_REPORTED: usize = 5;

/// One decoded item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub fix: Fix,
    /// The device the item is for, when a batch posts for several (the caller checks it is allowed).
    pub device_id: Option<i64>,
}

/// How the body is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `[{..}, {..}]`
    JsonArray,
    /// One JSON object per line; blank lines are skipped.
    Ndjson,
}

/// Decodes a request body. Whole-request problems (invalid UTF-8, not JSON, not an array, more than
/// [`MAX_ITEMS`] items) are the `Err`; otherwise one result per item, in body order, whose errors carry
/// `index: Some(i)` (for NDJSON, `i` counts non-blank lines, and a line that is not JSON is that item's error).
pub fn decode(body: &[u8], format: Format) -> Result<Vec<Result<Item, Vec<FieldError>>>, FieldError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        FieldError::new("body", format!("must be UTF-8 text; invalid byte at offset {}", e.valid_up_to()))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::JsonArray => decode_array(text),
        Format::Ndjson => decode_ndjson(text),
    }
}

/// Streams the array one element at a time, so that memory stays proportional to one item plus results.
fn decode_array(text: &str) -> Result<Vec<Result<Item, Vec<FieldError>>>, FieldError> {
    if !text.trim_start().starts_with('[') {
        return Err(FieldError::new(
            "body",
            "must be a JSON array of pings: [{\"fix_time\": .., \"lat\": .., \"lon\": ..}]",
        ));
    }
    let overflow = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(text);
    match (&mut de).deserialize_seq(ItemsVisitor { overflow: &overflow }) {
        Ok(items) => {
            de.end().map_err(|e| FieldError::new("body", format!("has data after the array: {}", parse_error(&e))))?;
            Ok(items)
        }
        Err(_) if overflow.get() => Err(too_many_items()),
        Err(e) => Err(FieldError::new("body", format!("is not valid JSON: {}", parse_error(&e)))),
    }
}

struct ItemsVisitor<'a> {
    overflow: &'a Cell<bool>,
}

impl<'de> Visitor<'de> for ItemsVisitor<'_> {
    type Value = Vec<Result<Item, Vec<FieldError>>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of pings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_ITEMS));
        while let Some(value) = seq.next_element::<Value>()? {
            if out.len() == MAX_ITEMS {
                self.overflow.set(true);
                return Err(A::Error::custom("too many items"));
            }
            out.push(item(value, out.len()));
        }
        Ok(out)
    }
}

fn decode_ndjson(text: &str) -> Result<Vec<Result<Item, Vec<FieldError>>>, FieldError> {
    let mut out = Vec::new();
    for (line_no, line) in text.split('\n').enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if out.len() == MAX_ITEMS {
            return Err(too_many_items());
        }
        let i = out.len();
        out.push(match serde_json::from_str::<Value>(line) {
            Ok(value) => item(value, i),
            Err(e) => Err(vec![
                FieldError::new("item", format!("line {} is not JSON: {}", line_no + 1, parse_error(&e))).at(i),
            ]),
        });
    }
    Ok(out)
}

/// Validates one item; every error names its field and carries the item's index.
fn item(value: Value, index: usize) -> Result<Item, Vec<FieldError>> {
    let Value::Object(mut obj) = value else {
        return Err(vec![FieldError::new("item", "must be a JSON object with fix_time, lat and lon").at(index)]);
    };
    let mut errors = Vec::new();

    let unknown: Vec<&String> = obj.keys().filter(|k| !FIELDS.contains(&k.as_str())).collect();
    for k in unknown.iter().take(MAX_UNKNOWN_REPORTED) {
        errors.push(FieldError::new(
            echo(k),
            format!("unknown field; put custom values in attributes (fields: {})", FIELDS.join(", ")),
        ));
    }
    if unknown.len() > MAX_UNKNOWN_REPORTED {
        errors
            .push(FieldError::new("item", format!("has {} more unknown fields", unknown.len() - MAX_UNKNOWN_REPORTED)));
    }

    let fix_time = fix_time(obj.get("fix_time"), &mut errors);
    let lat = number(&obj, "lat", true, &mut errors);
    let lon = number(&obj, "lon", true, &mut errors);
    if let (Some(lat), Some(lon)) = (lat, lon) {
        check_position(lat, lon, "lat", "lon", &mut errors);
    }
    let accuracy_m =
        ranged(&obj, "accuracy_m", &mut errors, |v| v >= 0.0, "must be >= 0 metres (0 = unknown)").filter(|v| *v > 0.0);
    let speed_mps = ranged(&obj, "speed_mps", &mut errors, |v| v >= 0.0, "must be >= 0 m/s");
    let heading_deg =
        ranged(&obj, "heading_deg", &mut errors, |v| (0.0..360.0).contains(&v), "must be degrees in [0, 360)")
            .map(|h| if h < 360.0 { h } else { 0.0 }); // 359.99999999 rounds to 360 as f32
    let altitude_m = ranged(&obj, "altitude_m", &mut errors, |_| true, "");
    let battery_pct =
        ranged(&obj, "battery_pct", &mut errors, |v| (0.0..=100.0).contains(&v), "must be a percentage in [0, 100]");
    let mock = match obj.get("mock") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new("mock", "must be true or false"));
            false
        }
    };
    let client_ping_id = match obj.get("ping_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_CLIENT_ID_CHARS => Some(s.clone()),
        Some(Value::String(s)) => {
            errors.push(FieldError::new(
                "ping_id",
                format!("must be a non-blank string of at most {MAX_CLIENT_ID_CHARS} characters, got `{}`", echo(s)),
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("ping_id", "must be a string"));
            None
        }
    };
    let device_id = match obj.get("device_id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some_and(|i| i > 0) => n.as_i64(),
        Some(_) => {
            errors.push(FieldError::new("device_id", "must be a positive integer device id"));
            None
        }
    };
    let attributes = match obj.remove("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            errors.push(FieldError::new("attributes", "must be a JSON object"));
            Map::new()
        }
    };
    check_attributes(&attributes, &mut errors);

    match (fix_time, lat, lon) {
        (Some(fix_time), Some(lat), Some(lon)) if errors.is_empty() => {
            let fix = Fix {
                fix_time,
                lat,
                lon,
                accuracy_m,
                speed_mps,
                heading_deg,
                altitude_m,
                battery_pct,
                mock,
                client_ping_id,
                attributes,
            };
            Ok(Item { fix, device_id })
        }
        _ => Err(errors.into_iter().map(|e| e.at(index)).collect()),
    }
}

/// `fix_time`: ISO-8601 with `Z` or an offset, or epoch seconds / milliseconds (>= 1e12).
fn fix_time(value: Option<&Value>, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    const RANGE: &str = "must be between 1970 and 9999";
    let (t, reason) = match value {
        None | Some(Value::Null) => (None, "is required (ISO-8601 with Z or offset, or epoch seconds/milliseconds)"),
        Some(Value::String(s)) => {
            let parsed = DateTime::parse_from_rfc3339(s.trim())
                .or_else(|_| DateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f%z"))
                .ok()
                .map(|t| t.with_timezone(&Utc));
            match parsed {
                Some(t) if (0..=super::MAX_EPOCH_S).contains(&t.timestamp()) => (Some(t), ""),
                Some(_) => (None, RANGE),
                None => (None, "must be ISO-8601 with Z or an offset, e.g. 2024-05-01T08:30:00Z"),
            }
        }
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) if i < 0 => (None, "must not be negative"),
            Some(i) => (time_from_epoch_int(i), RANGE),
            None => match n.as_f64() {
                Some(f) if f < 0.0 => (None, "must not be negative"),
                f => (f.and_then(time_from_epoch), RANGE),
            },
        },
        Some(_) => (None, "must be an ISO-8601 string or an epoch number"),
    };
    if t.is_none() {
        errors.push(FieldError::new("fix_time", reason));
    }
    t
}

/// A number field; `required` makes absence an error.
fn number(obj: &Map<String, Value>, key: &str, required: bool, errors: &mut Vec<FieldError>) -> Option<f64> {
    match obj.get(key) {
        None | Some(Value::Null) if required => {
            errors.push(FieldError::new(key, "is required"));
            None
        }
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            let v = n.as_f64().filter(|v| to_f32(*v).is_some());
            if v.is_none() {
                errors.push(FieldError::new(key, "must be a finite number"));
            }
            v
        }
        Some(_) => {
            errors.push(FieldError::new(key, "must be a number"));
            None
        }
    }
}

/// An optional number field that must satisfy `ok`, as `f32`.
fn ranged(
    obj: &Map<String, Value>,
    key: &str,
    errors: &mut Vec<FieldError>,
    ok: impl Fn(f64) -> bool,
    reason: &str,
) -> Option<f32> {
    let v = number(obj, key, false, errors)?;
    if ok(v) {
        Some(v as f32)
    } else {
        errors.push(FieldError::new(key, format!("{reason}, got {v}")));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    fn ok(body: &str, format: Format) -> Vec<Item> {
        decode(body.as_bytes(), format).expect("should succeed").into_iter().map(Result::unwrap).collect()
    }

    fn item_errors(body: &str) -> Vec<(Option<usize>, String)> {
        let results = decode(body.as_bytes(), Format::JsonArray).expect("should succeed");
        results.into_iter().filter_map(Result::err).flatten().map(|e| (e.index, e.field)).collect()
    }

    #[test]
    fn full_item_decodes() {
        let body = r#"[{"fix_time":"2024-05-01T08:30:00Z","lat":39.9,"lon":116.4,"accuracy_m":8,"speed_mps":1.5,
            "heading_deg":90,"altitude_m":-12.5,"battery_pct":80,"mock":true,"ping_id":"p-1","device_id":7,
            "attributes":{"k":"v"}}]"#;
        let items = ok(body, Format::JsonArray);
        let f = &items[0].fix;
        assert_eq!(f.fix_time, Utc.with_ymd_and_hms(2024, 5, 1, 8, 30, 0).single().expect("valid time"));
        assert_eq!((f.lat, f.lon), (39.9, 116.4));
        assert_eq!(f.accuracy_m, Some(8.0));
        assert_eq!(f.speed_mps, Some(1.5));
        assert_eq!(f.heading_deg, Some(90.0));
        assert_eq!(f.altitude_m, Some(-12.5));
        assert_eq!(f.battery_pct, Some(80.0));
        assert!(f.mock);
        assert_eq!(f.client_ping_id.as_deref(), Some("p-1"));
        assert_eq!(f.attributes["k"], json!("v"));
        assert_eq!(items[0].device_id, Some(7));
    }

    #[test]
    fn minimal_items_and_epoch_times() {
        let items = ok(
            r#"[{"fix_time":1714552200,"lat":1,"lon":2},{"fix_time":1714552200123,"lat":1,"lon":2},
                {"fix_time":1714552200.5,"lat":1,"lon":2,"accuracy_m":0},{"fix_time":"2024-05-01T10:30:00+02:00","lat":1,"lon":2}]"#,
            Format::JsonArray,
        );
        assert_eq!(items[0].fix.fix_time.timestamp(), 1_714_552_200);
        assert_eq!(items[1].fix.fix_time.timestamp_millis(), 1_714_552_200_123);
        assert_eq!(items[2].fix.fix_time.timestamp_millis(), 1_714_552_200_500);
        assert_eq!(items[2].fix.accuracy_m, None, "0 = unknown");
        assert_eq!(items[3].fix.fix_time.timestamp(), 1_714_552_200);
        assert_eq!(items[0].device_id, None);
    }

    #[test]
    fn ndjson_skips_blank_lines_and_reports_bad_lines_as_items() {
        let body = "{\"fix_time\":1,\"lat\":1,\"lon\":2}\r\n\n  \n{oops\n{\"fix_time\":2,\"lat\":1,\"lon\":2}\n";
        let results = decode(body.as_bytes(), Format::Ndjson).expect("should succeed");
        assert_eq!(results.len(), 3);
        assert!(results[0].is_ok() && results[2].is_ok());
        let e = results[1].as_ref().expect_err("should fail");
        assert_eq!((e[0].index, e[0].field.as_str()), (Some(1), "item"));
        assert!(e[0].reason.contains("line 4"), "{}", e[0].reason);
        assert!(decode(b"", Format::Ndjson).expect("should succeed").is_empty());
        assert!(decode(b"[]", Format::JsonArray).expect("should succeed").is_empty());
    }

    #[test]
    fn per_item_errors_name_field_and_index() {
        let body = r#"[{"fix_time":1,"lat":1,"lon":2},
            {"lat":1,"lon":2},
            {"fix_time":-5,"lat":"1","lon":200},
            {"fix_time":"2024-05-01T08:30:00","lat":1,"lon":2},
            {"fix_time":1,"lat":1,"lon":2,"accuracy_m":-1,"speed_mps":-1,"heading_deg":360,"battery_pct":101},
            {"fix_time":1,"lat":1,"lon":2,"mock":"yes","ping_id":"","device_id":1.5,"attributes":[]},
            {"fix_time":1,"lat":1,"lon":2,"latitude":1},
            7,
            {"fix_time":true,"lat":null,"lon":2}]"#;
        let e = item_errors(body);
        let want: Vec<(Option<usize>, String)> = [
            (1, "fix_time"),
            (2, "fix_time"),
            (2, "lat"),
            (3, "fix_time"),
            (4, "accuracy_m"),
            (4, "speed_mps"),
            (4, "heading_deg"),
            (4, "battery_pct"),
            (5, "mock"),
            (5, "ping_id"),
            (5, "device_id"),
            (5, "attributes"),
            (6, "latitude"),
            (7, "item"),
            (8, "fix_time"),
            (8, "lat"),
        ]
        .into_iter()
        .map(|(i, f)| (Some(i), f.to_owned()))
        .collect();
        assert_eq!(e, want);
    }

    #[test]
    fn out_of_range_longitude_is_reported() {
        assert_eq!(item_errors(r#"[{"fix_time":1,"lat":1,"lon":200}]"#), [(Some(0), "lon".to_owned())]);
        assert_eq!(
            item_errors(r#"[{"fix_time":"3000000000000000","lat":1,"lon":2}]"#),
            [(Some(0), "fix_time".to_owned())]
        );
        assert_eq!(
            item_errors(r#"[{"fix_time":99999999999999999,"lat":1,"lon":2}]"#),
            [(Some(0), "fix_time".to_owned())]
        );
    }

    #[test]
    fn whole_request_errors() {
        assert_eq!(decode(b"{\"fix_time\":1}", Format::JsonArray).expect_err("should fail").field, "body");
        assert_eq!(decode(b"[1,2", Format::JsonArray).expect_err("should fail").field, "body");
        assert_eq!(decode(b"[] []", Format::JsonArray).expect_err("should fail").field, "body");
        assert_eq!(decode(b"", Format::JsonArray).expect_err("should fail").field, "body");
        assert_eq!(decode(b"[\xff]", Format::JsonArray).expect_err("should fail").field, "body");
        assert_eq!(decode(b"{}\n\xff", Format::Ndjson).expect_err("should fail").field, "body");
        let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            decode(nested.as_bytes(), Format::JsonArray).expect_err("should fail").field,
            "body",
            "serde_json bounds depth"
        );
    }

    #[test]
    fn more_than_max_items_is_rejected() {
        let one = r#"{"fix_time":1,"lat":1,"lon":2}"#;
        let body = format!("[{}]", vec![one; MAX_ITEMS].join(","));
        assert_eq!(decode(body.as_bytes(), Format::JsonArray).expect("should succeed").len(), MAX_ITEMS);
        let body = format!("[{}]", vec![one; MAX_ITEMS + 1].join(","));
        assert!(decode(body.as_bytes(), Format::JsonArray).expect_err("should fail").reason.contains("more than"));
        let body = vec!["1"; MAX_ITEMS + 1].join("\n");
        assert!(decode(body.as_bytes(), Format::Ndjson).expect_err("should fail").reason.contains("more than"));
    }

    #[test]
    fn huge_strings_are_not_echoed() {
        let big = "x".repeat(10 * 1024 * 1024);
        let body = format!(r#"[{{"fix_time":"{big}","lat":1,"lon":2,"ping_id":"{big}","{big}":1}}]"#);
        let results = decode(body.as_bytes(), Format::JsonArray).expect("should succeed");
        let errors = results[0].as_ref().expect_err("should fail");
        assert_eq!(errors.len(), 3);
        assert!(errors.iter().all(|e| e.reason.len() + e.field.len() < 400), "{errors:?}");
        let body = format!("\"{big}\"");
        assert!(decode(body.as_bytes(), Format::JsonArray).expect_err("should fail").reason.len() < 400);
        let body = format!("[\"{big}");
        assert!(decode(body.as_bytes(), Format::JsonArray).expect_err("should fail").reason.len() < 400);
    }

    #[test]
    fn many_unknown_fields_are_summarised() {
        let keys: Vec<String> = (0..50).map(|i| format!("\"k{i}\":1")).collect();
        let body = format!(r#"[{{"fix_time":1,"lat":1,"lon":2,{}}}]"#, keys.join(","));
        let e = item_errors(&body);
        assert_eq!(e.len(), MAX_UNKNOWN_REPORTED + 1);
    }

    #[test]
    fn f32_rounding_keeps_the_ranges() {
        let items =
            ok(r#"[{"fix_time":1,"lat":1,"lon":2,"heading_deg":359.99999999,"accuracy_m":1e-50}]"#, Format::JsonArray);
        assert_eq!(items[0].fix.heading_deg, Some(0.0));
        assert_eq!(items[0].fix.accuracy_m, None);
    }

    #[test]
    fn null_island_is_left_to_the_filter() {
        let items = ok(r#"[{"fix_time":1,"lat":0,"lon":0}]"#, Format::JsonArray);
        assert_eq!((items[0].fix.lat, items[0].fix.lon), (0.0, 0.0));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&body, Format::JsonArray);
            let _ = decode(&body, Format::Ndjson);
        }

        #[test]
        fn valid_items_round_trip(
            lat in -90.0f64..=90.0, lon in -180.0f64..=180.0, t in 0i64..4_000_000_000, acc in 0.0f32..1000.0,
        ) {
            let body = json!([{"fix_time": t, "lat": lat, "lon": lon, "accuracy_m": acc}]).to_string();
            let items = decode(body.as_bytes(), Format::JsonArray).expect("should succeed");
            let item = items[0].as_ref().expect("should succeed");
            prop_assert_eq!(item.fix.fix_time.timestamp(), t);
            // Coordinates are kept exactly as sent (serde_json's float_roundtrip).
            prop_assert_eq!((item.fix.lat, item.fix.lon), (lat, lon));
        }
    }
}
