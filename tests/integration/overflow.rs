//! Extreme numbers, far dates and huge counts sent to every route that reads a number, a date or
//! a time (query, path, body, uploaded file, ping): each is answered with a 4xx problem naming the
//! field, never a 500 or a panic, and the server still answers afterwards (issue 25, item 3).

use crate::common::{TestApp, World, assert_problem};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Asserts a 4xx problem naming `field` (in `errors[].field`, or leading the detail: `after: ...`).
fn assert_names(res: &crate::common::Res, field: &str, path: &str) {
    assert!((400..500).contains(&res.status), "{path}: {}", res.describe());
    assert_problem(res, res.status, path.split('?').next().unwrap_or(path));
    let detail = res.json["detail"].as_str().unwrap_or("");
    let named = res.error_fields().iter().any(|f| f == field) || detail.starts_with(&format!("{field}: "));
    assert!(named, "{path}: the problem must name `{field}`: {}", res.describe());
}

/// `base` with the member at JSON pointer `pointer` set to `value`.
fn set(base: &Value, pointer: &str, value: Value) -> Value {
    let mut v = base.clone();
    if let Some(slot) = v.pointer_mut(pointer) {
        *slot = value;
    } else if let Some((parent, key)) = pointer.rsplit_once('/')
        && let Some(obj) = v.pointer_mut(parent).and_then(Value::as_object_mut)
    {
        obj.insert(key.to_owned(), value);
    }
    v
}

/// A check-out at chrono's last instant was stored and reading the check-in back added the
/// visit slack to it: a panic on that answer and on every later read of the rep's check-ins.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_check_in_at_the_ends_of_time_is_a_problem(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let token = Some(w.device.token.as_str());
    let (lat, lon) = crate::common::IN_T1;
    let now = chrono::Utc::now().to_rfc3339();
    let base = json!({"outlet_id": w.o1, "checked_in_at": now, "lat": lat, "lon": lon});
    let out = set(&set(&base, "/out_lat", json!(lat)), "/out_lon", json!(lon));
    let far = ["+262142-12-31T23:59:59Z", "-262143-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z"];
    for (i, t) in far.iter().enumerate() {
        let path = format!("/api/v1/checkins/app-far-in-{i:04}");
        let res = app.call(reqwest::Method::PUT, &path, token, Some(&set(&base, "/checked_in_at", json!(t)))).await;
        assert_names(&res, "checked_in_at", &path);
        let path = format!("/api/v1/checkins/app-far-out-{i:04}");
        let res = app.call(reqwest::Method::PUT, &path, token, Some(&set(&out, "/checked_out_at", json!(t)))).await;
        assert_names(&res, "checked_out_at", &path);
    }
    for (field, v) in [("accuracy_m", json!(1e308)), ("lat", json!(1e308)), ("lon", json!(-1e308))] {
        let path = format!("/api/v1/checkins/app-far-{field}");
        let res = app.call(reqwest::Method::PUT, &path, token, Some(&set(&base, &format!("/{field}"), v))).await;
        assert_names(&res, field, &path);
    }
    let path = format!("/api/v1/reps/{}/checkins", w.rep.id);
    let res = app.get(&path, Some(&w.admin.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
}

/// A JPEG whose EXIF says `GPSDateStamp` (ASCII) and `GPSTimeStamp` (h, m, s).
fn jpeg_with_gps_time(date: &str, (h, m, s): (u32, u32, u32)) -> Vec<u8> {
    use exif::{Field, In, Rational, Tag, Value as ExifValue};
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 128]));
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90))
        .expect("encode");
    let stamp = Field { tag: Tag::GPSDateStamp, ifd_num: In::PRIMARY, value: ExifValue::Ascii(vec![date.into()]) };
    let hms = [h, m, s].map(|n| Rational { num: n, denom: 1 }).to_vec();
    let clock = Field { tag: Tag::GPSTimeStamp, ifd_num: In::PRIMARY, value: ExifValue::Rational(hms) };
    let mut writer = exif::experimental::Writer::new();
    writer.push_field(&stamp);
    writer.push_field(&clock);
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).expect("EXIF");
    let app1 = [&b"Exif\0\0"[..], tiff.get_ref()].concat();
    let len = u16::try_from(app1.len() + 2).expect("small EXIF");
    [&jpeg[..2], &[0xFF, 0xE1], &len.to_be_bytes(), &app1, &jpeg[2..]].concat()
}

/// A photo's EXIF GPS date at chrono's ends (`%Y` reads `-262143`): PostgreSQL cannot store the
/// instant, and the whole photo was refused (422 "out of the range"); now the time is ignored, as
/// any malformed EXIF time is.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_photo_dated_at_the_end_of_time_is_kept_without_its_time(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = format!("/api/v1/outlets/{}/photos", w.o1);
    for (date, hms) in [("+262142:12:31", (23, 59, 59)), ("-262143:01:01", (0, 0, 1)), ("2026:03:02", (10, 5, 0))] {
        let part = reqwest::multipart::Part::bytes(jpeg_with_gps_time(date, hms)).file_name("a.jpg");
        let form = reqwest::multipart::Form::new().part("photo", part);
        let rb = app.request(reqwest::Method::POST, &path, Some(&w.manager.token)).multipart(form);
        let res = app.send(rb).await;
        assert_eq!(res.status, 201, "{date}: {}", res.describe());
    }
}
