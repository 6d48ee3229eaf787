//! OwnTracks HTTP mode: the app POSTs one JSON message per request (`_type: location` is the only one
//! that carries a fix to store). Also reads the Recorder's `{"count": n, "locations": [..]}` and plain
//! JSON arrays of messages, which is how buffered or exported OwnTracks data arrives.

use serde_json::{Map, Value};

use super::{
    KMH_TO_MPS, MAX_BATCH_ITEMS, MAX_CLIENT_ID_CHARS, accuracy, altitude, battery_pct, check_attributes,
    check_position, echo, finite, heading, keep, parse_error, speed, time_from_epoch, time_from_epoch_int,
    too_many_items,
};
use crate::ping::Fix;
use crate::validation::FieldError;

/// One `_type: location` message.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub fix: Fix,
    /// Tracker id, two characters shown on friends' maps.
    pub tid: Option<String>,
    /// What made the phone publish: `p` ping, `c` region, `b` beacon, `r` response to reportLocation,
    /// `u` manual, `t` timer, `v` visit; `None` = automatic.
    pub trigger: Option<String>,
}

/// Keys that become `Fix` columns or `Location` fields; every other key is kept as an attribute.
const KNOWN_KEYS: [&str; 12] = ["_type", "tst", "lat", "lon", "acc", "vel", "cog", "alt", "batt", "tid", "t", "_id"];

/// Empty body or whitespace -> `Ok(vec![])` (the app posts empty bodies, e.g. on friend deletion);
/// `_type` other than location (transition, lwt, waypoints, card, ...) -> `Ok(vec![])`; malformed JSON -> `Err`.
/// In an array or `locations` list every message is decoded; errors carry the message's index. A list
/// of more than [`MAX_BATCH_ITEMS`] messages is refused whole ([`too_many_items`]).
pub fn decode(body: &[u8]) -> Result<Vec<Location>, Vec<FieldError>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        vec![FieldError::new("body", format!("must be an OwnTracks JSON message: {}", parse_error(&e)))]
    })?;
    match value {
        Value::Object(obj) => match obj.get("locations") {
            Some(Value::Array(items)) if !obj.contains_key("_type") => decode_list(items),
            _ => decode_message(&obj).map(|l| l.into_iter().collect()),
        },
        Value::Array(items) => decode_list(&items),
        _ => Err(vec![FieldError::new("body", "must be a JSON object with _type (or an array of them)")]),
    }
}

fn decode_list(items: &[Value]) -> Result<Vec<Location>, Vec<FieldError>> {
    if items.len() > MAX_BATCH_ITEMS {
        return Err(vec![too_many_items()]);
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let result = match item {
            Value::Object(obj) => decode_message(obj),
            _ => Err(vec![FieldError::new("_type", "each element must be a JSON object with _type")]),
        };
        match result {
            Ok(Some(l)) => out.push(l),
            Ok(None) => {}
            Err(e) => errors.extend(e.into_iter().map(|e| e.at(i))),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// One message; `Ok(None)` when it is not a location.
fn decode_message(obj: &Map<String, Value>) -> Result<Option<Location>, Vec<FieldError>> {
    match obj.get("_type") {
        Some(Value::String(t)) if t == "location" => {}
        Some(Value::String(_)) => return Ok(None),
        None => return Err(vec![FieldError::new("_type", "missing: OwnTracks messages carry \"_type\"")]),
        Some(_) => return Err(vec![FieldError::new("_type", "must be a string such as \"location\"")]),
    }
    let mut errors = Vec::new();
    let fix_time = match obj.get("tst") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("tst", "missing: the epoch seconds of the fix are required"));
            None
        }
        Some(v) => {
            let t = match v {
                Value::Number(n) => {
                    n.as_i64().map_or_else(|| n.as_f64().and_then(time_from_epoch), time_from_epoch_int)
                }
                Value::String(s) => s.trim().parse::<i64>().ok().and_then(time_from_epoch_int),
                _ => None,
            };
            if t.is_none() {
                errors.push(FieldError::new(
                    "tst",
                    "must be epoch seconds (a non-negative integer before the year 9999)",
                ));
            }
            t
        }
    };
    let lat = required_number(obj, "lat", &mut errors);
    let lon = required_number(obj, "lon", &mut errors);
    if let (Some(lat), Some(lon)) = (lat, lon) {
        check_position(lat, lon, "lat", "lon", &mut errors);
    }
    let accuracy_m = number(obj, "acc", &mut errors).and_then(|v| keep(accuracy("acc", v), &mut errors));
    let speed_mps = number(obj, "vel", &mut errors).and_then(|v| keep(speed("vel", v * KMH_TO_MPS), &mut errors));
    let heading_deg = number(obj, "cog", &mut errors).and_then(|v| keep(heading("cog", v), &mut errors));
    let altitude_m = number(obj, "alt", &mut errors).and_then(|v| keep(altitude("alt", v), &mut errors));
    let battery = number(obj, "batt", &mut errors).and_then(|v| keep(battery_pct("batt", v), &mut errors));
    let tid = string(obj, "tid", 64, &mut errors);
    let trigger = string(obj, "t", 16, &mut errors);
    let client_ping_id = string(obj, "_id", MAX_CLIENT_ID_CHARS, &mut errors);

    let (Some(fix_time), Some(lat), Some(lon), true) = (fix_time, lat, lon, errors.is_empty()) else {
        return Err(errors);
    };
    let mut attributes: Map<String, Value> = obj
        .iter()
        .filter(|(k, v)| !KNOWN_KEYS.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // The tracker id and the report trigger have no column of their own: kept, checked, as attributes.
    for (key, value) in [("tid", &tid), ("t", &trigger)] {
        if let Some(v) = value {
            attributes.insert(key.to_owned(), Value::String(v.clone()));
        }
    }
    check_attributes(&attributes, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let fix = Fix {
        fix_time,
        lat,
        lon,
        accuracy_m,
        speed_mps,
        heading_deg,
        altitude_m,
        battery_pct: battery,
        mock: false,
        client_ping_id,
        attributes,
    };
    Ok(Some(Location { fix, tid, trigger }))
}

/// A number (or numeric string: some bridges stringify everything); absent or `null` -> `None`.
fn number(obj: &Map<String, Value>, key: &str, errors: &mut Vec<FieldError>) -> Option<f64> {
    let v = match obj.get(key)? {
        Value::Null => return None,
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match v.map(|v| finite(key, v)) {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        None => {
            errors.push(FieldError::new(key, "must be a number"));
            None
        }
    }
}

fn required_number(obj: &Map<String, Value>, key: &str, errors: &mut Vec<FieldError>) -> Option<f64> {
    if obj.get(key).is_none_or(Value::is_null) {
        errors.push(FieldError::new(key, "missing: a location needs lat and lon"));
        return None;
    }
    number(obj, key, errors)
}

fn string(obj: &Map<String, Value>, key: &str, max: usize, errors: &mut Vec<FieldError>) -> Option<String> {
    match obj.get(key)? {
        Value::Null => None,
        Value::String(s) if s.chars().count() <= max => Some(s.clone()),
        Value::String(s) => {
            errors.push(FieldError::new(key, format!("must be at most {max} characters, got `{}`", echo(s))));
            None
        }
        _ => {
            errors.push(FieldError::new(key, "must be a string"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};
    use proptest::prelude::*;
    use serde_json::json;

    const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/protocol-samples/owntracks-http.txt");

    /// Every JSON payload of the samples file, in file order: `.rec` lines (JSON after the second TAB),
    /// one-line JSON messages, and the multi-line JSON array of section B.
    fn payloads() -> Vec<String> {
        let text = std::fs::read_to_string(SAMPLES).expect("should succeed");
        let mut out = Vec::new();
        let mut block: Option<String> = None;
        for line in text.lines() {
            if let Some(b) = block.as_mut() {
                b.push_str(line);
                b.push('\n');
                if line.starts_with(']') {
                    out.push(block.take().expect("should succeed"));
                }
            } else if line.starts_with('[') {
                block = Some(format!("{line}\n"));
            } else if line.starts_with('{') {
                out.push(line.to_owned());
            } else if line.starts_with(|c: char| c.is_ascii_digit()) && line.contains('\t') {
                out.push(line.splitn(3, '\t').nth(2).expect("should succeed").to_owned());
            }
        }
        out
    }

    fn utc(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().expect("valid time")
    }

    #[test]
    fn every_sample_location_decodes() {
        let payloads = payloads();
        assert_eq!(payloads.len(), 28, "12 .rec lines, 1 array, 4 + 6 + 1 + 3 + 1 one-line messages");
        let mut locations = 0;
        for p in &payloads {
            let decoded = decode(p.as_bytes()).unwrap_or_else(|e| panic!("{p}: {e:?}"));
            let value: Value = serde_json::from_str(p).expect("should succeed");
            let expected = match &value {
                Value::Array(a) => a.len(),
                Value::Object(o) if o.contains_key("locations") => {
                    o["locations"].as_array().expect("should succeed").len()
                }
                Value::Object(o) => usize::from(o["_type"] == "location"),
                _ => unreachable!(),
            };
            assert_eq!(decoded.len(), expected, "{p}");
            for l in &decoded {
                assert!(l.fix.lat.abs() <= 90.0 && l.fix.lon.abs() <= 180.0);
                assert!(l.fix.fix_time > utc(1_400_000_000));
            }
            locations += decoded.len();
        }
        assert_eq!(locations, 24, "the lwt, two transitions and the waypoints file are not locations");
    }

    #[test]
    fn iphone_rec_line_with_unknown_velocity_and_course() {
        let payloads = payloads();
        let l = decode(payloads[0].as_bytes()).expect("should succeed").remove(0);
        assert_eq!(l.fix.fix_time, utc(1_440_395_361));
        assert_eq!((l.fix.lat, l.fix.lon), (52.378_885_809_846_68, 10.027_857_267_306_68));
        assert_eq!(l.fix.accuracy_m, Some(3000.0));
        assert_eq!(l.fix.speed_mps, None, "vel -1 is unknown");
        assert_eq!(l.fix.heading_deg, None, "cog -1 is unknown");
        assert_eq!(l.fix.altitude_m, Some(51.0));
        assert_eq!(l.fix.battery_pct, Some(96.0));
        assert_eq!(l.tid.as_deref(), Some("NE"));
        assert_eq!(l.trigger, None);
        assert_eq!(l.fix.attributes["vac"], json!(29));
        assert_eq!(l.fix.attributes["tid"], json!("NE"), "the tracker id is stored with the ping");
        assert!(!l.fix.attributes.contains_key("_type"));
    }

    #[test]
    fn velocity_is_kmh() {
        let l = decode(br#"{"_type":"location","tst":1440403798,"lat":51.26,"lon":12.71,"vel":36,"cog":118}"#)
            .expect("should succeed")
            .remove(0);
        assert!((l.fix.speed_mps.expect("should succeed") - 10.0).abs() < 1e-5);
        assert_eq!(l.fix.heading_deg, Some(118.0));
    }

    #[test]
    fn lwt_with_string_tst_transition_and_waypoints_are_ignored() {
        assert!(decode(br#"{"tst":"1440363922","_type":"lwt"}"#).expect("should succeed").is_empty());
        assert!(
            decode(br#"{"_type":"transition","acc":77.6,"lat":44.2,"lon":11.9,"tst":1546871106}"#)
                .expect("should succeed")
                .is_empty()
        );
        assert!(decode(br#"{"_type":"card","name":"x"}"#).expect("should succeed").is_empty());
        assert!(decode(br#"{"_type":"waypoints","waypoints":[]}"#).expect("should succeed").is_empty());
    }

    #[test]
    fn empty_bodies_are_ignored() {
        assert!(decode(b"").expect("should succeed").is_empty());
        assert!(decode(b" \n\t ").expect("should succeed").is_empty());
    }

    #[test]
    fn recorder_list_and_array_decode_several() {
        let two = r#"{"_type":"location","tst":1,"lat":1,"lon":2}"#;
        let body = format!(r#"{{"count":3,"locations":[{two},{{"_type":"lwt","tst":2}},{two}]}}"#);
        assert_eq!(decode(body.as_bytes()).expect("should succeed").len(), 2);
        let body = format!("[{two},{two},{two}]");
        assert_eq!(decode(body.as_bytes()).expect("should succeed").len(), 3);
        assert!(decode(b"[]").expect("should succeed").is_empty());
        let e =
            decode(format!(r#"[{two},{{"_type":"location","lat":1,"lon":2}}]"#).as_bytes()).expect_err("should fail");
        assert_eq!((e[0].index, e[0].field.as_str()), (Some(1), "tst"));
        let e = decode(b"[1]").expect_err("should fail");
        assert_eq!(e[0].index, Some(0));
    }

    #[test]
    fn trigger_response_and_string_tst() {
        let l = decode(br#"{"_type":"location","t":"r","tst":"1497349316","lat":48.85,"lon":2.29,"tid":"JJ"}"#)
            .expect("should succeed")
            .remove(0);
        assert_eq!(l.trigger.as_deref(), Some("r"));
        assert_eq!(l.fix.fix_time, utc(1_497_349_316));
    }

    #[test]
    fn android_message_id_is_the_client_ping_id() {
        let l = decode(
            br#"{"_type":"location","_id":"a1b2","tst":1610799026,"lat":51.2,"lon":-4,"acc":0,"batt":-1,"bs":0}"#,
        )
        .expect("should succeed")
        .remove(0);
        assert_eq!(l.fix.client_ping_id.as_deref(), Some("a1b2"));
        assert_eq!(l.fix.accuracy_m, None, "acc 0 is unknown");
        assert_eq!(l.fix.battery_pct, None);
        assert_eq!(l.fix.attributes["bs"], json!(0));
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert_eq!(decode(b"{not json").expect_err("should fail")[0].field, "body");
        assert_eq!(decode(b"42").expect_err("should fail")[0].field, "body");
        assert_eq!(decode(br#"{"lat":1,"lon":2,"tst":1}"#).expect_err("should fail")[0].field, "_type");
        let fields = |b: &[u8]| decode(b).expect_err("should fail").into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(br#"{"_type":"location","lat":1,"lon":2}"#), ["tst"]);
        assert_eq!(fields(br#"{"_type":"location","tst":-1,"lat":1,"lon":2}"#), ["tst"]);
        assert_eq!(fields(br#"{"_type":"location","tst":"soon","lat":1,"lon":2}"#), ["tst"]);
        assert_eq!(fields(br#"{"_type":"location","tst":1,"lon":2}"#), ["lat"]);
        assert_eq!(fields(br#"{"_type":"location","tst":1,"lat":"north","lon":2}"#), ["lat"]);
        assert_eq!(fields(br#"{"_type":"location","tst":1,"lat":95,"lon":200}"#), ["lat", "lon"]);
        assert_eq!(fields(br#"{"_type":"location","tst":1,"lat":1,"lon":2,"batt":140,"cog":400}"#), ["cog", "batt"]);
        assert_eq!(fields(br#"{"_type":"location","tst":1,"lat":1,"lon":2,"tid":7}"#), ["tid"]);
    }

    proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..200), tst in any::<f64>(), lat in any::<f64>()) {
            let _ = decode(&body);
            let msg = format!(r#"{{"_type":"location","tst":{tst:?},"lat":{lat:?},"lon":1,"vel":{lat:?},"acc":{tst:?}}}"#);
            let _ = decode(msg.as_bytes());
        }
    }
}
