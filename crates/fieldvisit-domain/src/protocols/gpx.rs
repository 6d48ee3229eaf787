//! GPX uploads (a day's track exported from a phone or a GPS logger): waypoints and track points, in file
//! order, each of which must carry a `<time>`. Route points (`<rtept>`) are plans, not fixes, and are ignored.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{MAX_EPOCH_S, check_attributes, check_position, parse_error, to_f32};
use crate::ping::Fix;
use crate::validation::FieldError;

/// Decodes a GPX 1.0/1.1 document. Errors name the point (`index` counts waypoints then track points, in
/// file order) or, for a document that is not GPX, the body.
pub fn decode(body: &[u8]) -> Result<Vec<Fix>, FieldError> {
    if nesting_depth(body) > MAX_DEPTH {
        return Err(FieldError::new(
            "body",
            format!("nests elements more than {MAX_DEPTH} deep; a GPX document needs about ten levels"),
        ));
    }
    let doc = ::gpx::read(body)
        .map_err(|e| FieldError::new("body", format!("is not a GPX document: {}", parse_error(&e))))?;
    let waypoints = doc.waypoints.iter().enumerate().map(|(i, p)| (format!("waypoint {}", i + 1), p));
    let track_points = doc.tracks.iter().enumerate().flat_map(|(t, track)| {
        track.segments.iter().enumerate().flat_map(move |(s, segment)| {
            segment
                .points
                .iter()
                .enumerate()
                .map(move |(p, point)| (format!("track {}, segment {}, point {}", t + 1, s + 1, p + 1), point))
        })
    });
    waypoints.chain(track_points).enumerate().map(|(index, (name, point))| fix(point, &name, index)).collect()
}

/// Deepest element nesting read. GPX needs about ten levels (with extensions); the XML parser's
/// time grows faster than linearly with depth (200,000 nested elements took minutes), so deeper
/// documents are refused before parsing.
const MAX_DEPTH: usize = 100;

/// How deep a document's elements nest, scanned without parsing it (comments, CDATA, declarations
/// and processing instructions skipped, quoted attribute values honoured); stops past [`MAX_DEPTH`].
fn nesting_depth(body: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while let Some(at) = body.get(i..).and_then(|rest| rest.iter().position(|&b| b == b'<')) {
        i += at;
        let rest = &body[i..];
        let past =
            |end: &[u8]| rest.windows(end.len()).position(|w| w == end).map_or(body.len(), |p| i + p + end.len());
        if rest.starts_with(b"<!--") {
            i = past(b"-->");
            continue;
        }
        if rest.starts_with(b"<![CDATA[") {
            i = past(b"]]>");
            continue;
        }
        if rest.starts_with(b"<?") || rest.starts_with(b"<!") {
            i = past(b">");
            continue;
        }
        let (mut j, mut quote, mut empty) = (1, None, false);
        while let Some(&b) = rest.get(j) {
            match (quote, b) {
                (Some(q), _) if b == q => quote = None,
                (None, b'"' | b'\'') => quote = Some(b),
                (None, b'>') => {
                    empty = rest[j - 1] == b'/';
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        i += j + 1;
        if rest.get(1) == Some(&b'/') {
            depth = depth.saturating_sub(1);
        } else if !empty {
            depth += 1;
            deepest = deepest.max(depth);
            if deepest > MAX_DEPTH {
                break;
            }
        }
    }
    deepest
}

fn fix(point: &::gpx::Waypoint, name: &str, index: usize) -> Result<Fix, FieldError> {
    let fix_time = point.time.as_ref().map(|t| t.format().ok().as_deref().and_then(utc));
    let fix_time = match fix_time {
        None => return Err(FieldError::new("time", format!("{name} has no <time>; every point needs one")).at(index)),
        Some(None) => {
            return Err(FieldError::new("time", format!("{name} has a <time> outside 1970..=9999")).at(index));
        }
        Some(Some(t)) => t,
    };
    let p = point.point();
    let mut errors = Vec::new();
    check_position(p.y(), p.x(), "lat", "lon", &mut errors);
    if let Some(e) = errors.into_iter().next() {
        return Err(FieldError::new(e.field, format!("{name}: {}", e.reason)).at(index));
    }
    let mut attributes = Map::new();
    for (key, value) in [("hdop", point.hdop), ("vdop", point.vdop), ("pdop", point.pdop)] {
        if let Some(n) = value.and_then(serde_json::Number::from_f64) {
            attributes.insert(key.to_owned(), Value::Number(n));
        }
    }
    if let Some(sat) = point.sat {
        attributes.insert("sat".to_owned(), Value::from(sat));
    }
    if let Some(n) = &point.name {
        attributes.insert("name".to_owned(), Value::String(n.clone()));
    }
    // The same cap as every protocol's attributes: a point's <name> is free text of any length.
    let mut errors = Vec::new();
    check_attributes(&attributes, &mut errors);
    if let Some(e) = errors.into_iter().next() {
        return Err(e.at(index));
    }
    let mut fix = Fix::at(fix_time, p.y(), p.x());
    fix.altitude_m = point.elevation.and_then(to_f32);
    fix.speed_mps = point.speed.filter(|s| *s >= 0.0).and_then(to_f32);
    fix.attributes = attributes;
    Ok(fix)
}

/// The gpx crate's ISO-8601 rendering (always UTC) as a chrono instant.
fn utc(text: &str) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
    (0..=MAX_EPOCH_S).contains(&t.timestamp()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const LIMERICK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/limerick-304/bus_304_2019-02-18.gpx");

    fn doc(inner: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">{inner}</gpx>"#
        )
    }

    #[test]
    fn nesting_is_measured_without_parsing_and_deep_documents_are_refused() {
        assert_eq!(nesting_depth(doc("<trk><trkseg><trkpt lat=\"1\" lon=\"1\"/></trkseg></trk>").as_bytes()), 3);
        let tricky = r#"<gpx a="/>" b='<x>'><!-- <c><c> --><![CDATA[<d><d>]]><e/><f></f></gpx>"#;
        assert_eq!(nesting_depth(tricky.as_bytes()), 2);
        // Found by the decoders' property test: 200,000 nested elements kept the parser busy for minutes.
        let deep = doc(&format!("<extensions>{}</extensions>", "<a>".repeat(200_000)));
        let refused = decode(deep.as_bytes()).expect_err("refused");
        assert!(refused.reason.contains("deep"), "{refused:?}");
        assert_eq!(decode(LIMERICK_DEPTH_OK.as_bytes()).map(|f| f.len()), Ok(1));
    }

    const LIMERICK_DEPTH_OK: &str = r#"<gpx version="1.1" creator="t"><trk><trkseg><trkpt lat="52.6" lon="-8.6"><time>2019-02-18T07:45:50Z</time><extensions><a><b><c>1</c></b></a></extensions></trkpt></trkseg></trk></gpx>"#;

    #[test]
    fn limerick_bus_track_decodes_every_point() {
        let body = std::fs::read(LIMERICK).expect("should succeed");
        let fixes = decode(&body).expect("should succeed");
        assert_eq!(fixes.len(), 2144);
        let first = &fixes[0];
        assert_eq!(first.fix_time, Utc.with_ymd_and_hms(2019, 2, 18, 7, 45, 50).single().expect("valid time"));
        assert_eq!((first.lat, first.lon), (52.629_151, -8.661_746));
        assert_eq!(first.altitude_m, Some(19.5));
        assert!(fixes.windows(2).all(|w| w[0].fix_time <= w[1].fix_time), "a recorded track is in time order");
        assert!(fixes.iter().all(|f| f.fix_time.date_naive() == first.fix_time.date_naive()));
    }

    #[test]
    fn waypoints_come_first_with_their_names() {
        let body = doc(r#"<wpt lat="52.1" lon="-8.1"><time>2019-02-18T07:00:00Z</time><name>Depot</name></wpt>
            <trk><trkseg><trkpt lat="52.2" lon="-8.2"><time>2019-02-18T08:00:00.5+01:00</time><sat>7</sat><hdop>1.5</hdop></trkpt></trkseg></trk>"#);
        let fixes = decode(body.as_bytes()).expect("should succeed");
        assert_eq!(fixes.len(), 2);
        assert_eq!(fixes[0].attributes["name"], "Depot");
        assert_eq!(
            fixes[1].fix_time.timestamp_millis(),
            Utc.with_ymd_and_hms(2019, 2, 18, 7, 0, 0).single().expect("valid time").timestamp_millis() + 500
        );
        assert_eq!(fixes[1].attributes["sat"], 7);
        assert_eq!(fixes[1].attributes["hdop"], 1.5);
    }

    #[test]
    fn gpx_1_0_speed_is_kept() {
        let body = r#"<?xml version="1.0"?><gpx version="1.0" creator="t" xmlns="http://www.topografix.com/GPX/1/0">
            <trk><trkseg><trkpt lat="1" lon="2"><time>2019-02-18T08:00:00Z</time><speed>3.5</speed></trkpt></trkseg></trk></gpx>"#;
        let fixes = decode(body.as_bytes()).expect("should succeed");
        assert_eq!(fixes[0].speed_mps, Some(3.5));
    }

    #[test]
    fn a_point_name_over_the_attributes_cap_rejects_its_point() {
        let long = "x".repeat(super::super::MAX_ATTRIBUTES_BYTES);
        let body =
            doc(&format!(r#"<wpt lat="52.1" lon="-8.1"><time>2019-02-18T07:00:00Z</time><name>{long}</name></wpt>"#));
        let e = decode(body.as_bytes()).expect_err("the name is over the cap");
        assert_eq!((e.field.as_str(), e.index), ("attributes", Some(0)), "{e:?}");
    }

    #[test]
    fn point_without_time_is_named() {
        let body = doc(r#"<trk><trkseg>
            <trkpt lat="52.2" lon="-8.2"><time>2019-02-18T08:00:00Z</time></trkpt>
            </trkseg><trkseg>
            <trkpt lat="52.2" lon="-8.2"><time>2019-02-18T08:00:01Z</time></trkpt>
            <trkpt lat="52.2" lon="-8.2"></trkpt>
            </trkseg></trk>"#);
        let e = decode(body.as_bytes()).expect_err("should fail");
        assert_eq!((e.index, e.field.as_str()), (Some(2), "time"));
        assert!(e.reason.contains("track 1, segment 2, point 2"), "{}", e.reason);
    }

    #[test]
    fn not_gpx_is_a_body_error() {
        for body in [&b""[..], b"hello", b"<gpx", b"{\"lat\":1}"] {
            assert_eq!(decode(body).expect_err("should fail").field, "body");
        }
        let bad_lat = doc(r#"<wpt lat="95" lon="1"><time>2019-02-18T08:00:00Z</time></wpt>"#);
        assert_eq!(decode(bad_lat.as_bytes()).expect_err("should fail").field, "body");
    }

    #[test]
    fn routes_are_ignored() {
        let body = doc(r#"<rte><rtept lat="1" lon="2"></rtept></rte>"#);
        assert!(decode(body.as_bytes()).expect("should succeed").is_empty());
    }

    proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..200), inner in ".{0,200}") {
            let _ = decode(&body);
            let _ = decode(doc(&inner).as_bytes());
        }
    }
}
