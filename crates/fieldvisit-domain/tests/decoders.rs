//! Property tests of every byte decoder of the domain (issue 25): the phone protocols (OsmAnd query
//! and Traccar Client JSON, OwnTracks, native JSON array and NDJSON, GPX) and the outlet import
//! (CSV, GeoJSON). Each gets arbitrary bytes, structured but hostile values (huge, negative,
//! non-finite-looking, out-of-range dates, deep nesting, wrong types) and inputs of several MB
//! built by repetition. The property: no panic, and every input answered: `Ok`, or an error a
//! person can act on; a batch decoder accepts or rejects every item, naming its index.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, TimeZone, Utc};
use fieldvisit_domain::checklist;
use fieldvisit_domain::import::{self, Parsed};
use fieldvisit_domain::protocols::{gpx, native, osmand, owntracks};
use fieldvisit_domain::validation::FieldError;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

/// Cases of the small-input properties (each case runs in microseconds to milliseconds).
const CASES: u32 = 64;
/// Cases of the several-MB properties.
const LARGE_CASES: u32 = 2;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, max_shrink_iters: 256, ..ProptestConfig::default() }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).single().expect("a valid instant")
}

/// Texts that have broken parsers: number and date edge cases, blanks, controls, long digit runs.
const NASTY_TEXT: &[&str] = &[
    "",
    " ",
    "\0",
    "\u{feff}",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "-0",
    "1e309",
    "-1e309",
    "1e-400",
    "0x10",
    "99999999999999999999999999",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "253402300800",
    "253402300799999",
    "+262142-12-31T23:59:59Z",
    "-262143-01-01T00:00:00Z",
    "262143-01-01",
    "9999-12-31T23:59:59.999999999-23:59",
    "1970-01-01T00:00:00+23:59",
    "0000-01-01T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "2024-05-01 08:00",
    "2024-05-01T08:00:00.99999999999999999999Z",
    "POINT(116.4 39.9)",
    "SRID=4326;POINT(1e309 1e309)",
    "POINT(",
    "39,95",
    "1,2,3",
    "\"",
    "\r\n",
];

fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ".{0,24}",
        2 => "[0-9.eE+,-]{0,24}",
        3 => prop::sample::select(NASTY_TEXT).prop_map(str::to_owned),
        1 => (1usize..5_000).prop_map(|n| "9".repeat(n)),
    ]
}

fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>()
            .prop_filter_map("JSON has no NaN or infinities", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![
            0.0,
            -0.0,
            -1.0,
            1e308,
            -1e308,
            5e-324,
            3.4e38,
            3.5e38,
            90.000_000_1,
            -180.000_001,
            359.999_999_99,
            360.0,
            1e12,
            253_402_300_800.0,
            9.3e18,
        ])
        .prop_map(|f| json!(f)),
    ]
}

/// Any JSON value, its leaves chosen to hurt.
fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        hostile_number(),
        hostile_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((hostile_text(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// `base` with some of `keys` replaced by hostile values (and sometimes an unknown key added).
fn mutated(base: Value, keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let edits = prop::collection::vec(
        (prop_oneof![9 => prop::sample::select(keys).prop_map(str::to_owned), 1 => hostile_text()], hostile_value()),
        0..4,
    );
    (edits, any::<bool>()).prop_map(move |(edits, drop_first)| {
        let mut v = base.clone();
        if let Value::Object(obj) = &mut v {
            if drop_first && let Some(first) = edits.first() {
                obj.remove(&first.0);
            } else {
                obj.extend(edits);
            }
        }
        v
    })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

/// An error a person can act on: says why, and echoes no whole input. (The field may be empty: it
/// is the name of an unknown key, and `""` is a JSON key.)
fn check_error(e: &FieldError) -> Result<(), TestCaseError> {
    prop_assert!(!e.reason.is_empty(), "an error without a reason: {e:?}");
    prop_assert!(e.field.len() + e.reason.len() <= 4096, "error of {} bytes", e.field.len() + e.reason.len());
    Ok(())
}

fn check_errors(errors: &[FieldError]) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty(), "rejected without saying why");
    errors.iter().try_for_each(check_error)
}

/// Native batches: one answer per item, every rejected item's errors carrying its index.
fn check_native(r: &Result<Vec<Result<native::Item, Vec<FieldError>>>, FieldError>) -> Result<(), TestCaseError> {
    match r {
        Err(e) => check_error(e),
        Ok(items) => {
            prop_assert!(items.len() <= native::MAX_ITEMS);
            for (i, item) in items.iter().enumerate() {
                if let Err(errors) = item {
                    check_errors(errors)?;
                    prop_assert!(errors.iter().all(|e| e.index == Some(i)), "item {i}: {errors:?}");
                }
            }
            Ok(())
        }
    }
}

fn check_osmand(r: &Result<osmand::Message, Vec<FieldError>>) -> Result<(), TestCaseError> {
    match r {
        Ok(m) => {
            prop_assert!(!m.device_key.trim().is_empty(), "accepted without a device: {m:?}");
            Ok(())
        }
        Err(errors) => check_errors(errors),
    }
}

/// OwnTracks: a list's errors each name a message of the list.
fn check_owntracks(
    r: &Result<Vec<owntracks::Location>, Vec<FieldError>>,
    items: Option<usize>,
) -> Result<(), TestCaseError> {
    match r {
        Ok(locations) => {
            prop_assert!(items.is_none_or(|n| locations.len() <= n));
            Ok(())
        }
        Err(errors) => {
            check_errors(errors)?;
            if let Some(n) = items {
                // Each error names a message of the list, or the whole list is refused as too long.
                let too_long = |e: &FieldError| e.index.is_none() && e.field == "body" && n > 10_000;
                prop_assert!(errors.iter().all(|e| e.index.is_some_and(|i| i < n) || too_long(e)), "{errors:?}");
            }
            Ok(())
        }
    }
}

fn check_gpx(r: &Result<Vec<fieldvisit_domain::ping::Fix>, FieldError>) -> Result<(), TestCaseError> {
    r.as_ref().map(|_| ()).or_else(check_error)
}

/// Import: every data row is accepted or rejected with its index, never both.
fn check_import(r: &Result<Parsed, Vec<FieldError>>) -> Result<(), TestCaseError> {
    let parsed = match r {
        Err(errors) => return check_errors(errors),
        Ok(parsed) => parsed,
    };
    let mut rejected = BTreeSet::new();
    for e in &parsed.errors {
        check_error(e)?;
        prop_assert!(e.index.is_some(), "a row error without its row: {e:?}");
        rejected.extend(e.index);
    }
    let accepted: BTreeSet<usize> = parsed.rows.iter().map(|r| r.index).collect();
    prop_assert_eq!(accepted.len(), parsed.rows.len(), "two rows with one index");
    prop_assert!(accepted.is_disjoint(&rejected), "rows both accepted and rejected: {:?}", parsed.errors);
    prop_assert_eq!(accepted.len() + rejected.len(), parsed.total, "a row neither accepted nor rejected");
    Ok(())
}

fn native_item() -> Value {
    json!({"fix_time": "2024-05-01T08:30:00Z", "lat": 39.9, "lon": 116.4, "accuracy_m": 8})
}

fn owntracks_message() -> Value {
    json!({"_type": "location", "tst": 1_714_552_200, "lat": 39.9, "lon": 116.4, "acc": 8, "tid": "ab"})
}

const OWNTRACKS_KEYS: &[&str] =
    &["_type", "tst", "lat", "lon", "acc", "vel", "cog", "alt", "batt", "tid", "t", "_id", "created_at", "topic"];

/// The OsmAnd parameters the decoder reads, and two it keeps as attributes.
const OSMAND_KEYS: &str =
    "id deviceid timestamp lat lon location speed bearing heading altitude accuracy hacc batt mock charge cell";

const TRACCAR_KEYS: &[&str] = &[
    "timestamp",
    "coords",
    "battery",
    "mock",
    "extras",
    "uuid",
    "is_moving",
    "event",
    "activity",
    "odometer",
    "latitude",
    "longitude",
    "accuracy",
    "speed",
    "heading",
    "altitude",
    "level",
    "is_charging",
];

/// A Traccar Client JSON body with hostile values at the root, in `location` and in `coords`.
fn traccar_body() -> impl Strategy<Value = Value> {
    let coords = mutated(json!({"latitude": 39.9, "longitude": 116.4, "accuracy": 5, "speed": 1.5}), TRACCAR_KEYS);
    let location =
        (mutated(json!({"timestamp": "2024-05-01T08:30:00Z"}), TRACCAR_KEYS), coords).prop_map(|(mut l, c)| {
            if let Value::Object(o) = &mut l {
                o.entry("coords").or_insert(c);
            }
            l
        });
    (mutated(json!({"device_id": "phone-1"}), &["device_id", "location", "device"]), location).prop_map(
        |(mut root, location)| {
            if let Value::Object(o) = &mut root {
                o.entry("location").or_insert(location);
            }
            root
        },
    )
}

/// OsmAnd query parameters: a valid request with hostile parameters added or repeated.
fn osmand_params() -> impl Strategy<Value = Vec<(String, String)>> {
    let param = (
        prop_oneof![8 => prop::sample::select(OSMAND_KEYS.split(' ').collect::<Vec<_>>()).prop_map(str::to_owned), 2 => hostile_text()],
        hostile_text(),
    );
    (prop::collection::vec(param, 0..8), any::<bool>()).prop_map(|(extra, base)| {
        let mut params: Vec<(String, String)> = if base {
            [("id", "phone-1"), ("lat", "39.9"), ("lon", "116.4"), ("timestamp", "1714552200")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        } else {
            Vec::new()
        };
        params.extend(extra);
        params
    })
}

const CSV_COLUMNS: &[&str] = &[
    "code",
    "name",
    "channel_type",
    "tier",
    "lat",
    "lon",
    "wkt",
    "radius_m",
    "status",
    "territory",
    "address",
    "Latitude",
    "lng",
    "x",
    "y",
    "id",
    "",
    "extra",
];

/// A CSV file: a header of known (sometimes repeated) and unknown columns, rows of hostile cells,
/// quoted or not, in one of the sniffed delimiters.
fn csv_file() -> impl Strategy<Value = Vec<u8>> {
    let header = prop::collection::vec(prop::sample::select(CSV_COLUMNS), 1..10);
    let cell = prop_oneof![
        hostile_text(),
        prop::sample::select(&["A", "B", "agent_point", "active", "closed", "39.95", "116.05", "50"][..])
            .prop_map(str::to_owned),
    ];
    let rows = prop::collection::vec(prop::collection::vec((cell, any::<bool>()), 0..12), 0..12);
    (header, rows, prop::sample::select(&[b',', b';', b'\t'][..]), any::<bool>()).prop_map(
        |(header, rows, delimiter, bom)| {
            let d = char::from(delimiter).to_string();
            let mut out = if bom { "\u{feff}".to_owned() } else { String::new() };
            out.push_str(&header.join(&d));
            for row in rows {
                out.push('\n');
                let cells: Vec<String> = row
                    .into_iter()
                    .map(|(c, quoted)| if quoted { format!("\"{}\"", c.replace('"', "\"\"")) } else { c })
                    .collect();
                out.push_str(&cells.join(&d));
            }
            out.into_bytes()
        },
    )
}

fn geojson_feature() -> impl Strategy<Value = Value> {
    let properties = mutated(
        json!({"code": "O1", "name": "Shop", "channel_type": "agent_point", "tier": "A"}),
        &["code", "name", "channel_type", "tier", "lat", "lon", "radius_m", "status", "territory", "address"],
    );
    let geometry = mutated(json!({"type": "Point", "coordinates": [116.4, 39.9]}), &["type", "coordinates"]);
    let feature = mutated(json!({"type": "Feature"}), &["type", "id", "properties", "geometry"]);
    (feature, properties, geometry).prop_map(|(mut f, p, g)| {
        if let Value::Object(o) = &mut f {
            o.entry("properties").or_insert(p);
            o.entry("geometry").or_insert(g);
        }
        f
    })
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn arbitrary_bytes_are_answered_by_every_decoder(body in bytes()) {
        check_native(&native::decode(&body, native::Format::JsonArray))?;
        check_native(&native::decode(&body, native::Format::Ndjson))?;
        check_osmand(&osmand::decode_json(&body, now()))?;
        check_owntracks(&owntracks::decode(&body), None)?;
        check_gpx(&gpx::decode(&body))?;
        check_import(&import::parse_csv(&body))?;
        check_import(&import::parse_geojson(&body))?;
        // The query decoder gets the bytes as `key=value&..` pairs, as the form decoder yields them.
        let text = String::from_utf8_lossy(&body);
        let params: Vec<(String, String)> = text
            .split('&')
            .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        check_osmand(&osmand::decode_query(&params, osmand::SpeedUnit::Knots, now()))?;
    }

    #[test]
    fn hostile_native_batches_answer_every_item(items in prop::collection::vec(
        prop_oneof![8 => mutated(native_item(), &native::FIELDS), 2 => hostile_value()], 0..12)
    ) {
        let array = serde_json::to_vec(&items).expect("serialises");
        let decoded = native::decode(&array, native::Format::JsonArray);
        check_native(&decoded)?;
        prop_assert_eq!(decoded.as_ref().map(Vec::len).ok(), Some(items.len()), "one answer per item");
        let ndjson: Vec<String> = items.iter().map(Value::to_string).collect();
        let decoded = native::decode(ndjson.join("\n").as_bytes(), native::Format::Ndjson);
        check_native(&decoded)?;
        prop_assert_eq!(decoded.as_ref().map(Vec::len).ok(), Some(items.len()), "one answer per line");
    }

    #[test]
    fn hostile_osmand_requests_are_answered(
        params in osmand_params(),
        unit in prop::sample::select(vec![osmand::SpeedUnit::Knots, osmand::SpeedUnit::Kmh, osmand::SpeedUnit::Mps]),
        body in traccar_body(),
    ) {
        check_osmand(&osmand::decode_query(&params, unit, now()))?;
        check_osmand(&osmand::decode_json(body.to_string().as_bytes(), now()))?;
    }

    #[test]
    fn hostile_owntracks_messages_are_answered(
        messages in prop::collection::vec(
            prop_oneof![8 => mutated(owntracks_message(), OWNTRACKS_KEYS), 2 => hostile_value()], 0..8),
    ) {
        if let Some(first) = messages.first() {
            check_owntracks(&owntracks::decode(first.to_string().as_bytes()), None)?;
        }
        let n = Some(messages.len());
        check_owntracks(&owntracks::decode(Value::from(messages.clone()).to_string().as_bytes()), n)?;
        let recorder = json!({"count": messages.len(), "locations": messages});
        check_owntracks(&owntracks::decode(recorder.to_string().as_bytes()), n)?;
    }

    #[test]
    fn hostile_gpx_points_are_answered(
        points in prop::collection::vec((hostile_text(), hostile_text(), hostile_text(), hostile_text(), any::<bool>()), 0..8),
    ) {
        let attr = |s: &str| s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
        let mut doc = String::from(r#"<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">"#);
        let mut track = String::from("<trk><trkseg>");
        for (lat, lon, time, ele, waypoint) in &points {
            let point = format!(
                r#" lat="{}" lon="{}"><ele>{}</ele><time>{}</time>"#, attr(lat), attr(lon), attr(ele), attr(time)
            );
            if *waypoint {
                let _ = write!(doc, "<wpt{point}</wpt>");
            } else {
                let _ = write!(track, "<trkpt{point}</trkpt>");
            }
        }
        doc.push_str(&track);
        doc.push_str("</trkseg></trk></gpx>");
        check_gpx(&gpx::decode(doc.as_bytes()))?;
    }

    #[test]
    fn hostile_outlet_files_answer_every_row(csv in csv_file(), features in prop::collection::vec(
        prop_oneof![8 => geojson_feature(), 2 => hostile_value()], 0..8),
    ) {
        check_import(&import::parse_csv(&csv))?;
        let collection = json!({"type": "FeatureCollection", "features": features});
        let parsed = import::parse_geojson(collection.to_string().as_bytes());
        check_import(&parsed)?;
        prop_assert_eq!(parsed.as_ref().map(|p| p.total).ok(), Some(features.len()));
        if let Some(feature) = features.first() {
            check_import(&import::parse_geojson(feature.to_string().as_bytes()))?;
        }
    }

    #[test]
    fn hostile_checklists_and_answers_are_answered(items in hostile_value(), answers in hostile_value()) {
        // Checklists and answers arrive as JSON already parsed by the HTTP layer.
        let parsed = checklist::parse_items(&items);
        if let Err(errors) = &parsed {
            check_errors(errors)?;
        }
        let items = parsed.unwrap_or_default();
        if let Err(errors) = checklist::check_answers(&items, &answers) {
            check_errors(&errors)?;
        }
    }
}

/// `unit` repeated until the whole is at least `bytes` long, joined by `sep`.
fn repeat_to(unit: &str, sep: &str, bytes: usize) -> String {
    let n = bytes / (unit.len() + sep.len()).max(1) + 1;
    vec![unit; n].join(sep)
}

/// Several MB: each large input is one small generated unit repeated, so that proptest never
/// generates or shrinks megabytes itself.
const MB: usize = 1024 * 1024;

proptest! {
    #![proptest_config(config(LARGE_CASES))]

    #[test]
    fn megabytes_of_native_pings_are_answered(item in mutated(native_item(), &native::FIELDS), count in 9_990usize..10_010) {
        let unit = item.to_string();
        let array = format!("[{}]", vec![unit.as_str(); count].join(","));
        let decoded = native::decode(array.as_bytes(), native::Format::JsonArray);
        check_native(&decoded)?;
        if count <= native::MAX_ITEMS {
            prop_assert_eq!(decoded.as_ref().map(Vec::len).ok(), Some(count));
        } else {
            prop_assert!(decoded.is_err(), "more than MAX_ITEMS accepted");
        }
        check_native(&native::decode(vec![unit.as_str(); count].join("\n").as_bytes(), native::Format::Ndjson))?;
        // One huge item, and deep nesting.
        let huge = json!([{"fix_time": "2024-05-01T08:30:00Z", "lat": 1, "lon": 1, "ping_id": "x".repeat(4 * MB)}]);
        check_native(&native::decode(huge.to_string().as_bytes(), native::Format::JsonArray))?;
        let deep = format!("[{}{}]", "[".repeat(MB), "]".repeat(MB));
        check_native(&native::decode(deep.as_bytes(), native::Format::JsonArray))?;
        check_native(&native::decode(deep.as_bytes(), native::Format::Ndjson))?;
    }

    #[test]
    fn megabytes_of_protocol_messages_are_answered(
        message in mutated(owntracks_message(), OWNTRACKS_KEYS),
        body in traccar_body(),
        params in osmand_params(),
    ) {
        let list = format!("[{}]", repeat_to(&message.to_string(), ",", 3 * MB));
        check_owntracks(&owntracks::decode(list.as_bytes()), Some(usize::MAX))?;
        let deep = "[".repeat(MB);
        check_owntracks(&owntracks::decode(deep.as_bytes()), None)?;
        check_osmand(&osmand::decode_json(deep.as_bytes(), now()))?;
        let mut traccar = body;
        if let Some(Value::Object(location)) = traccar.get_mut("location") {
            location.insert("extras".into(), json!({"pad": "x".repeat(3 * MB)}));
        }
        check_osmand(&osmand::decode_json(traccar.to_string().as_bytes(), now()))?;
        // 200,000 parameters: repeated keys, distinct device ids, distinct attributes.
        let mut many = params;
        for i in 0..200_000 {
            many.push((["id", "lat", "x"][i % 3].to_owned(), i.to_string()));
            many.push((format!("attr{i}"), i.to_string()));
        }
        check_osmand(&osmand::decode_query(&many, osmand::SpeedUnit::Knots, now()))?;
    }

    #[test]
    fn megabytes_of_gpx_are_answered(lat in hostile_text(), time in hostile_text()) {
        let good = r#"<trkpt lat="39.9" lon="116.4"><time>2024-05-01T08:30:00Z</time></trkpt>"#;
        let odd = format!(r#"<trkpt lat="{}" lon="116.4"><time>{}</time></trkpt>"#,
            lat.replace(['&', '"', '<'], "_"), time.replace(['&', '<'], "_"));
        let points = repeat_to(&format!("{good}{odd}"), "", 3 * MB);
        let doc = format!(r#"<gpx version="1.1" creator="t"><trk><trkseg>{points}</trkseg></trk></gpx>"#);
        check_gpx(&gpx::decode(doc.as_bytes()))?;
        let deep = format!(r#"<gpx version="1.1" creator="t"><extensions>{}</extensions></gpx>"#, "<a>".repeat(200_000));
        check_gpx(&gpx::decode(deep.as_bytes()))?;
        let long_name = format!(r#"<gpx version="1.1" creator="t"><trk><name>{}</name></trk></gpx>"#, "n".repeat(4 * MB));
        check_gpx(&gpx::decode(long_name.as_bytes()))?;
    }

    #[test]
    fn megabytes_of_outlets_answer_every_row(row in "[A-Za-z0-9 .,;\"-]{0,60}", feature in geojson_feature()) {
        let header = "code,name,channel_type,tier,lat,lon\n";
        let good = "O{},Shop,agent_point,A,39.95,116.05";
        let rows: Vec<String> = (0..40_000)
            .map(|i| if i % 2 == 0 { good.replace("{}", &i.to_string()) } else { row.clone() })
            .collect();
        check_import(&import::parse_csv(format!("{header}{}", rows.join("\n")).as_bytes()))?;
        let wide = format!("{}\n{}", repeat_to("col", ",", MB), repeat_to("v", ",", MB));
        check_import(&import::parse_csv(wide.as_bytes()))?;
        let features = repeat_to(&feature.to_string(), ",", 3 * MB);
        let collection = format!(r#"{{"type":"FeatureCollection","features":[{features}]}}"#);
        check_import(&import::parse_geojson(collection.as_bytes()))?;
        let deep = format!(r#"{{"type":"FeatureCollection","features":{}}}"#, "[".repeat(MB));
        check_import(&import::parse_geojson(deep.as_bytes()))?;
    }
}

/// The helpers above must reject what they are meant to: a property that cannot fail proves nothing.
#[test]
fn the_checks_catch_an_unanswered_item() {
    let unindexed: Result<Vec<Result<native::Item, Vec<FieldError>>>, FieldError> =
        Ok(vec![Err(vec![FieldError::new("lat", "bad")])]);
    assert!(check_native(&unindexed).is_err(), "an item error without its index must fail the check");
    let parsed = Parsed { total: 2, ..Parsed::default() };
    assert!(check_import(&Ok(parsed)).is_err(), "rows neither accepted nor rejected must fail the check");
}
