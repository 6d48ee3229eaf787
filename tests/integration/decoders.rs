//! Property tests of the server's own decoders (issue 25): photo reading (EXIF time and GPS, the
//! HEIC box walker, the JPEG/PNG decoders) and, over real HTTP, every route that decodes a body a
//! phone or a user sends (OsmAnd query and JSON, OwnTracks, native JSON and NDJSON, GPX, outlet
//! CSV/GeoJSON import, photo upload). No panic, and every input answered: `Ok` or a typed error,
//! over HTTP a status below 500 with an RFC 9457 problem for every error.
//!
//! The domain's decoders get the same treatment in `crates/fieldvisit-domain/tests/decoders.rs`.

use crate::common::{self, TestApp, World};
use base64::Engine as _;
use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value as ExifValue};
use fieldvisit::imaging::{self, HeicDecoder};
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::TestRunner;
use reqwest::Method;
use serde_json::json;

/// Cases of each in-process property.
const CASES: u32 = 64;

fn config() -> ProptestConfig {
    ProptestConfig { cases: CASES, max_shrink_iters: 256, ..ProptestConfig::default() }
}

/// A decoder program that is not installed: HEIC photos go through the size check (the box
/// walker) and are then kept undecoded, with no child process started on hostile bytes.
fn no_heic_program() -> Option<HeicDecoder> {
    HeicDecoder::new("/nonexistent/fieldvisit-heif-convert")
}

/// A small real JPEG.
fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([(x * 10) as u8, (y * 15) as u8, 128]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80))
        .expect("encode a JPEG");
    out
}

/// `jpeg` with an APP1 Exif segment holding `fields` right after its start-of-image marker.
fn with_exif(jpeg: &[u8], fields: &[Field]) -> Vec<u8> {
    // The writer needs a primary IFD: a camera maker.
    let make = Field { tag: Tag::Make, ifd_num: In::PRIMARY, value: ExifValue::Ascii(vec![b"test".to_vec()]) };
    let mut writer = Writer::new();
    writer.push_field(&make);
    for f in fields.iter().filter(|f| f.tag != Tag::Make) {
        writer.push_field(f);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).expect("encode EXIF");
    let payload = [&b"Exif\0\0"[..], &tiff.into_inner()].concat();
    let len = u16::try_from(payload.len() + 2).expect("an EXIF segment under 64 KiB");
    [&jpeg[..2], &[0xFF, 0xE1], &len.to_be_bytes(), &payload, &jpeg[2..]].concat()
}

/// EXIF text a camera would never write: dates at chrono's limits, zero-denominator-like junk.
const EXIF_TEXT: &[&str] = &[
    "2024:05:01 08:30:00",
    "2024:05:01",
    "9999:12:31 23:59:59",
    "0000:00:00 00:00:00",
    "65535:12:31 23:59:59",
    "262142:12:31",
    "+262142:12:31",
    "262143:12:31",
    "-262143:01:01",
    "2024:02:30",
    "    :  :     :  :  ",
    "+14:00",
    "-23:59",
    "+99:99",
    "Z",
    "",
    "N",
    "S",
    "W",
];

fn exif_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(EXIF_TEXT).prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..24),
    ]
}

fn rationals() -> impl Strategy<Value = Vec<Rational>> {
    let value = prop_oneof![
        (any::<u32>(), any::<u32>()),
        prop::sample::select(vec![(0, 0), (1, 0), (u32::MAX, 1), (1, u32::MAX), (23, 1), (59, 1), (86_399, 1)]),
    ];
    prop::collection::vec(value.prop_map(|(num, denom)| Rational { num, denom }), 0..5)
}

/// A GPS or photo-time EXIF field with a hostile value (ASCII fields sometimes get a wrong type).
fn exif_field() -> impl Strategy<Value = Field> {
    let ascii = prop::sample::select(vec![
        (Tag::DateTimeOriginal, In::PRIMARY),
        (Tag::OffsetTimeOriginal, In::PRIMARY),
        (Tag::GPSDateStamp, In::PRIMARY),
        (Tag::GPSLatitudeRef, In::PRIMARY),
        (Tag::GPSLongitudeRef, In::PRIMARY),
        (Tag::DateTimeOriginal, In::THUMBNAIL),
    ]);
    let rational = prop::sample::select(vec![Tag::GPSTimeStamp, Tag::GPSLatitude, Tag::GPSLongitude]);
    prop_oneof![
        (ascii, exif_text(), any::<bool>()).prop_map(|((tag, ifd_num), text, wrong_type)| Field {
            tag,
            ifd_num,
            value: if wrong_type { ExifValue::Byte(text) } else { ExifValue::Ascii(vec![text]) },
        }),
        (rational, rationals()).prop_map(|(tag, v)| Field { tag, ifd_num: In::PRIMARY, value: ExifValue::Rational(v) }),
    ]
}

/// Distinct tags (the writer refuses duplicates).
fn exif_fields() -> impl Strategy<Value = Vec<Field>> {
    prop::collection::vec(exif_field(), 0..8).prop_map(|mut fields| {
        let mut seen = Vec::new();
        fields.retain(|f| {
            let key = (f.tag, f.ifd_num);
            let fresh = !seen.contains(&key);
            seen.push(key);
            fresh
        });
        fields
    })
}

/// An ISO BMFF box; `declared` overrides the size field (lies about the length).
fn bmff(kind: [u8; 4], body: &[u8], declared: Option<u32>) -> Vec<u8> {
    let size = declared.unwrap_or_else(|| u32::try_from(body.len() + 8).expect("a small box"));
    [&size.to_be_bytes()[..], &kind, body].concat()
}

/// A HEIF file whose `meta/iprp/ipco` boxes carry hostile `ispe` sizes and lying box lengths.
fn heif_file() -> impl Strategy<Value = Vec<u8>> {
    let ispe = (any::<u32>(), any::<u32>(), prop::option::weighted(0.2, any::<u32>()))
        .prop_map(|(w, h, lie)| bmff(*b"ispe", &[&[0; 4][..], &w.to_be_bytes(), &h.to_be_bytes()].concat(), lie));
    let large_size = any::<u64>().prop_map(|n| [&1u32.to_be_bytes()[..], b"free", &n.to_be_bytes()].concat());
    let child = prop_oneof![4 => ispe, 1 => large_size, 1 => prop::collection::vec(any::<u8>(), 0..16)];
    let lies = prop::collection::vec(prop::option::weighted(0.15, prop_oneof![Just(0u32), Just(1), any::<u32>()]), 3);
    (prop::collection::vec(child, 0..6), lies, prop::collection::vec(any::<u8>(), 0..32)).prop_map(
        |(children, lies, tail)| {
            let ipco = bmff(*b"ipco", &children.concat(), lies[0]);
            let iprp = bmff(*b"iprp", &ipco, lies[1]);
            let meta = bmff(*b"meta", &[&[0; 4][..], &bmff(*b"hdlr", &[0; 24], None), &iprp].concat(), lies[2]);
            [bmff(*b"ftyp", b"heic\0\0\0\0mif1heic", None), meta, tail].concat()
        },
    )
}

/// Bytes that pass the format sniffing (a JPEG, PNG or HEIC signature) followed by anything.
fn sniffed_junk() -> impl Strategy<Value = Vec<u8>> {
    let magic = prop::sample::select(vec![
        b"\xFF\xD8\xFF".to_vec(),
        b"\x89PNG\r\n\x1a\n".to_vec(),
        b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec(),
    ]);
    (magic, prop::collection::vec(any::<u8>(), 0..4096)).prop_map(|(m, tail)| [m, tail].concat())
}

/// Whatever `read` answers, it answers (the property is the absence of a panic), and what it
/// reads is plausible.
fn check_photo(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(photo) = imaging::read(bytes, no_heic_program().as_ref(), imaging::DEFAULT_MAX_PIXELS) {
        if let Some((lat, lon)) = photo.position {
            prop_assert!((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon), "{lat}, {lon}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn photos_with_hostile_exif_are_answered(fields in exif_fields()) {
        check_photo(&with_exif(&jpeg(), &fields))?;
    }

    #[test]
    fn heif_box_walker_answers_hostile_boxes(file in heif_file()) {
        check_photo(&file)?;
    }

    #[test]
    fn sniffed_junk_is_answered(bytes in sniffed_junk()) {
        check_photo(&bytes)?;
    }
}

/// The GPS clock at the last date chrono represents: read, not overflowed.
#[test]
fn exif_gps_clock_at_the_end_of_time_is_answered() {
    let gps_clock = |date: &str, hms: [u32; 3]| {
        vec![
            Field { tag: Tag::GPSDateStamp, ifd_num: In::PRIMARY, value: ExifValue::Ascii(vec![date.into()]) },
            Field {
                tag: Tag::GPSTimeStamp,
                ifd_num: In::PRIMARY,
                value: ExifValue::Rational(hms.iter().map(|&num| Rational { num, denom: 1 }).collect()),
            },
        ]
    };
    for fields in [gps_clock("262142:12:31", [23, 59, 59]), gps_clock("+262142:12:31", [23, 59, 59])] {
        let photo = imaging::read(&with_exif(&jpeg(), &fields), None, imaging::DEFAULT_MAX_PIXELS);
        assert!(photo.is_ok(), "{photo:?}");
    }
}

/// One hostile body for a route, from a valid sample by byte edits (insert, delete, replace,
/// duplicate a slice, truncate).
fn mutate(sample: &[u8]) -> impl Strategy<Value = Vec<u8>> {
    let sample = sample.to_vec();
    let edit = (0usize..4, any::<prop::sample::Index>(), any::<u8>(), 1usize..64);
    prop::collection::vec(edit, 0..6).prop_map(move |edits| {
        let mut out = sample.clone();
        for (op, at, byte, n) in edits {
            let i = at.index(out.len() + 1);
            match op {
                0 => out.insert(i, byte),
                1 if i < out.len() => {
                    out.remove(i);
                }
                2 if i < out.len() => out[i] = byte,
                3 => {
                    let slice: Vec<u8> = out[i..(i + n).min(out.len())].to_vec();
                    out.splice(i..i, slice.iter().copied().cycle().take(slice.len() * n));
                }
                _ => out.truncate(i),
            }
        }
        out
    })
}

/// A request to one decoding route.
struct Route {
    name: &'static str,
    method: Method,
    path: String,
    content_type: &'static str,
    authorization: String,
    sample: Vec<u8>,
}

impl Route {
    fn send(&self, app: &TestApp, body: Vec<u8>) -> reqwest::RequestBuilder {
        app.client
            .request(self.method.clone(), app.url(&self.path))
            .header("content-type", self.content_type)
            .header("authorization", &self.authorization)
            .body(body)
    }
}

fn routes(w: &World) -> Vec<Route> {
    let bearer = |token: &str| format!("Bearer {token}");
    let basic = |user: &str, password: &str| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
    };
    let ping = json!({"fix_time": "2024-05-01T08:30:00Z", "lat": 39.95, "lon": 116.05, "accuracy_m": 8});
    let route = |name, path: String, content_type, authorization: String, sample: String| Route {
        name,
        method: Method::POST,
        path,
        content_type,
        authorization,
        sample: sample.into_bytes(),
    };
    let osmand_query = format!("id={}&lat=39.95&lon=116.05&timestamp=1714552200&speed=1.5&batt=80", w.device.osmand_id);
    vec![
        route(
            "osmand form",
            "/osmand".into(),
            "application/x-www-form-urlencoded",
            String::new(),
            osmand_query.clone(),
        ),
        route(
            "osmand json",
            "/osmand".into(),
            "application/json",
            String::new(),
            json!({"device_id": w.device.osmand_id, "location": {"timestamp": "2024-05-01T08:30:00Z",
                "coords": {"latitude": 39.95, "longitude": 116.05, "speed": 1.5}, "battery": {"level": 0.8}}})
            .to_string(),
        ),
        route(
            "owntracks",
            "/owntracks".into(),
            "application/json",
            basic(&w.device.owntracks_user, &w.device.owntracks_password),
            json!({"_type": "location", "tst": 1_714_552_200, "lat": 39.95, "lon": 116.05, "acc": 8}).to_string(),
        ),
        route("native array", "/api/v1/pings".into(), "application/json", bearer(&w.device.token), json!([ping, ping]).to_string()),
        route(
            "native ndjson",
            "/api/v1/pings".into(),
            "application/x-ndjson",
            bearer(&w.device.token),
            format!("{ping}\n{ping}\n"),
        ),
        route(
            "gpx",
            format!("/api/v1/devices/{}/gpx", w.device.id),
            "application/gpx+xml",
            bearer(&w.admin.token),
            r#"<gpx version="1.1" creator="t"><trk><trkseg><trkpt lat="39.95" lon="116.05"><time>2024-05-01T08:30:00Z</time></trkpt></trkseg></trk></gpx>"#.into(),
        ),
        route(
            "outlet csv",
            "/api/v1/outlets/import?mode=validate".into(),
            "text/csv",
            bearer(&w.admin.token),
            "code,name,channel_type,tier,lat,lon\nP1,Shop,agent_point,A,39.95,116.05\n".into(),
        ),
        route(
            "outlet geojson",
            "/api/v1/outlets/import?mode=validate".into(),
            "application/geo+json",
            bearer(&w.admin.token),
            json!({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point",
                "coordinates": [116.05, 39.95]}, "properties": {"code": "P2", "name": "Shop",
                "channel_type": "agent_point", "tier": "A"}}]})
            .to_string(),
        ),
        Route {
            name: "osmand query",
            method: Method::GET,
            path: "/osmand".into(),
            content_type: "text/plain",
            authorization: String::new(),
            sample: osmand_query.into_bytes(),
        },
    ]
}

/// Over real HTTP: byte-edited bodies on every decoding route, plus a few bodies of several MB
/// (at and over the body limit). Every answer is below 500, and every error a problem.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn hostile_bodies_on_every_decoding_route_are_answered(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let mut runner = TestRunner::deterministic();
    let mut failures = Vec::new();
    for route in routes(&w) {
        let strategy = mutate(&route.sample);
        let mut bodies: Vec<Vec<u8>> =
            (0..24).map(|_| strategy.new_tree(&mut runner).expect("a generated body").current()).collect();
        bodies.push(route.sample.repeat(common::BODY_LIMIT / route.sample.len().max(1)));
        bodies.push(route.sample.repeat(3 * common::BODY_LIMIT / route.sample.len().max(1)));
        for body in bodies {
            let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
            let rb = if route.method == Method::GET {
                // A URL has no room for megabytes: the query gets the first 32 KiB.
                let query: String = body[..body.len().min(32 * 1024)]
                    .iter()
                    .map(|&b| {
                        if b.is_ascii_alphanumeric() || b"&=.-_:+%".contains(&b) {
                            char::from(b).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                app.client.get(format!("{}?{query}", app.url(&route.path)))
            } else {
                route.send(&app, body)
            };
            let res = app.send(rb).await;
            let problem = res.content_type().starts_with("application/problem+json");
            if res.status >= 500 || (res.status >= 400 && !problem) {
                failures.push(format!("{}: {} {} <- {shown:?}", route.name, res.status, res.describe()));
            }
        }
    }
    assert!(failures.is_empty(), "{} unanswered inputs:\n{}", failures.len(), failures.join("\n"));
}
